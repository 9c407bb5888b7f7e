"""Every definition of a repository by (path, qualname), and name lookup across files.

Names resolve through a file's own definitions, then its import scope (longest
dotted prefix), following re-exports (`from .base import Model` in a package
`__init__`; in JS/TS `export {x as y} from './x'`, `export * as ns from './x'`,
and `export * from` any number of modules: a name that two of them export as
different things is ambiguous and resolves to nothing) up to a few hops. An ES
module's own names exported under another (`export default a`, `export default
function a`, `export { a as b }`) are re-exports of the module itself.
Classes know their repository bases, and methods are found along them (see
`Symbols.method`). A TS interface and a value of one name are one node that
resolves by space (see `_merged`). A TS namespace is no node: its exported
members are found as `ns.name` (`Symbols.namespace_member`), nested
namespaces as `A.B.name`.

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

from edge.parse.model import EXPORT_AS, EXPORTS, Fact, ParsedFile, Symbol
from edge.resolve.model import FileImports, Target
from shared.graph.model import CONSTRUCTORS, Node, NodeKind, node_id

REEXPORT_HOPS = 4
_EXPORTED_AS = EXPORT_AS + "."
_NAME = re.compile(r"(?:[^\W\d]|\$)[\w$]*(?:\.(?:[^\W\d]|\$)[\w$]*)*")


@dataclass(slots=True, eq=False)  # identity: values hold definitions in sets
class Definition:
    node: Node
    symbol: Symbol  # the value-space declaration when the name has one (see _merged)
    # A TS interface of the same name beside a value (`interface X` + `const X = …`,
    # `function X`, `class X`): the node's type-space half (see _merged).
    interface: Symbol | None = None

    @property
    def is_type(self) -> bool:
        """Whether the name also denotes a type an annotation can name."""
        return self.node.kind is NodeKind.CLASS or self.interface is not None


class Symbols:
    """Every definition by (path, qualname), and name resolution across files."""

    def __init__(self, repo: str, files: list[ParsedFile], imports: dict[str, FileImports]):
        self.repo = repo
        self.imports = imports
        self.defs: dict[str, dict[str, Definition]] = {}
        self.file_ids: dict[str, int] = {}
        self._bases: dict[int, list[Definition]] = {}
        self._methods: dict[tuple[int, str], Definition | None] = {}
        self._lookups: dict[tuple[str, str, int], Definition | None] = {}
        # path of a CommonJS module -> EXPORTS or "<exports>.a" -> its module-level facts.
        self.exports: dict[str, dict[str, list[Fact]]] = {}
        # path -> name a JS module re-exports (`export {a as b} from`, `export * as ns
        # from`) -> what it names; scope holds local names only.
        self.reexports: dict[str, dict[str, Target]] = {}
        # path -> the modules a JS module re-exports whole (`export * from './a'`), in order.
        self.stars: dict[str, list[str]] = {}
        # path -> TS namespace (dotted, "A.B") -> name -> the member it exports; and the
        # namespaces of each path, outer ones of a nested name included.
        self.namespaces: dict[str, dict[str, dict[str, Definition]]] = {}
        self.namespace_names: dict[str, set[str]] = {}
        for file in files:
            self.file_ids[file.path] = node_id(repo, file.path)
            self.defs[file.path] = self._index(file)
            self._namespaces(file)
            self._reexports(file)
            for fact in file.facts:
                if fact.scope is None and fact.target.startswith(EXPORTS):
                    by_target = self.exports.setdefault(file.path, {})
                    by_target.setdefault(fact.target, []).append(fact)
                elif fact.scope is None and fact.target.startswith(_EXPORTED_AS):
                    # `export default a`, `export { a as b }`: the module re-exports its own
                    names = self.reexports.setdefault(file.path, {})
                    names.setdefault(fact.target[len(_EXPORTED_AS):], Target(file.path, fact.value))

    def _index(self, file: ParsedFile) -> dict[str, Definition]:
        defs: dict[str, Definition] = {}
        for symbol in file.symbols:
            known = defs.get(symbol.qualname)
            if known is None:
                defs[symbol.qualname] = Definition(self._node(file, symbol), symbol)
                continue
            # A redefinition (property setter, if/else def) or TS declaration merging: one
            # node over every declaration of the name.
            known.node.start_line = min(known.node.start_line, symbol.start_line)
            known.node.end_line = max(known.node.end_line, symbol.end_line)
            _merged(known, symbol)
        return defs

    def _namespaces(self, file: ParsedFile) -> None:
        """Exported members of the file's TS namespaces. Each has the qualname it would
        have without its namespace (a namespace is no node), so `A.B.f` is found here,
        not among the definitions; merged blocks of one name pool their members."""
        defs = self.defs[file.path]
        for symbol in file.symbols:
            if symbol.namespace is None:
                continue
            names = self.namespace_names.setdefault(file.path, set())
            prefix = ""
            for part in symbol.namespace.split("."):
                prefix = f"{prefix}.{part}" if prefix else part
                names.add(prefix)
            if symbol.exported:
                members = self.namespaces.setdefault(file.path, {})
                members.setdefault(symbol.namespace, {})[symbol.name] = defs[symbol.qualname]

    def namespace_member(self, path: str, namespace: str, name: str) -> Definition | None:
        """What namespace `namespace` of `path` exports as `name`."""
        return self.namespaces.get(path, {}).get(namespace, {}).get(name)

    def _node(self, file: ParsedFile, symbol: Symbol) -> Node:
        return Node(node_id(self.repo, file.path, symbol.qualname), NodeKind(symbol.kind),
                    file.path, symbol.name, symbol.qualname, symbol.start_line,
                    symbol.end_line, file.language, symbol.docstring)

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
                if binding.local == "*":
                    self.stars.setdefault(file.path, []).append(targets[0])
                else:
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
        key = (path, dotted, hops)  # with hops: `export *` chains fan out
        if key not in self._lookups:
            self._lookups[key] = self._lookup(path, dotted, hops)
        return self._lookups[key]

    def _lookup(self, path: str, dotted: str, hops: int) -> Definition | None:
        own = self.defs.get(path, {}).get(dotted)
        if own is not None:
            return own
        namespace, _, name = dotted.rpartition(".")
        if namespace in self.namespace_names.get(path, ()):  # `extends ns.Base`
            return self.namespace_member(path, namespace, name)
        if hops == 0:
            return None
        scope = self.imports.get(path)
        local = scope.scope if scope is not None else {}
        target, rest = longest_prefix(local, dotted)
        if target is None and path in self.reexports:
            target, rest = longest_prefix(self.reexports[path], dotted)
        if target is not None:
            return self._follow(target, rest, hops - 1)
        star = local.get("*")
        if star is not None:
            return self.lookup(star.path, dotted, hops - 1)
        found = {self.lookup(source, dotted, hops - 1)
                 for source in self.star_sources(path, dotted.partition(".")[0])}
        found.discard(None)
        return found.pop() if len(found) == 1 else None

    def star_sources(self, path: str, name: str) -> list[str]:
        """The modules whose exports `export * from` passes on as `name`: every one such
        statement names (never as "default"). A name two of them export differently is
        ambiguous, exported by none (ECMAScript), so callers take it only when all agree."""
        return self.stars.get(path, []) if name != "default" else []

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
            merged = cls.interface.bases if cls.interface is not None else ()
            for base in cls.symbol.bases + merged:
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
        return found if found is not None and found.is_type else None

    def method(self, cls: Definition | None, name: str) -> Definition | None:
        """`name` on class `cls` or, failing that, on its repository bases, depth first
        (close enough to the MRO for finding a definition)."""
        if cls is None:
            return None
        key = (cls.node.id, name)
        if key not in self._methods:
            self._methods[key] = None  # a cycle of bases ends here
            found = None  # a function's inner definitions are no members of its type
            if cls.node.kind is NodeKind.CLASS:
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


def _merged(known: Definition, symbol: Symbol) -> None:
    """Fold TS declaration merging into one node: an interface and a value of one name
    (`interface X {…}` + `const X = f(…)`, `function X`, `class X`) are two things, a
    type and what runs. The node keeps the qualname (its identity) and takes the value's
    kind and declaration, which calls and `new` reach; the interface stays beside it for
    annotations, `implements` and the bases an interface adds (`interface X extends Y`)."""
    if _is_interface(symbol) and not _is_interface(known.symbol):
        known.interface = known.interface or symbol
    elif _is_interface(known.symbol) and not _is_interface(symbol):
        known.interface, known.symbol = known.symbol, symbol
        known.node.kind = NodeKind(symbol.kind)
        known.node.docstring = known.node.docstring or symbol.docstring


def _is_interface(symbol: Symbol) -> bool:
    """A type-space declaration only. A class nothing constructs is an interface or an
    enum, and an enum merges with no other declaration but a namespace or another enum,
    so beside a value of its name it is an interface."""
    return symbol.kind == "class" and not symbol.constructible


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
