"""JS/TS import specifiers -> repository files or external packages.

The reference is dependency-cruiser (enhanced-resolve with the TypeScript
extensions and its `--init` options: conditions import/require/node/default/
types, main fields module/main/types/typings). Rules, in order:

1. The specifier is cleaned: webpack loader prefixes (`style!./a.css`), query
   strings and hashes (`./a?raw`, `./b#x`) are dropped. Empty: ignored.
2. Node builtins (`fs`, `fs/promises`, any `node:` specifier) are external,
   counted under their bare name ("fs").
3. Relative specifiers (`./x`, `../x`, `.`) are joined to the importing file's
   directory; one that climbs out of the repository is unresolved.
4. `#x` specifiers use the `imports` map of the nearest package.json.
5. The nearest tsconfig.json (else jsconfig.json) of the importing file's
   directory applies, with its `extends` chain (relative files and repo
   packages; comments and trailing commas allowed; unreadable files ignored):
   `paths` patterns (exact, or one `*`; the longest matching prefix wins; each
   target tried in order, relative to `baseUrl` or else to the config that
   declares `paths`), then `baseUrl` itself.
6. Bare specifiers naming a package of the repository resolve into it: the
   root package.json (self-references) and the workspace packages (globs of
   package.json `workspaces`, pnpm-workspace.yaml, lerna.json; with none
   declared, every named package.json except one named like a registry
   dependency of the root, such as a test fixture). Inside: `exports` (string,
   subpath map, patterns with `*`, nested conditions in manifest order,
   arrays), else `module` / `main` / `types` / `typings`, else `index.*`; a
   subpath that `exports` does not list is tried as a plain path.
7. Anything else is an external package: `lodash/fp` -> "lodash",
   `@scope/pkg/x` -> "@scope/pkg".

A path candidate is probed like enhanced-resolve: the exact file, then the
file plus each extension (.js .cjs .mjs .jsx .ts .tsx .d.ts .cts .d.cts .mts
.d.mts, and .json when the repository's paths include .json files), then a
directory: its package.json main fields, then `index` plus each extension.
When that fails, a `.js`/`.jsx` specifier is retried as .ts/.tsx/.d.ts
(`.mjs` as .mts/.d.mts, `.cjs` as .cts/.d.cts), as tsc does for ESM-style
TypeScript.

Build output is usually not committed: when a package's main/exports target
does not exist (`dist/esm/index.js`), its source is tried instead: under the
package tsconfig's `rootDir` for a target under its `outDir`, else with the
leading build folders (dist, build, lib, out, esm, cjs, …) replaced by `src/`
or dropped, each with the output extension replaced by the source ones. A
committed file named by any field or condition wins over such a guess.

A relative or aliased specifier naming a file that exists on disk but is not a
source path (a stylesheet, an image) is neither an edge nor unresolved.
Internal-looking specifiers that match nothing (relative, `#`, a tsconfig alias
other than a catch-all `*`, a repo package's subpath) are listed as unresolved.
An import of the file itself makes no edge.

Where dependency-cruiser differs by design: it reads one tsconfig for the whole
run (here each file's nearest, `${configDir}` included); it reaches workspace
packages and self-references only through an installed node_modules (here
through the manifests in the repository, so a clone needs no install); and
without its `--init` options it ignores `exports`.
"""
from __future__ import annotations

import fnmatch
import json
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from edge.parse.model import Import, ParsedFile
from edge.resolve.model import FileImports, ResolvedImport, Target

_SOURCE_EXTENSIONS = (
    ".js", ".cjs", ".mjs", ".jsx", ".ts", ".tsx", ".d.ts", ".cts", ".d.cts", ".mts", ".d.mts",
)
# tsc's retry for ESM-style specifiers that name the compiled file.
_TS_FOR_JS = {
    ".js": (".ts", ".tsx", ".d.ts"),
    ".jsx": (".ts", ".tsx", ".d.ts"),
    ".cjs": (".cts", ".d.cts"),
    ".mjs": (".mts", ".d.mts"),
}
# Compiled extensions, longest first, replaced by source ones when mapping build output.
_OUTPUT_EXTENSIONS = (".d.mts", ".d.cts", ".d.ts", ".mjs", ".cjs", ".jsx", ".js")
_CONDITIONS = frozenset({"import", "require", "node", "default", "types"})
_MAIN_FIELDS = ("module", "main", "types", "typings")
_BUILD_DIRS = frozenset({
    "dist", "build", "lib", "out", "output", "esm", "cjs", "es", "es6", "mjs", "umd",
    "module", "modules", "commonjs", "types", "typings", "bundle", "compiled",
})
_NODE_BUILTINS = frozenset("""
assert assert/strict async_hooks buffer child_process cluster console constants crypto dgram
diagnostics_channel dns dns/promises domain events fs fs/promises http http2 https inspector
inspector/promises module net os path path/posix path/win32 perf_hooks process punycode
querystring readline readline/promises repl stream stream/consumers stream/promises stream/web
string_decoder sys timers timers/promises tls trace_events tty url util util/types v8 vm wasi
worker_threads zlib test
""".split())
_PNPM_ITEM = re.compile(r"""^\s*-\s*["']?([^"'#\n]+?)["']?\s*(?:#.*)?$""", re.M)
_MAX_ALIAS_DEPTH = 8  # `imports` targets may name other specifiers; bound the chain
_MAX_CONDITION_DEPTH = 16  # nested condition objects in a manifest


class _Outcome(NamedTuple):
    target: str | None = None  # repo file
    external: str | None = None  # package name
    unresolved: bool = False  # internal-looking but nothing matched


_IGNORED = _Outcome()  # an asset on disk, or an empty specifier


# ---------------------------------------------------------------------------
# Tolerant config reading
# ---------------------------------------------------------------------------

_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|//[^\n]*|/\*[\s\S]*?\*/')
_STRING_OR_TRAILING_COMMA = re.compile(r'"(?:[^"\\\n]|\\.)*"|,(\s*[}\]])')


def _load_jsonc(text: str) -> Any:
    """JSON with comments and trailing commas (tsconfig's dialect); None when invalid."""
    text = _STRING_OR_COMMENT.sub(lambda m: m[0] if m[0][0] == '"' else " ", text.lstrip("\ufeff"))
    text = _STRING_OR_TRAILING_COMMA.sub(lambda m: m[1] if m[1] is not None else m[0], text)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return None


def _join(directory: str, relative: str) -> str | None:
    """Repo-relative normalized join; None when it leaves the repository."""
    joined = posixpath.normpath(posixpath.join(directory, relative))
    if joined == ".":
        return ""
    if joined == ".." or joined.startswith("../") or joined.startswith("/"):
        return None
    return joined


@dataclass(frozen=True, slots=True)
class _TsConfig:
    """The resolution options of a tsconfig after its extends chain (repo-relative dirs).

    Unset options are None so a config overrides only what it declares.
    """
    leaf_dir: str  # the directory of the config in use: `${configDir}`
    base_url: str | None = None
    paths: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    paths_dir: str = ""  # the config declaring `paths`: their base without baseUrl
    out_dir: str | None = None
    root_dir: str | None = None

    def overridden_by(self, other: _TsConfig) -> _TsConfig:
        declares_paths = other.paths is not None
        return _TsConfig(
            leaf_dir=self.leaf_dir,
            base_url=other.base_url if other.base_url is not None else self.base_url,
            paths=other.paths if declares_paths else self.paths,
            paths_dir=other.paths_dir if declares_paths else self.paths_dir,
            out_dir=other.out_dir if other.out_dir is not None else self.out_dir,
            root_dir=other.root_dir if other.root_dir is not None else self.root_dir,
        )

    def place(self, target: str) -> str | None:
        """A paths target as a repo path: from `${configDir}`, baseUrl, or the declaring config."""
        if target.startswith("${configDir}"):
            return _join(self.leaf_dir, "./" + target[len("${configDir}"):])
        return _join(self.base_url if self.base_url is not None else self.paths_dir, target)


def _own_options(options: dict, here: str, leaf_dir: str) -> _TsConfig:
    def directory(value: Any) -> str | None:
        if not isinstance(value, str):
            return None
        if value.startswith("${configDir}"):
            return _join(leaf_dir, "./" + value[len("${configDir}"):])
        return _join(here, value)

    raw_paths = options.get("paths")
    paths = None
    if isinstance(raw_paths, dict):
        paths = tuple(
            (key, tuple(t for t in targets if isinstance(t, str)))
            for key, targets in raw_paths.items() if isinstance(targets, list))
    return _TsConfig(
        leaf_dir=leaf_dir,
        base_url=directory(options.get("baseUrl")),
        paths=paths,
        paths_dir=here,
        out_dir=directory(options.get("outDir")),
        root_dir=directory(options.get("rootDir")),
    )


class _Manifest(NamedTuple):
    directory: str
    data: dict


def _package_name(specifier: str) -> tuple[str, str]:
    """`@s/p/x/y` -> ("@s/p", "./x/y"); `p` -> ("p", ".")."""
    parts = specifier.split("/")
    size = 2 if specifier.startswith("@") and len(parts) > 1 else 1
    name = "/".join(parts[:size])
    rest = "/".join(parts[size:])
    return name, "./" + rest if rest else "."


def _clean(specifier: str) -> str:
    specifier = specifier.rsplit("!", 1)[-1]  # webpack loaders
    cut = len(specifier)
    for mark in "?#":
        at = specifier.find(mark, 1)  # a leading '#' is a subpath import
        if at != -1:
            cut = min(cut, at)
    return specifier[:cut].strip()


def _match_pattern(key: str, subject: str) -> str | None:
    """The `*` part when subject matches the one-star pattern key, else None."""
    star = key.find("*")
    if star == -1 or key.count("*") != 1:
        return None
    prefix, suffix = key[:star], key[star + 1:]
    if len(subject) >= len(prefix) + len(suffix) and subject.startswith(prefix) \
            and subject.endswith(suffix):
        return subject[len(prefix): len(subject) - len(suffix)]
    return None


def _best_pattern(keys: Iterable[str], subject: str) -> tuple[str, str] | None:
    """Exact key first, else the matching pattern with the longest prefix: (key, star part)."""
    best: tuple[str, str] | None = None
    best_prefix = -1
    for key in keys:
        if key == subject and "*" not in key:
            return key, ""
        star = _match_pattern(key, subject)
        if star is not None and key.find("*") > best_prefix:
            best, best_prefix = (key, star), key.find("*")
    return best


def _condition_targets(value: Any, star: str | None, depth: int = 0) -> list[str]:
    """Targets of an exports/imports value in order: strings, arrays, nested conditions.

    Every matching condition is kept, in the manifest's order, so that when the
    first one names missing build output a later one can still name a source.
    """
    if isinstance(value, str):
        return [value.replace("*", star) if star is not None else value]
    if depth > _MAX_CONDITION_DEPTH:
        return []
    if isinstance(value, list):
        return [t for item in value for t in _condition_targets(item, star, depth + 1)]
    if isinstance(value, dict):
        return [t for key, item in value.items() if key in _CONDITIONS
                for t in _condition_targets(item, star, depth + 1)]
    return []  # null: the subpath is blocked


def _map_lookup(mapping: Any, subject: str) -> list[str] | None:
    """Targets for subject in an exports/imports map; None when no key matches."""
    if not isinstance(mapping, dict) or not mapping:
        return None
    found = _best_pattern(mapping.keys(), subject)
    if found is not None:
        key, star = found
        return _condition_targets(mapping[key], star if "*" in key else None)
    for key, value in mapping.items():  # deprecated folder mappings: "./lib/": "./src/"
        if key.endswith("/") and subject.startswith(key) and isinstance(value, str):
            return [value + subject[len(key):]]
    return None


def _subpath_exports(exports: Any) -> Any:
    """exports as a subpath map: a bare target or a condition object means ".": …"""
    if isinstance(exports, dict) and any(key.startswith(".") for key in exports):
        return exports
    return {".": exports}


# ---------------------------------------------------------------------------
# The resolver
# ---------------------------------------------------------------------------

class JavaScriptResolver:
    """Resolves the imports of parsed JS/TS files against one repository checkout."""

    def __init__(self, root: Path, paths: Iterable[str]) -> None:
        self._root = Path(root)
        self._real_root = os.path.realpath(self._root)
        self._files = set(paths)
        self._dirs = {""}
        for path in self._files:
            directory = posixpath.dirname(path)
            while directory not in self._dirs:
                self._dirs.add(directory)
                directory = posixpath.dirname(directory)
        has_json = any(path.endswith(".json") for path in self._files)
        self._extensions = _SOURCE_EXTENSIONS + ((".json",) if has_json else ())
        self._json: dict[str, Any] = {}
        self._manifests: dict[str, _Manifest | None] = {}
        self._tsconfigs: dict[str, _TsConfig | None] = {}
        self._packages = self._workspace_packages()
        self._cache: dict[tuple[str, str], _Outcome] = {}

    def resolve(self, parsed: ParsedFile) -> FileImports:
        result = FileImports(path=parsed.path)
        directory = posixpath.dirname(parsed.path)
        for statement in parsed.imports:
            outcome = self._outcome(directory, statement.module)
            if statement.kind == "jsdoc":
                _bind_jsdoc_names(result, statement, outcome.target)
                continue
            if outcome.target is not None:
                if outcome.target == parsed.path:
                    continue
                result.imports.append(ResolvedImport(
                    outcome.target, None, statement.line, statement.type_only))
                if statement.kind != "export":  # re-exports bind no local names
                    for binding in statement.bindings:
                        result.scope[binding.local] = Target(outcome.target, binding.name)
            elif outcome.external is not None:
                result.imports.append(ResolvedImport(
                    None, outcome.external, statement.line, statement.type_only))
            elif outcome.unresolved and statement.module not in result.unresolved:
                result.unresolved.append(statement.module)
        return result

    def _outcome(self, directory: str, specifier: str) -> _Outcome:
        key = (directory, specifier)
        outcome = self._cache.get(key)
        if outcome is None:
            outcome = self._cache[key] = self._specifier(directory, _clean(specifier), 0)
        return outcome

    def _specifier(self, directory: str, spec: str, depth: int) -> _Outcome:
        if not spec or depth > _MAX_ALIAS_DEPTH:
            return _IGNORED
        if spec.startswith("node:"):
            return _Outcome(external=spec[5:].split("/", 1)[0] or spec)
        if spec in _NODE_BUILTINS:
            return _Outcome(external=spec.split("/", 1)[0])
        if spec.startswith(("./", "../")) or spec in (".", ".."):
            return self._path_outcome(_join(directory, spec))
        if spec.startswith("/"):
            return _Outcome(unresolved=True)  # absolute paths never name repo files portably
        if spec.startswith("#"):
            return self._subpath_import(directory, spec, depth)
        aliased = self._tsconfig_alias(directory, spec)
        if aliased is not None and not aliased.unresolved:
            return aliased
        # An alias that matched nothing may still be a package (tsc falls back too).
        return self._bare(spec, unresolved=aliased is not None)

    def _path_outcome(self, candidate: str | None) -> _Outcome:
        if candidate is None:
            return _Outcome(unresolved=True)
        found = self._probe(candidate)
        if found is not None:
            return _Outcome(target=found)
        if self._is_disk_file(candidate):
            return _IGNORED
        return _Outcome(unresolved=True)

    # -- probing -----------------------------------------------------------

    def _probe(self, candidate: str, use_manifest: bool = True) -> str | None:
        """A file for the candidate path: exact, with an extension, or as a directory."""
        found = (self._probe_file(candidate, self._extensions)
                 or self._probe_directory(candidate, use_manifest))
        if found is None:
            stem, extension = posixpath.splitext(candidate)
            retry = _TS_FOR_JS.get(extension)
            if retry:
                found = self._probe_file(stem, retry, exact=False)
        return found

    def _probe_file(self, candidate: str, extensions: Iterable[str], exact: bool = True) -> str | None:
        files = self._files
        if exact and candidate in files:
            return candidate
        for extension in extensions:
            if candidate + extension in files:
                return candidate + extension
        return None

    def _probe_directory(self, directory: str, use_manifest: bool = True) -> str | None:
        """package.json main fields, then index files; a main's own target is probed
        without its manifest so that no chain of manifests can loop."""
        if directory not in self._dirs:
            return None
        manifest = self._manifest(directory) if use_manifest else None
        if manifest is not None:
            found = self._main(manifest)
            if found is not None:
                return found
        return self._probe_file(posixpath.join(directory, "index") if directory else "index",
                                self._extensions, exact=False)

    def _main(self, manifest: _Manifest) -> str | None:
        targets = []
        for field in _MAIN_FIELDS:
            value = manifest.data.get(field)
            if isinstance(value, str) and value.strip():
                target = _join(manifest.directory, value)
                if target is not None and target != manifest.directory:  # "." means index
                    targets.append(target)
        return self._first_existing(manifest.directory, targets)

    def _first_existing(self, package_dir: str, targets: list[str]) -> str | None:
        """The first target that exists; only then the sources behind missing build output,
        so a committed file named by a later field beats a guess for an earlier one."""
        for target in targets:
            found = self._probe(target, use_manifest=False)
            if found is not None:
                return found
        for target in targets:
            found = self._from_build_output(package_dir, target)
            if found is not None:
                return found
        return None

    def _from_build_output(self, package_dir: str, target: str) -> str | None:
        """The source file behind a missing compiled target of a package (see module doc)."""
        for candidate in self._source_candidates(package_dir, target):
            stem = candidate
            for extension in _OUTPUT_EXTENSIONS:
                if candidate.endswith(extension):
                    stem = candidate[: -len(extension)]
                    break
            found = (self._probe_file(stem, self._extensions)
                     or self._probe_directory(stem, use_manifest=False))
            if found is not None:
                return found
        return None

    def _source_candidates(self, package_dir: str, target: str) -> Iterable[str]:
        config = self._tsconfig(package_dir)
        if config is not None and config.out_dir is not None:
            rest = _relative_within(target, config.out_dir)
            if rest is not None:
                source_root = config.root_dir
                if source_root is None:
                    source_root = posixpath.join(package_dir, "src") if package_dir else "src"
                yield posixpath.join(source_root, rest) if rest else source_root
        rest = _relative_within(target, package_dir)
        if rest is None:
            return
        parts = rest.split("/")
        dropped = 0
        while dropped < len(parts) - 1 and parts[dropped] in _BUILD_DIRS:
            dropped += 1
        if dropped:
            inner = "/".join(parts[dropped:])
            yield posixpath.join(package_dir, "src", inner)
            yield posixpath.join(package_dir, inner)

    def _is_disk_file(self, candidate: str) -> bool:
        """A non-source file (css, svg) that exists in the checkout: no edge, not unresolved."""
        if candidate in self._dirs or not posixpath.splitext(candidate)[1]:
            return False
        return (self._root / candidate).is_file()

    # -- packages ----------------------------------------------------------

    def _workspace_packages(self) -> dict[str, _Manifest]:
        """Package name -> manifest for the packages an import by name reaches.

        With workspace globs declared, those packages and the root (self-imports);
        without, every named package.json except one that shadows a registry
        dependency of the root (a test fixture called "react" is not React).
        Two packages of one name: the declared one, then the shallower.
        """
        globs = self._workspace_globs()

        def declared(directory: str) -> bool:
            return any(fnmatch.fnmatchcase(directory, glob) for glob in globs)

        def rank(directory: str) -> tuple[bool, int, str]:
            return not declared(directory), directory.count("/") + bool(directory), directory

        external = self._root_registry_dependencies()
        packages: dict[str, _Manifest] = {}
        found = [d for d in self._dirs if self._manifest(d) is not None]
        for directory in sorted(found, key=rank):
            manifest = self._manifest(directory)
            name = manifest.data.get("name")
            if not isinstance(name, str) or not name or name in packages:
                continue
            if directory and (not declared(directory) if globs else name in external):
                continue
            packages[name] = manifest
        return packages

    def _root_registry_dependencies(self) -> set[str]:
        """Dependencies of the root package.json that come from a registry."""
        manifest = self._manifest("")
        names: set[str] = set()
        for field in ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies"):
            deps = manifest.data.get(field) if manifest else None
            if isinstance(deps, dict):
                names.update(name for name, spec in deps.items() if not (
                    isinstance(spec, str) and spec.startswith(("workspace:", "file:", "link:"))))
        return names

    def _workspace_globs(self) -> list[str]:
        """Workspace folders from package.json, lerna.json and pnpm-workspace.yaml."""
        found: list[Any] = []
        manifest = self._manifest("")
        workspaces = manifest.data.get("workspaces") if manifest else None
        if isinstance(workspaces, dict):
            workspaces = workspaces.get("packages")
        found.extend(workspaces if isinstance(workspaces, list) else ())
        lerna = self._read_json("lerna.json")
        if isinstance(lerna, dict) and isinstance(lerna.get("packages"), list):
            found.extend(lerna["packages"])
        if self._is_readable("pnpm-workspace.yaml"):
            try:
                text = (self._root / "pnpm-workspace.yaml").read_text("utf-8", errors="replace")
            except OSError:
                text = ""
            found.extend(_pnpm_packages(text))
        return [g.strip().removeprefix("./").rstrip("/") for g in found
                if isinstance(g, str) and g.strip() and not g.startswith("!")]

    def _manifest(self, directory: str) -> _Manifest | None:
        if directory not in self._manifests:
            data = self._read_json(posixpath.join(directory, "package.json"))
            self._manifests[directory] = (
                _Manifest(directory, data) if isinstance(data, dict) else None)
        return self._manifests[directory]

    def _bare(self, spec: str, unresolved: bool = False) -> _Outcome:
        name, subpath = _package_name(spec)
        package = self._packages.get(name)
        if package is None:
            return _Outcome(unresolved=True) if unresolved else _Outcome(external=name)
        found = self._in_package(package, subpath)
        return _Outcome(target=found) if found is not None else _Outcome(unresolved=True)

    def _in_package(self, package: _Manifest, subpath: str) -> str | None:
        exports = package.data.get("exports")
        if exports is not None:
            targets = _map_lookup(_subpath_exports(exports), subpath) or ()
            # Export targets are "./"-relative paths inside the package.
            found = self._first_existing(package.directory, [
                joined for target in targets if target.startswith("./")
                for joined in [_join(package.directory, target)] if joined is not None])
            if found is not None:
                return found
        if subpath == ".":
            return self._probe_directory(package.directory)
        candidate = _join(package.directory, subpath)
        if candidate is None:
            return None
        return self._probe(candidate) or self._from_build_output(package.directory, candidate)

    def _subpath_import(self, directory: str, spec: str, depth: int) -> _Outcome:
        manifest = self._nearest_manifest(directory)
        targets = _map_lookup(manifest.data.get("imports"), spec) if manifest else None
        if not targets:
            return _Outcome(unresolved=True)
        local = [joined for target in targets if target.startswith("./")
                 for joined in [_join(manifest.directory, target)] if joined is not None]
        found = self._first_existing(manifest.directory, local)
        if found is not None:
            return _Outcome(target=found)
        for target in targets:
            if not target.startswith(("./", "#", "/")):  # a package, maybe external
                return self._specifier(manifest.directory, target, depth + 1)
        return _Outcome(unresolved=True)

    def _nearest_manifest(self, directory: str) -> _Manifest | None:
        while True:
            manifest = self._manifest(directory)
            if manifest is not None or not directory:
                return manifest
            directory = posixpath.dirname(directory)

    # -- tsconfig ------------------------------------------------------------

    def _tsconfig_alias(self, directory: str, spec: str) -> _Outcome | None:
        """Outcome through tsconfig paths/baseUrl; None when no alias applies."""
        config = self._tsconfig(directory)
        if config is None:
            return None
        internal = False
        if config.paths:
            found = _best_pattern((key for key, _ in config.paths), spec)
            if found is not None:
                key, star = found
                internal = key != "*"
                for target in dict(config.paths)[key]:
                    outcome = self._path_outcome(config.place(target.replace("*", star)))
                    if not outcome.unresolved:
                        return outcome
        if config.base_url is not None:
            outcome = self._path_outcome(_join(config.base_url, spec))
            if not outcome.unresolved:
                return outcome
        return _Outcome(unresolved=True) if internal else None

    def _tsconfig(self, directory: str) -> _TsConfig | None:
        """The nearest tsconfig.json (or jsconfig.json) at or above directory."""
        if directory in self._tsconfigs:
            return self._tsconfigs[directory]
        config = None
        for name in ("tsconfig.json", "jsconfig.json"):
            path = posixpath.join(directory, name)
            if self._is_readable(path):
                config = self._load_tsconfig(path, directory, frozenset())
                break
        else:
            if directory:
                config = self._tsconfig(posixpath.dirname(directory))
        self._tsconfigs[directory] = config
        return config

    def _load_tsconfig(self, path: str, leaf_dir: str, seen: frozenset[str]) -> _TsConfig:
        config = _TsConfig(leaf_dir=leaf_dir)
        data = self._read_json(path)
        if not isinstance(data, dict) or path in seen:  # unreadable, or an extends cycle
            return config
        seen = seen | {path}
        here = posixpath.dirname(path)
        extends = data.get("extends")
        parents = [extends] if isinstance(extends, str) else extends if isinstance(extends, list) else []
        for parent in parents:  # later entries override earlier ones (TS 5)
            parent_path = self._extends_path(here, parent) if isinstance(parent, str) else None
            if parent_path is not None:
                config = config.overridden_by(self._load_tsconfig(parent_path, leaf_dir, seen))
        options = data.get("compilerOptions")
        if isinstance(options, dict):
            config = config.overridden_by(_own_options(options, here, leaf_dir))
        return config

    def _extends_path(self, here: str, parent: str) -> str | None:
        if parent.startswith((".", "/")):
            path = _join(here, parent)
        else:  # a package: a repo workspace, else node_modules if present
            name, subpath = _package_name(parent)
            package = self._packages.get(name)
            base = package.directory if package else _join("node_modules", name)
            path = _join(base, subpath if subpath != "." else "tsconfig.json") if base is not None else None
        if path is None:
            return None
        if not self._is_readable(path) and self._is_readable(path + ".json"):
            return path + ".json"
        return path

    # -- disk ----------------------------------------------------------------

    def _read_json(self, path: str) -> Any:
        if path not in self._json:
            data = None
            if self._is_readable(path):
                try:
                    data = _load_jsonc((self._root / path).read_text("utf-8", errors="replace"))
                except OSError:
                    data = None
            self._json[path] = data
        return self._json[path]

    def _is_readable(self, path: str) -> bool:
        """A regular file whose real path stays inside the repository."""
        full = self._root / path
        if not full.is_file():
            return False
        real = os.path.realpath(full)
        return real == self._real_root or real.startswith(self._real_root + os.sep)


def _bind_jsdoc_names(result: FileImports, statement: Import, target: str | None) -> None:
    """Names a JSDoc type takes from a module (`@typedef {import("./x")} X`,
    edge/parse/jsdoc.py): bound for typing, never over a name the code imports, and no
    IMPORTS edge: the import graph stays the statements' (what dependency-cruiser, its
    reference, reads), and the file's real require of the module, if any, makes one."""
    if target is None or target == result.path:
        return
    for binding in statement.bindings:
        result.scope.setdefault(binding.local, Target(target, binding.name))


def _pnpm_packages(text: str) -> list[str]:
    """The list items under the top-level `packages:` key of pnpm-workspace.yaml."""
    section = re.search(r"^packages:[ \t]*\n((?:[ \t]+.*\n?|[ \t]*\n)*)", text, re.M)
    return _PNPM_ITEM.findall(section[1]) if section else []


def _relative_within(path: str, directory: str) -> str | None:
    if not directory:
        return path
    if path == directory:
        return ""
    if path.startswith(directory + "/"):
        return path[len(directory) + 1:]
    return None
