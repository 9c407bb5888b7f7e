"""What parsing one source file yields: symbols, imports, calls.

Plain records, no tree-sitter types, so resolvers and the graph builder can be
tested without parsing and parsed files can cross a process boundary (pickle).
Paths are repository-relative POSIX strings; lines are 1-based.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Symbol:
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


@dataclass(slots=True)
class Binding:
    """A local name an import statement binds.

    `local` is the name (or dotted prefix, for `import a.b.c`) code uses;
    `name` is the imported member: None for the module itself, "*" for a star
    import, "default" for a JS default import.
    """
    local: str
    name: str | None


@dataclass(slots=True)
class Import:
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


@dataclass(slots=True)
class Call:
    """A call site: the callee expression as written ("f", "mod.f", "self.m")."""
    caller: str | None  # qualname of the enclosing function; None at module level
    callee: str
    line: int


@dataclass(slots=True)
class ParsedFile:
    path: str
    language: str  # "python" | "javascript" | "typescript" | "tsx"
    loc: int  # lines in the file
    symbols: list[Symbol] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    # Set when the tree had syntax errors: what parsed is kept, the reason recorded.
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file the walk or the parser left out, and why (listed on the job record)."""
    path: str
    reason: str
