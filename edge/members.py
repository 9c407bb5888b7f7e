"""Members of values, and what calling a value gives (edge/infer.py's `Inference`).

`Members` holds the half of the inference that goes from a value to what a name
on it is: an attribute of an instance or class is a method or nested class found
along the class's repository bases (MRO order, depth first), or an attribute
assigned in any method (`self.x = v`) or declared in the class body; a method
read as an attribute and then used (`obj.prop.m()`) is taken for a property
(its return value). Calling a function gives its return annotation, or without
one the values it returns; calling a class gives an instance, calling an
instance its `__call__`.

JavaScript/TypeScript: static members a file gives its own classes and
functions (`Cls.x = v`) are found on the class or function, before any method
of that name, and are inherited; a member of a CommonJS module is only what it
exports; a TS namespace's members are what it exports, and a class, function
or enum merged with a namespace of its name has those members too; an object
literal bound to a name has its properties, then what its spreads hold (last
first; past a spread of an unknown value, nothing). A container (edge/values.py)
has no members.

A mixin: `Inference` holds the indexes it reads (`symbols`, `facts`,
`attributes`, `statics`, `properties`, `_memo`) and the evaluation of facts
(`_fact`, `_facts`, `name`, `_exported`) it calls back.
"""
from __future__ import annotations

from edge.parse.model import EXPORTS, RETURN, SPREAD, Fact
from edge.symbols import Definition
from edge.values import (
    CLASS, CONTAINER, FUNCTION, INSTANCE, MODULE, NAMESPACE, NOTHING, OBJECT_VALUE, SUPER, Value,
    Values, values_of)
from shared.graph.model import NodeKind

# Values whose members are known by name: a spread of one adds just those.
_HOLDERS = frozenset((MODULE, NAMESPACE, OBJECT_VALUE))


class Members:
    """What a name on a value is, and what calling a value gives."""

    def _member(self, values: Values, name: str) -> Values:
        found: set[Value] = set()
        for value in values:
            found |= self._member_of(value, name)
        return frozenset(found)

    def _member_of(self, value: Value, name: str) -> Values:
        kind, target = value
        if kind == MODULE:
            if target in self.symbols.exports:
                return self._exported(target, f"{EXPORTS}.{name}")
            return self.name(target, name)
        if kind == NAMESPACE:
            return self._namespace_member(*target, name)
        if kind == OBJECT_VALUE:
            return self._object_member(*target, name)
        if kind in (CLASS, FUNCTION) and target.symbol.parent is None \
                and target.node.path in self.symbols.namespace_names:
            merged = self._namespace_member(target.node.path, _namespace_of(target), name)
            if merged:  # `class X {}` + `namespace X { export function f() {} }`: X.f
                return merged
        if kind == SUPER:
            for base in self.symbols.bases(target):
                method = self.symbols.method(base, name)
                if method is not None:
                    return values_of(method)
            return NOTHING
        if kind == CLASS:
            static = self._static(target, name)
            if static is not None:
                return static
        elif kind == FUNCTION and name in self.statics.get(target.node.id, ()):
            return self._assigned(self.statics[target.node.id][name])  # JS `f.x = v`
        if kind == FUNCTION:  # a method used as a value's holder: a property
            return self._member(self._returns(target), name)
        if kind == CONTAINER:  # `items.map`: the library's, whatever the elements are
            return NOTHING
        return self._class_member(target, name)

    def _namespace_member(self, path: str, namespace: str, name: str) -> Values:
        """What a TS namespace exports as `name`: a definition (which may merge with a
        namespace of its own), else a namespace nested in it."""
        member = self.symbols.namespace_member(path, namespace, name)
        if member is not None:
            return values_of(member)
        inner = f"{namespace}.{name}"
        if inner in self.symbols.namespace_names.get(path, ()):
            return frozenset((Value(NAMESPACE, (path, inner)),))
        return NOTHING

    def _object_member(self, path: str, scope: str | None, target: str, name: str) -> Values:
        """A property of an object literal (`z = { ...m, a }`, and `z.a = v` after it):
        the value written for it, else the first spread from the last that holds it.
        A spread of anything but a module, namespace or object may hold any name: past
        it, nothing is known."""
        facts = self.facts.get((path, scope), {})
        where = self.symbols.defs[path].get(scope) if scope else None
        written = facts.get(f"{target}.{name}")
        if written:
            return self._facts(path, where, written, None)
        for spread in reversed(facts.get(f"{target}.{SPREAD}", ())):
            values = self._fact(path, where, spread)
            if not values or any(v.kind not in _HOLDERS for v in values):
                return NOTHING
            found = self._member(values, name)
            if found:
                return found
        return NOTHING

    def _static(self, cls: Definition, name: str) -> Values | None:
        """A JS static member assigned to the class (`Cls.x = v`) or, statics being
        inherited, to the first base along the MRO that has one, unless a class before
        it defines `name` itself; None: no such static."""
        for owner in self._mro(cls):
            assigned = self.statics.get(owner.node.id, {}).get(name)
            if assigned:
                return self._assigned(assigned)
            if self._own_member(owner, name) or name in self.attributes.get(owner.node.id, ()):
                return None
        return None

    def _class_member(self, cls: Definition, name: str) -> Values:
        """`name` on a class or its instances: along the MRO, the first class that
        defines it as a method (or nested class) or assigns or declares it."""
        key = ("member", cls.node.id, name)
        known = self._memo.get(key)
        if known is None:
            self._memo[key] = known = NOTHING
            for owner in self._mro(cls):
                own = self._own_member(owner, name)
                if own is not None:
                    known = self._returns(own) if own.node.id in self.properties \
                        else values_of(own)
                    break
                assigned = self.attributes.get(owner.node.id, {}).get(name)
                if assigned:
                    known = self._assigned(assigned)
                    break
            self._memo[key] = known
        return known

    def _own_member(self, owner: Definition, name: str) -> Definition | None:
        """A method or nested class of a class; a function's inner definitions (a value
        whose interface is a type: `const X = f(() => { function m() {} })`) are none."""
        if owner.node.kind is not NodeKind.CLASS:
            return None
        return self.symbols.defs[owner.node.path].get(f"{owner.symbol.qualname}.{name}")

    def _assigned(self, assigned: list[tuple[str, str | None, Fact]]) -> Values:
        """The values of an attribute's assignments (its declared types, if any)."""
        declared = [a for a in assigned if a[2].annotation]
        values: set[Value] = set()
        for path, scope, fact in declared or assigned:
            values |= self._fact(path, self.symbols.defs[path].get(scope), fact)
        return frozenset(values)

    def _mro(self, cls: Definition) -> list[Definition]:
        """The class, then its repository bases depth first, each once."""
        key = ("mro", cls.node.id)
        order = self._memo.get(key)
        if order is None:
            order, stack = [], [cls]
            while stack:
                current = stack.pop(0)
                if current not in order:
                    order.append(current)
                    stack[:0] = self.symbols.bases(current)
            self._memo[key] = order
        return order

    def _call(self, values: Values) -> Values:
        found: set[Value] = set()
        for kind, target in values:
            if kind == CLASS:
                found.add(Value(INSTANCE, target))
            elif kind == FUNCTION:
                found |= self._returns(target)
            elif kind == INSTANCE:
                method = self.symbols.method(target, "__call__")
                if method is not None:
                    found |= self._returns(method)
        return frozenset(found)

    def _returns(self, function: Definition) -> Values:
        key = ("returns", function.node.id)
        known = self._memo.get(key)
        if known is None:
            self._memo[key] = NOTHING  # recursion
            path = function.node.path
            facts = self.facts.get((path, function.symbol.qualname), {}).get(RETURN, [])
            annotated = [f for f in facts if f.annotation]
            known = self._facts(path, function, annotated or facts, None)
            self._memo[key] = known
        return known


def _namespace_of(definition: Definition) -> str:
    """The namespace a definition at module or namespace level would merge with: the
    one of its own name where it is declared (`namespace A { class X {} namespace X
    {…} }` -> "A.X")."""
    outer = definition.symbol.namespace
    return f"{outer}.{definition.symbol.name}" if outer else definition.symbol.name
