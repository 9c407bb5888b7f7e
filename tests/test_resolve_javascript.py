"""JavaScriptResolver on small repositories written to disk, parsed for real."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from edge.parse.javascript import parse_javascript
from edge.parse.model import Import, ParsedFile
from edge.resolve.javascript import JavaScriptResolver
from edge.resolve.model import Target

LANGUAGES = {".js": "javascript", ".jsx": "javascript", ".mjs": "javascript", ".cjs": "javascript",
             ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx"}


class Repo:
    """Files written under a temp dir; source paths are those with a JS/TS extension."""

    def __init__(self, root: Path, files: dict[str, str], extra_paths: tuple[str, ...] = ()):
        self.root = root
        for path, text in files.items():
            full = root / path
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_text(textwrap.dedent(text))
        self.paths = sorted(p for p in files if Path(p).suffix in LANGUAGES) + list(extra_paths)
        self.resolver = JavaScriptResolver(root, self.paths)

    def resolve(self, path: str):
        source = (self.root / path).read_bytes()
        language = "typescript" if path.endswith(".d.ts") else LANGUAGES[Path(path).suffix]
        return self.resolver.resolve(parse_javascript(path, source, language))

    def targets(self, path: str) -> list[str | None]:
        return [imp.target for imp in self.resolve(path).imports]

    def one(self, path: str, specifier: str):
        """Resolve a single specifier as if `path` imported it: (target, external, unresolved)."""
        parsed = ParsedFile(path=path, language="typescript", loc=1,
                            imports=[Import(specifier, 1, "import")])
        result = self.resolver.resolve(parsed)
        if result.imports:
            imp = result.imports[0]
            return imp.target, imp.external, False
        return None, None, bool(result.unresolved)


@pytest.fixture
def repo(tmp_path):
    def make(files: dict[str, str], extra_paths: tuple[str, ...] = ()) -> Repo:
        return Repo(tmp_path, files, extra_paths)
    return make


# ---------------------------------------------------------------------------
# Relative specifiers
# ---------------------------------------------------------------------------

def test_extension_probing_and_directory_index(repo):
    r = repo({
        "src/main.ts": """\
            import a from './a';
            import b from './b';
            import c from '../lib/c';
            import d from './dir';
            import t from './types';
            import both from './both';
            import m from './m';
            """,
        "src/a.tsx": "", "src/b.jsx": "", "lib/c.mjs": "", "src/dir/index.ts": "",
        "src/types.d.ts": "", "src/both.js": "", "src/both.ts": "", "src/m.cts": "",
    })
    # .js before .ts when both exist, as dependency-cruiser's extension order has it.
    assert r.targets("src/main.ts") == ["src/a.tsx", "src/b.jsx", "lib/c.mjs", "src/dir/index.ts",
                                         "src/types.d.ts", "src/both.js", "src/m.cts"]


def test_js_specifiers_name_typescript_sources(repo):
    r = repo({
        "src/main.ts": """\
            import { a } from './a.js';
            import { b } from './b.jsx';
            import { c } from './c.mjs';
            import { d } from './d.cjs';
            import { e } from './e.js';
            import { f } from './f.js';
            """,
        "src/a.ts": "", "src/b.tsx": "", "src/c.mts": "", "src/d.cts": "", "src/e.js": "",
        "src/e.ts": "", "src/f.d.ts": "",
    })
    assert r.targets("src/main.ts") == ["src/a.ts", "src/b.tsx", "src/c.mts", "src/d.cts",
                                         "src/e.js", "src/f.d.ts"]


def test_directory_package_json_main(repo):
    r = repo({
        "app.js": "const lib = require('./lib'); const other = require('./other');",
        "lib/package.json": '{"main": "./entry.js"}', "lib/entry.js": "", "lib/index.js": "",
        "other/package.json": '{"main": "missing.js"}', "other/index.js": "",
    })
    assert r.targets("app.js") == ["lib/entry.js", "other/index.js"]


def test_json_only_when_json_files_are_paths(repo):
    files = {"a.js": "import d from './data.json'; import e from './data';", "data.json": "{}"}
    with_json = repo(files, extra_paths=("data.json",))
    assert with_json.targets("a.js") == ["data.json", "data.json"]
    result = repo(files).resolve("a.js")
    assert result.imports == []
    assert result.unresolved == ["./data"]  # data.json exists: an asset, not unresolved


def test_queries_hashes_and_loaders_are_stripped(repo):
    r = repo({"a.ts": "import x from './b?raw'; import y from './b#frag'; import z from 'raw!./b';",
              "b.ts": ""})
    assert r.targets("a.ts") == ["b.ts", "b.ts", "b.ts"]


def test_no_edge_to_itself_and_unresolved_specifiers(repo):
    r = repo({
        "src/self.ts": """\
            import './self';
            import './missing';
            import './missing';
            import '../../outside';
            import './style.css';
            """,
        "src/style.css": "body {}",
    })
    result = r.resolve("src/self.ts")
    assert result.imports == []
    assert result.unresolved == ["./missing", "../../outside"]


def test_builtins_and_external_package_names(repo):
    r = repo({"a.js": ""})
    assert r.one("a.js", "fs") == (None, "fs", False)
    assert r.one("a.js", "fs/promises") == (None, "fs", False)
    assert r.one("a.js", "node:fs/promises") == (None, "fs", False)
    assert r.one("a.js", "node:sqlite") == (None, "sqlite", False)
    assert r.one("a.js", "lodash/fp") == (None, "lodash", False)
    assert r.one("a.js", "@scope/pkg/deep/x") == (None, "@scope/pkg", False)
    assert r.one("a.js", "react") == (None, "react", False)


def test_scope_and_type_only(repo):
    r = repo({
        "a.ts": """\
            import D, { x as y, type T } from './b';
            import * as ns from './b';
            import type { Only } from './b';
            const { q, r: s } = require('./b');
            export { z } from './b';
            import ext from 'external';
            """,
        "b.ts": "",
    })
    result = r.resolve("a.ts")
    assert result.scope == {
        "D": Target("b.ts", "default"), "y": Target("b.ts", "x"), "T": Target("b.ts", "T"),
        "ns": Target("b.ts", None), "Only": Target("b.ts", "Only"), "q": Target("b.ts", "q"),
        "s": Target("b.ts", "r"),
    }  # re-exports and externals bind nothing
    assert [(i.target, i.external, i.type_only) for i in result.imports] == [
        ("b.ts", None, False), ("b.ts", None, False), ("b.ts", None, True), ("b.ts", None, False),
        ("b.ts", None, False), (None, "external", False)]


# ---------------------------------------------------------------------------
# tsconfig / jsconfig
# ---------------------------------------------------------------------------

TSCONFIG_WITH_COMMENTS = """\
    // comments and trailing commas, as tsc allows
    {
      "compilerOptions": {
        /* block comment with "quotes" */
        "baseUrl": ".",
        "paths": {
          "@/*": ["src/*"],
          "@app/*": ["src/app/*"],
          "@app/core/*": ["core/*"],
          "@lib": ["libs/lib/index.ts"],
          "shared/*": ["first/*", "second/*",],
          "link": ["src/http://not-a-comment.ts"],
        },
      },
    }
    """


def test_tsconfig_paths_and_base_url(repo):
    r = repo({
        "tsconfig.json": TSCONFIG_WITH_COMMENTS,
        "src/main.ts": "",
        "src/util/x.ts": "", "src/app/y.ts": "", "core/z.ts": "", "libs/lib/index.ts": "",
        "second/s.ts": "", "src/components/Button.tsx": "", "src/http:/not-a-comment.ts": "",
    })
    assert r.one("src/main.ts", "@/util/x") == ("src/util/x.ts", None, False)
    assert r.one("src/main.ts", "@app/y") == ("src/app/y.ts", None, False)
    assert r.one("src/main.ts", "@app/core/z") == ("core/z.ts", None, False)  # longest prefix
    assert r.one("src/main.ts", "@lib") == ("libs/lib/index.ts", None, False)
    assert r.one("src/main.ts", "shared/s") == ("second/s.ts", None, False)  # second target
    assert r.one("src/main.ts", "src/components/Button") == ("src/components/Button.tsx", None, False)
    assert r.one("src/main.ts", "link")[0] == "src/http:/not-a-comment.ts"
    assert r.one("src/main.ts", "@/nope") == (None, None, True)
    assert r.one("src/main.ts", "react") == (None, "react", False)


def test_paths_without_base_url_are_relative_to_their_config(repo):
    r = repo({
        "web/tsconfig.json": '{"compilerOptions": {"paths": {"~/*": ["./app/*"]}}}',
        "web/app/a.ts": "", "web/app/deep/b.ts": "",
        "jsapp/jsconfig.json": '{"compilerOptions": {"baseUrl": "src"}}',
        "jsapp/src/components/C.jsx": "", "jsapp/src/index.js": "",
    })
    assert r.one("web/app/deep/b.ts", "~/a") == ("web/app/a.ts", None, False)
    assert r.one("jsapp/src/index.js", "components/C") == ("jsapp/src/components/C.jsx", None, False)
    assert r.one("jsapp/src/index.js", "~/a") == (None, "~", False)  # another project's alias


def test_extends_chain_and_nearest_config(repo):
    r = repo({
        "tsconfig.base.json": """\
            { "compilerOptions": { "baseUrl": ".", "paths": { "@shared/*": ["libs/shared/*"] } } }
            """,
        "apps/web/tsconfig.json": """\
            { "extends": "../../tsconfig.base", // no .json, as tsc allows
              "compilerOptions": { "strict": true } }
            """,
        "apps/admin/tsconfig.json": """\
            { "extends": ["../../tsconfig.base.json"],
              "compilerOptions": { "paths": { "@/*": ["./src/*"] } } }
            """,
        "apps/api/tsconfig.json": '{"extends": "@acme/tsconfig/node.json"}',
        "tooling/tsconfig/package.json": '{"name": "@acme/tsconfig"}',
        "tooling/tsconfig/node.json": '{"compilerOptions": {"paths": {"$db": ["../../db/index.ts"]}}}',
        "tooling/tsconfig/x.ts": "",
        "libs/shared/util.ts": "", "apps/web/src/main.ts": "", "apps/admin/src/main.ts": "",
        "apps/admin/src/page.ts": "", "apps/api/main.ts": "", "db/index.ts": "",
    })
    assert r.one("apps/web/src/main.ts", "@shared/util") == ("libs/shared/util.ts", None, False)
    # admin's own paths are relative to the inherited baseUrl (the repo root, no src/ there),
    # and they replace the base's paths instead of merging with them, as in tsc.
    assert r.one("apps/admin/src/main.ts", "@/page") == (None, None, True)
    assert r.one("apps/admin/src/main.ts", "@shared/util") == (None, "@shared/util", False)
    # a config from a repo package; its paths are relative to that file
    assert r.one("apps/api/main.ts", "$db") == ("db/index.ts", None, False)
    # no tsconfig.json above libs/: the alias means nothing there
    assert r.one("libs/shared/util.ts", "@shared/util") == (None, "@shared/util", False)


def test_paths_relative_to_declaring_config_via_extends(repo):
    r = repo({
        "configs/base.json": '{"compilerOptions": {"paths": {"@db/*": ["../db/*"]}}}',
        "app/tsconfig.json": '{"extends": "../configs/base.json"}',
        "db/conn.ts": "", "app/main.ts": "",
    })
    assert r.one("app/main.ts", "@db/conn") == ("db/conn.ts", None, False)


def test_config_dir_template(repo):
    r = repo({
        "base.json": '{"compilerOptions": {"paths": {"@/*": ["${configDir}/src/*"]}}}',
        "pkg/tsconfig.json": '{"extends": "../base.json"}',
        "pkg/src/a.ts": "", "pkg/b.ts": "",
    })
    assert r.one("pkg/b.ts", "@/a") == ("pkg/src/a.ts", None, False)


@pytest.mark.parametrize("bad", ["{ not json", "[1, 2]", "", '{"compilerOptions": "x"}',
                                 '{"compilerOptions": {"paths": {"@/*": "src/*"}, "baseUrl": 3}}',
                                 '{"extends": "./tsconfig.json"}', '{"extends": [1, null]}'])
def test_broken_tsconfig_is_ignored(repo, bad):
    r = repo({"tsconfig.json": bad, "src/a.ts": "import b from './b'", "src/b.ts": ""})
    assert r.targets("src/a.ts") == ["src/b.ts"]
    assert r.one("src/a.ts", "@/b")[0] is None


def test_extends_cycle_does_not_hang(repo):
    r = repo({"a/tsconfig.json": '{"extends": "../b/tsconfig.json"}',
              "b/tsconfig.json": '{"extends": "../a/tsconfig.json", "compilerOptions": {"baseUrl": "."}}',
              "a/x.ts": "", "b/y.ts": ""})
    assert r.one("a/x.ts", "y") == ("b/y.ts", None, False)


# ---------------------------------------------------------------------------
# Packages inside the repository (workspaces)
# ---------------------------------------------------------------------------

WORKSPACE = {
    "package.json": '{"name": "root", "private": true, "workspaces": ["packages/*"]}',
    "packages/ui/package.json": json.dumps({
        "name": "@acme/ui",
        "main": "dist/index.js",
        "exports": {
            ".": {"types": "./dist/index.d.ts", "import": "./dist/index.mjs"},
            "./button": "./src/button.tsx",
            "./icons/*": {"import": "./dist/icons/*.js"},
            "./internal/*": None,
        },
    }),
    "packages/ui/src/index.ts": "", "packages/ui/src/button.tsx": "",
    "packages/ui/src/icons/star.tsx": "", "packages/ui/src/internal/x.ts": "",
    "packages/utils/package.json": '{"name": "utils", "main": "./src/index.ts"}',
    "packages/utils/src/index.ts": "", "packages/utils/src/format.ts": "",
    "packages/legacy/package.json": '{"name": "legacy", "main": "build/main.js"}',
    "packages/legacy/tsconfig.json": '{"compilerOptions": {"outDir": "build", "rootDir": "lib"}}',
    "packages/legacy/lib/main.ts": "",
    "packages/cjs/package.json": '{"name": "cjs-pkg"}', "packages/cjs/index.js": "",
    "packages/cjs/lib/deep.js": "",
    "packages/app/package.json": json.dumps({
        "name": "app",
        "imports": {"#internal/*": "./src/internal/*.js", "#dep": "utils", "#ext": "lodash"},
    }),
    "packages/app/src/main.ts": "", "packages/app/src/internal/db.ts": "",
    "examples/copy/package.json": '{"name": "utils", "main": "index.js"}',
    "examples/copy/index.js": "",
}


@pytest.mark.parametrize("specifier, expected", [
    ("@acme/ui", "packages/ui/src/index.ts"),  # exports -> missing dist -> source
    ("@acme/ui/button", "packages/ui/src/button.tsx"),
    ("@acme/ui/icons/star", "packages/ui/src/icons/star.tsx"),  # subpath pattern
    ("utils", "packages/utils/src/index.ts"),  # the workspace package wins the name
    ("utils/src/format", "packages/utils/src/format.ts"),  # no exports: plain subpath
    ("legacy", "packages/legacy/lib/main.ts"),  # tsconfig outDir -> rootDir
    ("cjs-pkg", "packages/cjs/index.js"),
    ("cjs-pkg/lib/deep", "packages/cjs/lib/deep.js"),
    ("#internal/db", "packages/app/src/internal/db.ts"),
    ("#dep", "packages/utils/src/index.ts"),
])
def test_workspace_packages(repo, specifier, expected):
    r = repo(WORKSPACE)
    assert r.one("packages/app/src/main.ts", specifier) == (expected, None, False)


def test_workspace_misses_and_externals(repo):
    r = repo(WORKSPACE)
    assert r.one("packages/app/src/main.ts", "@acme/ui/nope") == (None, None, True)
    assert r.one("packages/app/src/main.ts", "#ext") == (None, "lodash", False)
    assert r.one("packages/app/src/main.ts", "#unknown") == (None, None, True)
    assert r.one("packages/app/src/main.ts", "@acme/other") == (None, "@acme/other", False)


def test_workspace_import_from_parsed_files(repo):
    files = dict(WORKSPACE)
    files["packages/app/src/main.ts"] = """\
        import { Button } from '@acme/ui/button';
        import { format } from 'utils';
        export * from '@acme/ui';
        const lazy = () => import('legacy');
        """
    r = repo(files)
    result = r.resolve("packages/app/src/main.ts")
    assert [i.target for i in result.imports] == [
        "packages/ui/src/button.tsx", "packages/utils/src/index.ts", "packages/ui/src/index.ts",
        "packages/legacy/lib/main.ts"]
    assert result.scope["Button"] == Target("packages/ui/src/button.tsx", "Button")


def test_manifest_loops_and_odd_mains_do_not_crash(repo):
    r = repo({
        "a/package.json": '{"name": "a", "main": "../b"}',
        "b/package.json": '{"name": "b", "main": "../a"}',
        "c/package.json": '{"name": "c", "main": ".", "exports": {"./x": ["bad", {"weird": 1}]}}',
        "d/package.json": "not json", "a/index.js": "", "b/index.js": "", "c/index.js": "",
        "d/index.js": "", "e.js": "",
    })
    assert r.one("e.js", "a") == ("b/index.js", None, False)  # main "../b": b's index, as Node
    assert r.one("e.js", "c") == ("c/index.js", None, False)
    assert r.one("e.js", "c/x") == (None, None, True)
    assert r.one("e.js", "./d") == ("d/index.js", None, False)


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

PROPERTY_FILES = dict(WORKSPACE, **{
    "tsconfig.json": '{"compilerOptions": {"baseUrl": ".", "paths": {"@/*": ["packages/*"], "*": ["types/*"]}}}',
    "packages/app/src/index.ts": "", "packages/app/src/a.js": "", "types/t.d.ts": "",
})
SPECIFIER_PARTS = st.sampled_from([".", "..", "./", "../", "/", "@", "#", "@acme/ui", "packages",
                                   "src", "index", "a", "a.js", "*", "?", "!", "node:", "fs",
                                   "utils", "internal", "\0", "é", "//", "\\", "dist"])
SPECIFIERS = st.one_of(st.text(max_size=30), st.lists(SPECIFIER_PARTS, max_size=8).map("".join))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(importer=st.sampled_from(["packages/app/src/main.ts", "packages/app/src/a.js",
                                 "packages/ui/src/index.ts", "types/t.d.ts"]),
       specifiers=st.lists(SPECIFIERS, min_size=1, max_size=5))
def test_targets_stay_in_paths_without_self_loops(tmp_path_factory, importer, specifiers):
    r = _property_repo(tmp_path_factory)
    parsed = ParsedFile(path=importer, language="typescript", loc=1,
                        imports=[Import(s, n + 1, "import") for n, s in enumerate(specifiers)])
    result = r.resolver.resolve(parsed)
    paths = set(r.paths)
    for imp in result.imports:
        assert (imp.target is None) != (imp.external is None)
        assert imp.target is None or (imp.target in paths and imp.target != importer)
    assert all(t.path in paths and t.path != importer for t in result.scope.values())
    assert set(result.unresolved) <= set(specifiers)


_REPOS: dict[str, Repo] = {}


def _property_repo(tmp_path_factory) -> Repo:
    if "repo" not in _REPOS:
        _REPOS["repo"] = Repo(tmp_path_factory.mktemp("prop"), PROPERTY_FILES)
    return _REPOS["repo"]


def test_pnpm_workspace_globs_pick_the_package_of_a_duplicated_name(repo):
    r = repo({
        "pnpm-workspace.yaml": "packages:\n  - 'libs/*'\n\nonlyBuiltDependencies:\n  - esbuild\n",
        "libs/dup/package.json": '{"name": "dup"}', "libs/dup/index.ts": "",
        "a/dup/package.json": '{"name": "dup"}', "a/dup/index.ts": "",
        "main.ts": "",
    })
    assert r.one("main.ts", "dup") == ("libs/dup/index.ts", None, False)


def test_triple_slash_reference_resolves_to_the_file(repo):
    r = repo({"src/a.ts": '/// <reference path="../types/env.d.ts" />\n', "types/env.d.ts": ""})
    assert [(i.target, i.type_only) for i in r.resolve("src/a.ts").imports] == [("types/env.d.ts", True)]


def test_committed_entry_beats_a_guess_behind_missing_build_output(repo):
    r = repo({
        "pkg/package.json": '{"name": "pkg", "module": "dist/esm/index.js", "main": "lib/index.js"}',
        "pkg/lib/index.js": "", "pkg/src/index.ts": "",
        "other/package.json": '{"name": "other", "module": "dist/esm/index.js"}',
        "other/src/index.ts": "",
        "main.ts": "",
    })
    assert r.one("main.ts", "pkg") == ("pkg/lib/index.js", None, False)
    assert r.one("main.ts", "other") == ("other/src/index.ts", None, False)


def test_base_url_assets_are_neither_edges_nor_packages(repo):
    r = repo({"jsconfig.json": '{"compilerOptions": {"baseUrl": "src"}}',
              "src/styles/main.css": "", "src/app.js": ""})
    assert r.one("src/app.js", "styles/main.css") == (None, None, False)
    assert r.resolve("src/app.js").unresolved == []


def test_fixture_packages_do_not_shadow_dependencies(repo):
    undeclared = repo({
        "package.json": '{"name": "app", "dependencies": {"react": "^18", "local": "file:./local"}}',
        "tests/fixtures/react/package.json": '{"name": "react"}',
        "tests/fixtures/react/index.js": "",
        "local/package.json": '{"name": "local"}', "local/index.js": "",
        "tools/package.json": '{"name": "tools"}', "tools/index.js": "",
        "src/a.js": "",
    })
    assert undeclared.one("src/a.js", "react") == (None, "react", False)
    assert undeclared.one("src/a.js", "local") == ("local/index.js", None, False)
    assert undeclared.one("src/a.js", "tools") == ("tools/index.js", None, False)


def test_declared_workspaces_limit_packages_to_the_globs(repo):
    r = repo({
        "package.json": '{"name": "root", "workspaces": {"packages": ["packages/*"]}}',
        "packages/a/package.json": '{"name": "a"}', "packages/a/index.ts": "",
        "fixtures/b/package.json": '{"name": "b"}', "fixtures/b/index.ts": "",
        "index.ts": "",
    })
    assert r.one("packages/a/index.ts", "a") == (None, None, False)  # itself: no edge, no miss
    assert r.one("index.ts", "a") == ("packages/a/index.ts", None, False)
    assert r.one("index.ts", "b") == (None, "b", False)
    assert r.one("packages/a/index.ts", "root") == ("index.ts", None, False)  # the root, by name
