"""Accuracy of `python -m edge analyze --edges` against grimp and dependency-cruiser.

    python3 bench/accuracy.py [CORPUS ...] [--reference-only]

For each corpus of bench/corpora.py (prepared by `python bench/corpora.py`,
tools by `bench/setup_tools.sh`) the reference tool's import graph becomes a
set of `src<TAB>dst` file edges, paths relative to the corpus root:

- Python: grimp (bench/grimp_edges.py), internal packages only, no cache;
  `import a.b` is an edge to a/b, as grimp models it.
- JS/TS: dependency-cruiser with --ts-pre-compilation-deps (type-only imports
  count), the corpus's tsconfig when it has one, only files under the corpus's
  source folders, node_modules excluded; each resolved dependency is an edge.

Ours runs on the whole corpus root, as it would on a checkout. Both edge sets
are cut to the same universe, the files the reference tool graphs (grimp's
modules that are files; dependency-cruiser's JS/TS modules under the source
folders): an edge counts when both ends are in it. Precision = common / ours,
recall = common / reference. bench/results/accuracy/NAME/ gets both edge sets
and the differences, each with the statement behind it (the reference tool's
for reference-only edges, the source lines naming the target for ours-only
ones) and a coarse category; summary.md gets the table this prints.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from corpora import BY_NAME, CORPORA, CORPUS_LIST, JS_SUFFIXES, Corpus, count_loc

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results" / "accuracy"
OUR_PYTHON = REPO / ".venv" / "bin" / "python"
REF_PYTHON = BENCH / ".venv" / "bin" / "python"
DEPCRUISE = BENCH / "node_modules" / ".bin" / "depcruise"

Edge = tuple[str, str]


@dataclass
class EdgeSet:
    files: set[str]
    edges: set[Edge]
    evidence: dict[Edge, str] = field(default_factory=dict)
    seconds: float = 0.0


class BenchError(Exception):
    """A tool could not be run or its output not read."""


def run(command: list[str], cwd: Path | None = None) -> tuple[str, float]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"{shlex.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout, seconds


# --- reference tools -------------------------------------------------------------------

def grimp_command(corpus: Corpus, json_out: Path | None = None) -> list[str]:
    command = [str(REF_PYTHON), str(BENCH / "grimp_edges.py"), str(corpus.root),
               corpus.sys_path, *corpus.packages]
    return command + (["--json", str(json_out)] if json_out else [])


def depcruise_command(corpus: Corpus, json_out: Path) -> list[str]:
    """Run in corpus.root: dependency-cruiser's JSON for the corpus's source folders."""
    folders = "|".join(re.escape(d) for d in corpus.source_dirs)
    command = [str(DEPCRUISE), *corpus.source_dirs, "--no-config", "--output-type", "json",
               "--ts-pre-compilation-deps", "--exclude", "node_modules",
               "--include-only", f"^({folders})/", "--output-to", str(json_out)]
    if corpus.tsconfig:
        command += ["--ts-config", corpus.tsconfig]
    return command


def grimp_reference(corpus: Corpus, scratch: Path) -> EdgeSet:
    out = scratch / "grimp.json"
    _, seconds = run(grimp_command(corpus, out))
    data = json.loads(out.read_text())
    edges = {(s, d): evidence for s, d, evidence in data["edges"]}
    return EdgeSet(set(data["files"]), set(edges), edges, seconds)


def depcruise_reference(corpus: Corpus, scratch: Path) -> EdgeSet:
    out = scratch / "depcruise.json"
    _, seconds = run(depcruise_command(corpus, out), cwd=corpus.root)
    modules = json.loads(out.read_text())["modules"]
    inside = tuple(d.rstrip("/") + "/" for d in corpus.source_dirs)

    def in_universe(path: str) -> bool:
        return path.startswith(inside) and path.endswith(JS_SUFFIXES)

    files = {m["source"] for m in modules
             if in_universe(m["source"]) and not m.get("coreModule") and not m.get("couldNotResolve")}
    evidence: dict[Edge, str] = {}
    for module in modules:
        for dep in module["dependencies"]:
            target = dep.get("resolved", "")
            if dep.get("couldNotResolve") or dep.get("coreModule") or target not in files \
                    or module["source"] not in files:
                continue
            key = (module["source"], target)
            note = f"'{dep['module']}' [{','.join(dep.get('dependencyTypes', []))}]"
            evidence[key] = f"{evidence[key]}; {note}" if key in evidence else note
    return EdgeSet(files, set(evidence), evidence, seconds)


def reference(corpus: Corpus, scratch: Path) -> EdgeSet:
    if corpus.language == "python":
        return grimp_reference(corpus, scratch)
    return depcruise_reference(corpus, scratch)


# --- ours ------------------------------------------------------------------------------

def our_command(corpus: Corpus, *flags: str) -> list[str]:
    return [str(OUR_PYTHON), "-m", "edge", "analyze", str(corpus.root), *flags]


def ours(corpus: Corpus) -> EdgeSet:
    stdout, seconds = run(our_command(corpus, "--edges"), cwd=REPO)
    edges = set()
    for line in stdout.splitlines():
        if line.strip():
            src, dst = line.split("\t")
            edges.add((src, dst))
    return EdgeSet({f for e in edges for f in e}, edges, seconds=seconds)


def our_skipped(corpus: Corpus) -> dict[str, str]:
    """Files ours left out, with its reason: they explain reference-only edges."""
    stdout, _ = run(our_command(corpus, "--stats"), cwd=REPO)
    return {s["path"]: s["reason"] for s in json.loads(stdout).get("skipped", [])}


# --- explaining differences ------------------------------------------------------------

IMPORT_WORDS = re.compile(r"import|from|require|export")  # also import_module(), __import__()


def target_names(dst: str) -> set[str]:
    """Words an import of `dst` is likely to contain: its stem, or its folder for an index."""
    parts = Path(dst).parts
    stem = Path(dst).name.split(".")[0]
    names = {stem}
    if stem in {"__init__", "index"} and len(parts) > 1:
        names = {parts[-2]}
    return names


def lines_naming(root: Path, src: str, dst: str) -> str:
    """Source lines of `src` that look like an import of `dst` (evidence for ours-only edges)."""
    try:
        text = (root / src).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(unreadable)"
    names = [re.compile(rf"\b{re.escape(w)}\b") for w in target_names(dst)]
    naming = [(n, line.strip()) for n, line in enumerate(text, 1) if any(w.search(line) for w in names)]
    hits = [(n, line) for n, line in naming if IMPORT_WORDS.search(line)]
    if not hits and naming:  # e.g. a module name in a string of a call spread over lines
        return "(no import line names it) " + "; ".join(f"{n}: {line}" for n, line in naming[:3])
    return "; ".join(f"{n}: {line}" for n, line in hits[:3]) or "(no line names it)"


def python_form(root: Path, src: str, evidence: str) -> str:
    """A coarse category for a Python statement: its form, and whether it is indented."""
    match = re.match(r"(\d+): (.*?)(;|$)", evidence)
    if not match:
        return "py: no import line"
    number, statement = int(match.group(1)), match.group(2)
    try:
        raw = (root / src).read_text(encoding="utf-8", errors="replace").splitlines()[number - 1]
    except (OSError, IndexError):
        raw = statement
    nested = " (indented: function/if/try)" if raw[:1].isspace() else ""
    if "import_module(" in statement or "__import__(" in statement:
        form = "dynamic import by string (import_module/__import__)"
    elif statement.startswith("from ."):
        form = "from-relative"
    elif statement.startswith("from "):
        form = "from-absolute"
    elif statement.startswith("import "):
        form = "import dotted" if "." in statement.split()[1] else "import"
    else:
        form = "other"
    return f"py: {form}{nested}"


def js_form(evidence: str) -> str:
    match = re.search(r"\[([^\]]*)\]", evidence)
    if match:  # dependency-cruiser's dependency types
        return "js: " + match.group(1).replace("local,", "")
    if evidence.startswith("("):
        return "js: no import line"
    line = evidence.split("; ")[0].split(": ", 1)[-1]  # the first source line found
    specifier = re.search(r"""['"`]([^'"`]+)['"`]""", line)
    if specifier and not specifier.group(1).startswith((".", "/")):
        return "js: bare specifier resolved inside the repo"
    for word, form in (("require(", "require"), ("import(", "dynamic import"),
                       ("import type", "type import"), ("export", "export-from"), ("import", "import")):
        if word in line:
            return f"js: {form}"
    return "js: other"


def category(corpus: Corpus, edge: Edge, evidence: str, skipped: dict[str, str],
             our_files: set[str]) -> str:
    if edge[0] == edge[1]:
        return "self-import (a module importing itself)"
    for end in edge:
        if end in skipped:
            return f"ours skipped the file: {skipped[end]}"
    for end in edge:
        if end not in our_files:
            return f"ours has no edge at all at {Path(end).parent.as_posix()}/ (not walked?)"
    if corpus.language == "python":
        return python_form(corpus.root, edge[0], evidence)
    return js_form(evidence)


# --- comparison ------------------------------------------------------------------------

@dataclass
class Row:
    corpus: Corpus
    files: int
    loc: int
    reference: int
    ours: int | None = None
    common: int | None = None
    ref_seconds: float = 0.0
    our_seconds: float | None = None
    only_ref: Counter = field(default_factory=Counter)
    only_ours: Counter = field(default_factory=Counter)

    @property
    def precision(self) -> float | None:
        return None if not self.ours else self.common / self.ours

    @property
    def recall(self) -> float | None:
        return None if self.common is None or not self.reference else self.common / self.reference


def write_edges(path: Path, edges, explain: dict[Edge, tuple[str, str]] | None = None) -> None:
    """One edge a line; with `explain`, its category and evidence as two more columns."""
    with path.open("w") as out:
        for edge in sorted(edges):
            extra = "".join(f"\t{part}" for part in explain[edge]) if explain else ""
            out.write(f"{edge[0]}\t{edge[1]}{extra}\n")


def compare(corpus: Corpus, with_ours: bool) -> Row:
    folder = RESULTS / corpus.name
    folder.mkdir(parents=True, exist_ok=True)
    scratch = CORPORA / "_tool_output" / corpus.name  # raw tool output: large, not committed
    scratch.mkdir(parents=True, exist_ok=True)
    ref = reference(corpus, scratch)
    loc = count_loc([corpus.root / f for f in ref.files])
    row = Row(corpus, len(ref.files), loc, len(ref.edges), ref_seconds=ref.seconds)
    write_edges(folder / "reference.tsv", ref.edges)
    if not with_ours:
        return row
    mine, skipped = ours(corpus), our_skipped(corpus)
    kept = {e for e in mine.edges if e[0] in ref.files and e[1] in ref.files}
    write_edges(folder / "ours.tsv", kept)
    only_ref, only_ours = ref.edges - kept, kept - ref.edges
    evidence = {**ref.evidence, **{e: lines_naming(corpus.root, *e) for e in only_ours}}
    explain = {e: (category(corpus, e, evidence[e], skipped, mine.files), evidence[e])
               for e in only_ref | only_ours}
    write_edges(folder / "only_reference.tsv", only_ref, explain)
    write_edges(folder / "only_ours.tsv", only_ours, explain)
    row.ours, row.common, row.our_seconds = len(kept), len(kept & ref.edges), mine.seconds
    row.only_ref = Counter(explain[e][0] for e in only_ref)
    row.only_ours = Counter(explain[e][0] for e in only_ours)
    outside = sorted(e for e in mine.edges - kept)
    (folder / "outside_universe.tsv").write_text(
        "# our edges left out of the comparison: an end is not a file the reference tool graphs\n"
        + "".join(f"{s}\t{d}\n" for s, d in outside))
    (folder / "ours_skipped.tsv").write_text("".join(f"{p}\t{r}\n" for p, r in sorted(skipped.items())))
    return row


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def table(rows: list[Row]) -> str:
    lines = ["| corpus | version | ref tool | files | LOC | ref edges | our edges | common "
             "| precision | recall | ref s | ours s |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        tool = "grimp" if r.corpus.language == "python" else "depcruise"
        ours_cells = ("—", "—") if r.ours is None else (str(r.ours), str(r.common))
        our_s = "—" if r.our_seconds is None else f"{r.our_seconds:.1f}"
        lines.append(f"| {r.corpus.name} | {r.corpus.version} | {tool} | {r.files} | {r.loc} "
                     f"| {r.reference} | {ours_cells[0]} | {ours_cells[1]} | {percent(r.precision)} "
                     f"| {percent(r.recall)} | {r.ref_seconds:.1f} | {our_s} |")
    return "\n".join(lines)


def categories(rows: list[Row]) -> str:
    lines = []
    for r in rows:
        for side, counts in (("only reference", r.only_ref), ("only ours", r.only_ours)):
            for name, count in counts.most_common(5):
                lines.append(f"- {r.corpus.name}, {side}: {count} × {name}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="corpora (default: all)")
    parser.add_argument("--reference-only", action="store_true",
                        help="run only the reference tools (no `edge analyze`)")
    args = parser.parse_args()
    corpora = [BY_NAME[n] for n in args.names] if args.names else list(CORPUS_LIST)
    rows = []
    for corpus in corpora:
        try:
            rows.append(compare(corpus, with_ours=not args.reference_only))
        except BenchError as error:
            print(f"{corpus.name}: {error}", file=sys.stderr)
            continue
        print(f"{corpus.name}: done", file=sys.stderr)
    report = table(rows)
    if not args.reference_only:
        report += "\n\nLargest difference categories (details in bench/results/accuracy/NAME/):\n\n"
        report += categories(rows)
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
