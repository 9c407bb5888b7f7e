"""Impact of a change: what depends on the changed files, transitively.

A change is a list of files, or two indexed commits (base, head) whose stored
sources are compared (added, modified, deleted, by content hash). Dependents are
found in the database, breadth first:

- files: importers of the changed files over IMPORTS, any depth, with distance;
- symbols: callers and subclasses of the changed files' symbols over CALLS and
  EXTENDS (reversed), up to MAX_DEPTH, outside the changed files.

A deleted file is looked up in `base` (it has no dependents in `head`).

Risk of each changed file, from the files that depend on it (transitively, tests
left out) and whether any test reaches it at all:
  high    >= HIGH_DEPENDENTS dependent files, or >= HIGH_SHARE of the repository's files
  medium  >= MEDIUM_DEPENDENTS dependent files
  low     otherwise
and one level up (low -> medium -> high) when no test file depends on it, directly
or not: nothing would catch a break.
"""
from __future__ import annotations

import re

from cloud.query.graph import describe
from cloud.query.resolve import Target
from shared.graph.model import EdgeKind, Node, NodeKind
from shared.graph.store import GraphStore, Reached, Snapshot

MAX_DEPTH = 10
HIGH_DEPENDENTS = 10
HIGH_SHARE = 0.2
MEDIUM_DEPENDENTS = 3
MAX_LISTED = 500
LEVELS = ("low", "medium", "high")
_TEST = re.compile(r"(^|/)(tests?|__tests__|spec|testing)/|(^|/)test_[^/]*\.py$"
                   r"|_test\.py$|(^|/)conftest\.py$|\.(test|spec)\.[cm]?[jt]sx?$")


def is_test(path: str) -> bool:
    """Test code by the conventions of pytest, unittest, Jest, Mocha and Vitest."""
    return bool(_TEST.search(path))


def changed_between(store: GraphStore, base: Snapshot, head: Snapshot) -> dict[str, str]:
    """path -> "added" | "modified" | "deleted", from the two snapshots' sources."""
    before, after = store.source_hashes(base), store.source_hashes(head)
    changes = {p: "added" for p in after.keys() - before.keys()}
    changes |= {p: "deleted" for p in before.keys() - after.keys()}
    changes |= {p: "modified" for p in after.keys() & before.keys() if after[p] != before[p]}
    return dict(sorted(changes.items()))


def impact(store: GraphStore, head: Target, changes: dict[str, str],
           base: Snapshot | None = None) -> dict:
    n_files = len(store.files(head.snapshot))
    per_file, files, symbols = [], {}, {}
    for path, change in changes.items():
        snapshot = base if change == "deleted" and base is not None else head.snapshot
        file_hits = [r for r in store.impact(snapshot, [path]) if r.distance > 0]
        for r in file_hits:
            known = files.get(r.node.path)
            if known is None or r.distance < known["distance"]:
                files[r.node.path] = {**describe(r.node), "distance": r.distance,
                                      "is_test": is_test(r.node.path), "via": path}
        nodes = store.nodes_in_file(snapshot, path)
        for r in _symbol_dependents(store, snapshot, nodes, set(changes)):
            key = (r.node.path, r.node.qualname)
            if key not in symbols or r.distance < symbols[key]["distance"]:
                symbols[key] = {**describe(r.node), "distance": r.distance,
                                "is_test": is_test(r.node.path), "via": path}
        dependents = {r.node.path for r in file_hits}
        tests = sorted(p for p in dependents if is_test(p))
        per_file.append({"path": path, "change": change,
                         "known": bool(nodes),
                         "direct_dependents": sum(1 for r in file_hits if r.distance == 1),
                         "dependents": len(dependents), "tests": tests,
                         "risk": risk(len(dependents) - len(tests), bool(tests), n_files)})
    listed_files = sorted(files.values(), key=lambda r: (r["distance"], r["path"]))
    listed_symbols = sorted(symbols.values(),
                            key=lambda r: (r["distance"], r["path"], r["start_line"]))
    return {"changed": per_file,
            "files": listed_files[:MAX_LISTED], "symbols": listed_symbols[:MAX_LISTED],
            "truncated": len(listed_files) > MAX_LISTED or len(listed_symbols) > MAX_LISTED,
            "total_files": len(listed_files), "total_symbols": len(listed_symbols),
            "summary": summary(per_file, listed_files, listed_symbols)}


def risk(dependents: int, tested: bool, n_files: int) -> str:
    level = 0
    if dependents >= HIGH_DEPENDENTS or (n_files and dependents >= HIGH_SHARE * n_files
                                         and dependents > 0):
        level = 2
    elif dependents >= MEDIUM_DEPENDENTS:
        level = 1
    if not tested:
        level = min(level + 1, 2)
    return LEVELS[level]


def summary(per_file: list[dict], files: list[dict], symbols: list[dict]) -> str:
    if not per_file:
        return "no files changed"
    tests = sum(1 for f in files if f["is_test"])
    worst = max(per_file, key=lambda f: (LEVELS.index(f["risk"]), f["dependents"]))
    return (f"{len(per_file)} changed file(s); {len(files)} file(s) ({tests} test(s)) and "
            f"{len(symbols)} symbol(s) in other files depend on them; highest risk "
            f"{worst['risk']}: {worst['path']} ({worst['dependents']} dependent file(s), "
            f"{len(worst['tests'])} test(s))")


def _symbol_dependents(store: GraphStore, snapshot: Snapshot, nodes: list[Node],
                       changed: set[str]) -> list[Reached]:
    """Symbols outside the changed files that call or extend `nodes`, transitively."""
    starts = [n.id for n in nodes if n.kind is not NodeKind.FILE]
    reached = store.reach(snapshot, starts, MAX_DEPTH, (EdgeKind.CALLS, EdgeKind.EXTENDS),
                          reverse=True)
    return [r for r in reached if r.node.path not in changed and r.node.kind is not NodeKind.FILE]
