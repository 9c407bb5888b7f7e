"""Python imports -> repository files, the way grimp draws its edges.

What an import statement points at (grimp's rules):
- `import a.b.c` -> the module a.b.c (a/b/c.py, or a/b/c/__init__.py); when
  a.b.c is no module (an attribute of a.b), its parent a.b; never further up.
- `from a.b import c, d` -> a.b.c for each name that is a submodule, else
  a.b itself: one statement can give several edges. `from a.b import *` -> a.b.
- Relative imports (`from . import x`, `from ..a import b`) count the dots up
  from the importing file's directory, then follow the same two rules.
- An import of the importing file itself is no edge; a namespace package
  (a directory without `__init__.py`) has no file, so an import that names one
  gives no edge either.

Where absolute imports are looked up (the sys.path a file would run with),
found from the paths alone, in this order, first hit wins:
1. A file outside any regular package (script, test module, namespace module):
   its own directory, then each ancestor directory up to the repository root.
2. A file inside a regular package (directories with `__init__.py`, walked up
   to the topmost one): the directory holding that topmost package, then its
   ancestors (so `src/ns/pkg/...` also answers to `ns.pkg...`).
3. Then the "installed" roots of the whole repository: the repository root,
   every `src` directory, and every directory holding a topmost package (with
   its ancestors, for namespace packages). This covers src/ layouts, several
   top-level packages, a package next to `tests/` and `docs/` (an sdist), and
   tests importing the package.
4. Last, fixture roots: a directory holding a topmost package that lies under a
   directory named for tests, docs, examples or data, or inside a regular
   package (`pkg/tests/data/fakepkg/`), is seen only by files under that
   tests/docs/... directory (their suite puts it on sys.path), never by the
   package itself: a fixture named `json` must not capture `import json`.
Within one root, a name whose top-level package is a regular package or module
there is settled there, as Python's import system does: if neither the module
nor its parent exists, the import is unresolved (listed in `unresolved`, it
looks internal), and no later root is tried. Namespace directories merge over
roots, as in Python.

Where this differs from grimp, on purpose: grimp draws self-loops (dropped
here) and does not see modules in a directory without `__init__.py` inside a
regular package (`flask/sansio/`), which Python imports as a namespace
subpackage and which are resolved here. `__import__("m")` and
`importlib.import_module("m")` with a literal name are edges here, not in grimp.

Module files: `a/b.py`, or `a/b/__init__.py` for a package (a package wins over
a module of the same name, as in Python). `.pyi` stubs stand in for a module
only when it has no `.py` (a stub of a compiled extension); grimp ignores stubs.

External imports: an absolute import found in no root is external, named by its
top-level package ("numpy" for `numpy.linalg`). The standard library counts as
external too (`os`, `typing`, `__future__`): telling it apart needs the
interpreter of the analysed project, not ours.
"""
from __future__ import annotations

from typing import Iterable

from edge.parse.model import Import, ParsedFile
from edge.resolve.model import OUTSIDE, FileImports, ResolvedImport, Target

# A package root under a directory of these names (or any name starting with
# "test" or ending in "tests") holds fixtures or samples, not installed code.
NOT_INSTALLED = frozenset({"doc", "docs", "example", "examples", "sample", "samples",
                           "fixture", "fixtures", "data", "testdata", "benchmark",
                           "benchmarks"})
SOURCE_DIRS = frozenset({"src"})


class PythonResolver:
    def __init__(self, paths: Iterable[str]):
        # Module key ("a/b" for a/b.py or a/b/__init__.py) -> (rank, file); lower rank wins.
        ranked: dict[str, tuple[int, str]] = {}
        self.packages: set[str] = set()  # directories with __init__.py(i)
        self.dirs: set[str] = set()  # every directory above a Python file
        for path in paths:
            key, rank = _module_key(path)
            if key is None:
                continue
            if rank < 2:
                self.packages.add(key)
            known = ranked.get(key)
            if known is None or rank < known[0]:
                ranked[key] = (rank, path)
            self._add_dirs(path)
        self.modules: dict[str, str] = {key: path for key, (_, path) in ranked.items()}
        self.installed, self.fixtures = self._sys_path()
        self._roots_cache: dict[str, tuple[str, ...]] = {}

    def _add_dirs(self, path: str) -> None:
        directory = _parent(path)
        while directory is not None and directory not in self.dirs:
            self.dirs.add(directory)
            directory = _parent(directory)

    def _top_package(self, directory: str) -> str:
        while directory:
            parent = _parent(directory)
            if parent not in self.packages:
                break
            directory = parent
        return directory

    def _sys_path(self) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
        """The installed roots, and the fixture roots with the subtree that sees each."""
        installed, fixtures = {""}, set()
        for package in self.packages:
            if package and _parent(package) not in self.packages:
                root = _parent(package)
                scope = self._fixture_scope(root)
                if scope is None:
                    installed.add(root)
                    installed.update(_ancestors(root))
                else:
                    fixtures.add((scope, root))
        installed.update(d for d in self.dirs if d.rsplit("/", 1)[-1] in SOURCE_DIRS
                         and self._fixture_scope(d) is None)
        return tuple(sorted(installed, key=_depth)), sorted(fixtures, key=lambda f: _depth(f[1]))

    def _fixture_scope(self, root: str) -> str | None:
        """None for a root on the installed sys.path; else the subtree whose code puts
        it there: the outermost test/docs/data-like directory around it, or the root
        itself when it sits inside a regular package."""
        for directory in reversed([root, *_ancestors(root)]):
            if directory and _looks_like_fixtures(directory.rsplit("/", 1)[-1]):
                return directory
        if any(directory in self.packages for directory in [root, *_ancestors(root)]):
            return root
        return None

    def roots(self, path: str) -> tuple[str, ...]:
        """Where absolute imports of `path` are looked up, first hit wins."""
        directory = _parent(path) or ""
        cached = self._roots_cache.get(directory)
        if cached is None:
            if directory in self.packages:
                top = self._top_package(directory)
                start = _parent(top) if top else None
            else:
                start = directory
            roots = [] if start is None else [start, *_ancestors(start)]
            roots += [r for r in self.installed if r not in roots]
            roots += [r for scope, r in self.fixtures
                      if _within(directory, scope) and r not in roots]
            cached = self._roots_cache[directory] = tuple(roots)
        return cached

    def resolve(self, parsed: ParsedFile) -> FileImports:
        result = FileImports(path=parsed.path)
        scope = _Scope()
        for statement in parsed.imports:
            _Statement(self, parsed.path, statement, result, scope).resolve()
        result.scope = scope.merged()
        result.function_scopes = scope.functions
        return result

    def find(self, roots: tuple[str, ...], dotted: str) -> _Found:
        """The module `dotted` names, or its parent module with a member, over `roots`."""
        relative = dotted.replace(".", "/")
        parent_relative, _, member = relative.rpartition("/")
        top = relative.split("/", 1)[0]
        for root in roots:
            prefix = f"{root}/" if root else ""
            found = self.modules.get(prefix + relative)
            if found is not None:
                return _Found(found, None)
            if parent_relative:
                found = self.modules.get(prefix + parent_relative)
                if found is not None:
                    return _Found(found, member)
            if prefix + top in self.modules:  # the package is here, the module is not
                return _Found(None, None, unresolved=True)
        if any((f"{root}/" if root else "") + relative in self.dirs for root in roots):
            return _Found(None, None)  # a namespace package: no file to point at
        return _Found(None, None, external=dotted.split(".", 1)[0])

    def find_relative(self, base: str, dotted: str) -> _Found:
        """`dotted` ("" for the package itself) below directory `base`."""
        relative = dotted.replace(".", "/")
        key = f"{base}/{relative}" if base and relative else base + relative
        found = self.modules.get(key)
        if found is not None:
            return _Found(found, None)
        parent, _, member = key.rpartition("/")
        if relative:
            found = self.modules.get(parent)
            if found is not None:
                return _Found(found, member)
        return _Found(None, None, unresolved=key not in self.dirs)


class _Found:
    __slots__ = ("path", "member", "unresolved", "external")

    def __init__(self, path: str | None, member: str | None, *, unresolved: bool = False,
                 external: str | None = None):
        self.path = path
        self.member = member
        self.unresolved = unresolved
        self.external = external

    def target(self) -> Target | None:
        return Target(self.path, self.member) if self.path is not None else None


class _Scope:
    """Names bound by imports. A module-level binding beats the prefixes `import
    a.b.c` binds implicitly ("a", "a.b"); a function-local import binds in its
    function only."""

    def __init__(self):
        self.module: dict[str, Target] = {}
        self.implicit: dict[str, Target] = {}
        self.functions: dict[str, dict[str, Target]] = {}

    def bind(self, name: str, target: Target, function: str | None) -> None:
        if name == "*":  # one star source is what the graph builder follows
            self.implicit.setdefault("*", target)
        elif function is not None:
            self.functions.setdefault(function, {}).setdefault(name, target)
        else:
            self.module[name] = target

    def merged(self) -> dict[str, Target]:
        scope = dict(self.implicit)
        scope.update(self.module)
        return scope


class _Statement:
    """One import statement: its edges, externals, unresolved names and bindings."""

    def __init__(self, resolver: PythonResolver, path: str, statement: Import,
                 result: FileImports, scope: _Scope):
        self.resolver = resolver
        self.path = path
        self.statement = statement
        self.result = result
        self.scope = scope
        self.targets: set[str] = set()
        self.externals: set[str] = set()

    def resolve(self) -> None:
        statement = self.statement
        if statement.level:
            self._relative()
        elif statement.kind == "from":
            roots = self.resolver.roots(self.path)
            for name, local in self._names():
                self._record(self.resolver.find(roots, f"{statement.module}.{name}"),
                             statement.module + "." + name, local)
        else:
            self._import()

    def _import(self) -> None:
        statement = self.statement
        roots = self.resolver.roots(self.path)
        found = self.resolver.find(roots, statement.module)
        local = statement.bindings[0].local if statement.bindings else None
        self._record(found, statement.module, local)
        if local == statement.module and found.path is not None and statement.function is None:
            self._bind_prefixes(roots, statement.module)

    def _bind_prefixes(self, roots: tuple[str, ...], module: str) -> None:
        # `import a.b.c` also makes `a` and `a.b` usable.
        prefix = module
        while "." in prefix:
            prefix = prefix.rsplit(".", 1)[0]
            found = self.resolver.find(roots, prefix)
            if found.path is not None and found.member is None:
                self.scope.implicit.setdefault(prefix, Target(found.path))

    def _relative(self) -> None:
        statement = self.statement
        base = _parent(self.path)
        for _ in range(statement.level - 1):
            base = _parent(base) if base else None
        spec = "." * statement.level + statement.module
        if base is None:  # more dots than directories
            self.result.unresolved.append(spec)
            return
        for name, local in self._names():
            dotted = f"{statement.module}.{name}" if statement.module else name
            written = spec + name if spec.endswith(".") else f"{spec}.{name}"
            self._record(self.resolver.find_relative(base, dotted), written, local)

    def _names(self) -> list[tuple[str, str | None]]:
        """(name to look up, local name bound); a star import looks up the module."""
        pairs = []
        for binding in self.statement.bindings:
            pairs.append((binding.name, binding.local))
        if not pairs:
            pairs = [(n, n) for n in self.statement.names]
        return pairs

    def _record(self, found: _Found, written: str, local: str | None) -> None:
        if found.path is not None:
            if found.path != self.path and found.path not in self.targets:
                self.targets.add(found.path)
                self.result.imports.append(ResolvedImport(
                    found.path, None, self.statement.line, self.statement.type_only))
            if local:
                target = Target(found.path, "*") if local == "*" else found.target()
                self.scope.bind(local, target, self.statement.function)
        else:
            if found.external is not None and found.external not in self.externals:
                self.externals.add(found.external)
                self.result.imports.append(ResolvedImport(
                    None, found.external, self.statement.line, self.statement.type_only))
            elif found.external is None and found.unresolved:
                self.result.unresolved.append(written)
            if local and local != "*" and self.statement.function is not None:
                self.scope.bind(local, OUTSIDE, self.statement.function)


def _module_key(path: str) -> tuple[str | None, int]:
    """("a/b", rank) for a/b.py, a/b/__init__.py and their stubs; packages rank first."""
    if path.endswith(".py"):
        stem, stub = path[:-3], 0
    elif path.endswith(".pyi"):
        stem, stub = path[:-4], 1
    else:
        return None, 0
    if stem == "__init__" or stem.endswith("/__init__"):
        return stem[:-9], stub
    return stem, 2 + stub


def _parent(path: str) -> str | None:
    """The directory holding `path` ("" at the top); None above the repository root."""
    if not path:
        return None
    cut = path.rfind("/")
    return path[:cut] if cut >= 0 else ""


def _ancestors(directory: str, include_self: bool = False) -> list[str]:
    found = [directory] if include_self else []
    parent = _parent(directory)
    while parent is not None:
        found.append(parent)
        parent = _parent(parent)
    return found


def _depth(directory: str) -> tuple[int, str]:
    return (directory.count("/") + 1 if directory else 0, directory)


def _within(directory: str, ancestor: str) -> bool:
    return not ancestor or directory == ancestor or directory.startswith(ancestor + "/")


def _looks_like_fixtures(part: str) -> bool:
    lowered = part.lower()
    return lowered.startswith("test") or lowered.endswith("tests") or lowered in NOT_INSTALLED
