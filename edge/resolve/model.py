"""What resolving a file's imports yields: edges to repo files, externals, scope."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Target:
    """Where a bound name points: a repo file, and a member of it (None: the module)."""
    path: str
    name: str | None = None


# What a function-local import of code outside the repository binds: the name
# is taken there (it shadows the file's own definition of it), to nothing known.
OUTSIDE = Target("")


@dataclass(slots=True)
class ResolvedImport:
    """One edge of a statement: to a repo file, or to an external package."""
    target: str | None  # repo-relative path of the imported file; None when external
    external: str | None  # top-level package ("numpy", "@scope/pkg") when not in the repo
    line: int
    type_only: bool = False


@dataclass(slots=True)
class FileImports:
    path: str
    imports: list[ResolvedImport] = field(default_factory=list)
    # Local name (or dotted prefix) -> what it names, for resolving calls and bases.
    scope: dict[str, Target] = field(default_factory=dict)
    # Python: names a function-local import binds, by the function's qualname; they
    # hold inside that function (and functions nested in it) only.
    function_scopes: dict[str, dict[str, Target]] = field(default_factory=dict)
    # Specifiers that look internal (relative, aliased) but matched no file.
    unresolved: list[str] = field(default_factory=list)
