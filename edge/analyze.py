"""From a directory on disk to a code graph: walk, parse, resolve, graph.

No queue and no store: the worker's pipeline and `python -m edge analyze` both
call `analyze`, so the command line measures exactly what a job does.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from edge.graph import build_graph, paused_collection
from edge.parse.cache import ParseCache
from edge.parse.pool import parse_files
from edge.parse.model import ParsedFile, Skipped
from edge.resolve import resolve_imports
from edge.resolve.model import FileImports
from edge.source import walk
from shared.graph.model import Edge, EdgeKind, Graph, NodeKind
from shared.settings import DEFAULT_SKIP_DIRS

# report(stage, fraction of that stage done)
Progress = Callable[[str, float], None]


@dataclass
class Analysis:
    graph: Graph
    files: list[ParsedFile]
    imports: dict[str, FileImports]
    seconds: dict[str, float] = field(default_factory=dict)


def analyze(root: Path, repo: str = "", *, commit: str = "",
            skip_dirs: Iterable[str] = DEFAULT_SKIP_DIRS, max_file_bytes: int = 2_000_000,
            workers: int | None = None, report: Progress | None = None,
            cache: ParseCache | None = None) -> Analysis:
    """`cache`: the parse results of an earlier ingest (edge.parse.cache); files whose
    bytes it holds are not parsed again."""
    with paused_collection():
        return _analyze(Path(root), repo, commit, skip_dirs, max_file_bytes, workers, report,
                        cache)


def _analyze(root: Path, repo: str, commit: str, skip_dirs: Iterable[str],
             max_file_bytes: int, workers: int | None, report: Progress | None,
             cache: ParseCache | None) -> Analysis:
    report = report or (lambda stage, fraction: None)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 4)
        clock = now

    report("parse", 0.0)
    found = walk(root, skip_dirs, max_file_bytes)
    lap("walk")
    results = parse_files(root, found.files, workers=workers,
                          progress=lambda fraction: report("parse", fraction), cache=cache)
    parsed = [r for r in results if isinstance(r, ParsedFile)]
    skipped = found.skipped + [r for r in results if isinstance(r, Skipped)]
    skipped += [Skipped(f.path, f"parsed partially: {f.error}") for f in parsed if f.error]
    lap("parse")
    report("resolve", 0.0)
    imports = resolve_imports(root, parsed)
    lap("resolve")
    report("graph", 0.0)
    graph = build_graph(repo or root.resolve().as_uri(), parsed, imports,
                        sorted(skipped, key=lambda s: s.path), commit)
    lap("graph")
    return Analysis(graph, parsed, imports, seconds)


def file_edges(analysis: Analysis) -> list[tuple[str, str]]:
    """Internal file -> file import edges as sorted (src, dst) path pairs."""
    graph = analysis.graph
    paths = {n.id: n.path for n in graph.nodes if n.kind is NodeKind.FILE}
    return sorted((paths[e.src], paths[e.dst]) for e in graph.edges
                  if e.kind is EdgeKind.IMPORTS)


def graph_json(graph: Graph) -> dict:
    """The whole graph as plain JSON (`analyze --graph`; format in docs/ARCHITECTURE.md)."""
    return {
        "repo": graph.repo,
        "commit": graph.commit,
        "nodes": [{"id": n.id, "kind": n.kind.value, "path": n.path, "name": n.qualname,
                   "start_line": n.start_line, "end_line": n.end_line} for n in graph.nodes],
        "edges": [_edge_json(e) for e in graph.edges],
    }


def _edge_json(edge: Edge) -> dict:
    found = {"kind": edge.kind.value, "src": edge.src, "dst": edge.dst, "weight": edge.weight}
    if edge.kind is EdgeKind.CALLS:
        found["line"] = edge.line
        found["candidates"] = edge.candidates
    elif edge.kind is EdgeKind.IMPORTS:
        found["type_only"] = edge.type_only
    return found
