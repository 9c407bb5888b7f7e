"""Every definition of a repository by (path, qualname), and name lookup across files.

Names resolve through a file's own definitions, then its import scope (longest
dotted prefix), following re-exports (`from .base import Model` in a package
`__init__`; in JS/TS `export {x as y} from './x'` and `export * as ns from
'./x'`, not `export *`) up to a few hops. Classes know their
repository bases, and methods are found along them (see `Symbols.method`).

A CommonJS module (one that assigns `module.exports` or `exports.a` at module
level) is what it exports: a name bound to the whole module (`const X =
require('./x')`) names the value of `module.exports`, a member (`const {a} =
require('./x')`, `x.a`) the value exported as `a`, and nothing else of the file.
Here, for bases, only an export that is a plain name counts; edge/infer.py
evaluates the rest.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from edge.parse.model import EXPORTS, Fact, ParsedFile, Symbol
from edge.resolve.model import FileImports, Target
from shared.graph.model import CONSTRUCTORS, Node, NodeKind, node_id

REEXPORT_HOPS = 4
_NAME = re.compile(r"(?:[^\W\d]|\$)[\w$]*(?:\.(?:[^\W\d]|\$)[\w$]*)*")


@dataclass(slots=True, eq=False)  # identity: values hold definitions in sets
class Definition:
    node: Node
    symbol: Symbol


class Symbols:
    """Every definition by (path, qualname), and name resolution across files."""

    def __init__(self, repo: str, files: list[ParsedFile], imports: dict[str, FileImports]):
        self.repo = repo
        self.imports = imports
        self.defs: dict[str, dict[str, Definition]] = {}
        self.file_ids: dict[str, int] = {}
        self._bases: dict[int, list[Definition]] = {}
        self._methods: dict[tuple[int, str], Definition | None] = {}
        self._lookups: dict[tuple[str, str], Definition | None] = {}
        # path of a CommonJS module -> EXPORTS or "<exports>.a" -> its module-level facts.
        self.exports: dict[str, dict[str, list[Fact]]] = {}
        # path -> name a JS module re-exports (`export {a as b} from`, `export * as ns
        # from`) -> what it names; scope holds local names only.
        self.reexports: dict[str, dict[str, Target]] = {}
        for file in files:
            self.file_ids[file.path] = node_id(repo, file.path)
            self.defs[file.path] = self._index(file)
            self._reexports(file)
            for fact in file.facts:
                if fact.scope is None and fact.target.startswith(EXPORTS):
                    by_target = self.exports.setdefault(file.path, {})
                    by_target.setdefault(fact.target, []).append(fact)

    def _index(self, file: ParsedFile) -> dict[str, Definition]:
        defs: dict[str, Definition] = {}
        for symbol in file.symbols:
            known = defs.get(symbol.qualname)
            if known is not None:  # redefinition (property setter, if/else def): one node
                known.node.start_line = min(known.node.start_line, symbol.start_line)
                known.node.end_line = max(known.node.end_line, symbol.end_line)
                continue
            node = Node(node_id(self.repo, file.path, symbol.qualname), NodeKind(symbol.kind),
                        file.path, symbol.name, symbol.qualname, symbol.start_line,
                        symbol.end_line, file.language, symbol.docstring)
            defs[symbol.qualname] = Definition(node, symbol)
        return defs

    def _reexports(self, file: ParsedFile) -> None:
        statements = [i for i in file.imports if i.kind == "export"]
        resolved = self.imports.get(file.path)
        if not statements or resolved is None:
            return
        by_line: dict[int, list[str]] = {}
        for imp in resolved.imports:
            by_line.setdefault(imp.line, []).append(imp.target)
        names = self.reexports.setdefault(file.path, {})
        for statement in statements:
            targets = by_line.get(statement.line, ())
            if len(targets) != 1 or targets[0] is None:
                continue  # external, unresolved, or two statements on one line
            for binding in statement.bindings:
                if binding.local != "*":  # `export *` names nothing by itself
                    names.setdefault(binding.local, Target(targets[0], binding.name))

    def scope_target(self, path: str, name: str) -> Target | None:
        """What a module-level import or re-export of `path` binds `name` to."""
        scope = self.imports.get(path)
        found = scope.scope.get(name) if scope is not None else None
        return found if found is not None else self.reexports.get(path, {}).get(name)

    def file_node(self, file: ParsedFile) -> Node:
        name = file.path.rsplit("/", 1)[-1]
        return Node(self.file_ids[file.path], NodeKind.FILE, file.path, name, "", 1,
                    max(1, file.loc), file.language)

    def nodes_of(self, path: str) -> list[Node]:
        return [d.node for d in self.defs[path].values()]

    def lookup(self, path: str, dotted: str, hops: int = REEXPORT_HOPS) -> Definition | None:
        """The definition `dotted` names inside file `path` (its own or imported)."""
        if hops == REEXPORT_HOPS:
            key = (path, dotted)
            if key not in self._lookups:
                self._lookups[key] = self._lookup(path, dotted, hops)
            return self._lookups[key]
        return self._lookup(path, dotted, hops)

    def _lookup(self, path: str, dotted: str, hops: int) -> Definition | None:
        own = self.defs.get(path, {}).get(dotted)
        if own is not None:
            return own
        if hops == 0:
            return None
        scope = self.imports.get(path)
        if scope is None:
            return None
        target, rest = longest_prefix(scope.scope, dotted)
        if target is None and path in self.reexports:
            target, rest = longest_prefix(self.reexports[path], dotted)
        if target is not None:
            return self._follow(target, rest, hops - 1)
        star = scope.scope.get("*")
        if star is not None:
            return self.lookup(star.path, dotted, hops - 1)
        return None

    def _follow(self, target: Target, rest: str, hops: int) -> Definition | None:
        if target.path in self.exports:
            target, rest = self._exported(target, rest)
            if target is None:
                return None
        member = ".".join(p for p in (target.name, rest) if p and p != "*")
        if not member:
            return None
        return self.lookup(target.path, member, hops)

    def _exported(self, target: Target, rest: str) -> tuple[Target | None, str]:
        """What a CommonJS module exports under target.name (None: `module.exports`)
        as a name of the module, when it is one plain name."""
        exports = self.exports[target.path]
        facts = exports.get(f"{EXPORTS}.{target.name}" if target.name else EXPORTS)
        if not facts and target.name:  # `module.exports = X`: the member is X's
            facts, rest = exports.get(EXPORTS), ".".join(p for p in (target.name, rest) if p)
        if not facts or len(facts) > 1 or not _NAME.fullmatch(facts[0].value):
            return None, ""
        return Target(target.path, facts[0].value), rest

    def bases(self, cls: Definition) -> list[Definition]:
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

    def _class_named(self, path: str, parent: str | None, name: str) -> Definition | None:
        found = None
        if parent:  # a class nested in a class can name a sibling
            found = self.lookup(path, f"{parent}.{name}", hops=0)
        found = found or self.lookup(path, name)
        return found if found is not None and found.node.kind is NodeKind.CLASS else None

    def method(self, cls: Definition | None, name: str) -> Definition | None:
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

    def constructor(self, cls: Definition) -> Definition | None:
        for name in CONSTRUCTORS:
            found = self.method(cls, name)
            if found is not None:
                return found
        return None


def longest_prefix(scope: dict[str, Target], dotted: str) -> tuple[Target | None, str]:
    prefix = dotted
    while True:
        target = scope.get(prefix)
        if target is not None:
            return target, dotted[len(prefix) + 1:]
        cut = prefix.rfind(".")
        if cut < 0:
            return None, ""
        prefix = prefix[:cut]


def enclosing_class(symbols: Symbols, path: str, inner: Definition) -> Definition | None:
    """The class `inner` is, or is (nested) inside of."""
    defs = symbols.defs[path]
    current = inner
    while current is not None:
        if current.node.kind is NodeKind.CLASS:
            return current
        current = defs.get(current.symbol.parent) if current.symbol.parent else None
    return None
