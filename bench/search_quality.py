"""Docstring→code search quality, CodeSearchNet style, on pinned projects.

    .venv/bin/python bench/search_quality.py [--projects NAME ...] [--set dev|check|all]
        [--modes keyword semantic hybrid vectors] [--cap 150] [--budget 2048]
        [--data-dir DIR [--skip-ingest]] [--json OUT]

Method:
1. Each project of bench/search_corpora.py is fetched once and copied with
   every docstring and JSDoc block blanked, lines kept (bench/docstrings.py);
   the copy is checked file by file and committed to a git repository.
2. Tasks come from the ORIGINAL sources: one per documented function or
   method (dunders and tests left out), the query is the docstring's first
   sentence (3 words or more; a query two functions share is dropped), the
   answer is that function as the graph names it (path, qualified name, start
   line with decorators). At most --cap tasks per project, so that every project
   weighs about the same: those first in the order of a hash of (seed, project,
   path, qualified name), so a parser change that finds more functions displaces
   only the few of them that hash in front, not the whole sample.
3. Each copy is ingested by the real pipeline, `python -m edge ingest PATH`
   (DATA_DIR=a fresh folder, MODE=ALL, ALLOW_LOCAL_REPOS=true, embedded stores:
   no server variable passed on), so the index holds the code without the
   words of any query.
4. Every query runs through the query layer (`cloud.query.QueryService`,
   modes keyword, semantic and hybrid, limit 10) and asks it for a context of
   --budget tokens. Mode "vectors" is the floor under them: the worker's own
   MiniLM vectors searched in Qdrant directly (shared.vectors.VectorStore.search
   with a query vector from edge.embed.minilm), no query layer at all.
5. A result answers a task when its path and qualified name are the task's
   (or, failing the name, its path and start line). Reported per project and
   mode: MRR@10 (1/rank of the first answer in the top 10, else 0) and R@10
   (an answer in the top 10; with one relevant function this is hit@10); over
   projects both as a macro mean (every project weighs the same) and a micro
   mean (every task does). Context recall: the share of tasks whose function
   overlaps an item of the context (same path, line spans meet); "exact": an
   item is that function; "body": an item shows the function's whole code (it,
   or its class, as a body, not a signature). Also the most tokens any context
   used (must be <= the budget). Latency per query and ingest time per
   project are kept too.

The raw results (every task, its rank per mode) go to a JSON file in
bench/results/; a markdown table is printed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from docstrings import Task, function_tasks, unique_queries  # noqa: E402
from search_corpora import BY_PROJECT, PROJECTS, SearchProject, describe, fetch, \
    project_files, work_copy  # noqa: E402

from edge.source import language_of  # noqa: E402

SERVICE_MODES = ("keyword", "semantic", "hybrid")
DIRECT_MODE = "vectors"
ALL_MODES = (*SERVICE_MODES, DIRECT_MODE)
TOP = 10
# Variables that would send the ingest to a server; the benchmark uses embedded stores only.
SERVER_VARIABLES = ("UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "REDIS_URL",
                    "DATABASE_URL", "QDRANT_URL", "QDRANT_API_KEY", "NEO4J_URI", "NEO4J_USER",
                    "NEO4J_PASSWORD", "EMBEDDINGS_PROVIDER")


# ---------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------

def project_tasks(project: SearchProject, cap: int, seed: int) -> tuple[list[Task], int]:
    """The sampled tasks of one project, and how many there were before sampling."""
    root = project.corpus.root
    tasks: list[Task] = []
    for path in project_files(project):
        tasks += function_tasks(project.name, path.relative_to(root).as_posix(),
                                path.read_bytes(), language_of(path.name))
    tasks = unique_queries(tasks)
    available = len(tasks)
    if available > cap:
        tasks = sorted(tasks, key=lambda t: _rank(seed, project.name, t))[:cap]
    return sorted(tasks, key=lambda t: (t.path, t.start_line)), available


def _rank(seed: int, project: str, task: Task) -> bytes:
    return hashlib.sha256(f"{seed}:{project}:{task.path}:{task.qualname}".encode()).digest()


def answers(task: Task, path: str | None, name: str | None, start_line: int | None) -> bool:
    """A result is the task's function: same path and name, else same path and start."""
    if path != task.path:
        return False
    return name == task.qualname or start_line == task.start_line


def overlaps(task: Task, item: dict) -> bool:
    """The item's lines meet the function's (the brief's "in the context")."""
    return item.get("path") == task.path and item.get("start_line", 0) <= task.end_line \
        and task.start_line <= item.get("end_line", 0)


def holds_body(task: Task, item: dict) -> bool:
    """The item shows the whole function's code: it, or a class around it, as a body
    (a signature-only item ends where the signature does)."""
    return item.get("path") == task.path and item.get("form", "body") == "body" \
        and item.get("start_line", 0) <= task.start_line \
        and task.end_line <= item.get("end_line", 0)


# ---------------------------------------------------------------------------
# Ingest
# ---------------------------------------------------------------------------

def store_environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVER_VARIABLES}
    env.update(DATA_DIR=str(data_dir), MODE="ALL", ALLOW_LOCAL_REPOS="true",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def ingest(repo: Path, data_dir: Path) -> dict:
    """`python -m edge ingest` on one blanked copy; its JSON summary, with the wall time."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "edge", "ingest", str(repo.resolve())],
                          cwd=ROOT, env=store_environment(data_dir), capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"ingest of {repo} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    summary["wall_seconds"] = time.perf_counter() - started
    return summary


def repo_url_of(repo: Path) -> str:
    from shared.repo_url import normalize_repo_url
    return normalize_repo_url(str(repo.resolve()), allow_local=True)


@dataclass
class Indexed:
    """One ingested project: where its stores are and what is asked of it.

    Every project has its own DATA_DIR: Qdrant's local mode checks a repository
    filter point by point, so one store holding all projects made every query
    scan all of them (~100 ms against ~2 ms)."""
    project: SearchProject
    repo: str
    data_dir: Path
    tasks: list[Task]

    def settings(self):
        from shared.settings import Settings
        return Settings.from_env(store_environment(self.data_dir))


# ---------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------

def rank_of(task: Task, hits: list[tuple[str, str, int]]) -> int | None:
    """1-based rank of the first hit that answers the task, within the top TOP."""
    for rank, (path, name, start) in enumerate(hits[:TOP], 1):
        if answers(task, path, name, start):
            return rank
    return None


def not_in_graph(entry: Indexed) -> list[str]:
    """Tasks no node of the stored graph answers (a file skipped, a name the parser
    gives differently): they count as misses, so they are listed."""
    from shared.graph.store import open_graph_store

    store = open_graph_store(entry.settings())
    try:
        graph = store.load_graph(store.latest_snapshot(entry.repo))
    finally:
        store.close()
    nodes = [(n.path, n.qualname, n.start_line) for n in graph.nodes]
    return [f"{t.path}:{t.start_line} {t.qualname}" for t in entry.tasks
            if not any(answers(t, *node) for node in nodes if node[0] == t.path)]


def run_direct(indexed: list[Indexed], records: dict) -> None:
    """Mode "vectors": the worker's chunk vectors in Qdrant, no query layer."""
    from edge.embed.minilm import MiniLMEncoder
    from shared.vectors import CHUNK_COLLECTION, open_vector_store

    encoder = MiniLMEncoder(device="cpu")
    for entry in indexed:
        store = open_vector_store(entry.settings())
        try:
            vectors = encoder.encode([t.query for t in entry.tasks])
            for task, vector in zip(entry.tasks, vectors):
                started = time.perf_counter()
                found = store.search(CHUNK_COLLECTION, vector, repo=entry.repo, limit=TOP)
                hits = [(h.payload.get("file_path"), h.payload.get("qualified_name"),
                         h.payload.get("start_line")) for h in found]
                _record(records, task, DIRECT_MODE, rank_of(task, hits), _since(started))
        finally:
            store.close()


def open_service(settings):
    """The query layer, or the reason it cannot be used (not there yet, broken)."""
    try:
        from cloud.query import QueryService
        return QueryService.from_settings(settings), None
    except Exception as exc:  # an ImportError while it is being written, or a start error
        return None, f"{type(exc).__name__}: {exc}"


def run_service(indexed: list[Indexed], modes: list[str], budget: int | None,
                records: dict) -> str:
    """The query layer's modes and context on every project; "used" or why not."""
    for entry in indexed:
        service, why = open_service(entry.settings())
        if service is None:
            return f"not available: {why}"
        try:
            for task in entry.tasks:
                for mode in modes:
                    _search(service, entry.repo, task, mode, records)
                if budget:
                    _context(service, entry.repo, task, budget, records)
        finally:
            service.close()
    return "used"


def _search(service, repo: str, task: Task, mode: str, records: dict) -> None:
    started = time.perf_counter()
    try:
        answer = service.search({"query": task.query, "repo": repo, "mode": mode,
                                 "limit": TOP})
    except Exception as exc:  # counted and shown, the run goes on
        _record(records, task, mode, None, _since(started), error=repr(exc))
        return
    hits = [(r.get("path"), r.get("name"), r.get("start_line")) for r in answer["results"]]
    _record(records, task, mode, rank_of(task, hits), _since(started))


def _context(service, repo: str, task: Task, budget: int, records: dict) -> None:
    started = time.perf_counter()
    entry = records[_key(task)]
    try:
        ctx = service.context({"task": task.query, "repo": repo, "budget_tokens": budget})
    except Exception as exc:
        entry["context"] = {"error": repr(exc), "seconds": _since(started)}
        return
    items = markdown_items(ctx.get("text", ""))
    entry["context"] = {
        "found": any(overlaps(task, i) for i in items),
        "exact": any(answers(task, i.get("path"), i.get("name"), i.get("start_line"))
                     for i in items),
        "body": any(holds_body(task, i) for i in items),
        "tokens": ctx.get("tokens"), "budget": ctx.get("budget_tokens", budget),
        "items": len(items), "seconds": _since(started),
    }


_FILE = re.compile(r"^## (.+)$")
_MARKER = re.compile(r"^(?:#|//) (.+):(\d+)-(\d+)( \(signature\))?$")


def markdown_items(text: str) -> list[dict]:
    """The items of a markdown context (the default format, what an agent gets), from
    its `path:start-end` markers under each `## path` heading: budgets are measured on
    the text an agent reads, as the query layer counts them (a json answer counts its
    JSON too, so it holds fewer items)."""
    items, path = [], None
    for line in text.splitlines():
        heading = _FILE.match(line)
        if heading:
            path = heading[1]
            continue
        marker = _MARKER.match(line)
        if marker and marker[1] == path:
            items.append({"path": path, "start_line": int(marker[2]),
                          "end_line": int(marker[3]),
                          "form": "signature" if marker[4] else "body"})
    return items


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 5)  # 10 µs is plenty, and keeps the JSON short


def _key(task: Task) -> tuple:
    return (task.project, task.path, task.qualname, task.start_line)


def _record(records: dict, task: Task, mode: str, rank: int | None, seconds: float,
            error: str | None = None) -> None:
    entry = records.setdefault(_key(task), {"task": task, "modes": {}})
    entry["modes"][mode] = {"rank": rank, "seconds": seconds, **({"error": error} if error
                                                                  else {})}


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------

def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def mode_scores(entries: list[dict], mode: str) -> dict | None:
    ranks = [e["modes"][mode]["rank"] for e in entries if mode in e["modes"]]
    if not ranks:
        return None
    errors = sum("error" in e["modes"][mode] for e in entries if mode in e["modes"])
    return {"mrr10": _mean([1 / r if r else 0.0 for r in ranks]),
            "r10": _mean([1.0 if r else 0.0 for r in ranks]), "tasks": len(ranks),
            "errors": errors}


def context_scores(entries: list[dict]) -> dict | None:
    done = [e["context"] for e in entries if "context" in e and "error" not in e["context"]]
    if not done:
        return None
    tokens = [c["tokens"] for c in done if c["tokens"] is not None]
    return {"recall": _mean([float(c["found"]) for c in done]),
            "exact": _mean([float(c["exact"]) for c in done]),
            "body": _mean([float(c["body"]) for c in done]),
            "max_tokens": max(tokens, default=None),
            "over_budget": sum(c["tokens"] is not None and c["tokens"] > c["budget"]
                               for c in done),
            "tasks": len(done),
            "errors": sum("context" in e and "error" in e["context"] for e in entries)}


def summarize(records: dict, projects: list[SearchProject], modes: list[str]) -> dict:
    by_project = {p.name: [e for e in records.values() if e["task"].project == p.name]
                  for p in projects}
    rows = {name: {"modes": {m: mode_scores(es, m) for m in modes},
                   "context": context_scores(es), "tasks": len(es)}
            for name, es in by_project.items()}
    groups = {"dev": [p.name for p in projects if p.split == "dev"],
              "check": [p.name for p in projects if p.split == "check"],
              "all": [p.name for p in projects]}
    overall = {}
    for group, names in groups.items():
        if names:
            entries = [e for n in names for e in by_project[n]]
            overall[group] = {"macro": _macro(rows, names, modes),
                              "micro": {"modes": {m: mode_scores(entries, m) for m in modes},
                                        "context": context_scores(entries),
                                        "tasks": len(entries)}}
    return {"projects": rows, "overall": overall, "latency": latency(records, modes)}


def _macro(rows: dict, names: list[str], modes: list[str]) -> dict:
    """Every project weighs the same: the mean of the projects' own means."""
    macro = {"modes": {}, "tasks": sum(rows[n]["tasks"] for n in names)}
    for mode in modes:
        scores = [rows[n]["modes"][mode] for n in names if rows[n]["modes"][mode]]
        macro["modes"][mode] = {k: _mean([s[k] for s in scores]) for k in ("mrr10", "r10")} \
            if scores else None
    contexts = [rows[n]["context"] for n in names if rows[n]["context"]]
    macro["context"] = {"recall": _mean([c["recall"] for c in contexts]),
                        "exact": _mean([c["exact"] for c in contexts]),
                        "body": _mean([c["body"] for c in contexts]),
                        "max_tokens": max((c["max_tokens"] or 0) for c in contexts),
                        "over_budget": sum(c["over_budget"] for c in contexts)} \
        if contexts else None
    return macro


def latency(records: dict, modes: list[str]) -> dict:
    found = {}
    for mode in modes:
        found[mode] = _percentiles([e["modes"][mode]["seconds"] for e in records.values()
                                    if mode in e["modes"]])
    found["context"] = _percentiles([e["context"]["seconds"] for e in records.values()
                                     if "context" in e])
    return found


def _percentiles(seconds: list[float]) -> dict | None:
    if not seconds:
        return None
    ordered = sorted(seconds)
    return {"p50_ms": round(1000 * statistics.median(ordered), 2),
            "p95_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
            "n": len(ordered)}


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

def _f(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def table(summary: dict, projects: list[SearchProject], modes: list[str]) -> str:
    head = ["project", "set", "lang", "tasks"]
    for mode in modes:
        head += [f"{mode} MRR@10", f"{mode} R@10"]
    head += ["ctx recall", "ctx body", "ctx max tok"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for p in projects:
        row = summary["projects"][p.name]
        lines.append(_row([p.name, p.split, "py" if p.language == "python" else "js/ts",
                           str(row["tasks"])], row, modes))
    for group, parts in summary["overall"].items():
        for kind in ("macro", "micro"):
            lines.append(_row([f"**{group} {kind}**", "", "", str(parts[kind]["tasks"])],
                              parts[kind], modes))
    return "\n".join(lines)


def _row(cells: list[str], row: dict, modes: list[str]) -> str:
    for mode in modes:
        scores = row["modes"].get(mode)
        cells += [_f(scores and scores["mrr10"]), _f(scores and scores["r10"])]
    ctx = row.get("context")
    cells += [_f(ctx and ctx["recall"]), _f(ctx and ctx["body"]),
              str(ctx["max_tokens"]) if ctx and ctx["max_tokens"] is not None else "–"]
    return "| " + " | ".join(cells) + " |"


def machine() -> dict:
    model = ""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                      if line.startswith("Model name")), "")
    except OSError:
        pass
    python = os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) \
        else sys.executable
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "load_average": os.getloadavg(),
            "command": " ".join([python, *sys.argv])}


def code_state() -> dict:
    """The commit and any uncommitted change to the code that ingests and answers:
    the figures belong to that state (others may be editing the checkout)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted": git("status", "--porcelain", "--", "edge", "cloud",
                               "shared").splitlines()}


def write_json(path: Path, meta: dict, summary: dict, records: dict) -> None:
    """Meta and summary indented; one line per task, so the file stays small and diffs
    line by line."""
    tasks = [json.dumps({**asdict(e["task"]), "modes": e["modes"],
                         "context": e.get("context")}, separators=(",", ":"))
             for e in records.values()]
    head = json.dumps({"meta": meta, "summary": summary}, indent=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head[:-2] + ',\n "tasks": [\n' + ",\n".join(tasks) + "\n ]\n}\n")


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", nargs="*", choices=sorted(BY_PROJECT), default=None)
    parser.add_argument("--set", choices=("dev", "check", "all"), default="all")
    parser.add_argument("--modes", nargs="*", choices=ALL_MODES, default=list(ALL_MODES))
    parser.add_argument("--cap", type=int, default=150, help="tasks per project at most")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=2048,
                        help="context budget in tokens (0: no context)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep the stores here, one folder per project "
                             "(default: a temporary folder)")
    parser.add_argument("--skip-ingest", action="store_true",
                        help="query what --data-dir already holds")
    parser.add_argument("--json", type=Path, default=None,
                        help="default: bench/results/search_quality-SET.json")
    args = parser.parse_args()
    if args.skip_ingest and args.data_dir is None:
        parser.error("--skip-ingest needs --data-dir")
    return args


def chosen(args) -> list[SearchProject]:
    names = args.projects or [p.name for p in PROJECTS]
    return [BY_PROJECT[n] for n in names if args.set in ("all", BY_PROJECT[n].split)]


def prepare(projects: list[SearchProject], args, data_root: Path
            ) -> tuple[list[Indexed], dict]:
    """Fetch, blank, ingest: each project's stores and tasks, and what each cost."""
    indexed, info = [], {}
    for project in projects:
        data_dir = data_root / project.name
        fetch(project)
        tasks, available = project_tasks(project, args.cap, args.seed)
        copy = work_copy(project)
        info[project.name] = {**describe(project), "tasks": len(tasks),
                              "tasks_available": available, "blanked": copy.blanked}
        if not args.skip_ingest:
            summary = ingest(copy.root, data_dir)
            info[project.name]["ingest"] = {k: summary.get(k) for k in (
                "files_processed", "embeddings_generated", "nodes", "loc", "wall_seconds")}
            print(f"ingested {project.name}: {summary['files_processed']} files, "
                  f"{summary['embeddings_generated']} embeddings, "
                  f"{summary['wall_seconds']:.0f} s", flush=True)
        indexed.append(Indexed(project, repo_url_of(copy.root), data_dir, tasks))
        info[project.name]["tasks_not_in_graph"] = not_in_graph(indexed[-1])
    return indexed, info


def main() -> None:
    args = parse_args()
    projects = chosen(args)
    modes = list(dict.fromkeys(args.modes))
    started = time.perf_counter()
    code_at_start = code_state()
    scratch = None
    if args.data_dir is None:
        scratch = Path(tempfile.mkdtemp(prefix="search-quality-"))
    data_root = args.data_dir or scratch
    try:
        indexed, info = prepare(projects, args, data_root)
        ingest_seconds = time.perf_counter() - started
        meta, records = query_all(indexed, modes, args)
        meta.update(machine(), code_at_start=code_at_start, code_at_end=code_state(),
                    projects=info, modes=modes, cap=args.cap, seed=args.seed,
                    budget=args.budget, ingest_seconds=ingest_seconds,
                    total_seconds=time.perf_counter() - started)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    report(meta, records, projects, modes, args)


def query_all(indexed: list[Indexed], modes: list[str], args) -> tuple[dict, dict]:
    records: dict = {}
    meta: dict = {}
    clock = time.perf_counter()
    if DIRECT_MODE in modes:  # apart: Qdrant's local mode lets one client hold a folder
        run_direct(indexed, records)
    wanted = [m for m in modes if m in SERVICE_MODES]
    if wanted or args.budget:
        meta["query_service"] = run_service(indexed, wanted, args.budget, records)
        print(f"query service: {meta['query_service']}", flush=True)
    meta["query_seconds"] = time.perf_counter() - clock
    return meta, records


def report(meta: dict, records: dict, projects: list[SearchProject], modes: list[str],
           args) -> None:
    present = [m for m in modes if any(m in e["modes"] for e in records.values())]
    summary = summarize(records, projects, present)
    out = args.json or HERE / "results" / f"search_quality-{args.set}.json"
    write_json(out, meta, summary, records)
    print(table(summary, projects, present))
    print(f"\nlatency: {json.dumps(summary['latency'])}")
    print(f"ingest {meta['ingest_seconds']:.0f} s, queries {meta['query_seconds']:.0f} s, "
          f"total {meta['total_seconds']:.0f} s; {meta['cpu']}, {meta['cores']} cores")
    if meta["code_at_start"] != meta["code_at_end"]:
        print("warning: the code changed during the run (see code_at_start/code_at_end)")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
