"""Speed of `python -m edge analyze` next to grimp and dependency-cruiser, same code, same run.

    python3 bench/speed.py [CORPUS ...] [--repeats N] [--tools ours,ours-1,grimp,depcruise] [--json OUT]

For each speed corpus of bench/corpora.py a copy of just its measured folders
(plus its tsconfig) goes to bench/corpora/_speed/NAME/, so every tool reads
exactly the same files and LOC/s means the same thing for all of them. Each
repeat runs every tool once, round-robin, so drifting machine load hits all
alike; the table gives medians. Per run: wall time, CPU time (user+sys of the
tool's whole process tree, from wait4), peak RSS (largest single process, from
wait4) and peak RSS of the process tree summed (sampled from /proc every
50 ms; it is what matters when a tool forks workers). grimp runs with
cache_dir=None, so every run parses every file, like ours. Ours is run with
--stats (its per-stage seconds are kept in the JSON output), once with its
default worker count ("ours") and once with --workers 1 ("ours-1").
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from accuracy import depcruise_command, grimp_command, our_command
from corpora import BY_NAME, CORPORA, CORPUS_LIST, Corpus, count_loc, source_files

PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Sample:
    wall: float
    cpu: float
    max_rss_mb: float
    tree_rss_mb: float
    stdout: str


def speed_tree(corpus: Corpus) -> Corpus:
    """The corpus reduced to its measured folders, as a corpus rooted in _speed/NAME."""
    root = CORPORA / "_speed" / corpus.name
    if not root.is_dir():
        staging = root.with_name(root.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        for folder in corpus.measured_dirs:
            shutil.copytree(folder, staging / folder.relative_to(corpus.root), symlinks=True)
        if corpus.tsconfig:
            shutil.copy2(corpus.root / corpus.tsconfig, staging / corpus.tsconfig)
        staging.rename(root)
    copy = replace(corpus, name=f"_speed/{corpus.name}")
    assert copy.root == root
    return copy


def tree_rss(root_pid: int) -> int:
    """Resident bytes of root_pid and all its descendants, now."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError):
                continue
    family, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid and p not in family]
        family.update(children)
        frontier.extend(children)
    total = 0
    for pid in family:
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * PAGE
        except (OSError, IndexError):
            continue
    return total


def measure(command: list[str], cwd: Path) -> Sample:
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.PIPE, text=True)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                peak[0] = max(peak[0], tree_rss(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stderr = process.stderr.read()  # drain so a chatty tool cannot block on a full pipe
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {process.returncode}: {stderr[-2000:]}")
        out.seek(0)
        return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                      peak[0] / 2**20, out.read())


def commands(corpus: Corpus, tools: set[str], scratch: Path) -> dict[str, tuple[list[str], Path]]:
    """tool -> (command, working directory) for the tools that apply to this corpus."""
    wanted: dict[str, tuple[list[str], Path]] = {}
    repo = Path(__file__).resolve().parent.parent
    if "ours" in tools:  # one parser process per core, the default
        wanted["ours"] = (our_command(corpus, "--stats"), repo)
    if "ours-1" in tools:  # one parser process: the per-core rate
        wanted["ours-1"] = (our_command(corpus, "--stats", "--workers", "1"), repo)
    if corpus.language == "python" and "grimp" in tools:
        wanted["grimp"] = (grimp_command(corpus), corpus.root)
    if corpus.language == "js" and "depcruise" in tools:
        wanted["depcruise"] = (depcruise_command(corpus, scratch / "depcruise.json"), corpus.root)
    return wanted


def run_corpus(corpus: Corpus, tools: set[str], repeats: int) -> dict:
    tree = speed_tree(corpus)
    files = source_files(tree)
    loc = count_loc(files)
    with tempfile.TemporaryDirectory() as scratch:
        planned = commands(tree, tools, Path(scratch))
        samples: dict[str, list[Sample]] = {tool: [] for tool in planned}
        for repeat in range(repeats):
            for tool, (command, cwd) in planned.items():
                try:
                    samples[tool].append(measure(command, cwd))
                except RuntimeError as error:
                    print(f"{corpus.name} {tool}: {error}", file=sys.stderr)
                    break
            print(f"{corpus.name}: repeat {repeat + 1}/{repeats} "
                  f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr)
    result = {"corpus": corpus.name, "version": corpus.version, "language": corpus.language,
              "files": len(files), "loc": loc, "tools": {}}
    for tool, runs in samples.items():
        if not runs:
            continue
        command, cwd = planned[tool]
        entry = {"command": shlex.join(command), "cwd": str(cwd), "runs": [
            {k: v for k, v in vars(s).items() if k != "stdout"} for s in runs]}
        for key in ("wall", "cpu", "max_rss_mb", "tree_rss_mb"):
            entry[f"median_{key}"] = statistics.median(getattr(s, key) for s in runs)
        if tool.startswith("ours"):
            entry["stats"] = [parse_stats(s.stdout) for s in runs]
        result["tools"][tool] = entry
    return result


def parse_stats(stdout: str) -> dict | str:
    try:
        return json.loads(stdout)
    except json.JSONDecodeError:
        return stdout[-500:]


STAGES = ("parse", "resolve", "graph")


def stage_seconds(entry: dict) -> float | None:
    """Median of our parse+resolve+graph seconds, from --stats (None when not reported)."""
    sums = [sum(s["seconds"].get(k, 0.0) for k in STAGES)
            for s in entry.get("stats", []) if isinstance(s, dict) and "seconds" in s]
    return statistics.median(sums) if sums else None


def versus(ours: dict | None, tool: str, entry: dict) -> str:
    if tool.startswith("ours") or not ours:
        return "—"
    mine, theirs = ours["median_wall"], entry["median_wall"]
    return f"ours {theirs / mine:.2f}x faster" if theirs >= mine else f"ours {mine / theirs:.2f}x slower"


def table(results: list[dict]) -> str:
    lines = ["| corpus | files | LOC | tool | wall s | CPU s | LOC/s wall | LOC per CPU-s "
             "| parse+resolve+graph s (LOC/s) | peak RSS MB (process / tree) | wall vs ours |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        ours = r["tools"].get("ours")
        for tool, t in r["tools"].items():
            stages = stage_seconds(t)
            stage_cell = "—" if stages is None else f"{stages:.2f} ({r['loc'] / max(stages, 1e-9):,.0f})"
            lines.append(
                f"| {r['corpus']} {r['version']} | {r['files']} | {r['loc']} | {tool} "
                f"| {t['median_wall']:.2f} | {t['median_cpu']:.2f} | {r['loc'] / t['median_wall']:,.0f} "
                f"| {r['loc'] / max(t['median_cpu'], 1e-9):,.0f} | {stage_cell} "
                f"| {t['median_max_rss_mb']:.0f} / {t['median_tree_rss_mb']:.0f} | {versus(ours, tool, t)} |")
    return "\n".join(lines)


def render(data: dict) -> str:
    header = (f"Machine: {data['machine']}. Load average before {data['load_before'][0]:.1f}, "
              f"after {data['load_after'][0]:.1f}. {data['repeats']} repeats, medians. "
              f"LOC = non-empty lines.")
    commands_md = "\n".join(f"- {r['corpus']} {tool}: `{t['command']}` (in {t['cwd']})"
                            for r in data["results"] for tool, t in r["tools"].items())
    return f"{header}\n\n{table(data['results'])}\n\nCommands:\n\n{commands_md}"


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="corpora (default: the speed corpora)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tools", default="ours,ours-1,grimp,depcruise",
                        help="ours (default workers), ours-1 (--workers 1), grimp, depcruise")
    parser.add_argument("--json", type=Path, dest="json_out", help="write every run here")
    parser.add_argument("--render", type=Path, help="print the table of a --json file and exit")
    args = parser.parse_args()
    corpora = [BY_NAME[n] for n in args.names] if args.names else [c for c in CORPUS_LIST if c.speed]
    tools = set(args.tools.split(","))
    if args.render:  # re-print the table of an earlier --json run
        print(render(json.loads(args.render.read_text())))
        return
    load_before = os.getloadavg()
    results = [run_corpus(c, tools, args.repeats) for c in corpora]
    data = {"machine": machine(), "load_before": load_before, "load_after": os.getloadavg(),
            "repeats": args.repeats, "results": results}
    print(render(data))
    if args.json_out:
        args.json_out.write_text(json.dumps(data, indent=2))

if __name__ == "__main__":
    main()
