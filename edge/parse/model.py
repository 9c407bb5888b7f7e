"""What parsing one source file yields: symbols, imports, calls.

Plain records, no tree-sitter types, so resolvers and the graph builder can be
tested without parsing and parsed files can cross a process boundary. They are
named tuples because a big repository has hundreds of thousands of calls and
tuples pickle an order of magnitude faster than dataclasses (see
`ParsedFile.__reduce__`). Paths are repository-relative POSIX strings; lines
are 1-based.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Symbol(NamedTuple):
    kind: str  # "class" | "function" | "method"
    name: str
    qualname: str  # dotted inside the file: "Outer.method", "outer.<locals>" not used
    start_line: int
    end_line: int
    docstring: str | None = None
    # Class bases as written, dotted ("models.Model", "Base"); empty for functions.
    bases: tuple[str, ...] = ()
    # Qualname of the enclosing class or function; None at module level.
    parent: str | None = None
    # False for a TypeScript interface or enum: a "class" nothing can construct.
    constructible: bool = True
    # The TypeScript namespace the definition is declared in, dotted as written
    # (`namespace A.B {…}` -> "A.B"); None outside any. Its qualname stays as without
    # the namespace (a namespace is no node), so ids do not change.
    namespace: str | None = None
    # A namespace member (parent None) declared with `export`, or in a `declare
    # namespace` without `export {}`, in namespaces each exported from the one around
    # it: code outside reaches it as `A.B.name`.
    exported: bool = False


class Binding(NamedTuple):
    """A local name an import statement binds.

    `local` is the name (or dotted prefix, for `import a.b.c`) code uses;
    `name` is the imported member: None for the module itself, "*" for a star
    import, "default" for a JS default import.
    """
    local: str
    name: str | None


class Import(NamedTuple):
    """One import statement (or one require()/import() call), as written.

    Python: `module` is the dotted module ("a.b", "" for `from . import x`),
    `level` the number of leading dots, `names` the imported names of a
    `from` import ("*" for a star import).
    JS/TS: `module` is the specifier string ("./x", "@scope/pkg/sub"), level 0.
    """
    module: str
    line: int
    kind: str  # python: "import" | "from"; js: "import" | "export" | "require" | "dynamic"
    level: int = 0
    names: tuple[str, ...] = ()
    bindings: tuple[Binding, ...] = ()
    type_only: bool = False  # under `if TYPE_CHECKING:` or `import type`
    in_function: bool = False  # inside a function body (deferred import)
    # Python: the qualname of the innermost enclosing function; its bindings hold there only.
    function: str | None = None


class Call(NamedTuple):
    """A call site: the callee as an expression ("f", "mod.f", "self.m", "f().m").

    Expressions are chains of names, attribute accesses and calls, with the
    arguments dropped: `Builder(x, y=1).add(z).build` is "Builder().add().build".
    """
    caller: str | None  # qualname of the enclosing function; None at module level
    callee: str
    line: int


# The target of a Fact that holds a function's return value or return annotation.
RETURN = "<return>"
# The target of a Fact that marks a method read as an attribute (a property): `obj.p`
# is what p returns, and `obj.p()` calls that.
PROPERTY = "<property>"
# The target of a module-level Fact that holds what a CommonJS module exports:
# EXPORTS for `module.exports = v`, "<exports>.a" for `exports.a = v` and the
# properties of `module.exports = { a }`.
EXPORTS = "<exports>"
# The target of a module-level Fact that exports one of an ES module's own names under
# another: "<export>.b" value "a" for `export { a as b }`, "<export>.default" for `export
# default a` and `export default function a() {}` (whose symbol is named a).
EXPORT_AS = "<export>"
# The value of a JS/TS Fact that binds its target to an object literal (`const z = {
# ...m, a, b: c }`): its properties are Facts of "z.a", "z.b", its spreads of "z.*"
# in source order.
OBJECT = "<object>"
SPREAD = "*"
# The suffix of an expression segment that takes an element of what it reads: `xs[i]` is
# "xs[]", and so is the value of x in `for x in xs` / `for (const x of xs)`.
ELEMENT = "[]"


class Fact(NamedTuple):
    """A name bound to a value or declared with a type, for inferring receivers' types.

    Python: `x = Cls()`, `x: T`, `self.x = v` (target "self.x", scope the method),
    a class-level `x: T = v` (scope the class), a parameter's annotation, `with
    v as x` (value "v.__enter__()"), `except E as x` (annotation "E"), and a
    function's return annotation or `return v` (target RETURN).
    JS/TS: `const x = new X()`, `x: T`, `this.x = v`, class fields, parameters.
    """
    scope: str | None  # qualname of the enclosing function or class; None at module level
    target: str
    value: str  # an expression as in Call.callee ("Cls()", "a.b().c"); "" when none
    annotation: str  # the type annotation as written; "" when none
    line: int


@dataclass
class ParsedFile:
    path: str
    language: str  # "python" | "javascript" | "typescript" | "tsx"
    loc: int  # lines in the file
    symbols: list[Symbol] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    # Set when the tree had syntax errors: what parsed is kept, the reason recorded.
    error: str | None = None

    def __reduce__(self):
        # Symbols and calls travel as plain tuples: pickle handles those in C.
        return (_rebuild, (self.path, self.language, self.loc, list(map(tuple, self.symbols)),
                           self.imports, list(map(tuple, self.calls)),
                           list(map(tuple, self.facts)), self.error))


def _rebuild(path, language, loc, symbols, imports, calls, facts, error) -> ParsedFile:
    return ParsedFile(path, language, loc, list(map(Symbol._make, symbols)), imports,
                      list(map(Call._make, calls)), list(map(Fact._make, facts)), error)


class Skipped(NamedTuple):
    """A file the walk or the parser left out, and why (listed on the job record)."""
    path: str
    reason: str
