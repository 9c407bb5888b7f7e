"""What a call expression calls: receivers typed statically, no code run.

The parser hands over each call's callee as an expression of names, attribute
accesses and calls ("self.session.get", "Builder().add", "super().save") and
the facts of each file (edge/parse/model.py `Fact`): assignments, annotations
of parameters, attributes and returns, with/except targets, returned values.
`Inference.callees` evaluates the expression to a set of *values*:

- an instance of a repository class (from `Cls()`, an annotation, `self`);
- a class (a name bound to one, `cls`, `type[Cls]`);
- a function or method (a name, `obj.method`, an alias `f = obj.method`);
- a module (`import pkg.mod`), or `super()` of a class;
- a container (`list[Item]`, `Item[]`) whose elements a subscript or a loop
  variable reads: a segment "xs[]" of the expression (edge/values.py).

A name is looked up as Python does: the function's own facts, then enclosing
functions', then its function-local imports; then the file (definitions,
module-level assignments, imports, following re-exports). A local assigned
several times takes the assignments before the call's line (all of them when
none comes before: a loop), each adding its values. Members of values
(attributes along the MRO, properties, statics, CommonJS exports, TS
namespaces, object literals) and what calling a value gives are in
edge/members.py; what an annotation names in edge/annotations.py; the values
themselves in edge/values.py.

Precision first: where a value cannot be typed there is no edge. Where it
could be several things (a union, branches), each target gets an edge and
`candidates` on the edge says how many there were.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from edge.annotations import Annotations
from edge.members import Members
from edge.parse.model import ELEMENT, EXPORTS, OBJECT, PROPERTY, RETURN, Fact, ParsedFile
from edge.resolve.model import FileImports, Target
from edge.symbols import REEXPORT_HOPS, Definition, Symbols, enclosing_class
from edge.values import (
    CLASS, FUNCTION, INSTANCE, MODULE, NAMESPACE, NOTHING, OBJECT_VALUE, SUPER, Value,
    Values, elements, values_of)
from shared.graph.model import NodeKind

# Evaluations nest (a fact's value names another fact); past this depth: unknown.
MAX_DEPTH = 24
# What the usual names of a method's first parameter (and super) stand for.
_SELF_KINDS = {"self": INSTANCE, "this": INSTANCE, "cls": CLASS, "super": SUPER}
_INSTANCE_NAMES = frozenset(("self", "this"))
_CALL = "()"


class Inference(Members, Annotations):
    """Callees of call expressions, over one repository's symbols and facts."""

    def __init__(self, symbols: Symbols, files: Iterable[ParsedFile],
                 imports: dict[str, FileImports]):
        self.symbols = symbols
        self.imports = imports
        # path -> first names of the dotted names its imports bind (`import a.b` -> "a").
        self._dotted_heads = {path: {k.partition(".")[0] for k in resolved.scope if "." in k}
                              for path, resolved in imports.items()}
        # (path, scope qualname or None) -> target -> facts, in line order.
        self.facts: dict[tuple[str, str | None], dict[str, list[Fact]]] = {}
        # class node id -> attribute -> [(path, scope qualname, fact)].
        self.attributes: dict[int, dict[str, list[tuple[str, str | None, Fact]]]] = {}
        # node ids of methods that are properties.
        self.properties: set[int] = set()
        # JS class or function node id -> static member (`Cls.x = v`) -> [(path, None, fact)].
        self.statics: dict[int, dict[str, list[tuple[str, None, Fact]]]] = {}
        for file in files:
            self._index(file)
        # (path, function qualname) -> functions and classes defined directly in it.
        self.children: dict[tuple[str, str], list[Definition]] = {}
        for path, defs in symbols.defs.items():
            for definition in defs.values():
                parent = definition.symbol.parent
                if parent and definition.node.kind is not NodeKind.METHOD:
                    self.children.setdefault((path, parent), []).append(definition)
        self._memo: dict[tuple, Values] = {}
        self._scopes: dict[int, tuple[dict, Definition | None]] = {}
        # (path, callee whose first name is the file's) -> targets.
        self._callees: dict[tuple[str, str], list[Definition]] = {}
        self._line_used = False
        self._depth = 0

    def _index(self, file: ParsedFile) -> None:
        defs = self.symbols.defs[file.path]
        for fact in file.facts:
            scope = defs.get(fact.scope) if fact.scope else None
            target = fact.target
            if target == PROPERTY:
                if scope is not None:
                    self.properties.add(scope.node.id)
                continue
            owner, dot, attribute = target.partition(".")
            if dot and owner in _INSTANCE_NAMES:  # self.x = v, this.x = v
                cls = enclosing_class(self.symbols, file.path, scope) if scope else None
                if cls is not None and scope is not cls:
                    self._attribute(cls, attribute, file.path, fact)
                continue
            if dot and scope is None and owner in defs and file.language != "python":
                statics = self.statics.setdefault(defs[owner].node.id, {})  # JS `Cls.x = v`
                statics.setdefault(attribute, []).append((file.path, None, fact))
                continue
            if scope is not None and scope.node.kind is NodeKind.CLASS and target != RETURN:
                self._attribute(scope, target, file.path, fact)
            self.facts.setdefault((file.path, fact.scope), {}).setdefault(target, []).append(fact)

    def _attribute(self, cls: Definition, name: str, path: str, fact: Fact) -> None:
        by_name = self.attributes.setdefault(cls.node.id, {})
        by_name.setdefault(name, []).append((path, fact.scope, fact))

    # -- the question asked -------------------------------------------------

    def callees(self, path: str, caller: Definition, callee: str,
                lines: Sequence[int]) -> list[tuple[list[Definition], Sequence[int]]]:
        """The definitions the calls of `callee` in `caller` at `lines` (ascending) may
        run, in a stable order, with the lines each answer holds for. One evaluation
        answers every site unless the callee reads a local assigned more than once;
        then each line gets its own."""
        # A callee whose first name is the file's (most calls: `f()`, `mod.f()`,
        # `Cls().m()`) has the same answer in every function of the file.
        head = read_segment(callee.partition(".")[0])[0]
        shared = head not in _SELF_KINDS and head not in self._scope(path, caller)[0]
        if shared:
            known = self._callees.get((path, callee))
            if known is not None:
                return [(known, lines)]
        known = self._callees_at(path, caller, callee, lines[0])
        if not self._line_used:
            if shared:
                self._callees[(path, callee)] = known
            return [(known, lines)]
        return [(known, lines[:1])] + [(self._callees_at(path, caller, callee, line), (line,))
                                       for line in lines[1:]]

    def _callees_at(self, path: str, caller: Definition, callee: str,
                    line: int) -> list[Definition]:
        self._line_used = False
        found: dict[int, Definition] = {}
        for value in self.evaluate(path, caller, callee, line):
            target = self._callable(value)
            if target is not None:
                found.setdefault(target.node.id, target)
        return list(found.values())

    def _callable(self, value: Value) -> Definition | None:
        if value.kind == FUNCTION:
            return value.target
        if value.kind == CLASS:  # the constructor that runs, else the class itself
            if not value.target.symbol.constructible:
                return None
            return self.symbols.constructor(value.target) or value.target
        if value.kind == INSTANCE:
            return self.symbols.method(value.target, "__call__")
        return None

    # -- expressions ----------------------------------------------------------

    def evaluate(self, path: str, scope: Definition | None, expression: str,
                 line: int | None) -> Values:
        """The values of `expression` written in `scope` (None: module level) of `path`;
        `line` limits the scope's own assignments to those before it."""
        if self._depth >= MAX_DEPTH:
            return NOTHING
        self._depth += 1
        try:
            segments = expression.split(".")
            values, used = self._head(path, scope, segments, line)
            for segment in segments[used:]:
                if not values:
                    break
                name, called, element = read_segment(segment)
                values = self._member(values, name)
                if called:
                    values = self._call(values)
                if element:
                    values = self._elements(values, called)
            return values
        finally:
            self._depth -= 1

    def _head(self, path: str, scope: Definition | None, segments: list[str],
              line: int | None) -> tuple[Values, int]:
        name, called, element = read_segment(segments[0])
        values, used = self._local(path, scope, name, line), 1
        if values is None:
            values, used = self._global_dotted(path, segments)
            if scope is None and line is not None:  # module level: defined by then?
                values = frozenset(v for v in values if not _defined_after(v, path, line))
        if used == 1:
            if called and name != "super":
                values = self._call(values)
            if element:
                values = self._elements(values, called)
        return values, used

    def _elements(self, values: Values, called: bool) -> Values:
        """What iterating or indexing `values` gives: the elements of containers. A
        method read as an attribute (a JS getter: `for (const e of info.exports)`) is
        what it returns, as a property is."""
        if not called:
            values = frozenset().union(*(
                self._returns(v.target) if v.kind == FUNCTION
                and v.target.node.kind is NodeKind.METHOD else (v,) for v in values))
        return elements(values)

    def _local(self, path: str, scope: Definition | None, name: str,
               line: int | None) -> Values | None:
        """`name` inside functions: facts, function-local imports, nested defs,
        self/cls/super; None when no enclosing function binds it."""
        if scope is None:
            return None
        names, cls = self._scope(path, scope)
        bound = names.get(name)
        if bound is not None:
            where, what = bound
            if isinstance(what, list):  # facts of `where`; the line counts in the innermost
                return self._facts(path, where, what, line if where is scope else None)
            if isinstance(what, Target):
                return self._target(what, REEXPORT_HOPS)
            return values_of(what)
        if cls is not None and name in _SELF_KINDS:
            return frozenset((Value(_SELF_KINDS[name], cls),))
        return None

    def _scope(self, path: str, scope: Definition) -> tuple[dict, Definition | None]:
        """The names functions around `scope` bind, innermost winning, each as
        (the function, its facts | an import's Target | a nested definition); and
        the class `self` is an instance of there."""
        known = self._scopes.get(scope.node.id)
        if known is not None:
            return known
        defs = self.symbols.defs[path]
        function_scopes = self.imports[path].function_scopes if path in self.imports else {}
        chain, current = [], scope
        while current is not None:
            if current.node.kind is not NodeKind.CLASS:  # class bodies are not closures
                chain.append(current)
            current = defs.get(current.symbol.parent) if current.symbol.parent else None
        names: dict[str, tuple[Definition, object]] = {}
        for function in reversed(chain):
            qualname = function.symbol.qualname
            for nested in self.children.get((path, qualname), ()):
                names[nested.symbol.name] = (function, nested)
            for name, target in function_scopes.get(qualname, {}).items():
                names[name] = (function, target)
            for name, facts in self.facts.get((path, qualname), {}).items():
                names[name] = (function, facts)
        cls = enclosing_class(self.symbols, path, scope)
        known = self._scopes[scope.node.id] = (names, cls if cls is not scope else None)
        return known

    def _facts(self, path: str, scope: Definition | None, facts: list[Fact],
               line: int | None) -> Values:
        declared = [f for f in facts if f.annotation]
        if declared:  # a declared type holds for every later assignment
            facts = declared
        if line is not None and len(facts) > 1:
            self._line_used = True
            before = [f for f in facts if f.line < line]
            facts = before or facts
        values: set[Value] = set()
        for fact in facts:
            values |= self._fact(path, scope, fact)
        return frozenset(values)

    def _fact(self, path: str, scope: Definition | None, fact: Fact) -> Values:
        key = (path, fact)
        known = self._memo.get(key)
        if known is None:
            self._memo[key] = NOTHING  # a fact that names itself ends here
            if not fact.value and not fact.annotation:  # a name taken, type unknown
                known = NOTHING
            elif fact.value == OBJECT and not fact.annotation:
                known = frozenset((Value(OBJECT_VALUE, (path, fact.scope, fact.target)),))
            elif fact.annotation:
                known = self.annotation(path, scope, fact.annotation)
            else:
                known = self.evaluate(path, scope, fact.value, fact.line)
            self._memo[key] = known
        return known

    # -- names of a file --------------------------------------------------------

    def _global_dotted(self, path: str, segments: list[str]) -> tuple[Values, int]:
        """The longest run of plain segments an import binds (`import a.b.c`), else
        the first name; with how many segments that used."""
        if segments[0] in self._dotted_heads.get(path, ()):
            scope = self.imports[path].scope
            plain = 0
            while plain < len(segments) and not segments[plain].endswith((_CALL, ELEMENT)):
                plain += 1
            for used in range(plain, 1, -1):
                target = scope.get(".".join(segments[:used]))
                if target is not None:
                    return self._target(target, REEXPORT_HOPS), used
        return self.name(path, read_segment(segments[0])[0]), 1

    def name(self, path: str, name: str, hops: int = REEXPORT_HOPS) -> Values:
        """What a module-level `name` of `path` is: a definition, an assignment, an import."""
        key = (path, name)
        known = self._memo.get(key)
        if known is not None:
            return known
        self._memo[key] = NOTHING
        known = self._name(path, name, hops)
        self._memo[key] = known
        return known

    def _name(self, path: str, name: str, hops: int) -> Values:
        own = self.symbols.defs.get(path, {}).get(name)
        if own is not None:  # merged with a namespace of its name: see _namespace_member
            return values_of(own)
        if name in self.symbols.namespace_names.get(path, ()):
            return frozenset((Value(NAMESPACE, (path, name)),))
        facts = self.facts.get((path, None), {}).get(name)
        if facts:
            return self._facts(path, None, facts, None)
        if hops == 0:
            return NOTHING
        target = self.symbols.scope_target(path, name)  # imports, then JS re-exports
        if target is not None:
            return self._target(target, hops)
        scope = self.imports.get(path)
        star = scope.scope.get("*") if scope is not None else None
        if star is not None:
            return self.name(star.path, name, hops - 1)
        found = {self.name(source, name, hops - 1)
                 for source in self.symbols.star_sources(path, name)}
        found.discard(NOTHING)
        return found.pop() if len(found) == 1 else NOTHING  # none, or ambiguous

    def _target(self, target: Target, hops: int) -> Values:
        if not target.path:  # bound to something outside the repository
            return NOTHING
        if target.path in self.symbols.exports:  # CommonJS: what module.exports holds
            values = self._module(target.path)
            parts = target.name.split(".") if target.name else []
            if parts[:1] == ["default"] and f"{EXPORTS}.default" not in self.symbols.exports[
                    target.path]:
                parts = parts[1:]  # an ES default import of it (Node's interop): module.exports
            for part in parts:
                values = self._member(values, part)
            return values
        if not target.name or target.name == "*":
            return frozenset((Value(MODULE, target.path),))
        head, *rest = target.name.split(".")
        values = self.name(target.path, head, hops - 1)
        for part in rest:
            values = self._member(values, part)
        return values

    def _module(self, path: str) -> Values:
        """A CommonJS module's `module.exports`: the value assigned to it, and the
        module itself when it has members (`exports.a = …`)."""
        values = self._exported(path, EXPORTS)
        if any(target != EXPORTS for target in self.symbols.exports[path]):
            values |= {Value(MODULE, path)}
        return values

    def _exported(self, path: str, target: str) -> Values:
        """The values exported as `target`, each evaluated as the module has run: a
        function declared after the export is hoisted."""
        key = ("exported", path, target)
        known = self._memo.get(key)
        if known is None:
            self._memo[key] = NOTHING
            known = frozenset().union(*(
                self.evaluate(path, None, fact.value, None)
                for fact in self.symbols.exports[path].get(target, ()) if fact.value))
            self._memo[key] = known
        return known


def read_segment(segment: str) -> tuple[str, bool, bool]:
    """A segment of an expression as (the name it reads, called, element taken):
    `f()` is (f, True, False), `xs[]` (xs, False, True), `f()[]` (f, True, True)."""
    element = segment.endswith(ELEMENT)
    if element:
        segment = segment[:-2]
    called = segment.endswith(_CALL)
    return (segment[:-2] if called else segment), called, element


def _defined_after(value: Value, path: str, line: int) -> bool:
    """A definition of `path` that module-level code at `line` cannot see yet."""
    if value.kind not in (CLASS, FUNCTION):
        return False
    node = value.target.node
    return node.path == path and node.start_line > line
