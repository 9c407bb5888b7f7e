"""Callees and assigned values as expressions the graph builder can evaluate.

An expression is a chain of names joined by dots, each maybe called, with the
arguments dropped: `Builder(x, y=1).add(z).build` is "Builder().add().build".
Both parsers write them from source text, one rule set for Python and
JavaScript/TypeScript except for comments, whose syntax is each language's own
(`//` is Python's floor division, `#x` a JS private name): JS `new X(…)` is a
call of X, optional chaining `a?.b` and non-null assertions `a!.b` are plain
member access, type arguments `f<T>()` and `await` are dropped. A subscript is
an element, its index dropped: `xs[i].m` is "xs[].m" (at most one per segment,
after its call: `f()[0]`; a Python slice `xs[1:]` is no element). Anything else
(literals, operators, casts, lambdas) is not an expression: no type can be
followed through it.
"""
from __future__ import annotations

import re

# Longest text worth normalising: a builder call spanning a screen.
MAX_EXPRESSION = 2000
_NAME = r"(?:[^\W\d]|[$#])[\w$]*"
_PLAIN = re.compile(rf"(?:{_NAME})(?:\.(?:{_NAME}))*")
_EXPRESSION = re.compile(rf"(?:{_NAME})(?:\(\))?(?:\[\])?(?:\.(?:{_NAME})(?:\(\))?(?:\[\])?)*")
_STRING = re.compile(r"""[rRbBuUfF]{0,2}("""
                     r'''"""(?:\\.|[^\\])*?"""|\'\'\'(?:\\.|[^\\])*?\'\'\''''
                     r'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`)''',
                     re.DOTALL)
PYTHON, JAVASCRIPT = "python", "javascript"  # the syntax of comments: JAVASCRIPT for TS too
# Spaces, line continuations and comments, and the characters that start a comment and
# a continuation (without either, dropping the layout is dropping spaces).
_LAYOUT = {
    PYTHON: (re.compile(r"\s+|#[^\n]*|\\\n"), ("#", "\\")),
    JAVASCRIPT: (re.compile(r"\s+|//[^\n]*|/\*.*?\*/|\\\n", re.DOTALL), ("/", "\\")),
}
_INNERMOST_ARGUMENTS = re.compile(r"\([^()]*\)")
# An innermost subscript; one holding a colon (a slice, a JS conditional) is left open
# and the text is no expression.
_INNERMOST_SUBSCRIPT = re.compile(r"\[[^\[\]:]*\]")
_TYPE_ARGUMENTS = re.compile(r"<[\w$.,\s\[\]\x01|&<>]*>(?=\x00)")  # \x01: `T[]`
_PREFIX = re.compile(r"\b(?:new|await)\s+")
_HOLE, _ELEMENT_HOLE = "\0", "\1"


def expression(raw: str, syntax: str) -> str | None:
    """`raw` (a callee or value as written, in PYTHON or JAVASCRIPT) as an expression,
    or None."""
    if _PLAIN.fullmatch(raw):
        return raw
    if len(raw) > MAX_EXPRESSION:
        return None
    if "'" in raw or '"' in raw or "`" in raw:
        raw = _STRING.sub("''", raw)
    if "new" in raw or "await" in raw:  # `new X()` builds an X, as calling a Python class does
        raw = _PREFIX.sub("", raw)
    raw = drop_layout(raw, syntax)
    while "(" in raw or "[" in raw:  # innermost brackets first: nested ones collapse too
        collapsed = _INNERMOST_SUBSCRIPT.sub(_ELEMENT_HOLE, _INNERMOST_ARGUMENTS.sub(_HOLE, raw))
        if collapsed == raw:
            break
        raw = collapsed
    if "<" in raw:
        raw = _TYPE_ARGUMENTS.sub("", raw)
    raw = raw.replace(_HOLE, "()")
    if _ELEMENT_HOLE in raw:
        raw = raw.replace(_ELEMENT_HOLE, "[]")
    if "?" in raw or "!" in raw:
        raw = raw.replace("?.", ".").replace("!.", ".").rstrip("!")
    return raw if _EXPRESSION.fullmatch(raw) else None


def drop_layout(raw: str, syntax: str) -> str:
    """`raw` without spaces, line continuations and comments."""
    layout, (comment, continuation) = _LAYOUT[syntax]
    if comment in raw or continuation in raw:
        return layout.sub("", raw)
    return "".join(raw.split())  # only spaces: the same as the pattern, several times faster
