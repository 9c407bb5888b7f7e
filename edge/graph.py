"""Building the code graph from parsed files and resolved imports.

Nodes: one per file and per class, function and method. Edges:
- IMPORTS file -> file, one per pair, `weight` = statements, `type_only` when
  every statement behind it is typing-only;
- CONTAINS file -> top-level symbol, class -> method, function -> nested def;
- EXTENDS class -> class, when the base names a class of the repository;
- CALLS function -> function, when the callee resolves (see `_Symbols.call`).

Names resolve through a file's own definitions, then its import scope
(longest dotted prefix), following re-exports (`from .base import Model` in a
package `__init__`, `export {x} from './x'`) up to a few hops. Calls through
`self`/`this` resolve to methods of the enclosing class or its repository
bases; a call to a class resolves to its constructor. What is not resolved:
calls on values whose type needs inference (`obj.method()` for a local
`obj`), dynamic dispatch, getattr, decorators that replace functions.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from edge.parse.model import ParsedFile, Skipped, Symbol
from edge.resolve.model import FileImports, Target
from shared.graph.model import Edge, EdgeKind, Graph, Node, NodeKind, node_id

REEXPORT_HOPS = 4
CONSTRUCTORS = ("__init__", "constructor")
SELF_NAMES = ("self", "cls", "this")
HOT_SPOTS = 10


def build_graph(repo: str, parsed: Iterable[ParsedFile], imports: dict[str, FileImports],
                skipped: Iterable[Skipped] = (), commit: str = "") -> Graph:
    files = list(parsed)
    graph = Graph(repo=repo, commit=commit, loc=sum(f.loc for f in files),
                  skipped=[(s.path, s.reason) for s in skipped])
    symbols = _Symbols(repo, files, imports)
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
        _calls(symbols, file, edges)
    graph.edges = edges.list()
    graph.external = dict(sorted(external.items()))
    return graph


def drop_unresolvable_calls(file: ParsedFile) -> ParsedFile:
    """Keep only calls whose first name the file defines or imports (or self/this).

    Most call sites name builtins, locals and parameters; no import scope can
    resolve those, so they are dropped where the file is parsed, before they
    cost a trip between processes and a lookup here. A star import keeps all.
    """
    heads = {s.name for s in file.symbols}
    heads.update(SELF_NAMES)
    for imp in file.imports:
        for binding in imp.bindings:
            if binding.local == "*":
                return file
            heads.add(binding.local.partition(".")[0])
    file.calls = [c for c in file.calls
                  if c.caller is not None and c.callee.partition(".")[0] in heads]
    return file


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
            type_only: bool = False) -> None:
        if src == dst and kind is not EdgeKind.CALLS:
            return
        edge = self.edges.get((src, dst, kind))
        if edge is None:
            self.edges[(src, dst, kind)] = Edge(src, dst, kind, line, 1, type_only)
            return
        edge.weight += 1
        edge.type_only = edge.type_only and type_only
        if line is not None and (edge.line is None or line < edge.line):
            edge.line = line

    def list(self) -> list[Edge]:
        return list(self.edges.values())


@dataclass(slots=True)
class _Def:
    node: Node
    symbol: Symbol


class _Symbols:
    """Every definition by (path, qualname), and name resolution across files."""

    def __init__(self, repo: str, files: list[ParsedFile], imports: dict[str, FileImports]):
        self.repo = repo
        self.imports = imports
        self.defs: dict[str, dict[str, _Def]] = {}
        self.file_ids: dict[str, int] = {}
        self._bases: dict[int, list[_Def]] = {}
        self._methods: dict[tuple[int, str], _Def | None] = {}
        self._lookups: dict[tuple[str, str], _Def | None] = {}
        for file in files:
            self.file_ids[file.path] = node_id(repo, file.path)
            self.defs[file.path] = self._index(file)

    def _index(self, file: ParsedFile) -> dict[str, _Def]:
        defs: dict[str, _Def] = {}
        for symbol in file.symbols:
            known = defs.get(symbol.qualname)
            if known is not None:  # redefinition (property setter, if/else def): one node
                known.node.start_line = min(known.node.start_line, symbol.start_line)
                known.node.end_line = max(known.node.end_line, symbol.end_line)
                continue
            node = Node(node_id(self.repo, file.path, symbol.qualname), NodeKind(symbol.kind),
                        file.path, symbol.name, symbol.qualname, symbol.start_line,
                        symbol.end_line, file.language, symbol.docstring)
            defs[symbol.qualname] = _Def(node, symbol)
        return defs

    def file_node(self, file: ParsedFile) -> Node:
        name = file.path.rsplit("/", 1)[-1]
        return Node(self.file_ids[file.path], NodeKind.FILE, file.path, name, "", 1,
                    max(1, file.loc), file.language)

    def nodes_of(self, path: str) -> list[Node]:
        return [d.node for d in self.defs[path].values()]

    def lookup(self, path: str, dotted: str, hops: int = REEXPORT_HOPS) -> _Def | None:
        """The definition `dotted` names inside file `path` (its own or imported)."""
        if hops == REEXPORT_HOPS:
            key = (path, dotted)
            if key not in self._lookups:
                self._lookups[key] = self._lookup(path, dotted, hops)
            return self._lookups[key]
        return self._lookup(path, dotted, hops)

    def _lookup(self, path: str, dotted: str, hops: int) -> _Def | None:
        own = self.defs.get(path, {}).get(dotted)
        if own is not None:
            return own
        if hops == 0:
            return None
        scope = self.imports.get(path)
        if scope is None:
            return None
        target, rest = _longest_prefix(scope.scope, dotted)
        if target is not None:
            return self._follow(target, rest, hops - 1)
        star = scope.scope.get("*")
        if star is not None:
            return self.lookup(star.path, dotted, hops - 1)
        return None

    def _follow(self, target: Target, rest: str, hops: int) -> _Def | None:
        member = ".".join(p for p in (target.name, rest) if p and p != "*")
        if not member:
            return None
        return self.lookup(target.path, member, hops)

    def bases(self, cls: _Def) -> list[_Def]:
        """The repository classes `cls` names as bases (memoized: calls ask often)."""
        known = self._bases.get(cls.node.id)
        if known is None:
            known = []
            for base in cls.symbol.bases:
                found = self._class_named(cls.node.path, cls.symbol.parent, base)
                if found is not None and found is not cls:
                    known.append(found)
            self._bases[cls.node.id] = known
        return known

    def _class_named(self, path: str, parent: str | None, name: str) -> _Def | None:
        found = None
        if parent:  # a class nested in a class can name a sibling
            found = self.lookup(path, f"{parent}.{name}", hops=0)
        found = found or self.lookup(path, name)
        return found if found is not None and found.node.kind is NodeKind.CLASS else None

    def method(self, cls: _Def | None, name: str) -> _Def | None:
        """`name` on class `cls` or, failing that, on its repository bases, depth first
        (close enough to the MRO for finding a definition)."""
        if cls is None:
            return None
        key = (cls.node.id, name)
        if key not in self._methods:
            self._methods[key] = None  # a cycle of bases ends here
            found = self.defs[cls.node.path].get(f"{cls.symbol.qualname}.{name}")
            for base in () if found else self.bases(cls):
                found = self.method(base, name)
                if found is not None:
                    break
            self._methods[key] = found
        return self._methods[key]

    def constructor(self, cls: _Def) -> _Def | None:
        for name in CONSTRUCTORS:
            found = self.method(cls, name)
            if found is not None:
                return found
        return None


def _longest_prefix(scope: dict[str, Target], dotted: str) -> tuple[Target | None, str]:
    prefix = dotted
    while True:
        target = scope.get(prefix)
        if target is not None:
            return target, dotted[len(prefix) + 1:]
        cut = prefix.rfind(".")
        if cut < 0:
            return None, ""
        prefix = prefix[:cut]


def _contains(symbols: _Symbols, file: ParsedFile, edges: _EdgeSet) -> None:
    defs = symbols.defs[file.path]
    for d in defs.values():
        parent = defs.get(d.symbol.parent) if d.symbol.parent else None
        src = parent.node.id if parent else symbols.file_ids[file.path]
        edges.add(src, d.node.id, EdgeKind.CONTAINS, d.symbol.start_line)


def _imports(symbols: _Symbols, path: str, resolved: FileImports, edges: _EdgeSet,
             external: Counter) -> None:
    src = symbols.file_ids[path]
    for imp in resolved.imports:
        if imp.target is not None:
            dst = symbols.file_ids.get(imp.target)
            if dst is not None:
                edges.add(src, dst, EdgeKind.IMPORTS, imp.line, imp.type_only)
        elif imp.external:
            external[imp.external] += 1


def _extends(symbols: _Symbols, file: ParsedFile, edges: _EdgeSet) -> None:
    for d in symbols.defs[file.path].values():
        for base in symbols.bases(d):
            edges.add(d.node.id, base.node.id, EdgeKind.EXTENDS, d.symbol.start_line)


def _calls(symbols: _Symbols, file: ParsedFile, edges: _EdgeSet) -> None:
    defs = symbols.defs[file.path]
    for call in file.calls:
        caller = defs.get(call.caller) if call.caller else None
        if caller is None:
            continue
        callee = _callee(symbols, file.path, caller, call.callee)
        if callee is not None:
            edges.add(caller.node.id, callee.node.id, EdgeKind.CALLS, call.line)


def _callee(symbols: _Symbols, path: str, caller: _Def, callee: str) -> _Def | None:
    head, _, rest = callee.partition(".")
    if head in SELF_NAMES and rest and "." not in rest:
        found = symbols.method(_enclosing_class(symbols, path, caller), rest)
    else:
        found = _in_enclosing_scopes(symbols, path, caller, callee) or symbols.lookup(path, callee)
    if found is None:
        return None
    if found.node.kind is NodeKind.CLASS:
        return symbols.constructor(found)
    return found


def _in_enclosing_scopes(symbols: _Symbols, path: str, caller: _Def, callee: str) -> _Def | None:
    """A nested def called from its enclosing function (`outer.helper`)."""
    defs = symbols.defs[path]
    scope = caller.symbol.qualname
    while scope:
        found = defs.get(f"{scope}.{callee}")
        if found is not None and found.node.kind is not NodeKind.METHOD:
            return found
        parent = defs.get(scope)
        scope = parent.symbol.parent if parent else None
    return None


def _enclosing_class(symbols: _Symbols, path: str, caller: _Def) -> _Def | None:
    defs = symbols.defs[path]
    current = caller
    while current is not None:
        if current.node.kind is NodeKind.CLASS:
            return current
        current = defs.get(current.symbol.parent) if current.symbol.parent else None
    return None
