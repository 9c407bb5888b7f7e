"""What a type annotation names (edge/infer.py's `Inference`).

Annotations understood: names and dotted names of classes (quoted or not),
`Optional[X]`, `Union[X, Y]`, `X | Y`, `type[X]`, `Self`, `Annotated`/
`Final`/`ClassVar` wrappers, a repository generic `Box[T]` as `Box`; in
TypeScript `Foo<T> | null`, `typeof Foo`, `Promise<Foo>` (what `await` gives).
Other generics (`list[X]`, `Array<X>`) give nothing: the receiver is the
container. An annotation is read in type space: a class, or the interface of a
name that is also a value (edge/symbols.py `_merged`).

The text is taken apart here; the names in it are looked up as the evaluation
of expressions looks them up. A mixin: `Inference` provides `symbols`,
`_global_dotted` and `_member`.
"""
from __future__ import annotations

import re

from edge.symbols import Definition, enclosing_class
from edge.values import CLASS, FUNCTION, INSTANCE, NOTHING, Value, Values
from shared.graph.model import NodeKind

_WRAPPERS = frozenset(("Annotated", "Final", "ClassVar", "Required", "NotRequired",
                       "ReadOnly", "InitVar", "Readonly", "Promise", "PromiseLike", "Awaited"))
_UNIONS = frozenset(("Optional", "Union"))
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
        if text.startswith("typeof "):  # TypeScript: the class itself
            # (`typeof f` of a function value holds any function of f's type: no edge.)
            inner = self.annotation(path, scope, text[7:])
            return frozenset(Value(CLASS, v.target) for v in inner
                             if v.kind == INSTANCE and v.target.node.kind is NodeKind.CLASS)
        generic = _GENERIC.fullmatch(text)
        if generic is not None:
            head, square, angle = generic.groups()
            if square is not None and not square.strip():
                return NOTHING  # TypeScript `T[]`: an array of T, not a T
            arguments = square if square is not None else angle
            last = head.rpartition(".")[2]
            if last in _UNIONS:
                return self._union(path, scope, _split(arguments, ","))
            if last in _WRAPPERS:
                return self.annotation(path, scope, _split(arguments, ",")[0])
            if last in ("type", "Type"):
                inner = self.annotation(path, scope, _split(arguments, ",")[0])
                return frozenset(Value(CLASS, v.target) for v in inner if v.kind == INSTANCE)
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

    def _union(self, path: str, scope: Definition | None, parts: list[str]) -> Values:
        values: set[Value] = set()
        for part in parts:
            values |= self.annotation(path, scope, part)
        return frozenset(values)


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
