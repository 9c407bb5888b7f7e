"""Building the code graph from parsed files and resolved imports.

Nodes: one per file and per class, function and method. Edges:
- IMPORTS file -> file, one per pair, `weight` = statements, `type_only` when
  every statement behind it is typing-only;
- CONTAINS file -> top-level symbol, class -> method, function -> nested def;
- EXTENDS class -> class, when the base names a class of the repository;
- CALLS function -> function (or class), when the callee resolves: names
  through edge/symbols.py, receivers' types through edge/infer.py. A call to
  a class is an edge to the `__init__`/`constructor` that runs (the class's
  own or its nearest repository base's), else to the class itself. `line` is
  the first call site, `weight` the sites, `candidates` the fewest targets any
  of those sites could reach (1: certain; more: a union or branches).

What is not resolved: values of unknown type (an unannotated parameter, an
external library's return value), dynamic dispatch, getattr, decorators that
replace functions.
"""
from __future__ import annotations

import gc
import re
from collections import Counter
from contextlib import contextmanager
from typing import Iterable

from edge.infer import Inference, read_segment
from edge.parse.model import EXPORTS, OBJECT, PROPERTY, Fact, ParsedFile, Skipped
from edge.resolve.model import FileImports
from edge.symbols import Symbols
from shared.graph.model import Edge, EdgeKind, Graph, NodeKind

SELF_NAMES = ("self", "cls", "this", "super")
# An attribute declared on a class, or assigned to self/this, shadows a base's
# method of that name even when its type is unknown: always kept.
_INSTANCE_NAMES = ("self", "this")
HOT_SPOTS = 10


@contextmanager
def paused_collection():
    """Python's cycle collector paused (and restored) around work that allocates
    millions of small objects and frees none of them in cycles: parsing a
    repository and building its graph. Its passes over everything still alive were
    over half the old graph stage (django: 0.88 s with them, 0.37 s without) and a
    fifth of sympy's parse and resolve (7.9 s of CPU with them, 6.4–7.0 without)."""
    enabled = gc.isenabled()
    gc.unfreeze()  # the last analysis's objects: back to the oldest generation
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            # What the work made is in the youngest generation, millions of objects: the
            # first collection after enabling would walk them all (0.26 s on sympy) to find
            # no cycle. Frozen, collections skip them; refcounting still frees them. Any
            # cycle among them waits for the next analysis, which unfreezes them into the
            # oldest generation first.
            gc.freeze()
            gc.enable()


def build_graph(repo: str, parsed: Iterable[ParsedFile], imports: dict[str, FileImports],
                skipped: Iterable[Skipped] = (), commit: str = "") -> Graph:
    """The graph of parsed files; `edge.analyze` runs it with the collector paused."""
    files = list(parsed)
    graph = Graph(repo=repo, commit=commit, loc=sum(f.loc for f in files),
                  skipped=[(s.path, s.reason) for s in skipped])
    symbols = Symbols(repo, files, imports)
    inference = Inference(symbols, files, imports)
    edges = _EdgeSet()
    for file in files:
        graph.nodes.append(symbols.file_node(file))
        graph.nodes.extend(symbols.nodes_of(file.path))
        _contains(symbols, file, edges)
    external: Counter[str] = Counter()
    for file in files:
        resolved = imports.get(file.path)
        if resolved is not None:
            _imports(symbols, file.path, resolved, edges, external)
        _extends(symbols, file, edges)
        _calls(symbols, inference, file, edges)
    graph.edges = edges.list()
    graph.external = dict(sorted(external.items()))
    return graph


def drop_unresolvable(file: ParsedFile) -> ParsedFile:
    """Keep only the calls and facts whose first name can be resolved.

    Most call sites name builtins, and many assignments hold literals or the
    results of builtins; no scope can type those, so they are dropped where the
    file is parsed, before they cost a trip between processes and a lookup
    here. Kept: what starts with a name the file defines, imports or assigns
    (or self/cls/this/super), annotations naming such a name, and attributes
    of classes (which shadow a base's method even untyped). A local that takes
    such a name is kept untyped: it hides the file's name there. A star import
    keeps all.
    """
    heads = {s.name for s in file.symbols}
    heads.update(s.namespace.partition(".")[0] for s in file.symbols if s.namespace)
    heads.update(SELF_NAMES)
    for imp in file.imports:
        for binding in imp.bindings:
            if binding.local == "*":
                return file
            heads.add(binding.local.partition(".")[0])
    known = heads | {f.target for f in file.facts}
    classes = {s.qualname for s in file.symbols if s.kind == "class"}
    facts = []
    for fact in file.facts:
        if (fact.value and _head(fact.value) in known) or fact.scope in classes \
                or (fact.annotation and not heads.isdisjoint(_NAMES.findall(fact.annotation))) \
                or _head(fact.target) in _INSTANCE_NAMES or fact.target == PROPERTY \
                or fact.value == OBJECT \
                or _module_member(fact, file):
            facts.append(fact)
        elif fact.target in heads:  # a local that shadows a name known here: untyped
            facts.append(fact._replace(value="", annotation=""))
    file.facts = facts
    known = heads | {f.target for f in file.facts}
    # Asked once per distinct callee: a file calls the same few names many times.
    resolvable = {callee: _head(callee) in known for callee in {c.callee for c in file.calls}}
    file.calls = [c for c in file.calls if c.caller is not None and resolvable[c.callee]]
    return file


_NAMES = re.compile(r"(?:[^\W\d]|\$)[\w$]*")  # JS names may hold `$`


def _module_member(fact: Fact, file: ParsedFile) -> bool:
    """JS `module.exports = …`, `exports.a = …`, `Cls.x = …` at module level: they hide
    names even untyped (what a CommonJS module exports, a static member)."""
    return fact.scope is None and file.language != "python" \
        and (fact.target.startswith(EXPORTS) or "." in fact.target)


def _head(expression: str) -> str:
    """The name an expression starts from (`f().g`, `xs[].m`: f, xs)."""
    return read_segment(expression.partition(".")[0])[0]


def stats(graph: Graph) -> dict:
    """Counts by type and the files most imported (hot spots)."""
    nodes = Counter(n.kind.value for n in graph.nodes)
    edges = Counter(e.kind.value for e in graph.edges)
    indegree: Counter[int] = Counter(e.dst for e in graph.edges if e.kind is EdgeKind.IMPORTS)
    paths = {n.id: n.path for n in graph.nodes if n.kind is NodeKind.FILE}
    return {
        "files": nodes.get(NodeKind.FILE.value, 0),
        "loc": graph.loc,
        "nodes": dict(sorted(nodes.items())),
        "edges": dict(sorted(edges.items())),
        "external_packages": len(graph.external),
        "hot_spots": [{"path": paths[node], "dependents": count}
                      for node, count in indegree.most_common(HOT_SPOTS)],
        "skipped": [{"path": p, "reason": r} for p, r in graph.skipped],
    }


class _EdgeSet:
    """Edges folded by (src, dst, kind): weight counts the sites behind one edge."""

    def __init__(self):
        self.edges: dict[tuple[int, int, EdgeKind], Edge] = {}

    def add(self, src: int, dst: int, kind: EdgeKind, line: int | None,
            type_only: bool = False, candidates: int = 1, weight: int = 1) -> None:
        if src == dst and kind is not EdgeKind.CALLS:
            return
        edge = self.edges.get((src, dst, kind))
        if edge is None:
            self.edges[(src, dst, kind)] = Edge(src, dst, kind, line, weight, type_only,
                                                candidates)
            return
        edge.weight += weight
        edge.type_only = edge.type_only and type_only
        edge.candidates = min(edge.candidates, candidates)
        if line is not None and (edge.line is None or line < edge.line):
            edge.line = line

    def list(self) -> list[Edge]:
        return list(self.edges.values())


def _contains(symbols: Symbols, file: ParsedFile, edges: _EdgeSet) -> None:
    defs = symbols.defs[file.path]
    for d in defs.values():
        parent = defs.get(d.symbol.parent) if d.symbol.parent else None
        src = parent.node.id if parent else symbols.file_ids[file.path]
        edges.add(src, d.node.id, EdgeKind.CONTAINS, d.symbol.start_line)


def _imports(symbols: Symbols, path: str, resolved: FileImports, edges: _EdgeSet,
             external: Counter) -> None:
    src = symbols.file_ids[path]
    for imp in resolved.imports:
        if imp.target is not None:
            dst = symbols.file_ids.get(imp.target)
            if dst is not None:
                edges.add(src, dst, EdgeKind.IMPORTS, imp.line, imp.type_only)
        elif imp.external:
            external[imp.external] += 1


def _extends(symbols: Symbols, file: ParsedFile, edges: _EdgeSet) -> None:
    for d in symbols.defs[file.path].values():
        for base in symbols.bases(d):
            edges.add(d.node.id, base.node.id, EdgeKind.EXTENDS, d.symbol.start_line)


def _calls(symbols: Symbols, inference: Inference, file: ParsedFile,
           edges: _EdgeSet) -> None:
    defs = symbols.defs[file.path]
    # (caller, callee) -> the lines of its sites: a callee is asked about once per
    # function, not once per site (sympy: 296K sites, 109K pairs).
    sites: dict[tuple[str, str], list[int]] = {}
    for caller, callee, line in file.calls:
        if caller:
            sites.setdefault((caller, callee), []).append(line)
    for (name, callee), lines in sites.items():
        caller = defs.get(name)
        if caller is None:
            continue
        lines.sort()
        src = caller.node.id
        for targets, at in inference.callees(file.path, caller, callee, lines):
            for target in targets:
                edges.add(src, target.node.id, EdgeKind.CALLS, at[0], candidates=len(targets),
                          weight=len(at))
