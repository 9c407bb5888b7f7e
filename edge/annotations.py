"""What a type annotation names (edge/infer.py's `Inference`).

Annotations understood: names and dotted names of classes (quoted or not),
`Optional[X]`, `Union[X, Y]`, `X | Y`, `type[X]`, `Self`, `Annotated`/
`Final`/`ClassVar` wrappers, a repository generic `Box[T]` as `Box`; in
TypeScript `Foo<T> | null`, `typeof Foo`, `Promise<Foo>` (what `await` gives).
A container of one element type (`list[X]`, `Sequence[X]`, `tuple[X, ...]`,
`X[]`, `Array<X>`, `Set<X>`, `Iterable<X>`, JSDoc `Array.<X>`) is a CONTAINER
value of what X names: nothing is found on it, its elements (loops, subscripts)
are X. Other generics (`dict[K, V]`, `Map<K, V>`) give nothing. An annotation
is read in type space: a class, or the interface of a name that is also a value
(edge/symbols.py `_merged`).

The text is taken apart here; the names in it are looked up as the evaluation
of expressions looks them up. A mixin: `Inference` provides `symbols`,
`_global_dotted` and `_member`.
"""
from __future__ import annotations

import re

from edge.symbols import Definition, enclosing_class
from edge.values import CLASS, CONTAINER, FUNCTION, INSTANCE, NOTHING, Value, Values
from shared.graph.model import NodeKind

_WRAPPERS = frozenset(("Annotated", "Final", "ClassVar", "Required", "NotRequired",
                       "ReadOnly", "InitVar", "Readonly", "Promise", "PromiseLike", "Awaited"))
_UNIONS = frozenset(("Optional", "Union"))
# Generics of one element type that hold it (iterating or indexing gives one), when
# the name is no repository class. Python's and TypeScript's; `tuple` only as `tuple[X, ...]`.
_CONTAINERS = frozenset((
    "list", "List", "Sequence", "MutableSequence", "Iterable", "Iterator", "Collection",
    "set", "Set", "frozenset", "FrozenSet", "AbstractSet", "MutableSet",
    "Array", "ReadonlyArray", "ReadonlySet", "IterableIterator"))
_TUPLES = frozenset(("tuple", "Tuple"))
_GENERIC = re.compile(r"([\w.$]+)\s*(?:\[(.*)\]|<(.*)>)", re.DOTALL)
_DOTTED = re.compile(r"(?:[^\W\d]|\$)[\w$]*(?:\.(?:[^\W\d]|\$)[\w$]*)*")


class Annotations:
    """Instances (or classes) that annotations name."""

    def annotation(self, path: str, scope: Definition | None, text: str) -> Values:
        """Instances (or classes, for `type[X]`) an annotation written in `scope` names."""
        text = text.strip()
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            text = text[1:-1].strip()
        if text.startswith("(") and text.endswith(")"):  # except (A, B) as e
            return self._union(path, scope, _split(text[1:-1], ","))
        parts = _split(text, "|")
        if len(parts) > 1:
            return self._union(path, scope, parts)
        if text.endswith("[]"):  # TypeScript `X[]`, `readonly X[]`, `(A | B)[]`
            return _container(self.annotation(path, scope, _readonly(text[:-2])))
        if text.startswith("typeof "):  # TypeScript: the class itself
            # (`typeof f` of a function value holds any function of f's type: no edge.)
            inner = self.annotation(path, scope, text[7:])
            return frozenset(Value(CLASS, v.target) for v in inner
                             if v.kind == INSTANCE and v.target.node.kind is NodeKind.CLASS)
        generic = _GENERIC.fullmatch(text)
        if generic is not None:
            head, square, angle = generic.groups()
            arguments = square if square is not None else angle
            head = head.rstrip(".")  # JSDoc `Array.<T>`
            last = head.rpartition(".")[2]
            if last in _UNIONS:
                return self._union(path, scope, _split(arguments, ","))
            if last in _WRAPPERS:
                return self.annotation(path, scope, _split(arguments, ",")[0])
            if last in ("type", "Type"):
                inner = self.annotation(path, scope, _split(arguments, ",")[0])
                return frozenset(Value(CLASS, v.target) for v in inner if v.kind == INSTANCE)
            if last in _CONTAINERS or last in _TUPLES:
                return self._container(path, scope, head, last, _split(arguments, ","))
            text = head  # a repository generic: Box[T] is a Box
        if not _DOTTED.fullmatch(text):
            return NOTHING
        if text.rpartition(".")[2] == "Self" and scope is not None:
            cls = enclosing_class(self.symbols, path, scope)
            return frozenset((Value(INSTANCE, cls),)) if cls is not None else NOTHING
        segments = text.split(".")
        values, used = self._global_dotted(path, segments)
        for segment in segments[used:]:
            values = self._member(values, segment)
        # Type space: a class, or the interface of a name that is also a value (`interface
        # X` + `const X = f(…)`: the node is the value's, edge/symbols.py).
        return frozenset(Value(INSTANCE, v.target) for v in values
                         if v.kind in (CLASS, FUNCTION) and v.target.is_type)

    def _container(self, path: str, scope: Definition | None, head: str, last: str,
                   arguments: list[str]) -> Values:
        """`list[X]`, `Array<X>`...: a container of X, unless the name is a repository
        class (then it is that class, as any repository generic)."""
        own = self.annotation(path, scope, head)
        if own:
            return own
        if last in _TUPLES:  # only `tuple[X, ...]` has one element type
            if len(arguments) != 2 or arguments[1] != "...":
                return NOTHING
        elif len(arguments) != 1:
            return NOTHING
        return _container(self.annotation(path, scope, arguments[0]))

    def _union(self, path: str, scope: Definition | None, parts: list[str]) -> Values:
        values: set[Value] = set()
        for part in parts:
            values |= self.annotation(path, scope, part)
        return frozenset(values)


def _container(elements: Values) -> Values:
    return frozenset((Value(CONTAINER, elements),)) if elements else NOTHING


def _readonly(text: str) -> str:
    text = text.strip()
    return text[9:] if text.startswith("readonly ") else text


def _split(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside brackets and quotes."""
    parts, depth, start, quote = [], 0, 0, ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{<":
            depth += 1
        elif char in ")]}>" and text[index - 1:index] != "=":  # not the arrow of `=>`
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]
