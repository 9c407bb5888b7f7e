"""PythonResolver on small repositories given as path lists, with real parsed sources."""
from __future__ import annotations

import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.parse.model import Binding, Import, ParsedFile
from edge.parse.python import parse_python
from edge.resolve.model import Target
from edge.resolve.python import PythonResolver

PACKAGE = [
    "pkg/__init__.py", "pkg/a.py", "pkg/b.py",
    "pkg/sub/__init__.py", "pkg/sub/c.py", "pkg/sub/deeper/__init__.py",
    "pkg/sub/deeper/d.py",
]


def resolve(paths, importer: str, source: str, resolver: PythonResolver | None = None):
    resolver = resolver or PythonResolver(paths)
    return resolver.resolve(parse_python(importer, textwrap.dedent(source).encode()))


def targets(paths, importer: str, source: str) -> list[str]:
    return [i.target for i in resolve(paths, importer, source).imports if i.target]


def externals(paths, importer: str, source: str) -> list[str]:
    return [i.external for i in resolve(paths, importer, source).imports if i.external]


# ---------------------------------------------------------------------------
# What a statement points at (grimp's rules)
# ---------------------------------------------------------------------------

def test_import_names_the_module_file_or_package_init():
    assert targets(PACKAGE, "main.py", "import pkg.sub.c") == ["pkg/sub/c.py"]
    assert targets(PACKAGE, "main.py", "import pkg.sub") == ["pkg/sub/__init__.py"]
    assert targets(PACKAGE, "main.py", "import pkg.sub.deeper.d as d") == ["pkg/sub/deeper/d.py"]


def test_import_of_an_attribute_falls_back_to_its_module_and_no_further():
    assert targets(PACKAGE, "main.py", "import pkg.sub.c.func") == ["pkg/sub/c.py"]
    assert targets(PACKAGE, "main.py", "import pkg.sub.nothing") == ["pkg/sub/__init__.py"]
    # Two levels below an existing module: grimp gives up, so does the resolver.
    found = resolve(PACKAGE, "main.py", "import pkg.sub.nothing.deeper")
    assert found.imports == []
    assert found.unresolved == ["pkg.sub.nothing.deeper"]


def test_from_import_points_at_submodules_or_at_the_package():
    assert targets(PACKAGE, "main.py", "from pkg import a") == ["pkg/a.py"]
    assert targets(PACKAGE, "main.py", "from pkg import VERSION") == ["pkg/__init__.py"]
    assert targets(PACKAGE, "main.py", "from pkg import a, VERSION, b, OTHER") == [
        "pkg/a.py", "pkg/__init__.py", "pkg/b.py"]  # one edge per distinct file
    assert targets(PACKAGE, "main.py", "from pkg.sub.c import helper") == ["pkg/sub/c.py"]
    assert targets(PACKAGE, "main.py", "from pkg.sub import *") == ["pkg/sub/__init__.py"]


def test_relative_imports_at_any_depth():
    importer = "pkg/sub/deeper/d.py"
    assert targets(PACKAGE, importer, "from . import x") == ["pkg/sub/deeper/__init__.py"]
    assert targets(PACKAGE, importer, "from .. import c") == ["pkg/sub/c.py"]
    assert targets(PACKAGE, importer, "from ..c import f") == ["pkg/sub/c.py"]
    assert targets(PACKAGE, importer, "from ... import a, b") == ["pkg/a.py", "pkg/b.py"]
    assert targets(PACKAGE, importer, "from ...sub.deeper import d") == []  # itself
    assert targets(PACKAGE, importer, "from ...sub import *") == ["pkg/sub/__init__.py"]
    # In a package's __init__, one dot is the package itself.
    assert targets(PACKAGE, "pkg/sub/__init__.py", "from .c import f") == ["pkg/sub/c.py"]
    assert targets(PACKAGE, "pkg/sub/__init__.py", "from .. import a") == ["pkg/a.py"]


def test_relative_imports_that_hit_nothing_are_unresolved():
    found = resolve(PACKAGE, "pkg/a.py", """\
        from .missing import x
        from .... import too_far
        from . import present_in_init
        """)
    assert [i.target for i in found.imports] == ["pkg/__init__.py"]
    assert found.unresolved == [".missing.x", "...."]


def test_no_self_loops():
    assert targets(PACKAGE, "pkg/__init__.py", "from . import VERSION\nimport pkg") == []
    assert targets(PACKAGE, "pkg/a.py", "from pkg import a\nfrom .a import thing") == []


def test_package_wins_over_module_of_the_same_name_and_py_over_pyi():
    paths = ["lib/__init__.py", "lib/util.py", "lib/util/__init__.py", "lib/fast.pyi",
             "lib/both.py", "lib/both.pyi"]
    assert targets(paths, "main.py", "import lib.util") == ["lib/util/__init__.py"]
    assert targets(paths, "main.py", "from lib import fast, both") == ["lib/fast.pyi",
                                                                       "lib/both.py"]


def test_dynamic_imports_and_type_checking_imports_are_edges():
    found = resolve(PACKAGE, "main.py", """\
        import importlib
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from pkg.a import A
        def load():
            return importlib.import_module("pkg.b")
        """)
    edges = [(i.target, i.line, i.type_only) for i in found.imports if i.target]
    assert edges == [("pkg/a.py", 4, True), ("pkg/b.py", 6, False)]


# ---------------------------------------------------------------------------
# Externals
# ---------------------------------------------------------------------------

def test_externals_are_top_level_packages_and_stdlib_counts():
    found = externals(PACKAGE, "pkg/a.py", """\
        from __future__ import annotations
        import os.path, numpy.linalg as la
        from django.db import models, connection
        from pkg import b
        """)
    assert found == ["__future__", "os", "numpy", "django"]


def test_a_missing_module_of_an_internal_package_is_unresolved_not_external():
    found = resolve(PACKAGE, "main.py", "import pkg._version.x\nfrom pkg.gone import y")
    assert [i.target for i in found.imports] == []
    assert found.unresolved == ["pkg._version.x", "pkg.gone.y"]


# ---------------------------------------------------------------------------
# Repository layouts
# ---------------------------------------------------------------------------

def test_src_layout_with_tests_and_docs_importing_the_package():
    paths = ["src/proj/__init__.py", "src/proj/core.py", "tests/conftest.py",
             "tests/test_core.py", "tests/helpers.py", "docs/conf.py", "setup.py"]
    assert targets(paths, "tests/test_core.py", """\
        from proj.core import run
        import helpers
        """) == ["src/proj/core.py", "tests/helpers.py"]
    assert targets(paths, "docs/conf.py", "import proj") == ["src/proj/__init__.py"]
    assert targets(paths, "src/proj/core.py", "from proj import VERSION") == [
        "src/proj/__init__.py"]


def test_sdist_layout_package_at_the_root_next_to_a_tests_tree_of_packages():
    paths = ["django/__init__.py", "django/db/__init__.py", "django/db/models.py",
             "tests/runtests.py", "tests/admin_views/__init__.py",
             "tests/admin_views/models.py", "tests/admin_views/tests.py",
             "scripts/manage_translations.py", "scripts/common.py"]
    tests = "tests/admin_views/tests.py"
    assert targets(paths, tests, """\
        from django.db import models
        from .models import Article
        from admin_views.models import Section
        """) == ["django/db/models.py", "tests/admin_views/models.py",
                 "tests/admin_views/models.py"]  # one edge per statement
    assert targets(paths, "tests/runtests.py", "import admin_views.models") == [
        "tests/admin_views/models.py"]
    assert targets(paths, "scripts/manage_translations.py", "import common\nimport django") \
        == ["scripts/common.py", "django/__init__.py"]
    # The package never sees the test suite's packages.
    assert externals(paths, "django/db/models.py", "import admin_views") == ["admin_views"]


def test_several_top_level_packages():
    paths = ["alpha/__init__.py", "alpha/x.py", "beta/__init__.py", "beta/y.py",
             "tools/gamma/__init__.py", "tools/gamma/z.py"]
    assert targets(paths, "alpha/x.py", "from beta import y\nimport gamma.z") == [
        "beta/y.py", "tools/gamma/z.py"]


def test_namespace_packages_without_init():
    paths = ["src/acme/billing/__init__.py", "src/acme/billing/invoice.py",
             "src/acme/shipping/__init__.py", "src/acme/shipping/route.py",
             "tests/test_billing.py"]
    assert targets(paths, "src/acme/billing/invoice.py", """\
        from acme.shipping import route
        import acme.shipping
        import acme
        """) == ["src/acme/shipping/route.py", "src/acme/shipping/__init__.py"]
    assert targets(paths, "tests/test_billing.py", "from acme.billing.invoice import I") == [
        "src/acme/billing/invoice.py"]
    # `import acme` names the namespace itself: no file, but not external either.
    found = resolve(paths, "tests/test_billing.py", "import acme")
    assert (found.imports, found.unresolved) == ([], [])


def test_pure_namespace_package_in_src_and_its_namespace_subpackages():
    paths = ["src/tool/cli.py", "src/tool/engine/run.py", "tests/test_cli.py",
             "lib/__init__.py", "lib/io/reader.py"]
    assert targets(paths, "tests/test_cli.py", "from tool.cli import main") == [
        "src/tool/cli.py"]
    assert targets(paths, "src/tool/cli.py", "from tool.engine import run\nfrom . import x") \
        == ["src/tool/engine/run.py"]
    # A directory without __init__.py inside a regular package still imports.
    assert targets(paths, "lib/__init__.py", "from .io.reader import read") == [
        "lib/io/reader.py"]


def test_loose_scripts_see_their_own_directory_first():
    paths = ["scripts/build.py", "scripts/utils.py", "utils/__init__.py", "app/__init__.py",
             "app/main.py"]
    assert targets(paths, "scripts/build.py", "import utils") == ["scripts/utils.py"]
    assert targets(paths, "app/main.py", "import utils") == ["utils/__init__.py"]


def test_ambiguous_names_prefer_the_importers_own_root():
    paths = ["svc_a/src/common/__init__.py", "svc_a/src/app_a/__init__.py",
             "svc_b/src/common/__init__.py", "svc_b/src/app_b/__init__.py"]
    assert targets(paths, "svc_a/src/app_a/__init__.py", "import common") == [
        "svc_a/src/common/__init__.py"]
    assert targets(paths, "svc_b/src/app_b/__init__.py", "import common") == [
        "svc_b/src/common/__init__.py"]
    assert targets(paths, "svc_a/src/app_a/__init__.py", "import app_b") == [
        "svc_b/src/app_b/__init__.py"]


def test_fixture_packages_do_not_capture_imports_of_the_package():
    paths = ["proj/__init__.py", "proj/io.py", "tests/data/json/__init__.py",
             "tests/test_io.py", "proj/tests/__init__.py", "proj/tests/samples/yaml/__init__.py",
             "proj/tests/test_yaml.py"]
    assert externals(paths, "proj/io.py", "import json\nimport yaml") == ["json", "yaml"]
    # The suite that owns the fixtures puts them on its sys.path.
    assert targets(paths, "tests/test_io.py", "import json") == ["tests/data/json/__init__.py"]
    assert targets(paths, "proj/tests/test_yaml.py", "import yaml") == [
        "proj/tests/samples/yaml/__init__.py"]


def test_a_package_named_in_its_own_root_stops_the_search():
    # `lib` exists in the importer's root without the submodule: Python stops there too.
    paths = ["lib/__init__.py", "other/lib/__init__.py", "other/lib/extra.py",
             "other/run.py"]
    found = resolve(paths, "main.py", "import lib.extra.thing")
    assert found.imports == [] and found.unresolved == ["lib.extra.thing"]
    assert targets(paths, "other/run.py", "import lib.extra.thing") == ["other/lib/extra.py"]


# ---------------------------------------------------------------------------
# Scope: what local names point at
# ---------------------------------------------------------------------------

def test_scope_of_each_binding_form():
    scope = resolve(PACKAGE, "main.py", """\
        import pkg.sub.c
        import pkg.a as alias
        from pkg import b, VERSION as V
        from pkg.sub.c import helper as h
        from pkg.sub import *
        import numpy as np
        """).scope
    assert scope == {
        "pkg.sub.c": Target("pkg/sub/c.py"),
        "pkg.sub": Target("pkg/sub/__init__.py"),  # bound implicitly by `import pkg.sub.c`
        "pkg": Target("pkg/__init__.py"),
        "alias": Target("pkg/a.py"),
        "b": Target("pkg/b.py"),
        "V": Target("pkg/__init__.py", "VERSION"),
        "h": Target("pkg/sub/c.py", "helper"),
        "*": Target("pkg/sub/__init__.py", "*"),
    }


def test_function_level_imports_bind_in_their_function_only():
    resolved = resolve(PACKAGE, "main.py", """\
        def f():
            from pkg import a as name
            from pkg import b as only_local
            import pkg.sub.c
        from pkg.sub import c as name
        """)
    assert resolved.scope == {"name": Target("pkg/sub/c.py")}
    assert resolved.function_scopes == {"f": {
        "name": Target("pkg/a.py"), "only_local": Target("pkg/b.py"),
        "pkg.sub.c": Target("pkg/sub/c.py")}}


def test_relative_bindings():
    scope = resolve(PACKAGE, "pkg/sub/c.py", "from ..a import thing\nfrom . import deeper").scope
    assert scope == {"thing": Target("pkg/a.py", "thing"),
                     "deeper": Target("pkg/sub/deeper/__init__.py")}


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

PARTS = ["a", "b", "c", "src", "tests"]
MODULES = st.lists(st.sampled_from(PARTS), min_size=1, max_size=4)
FILES = st.lists(
    st.tuples(st.lists(st.sampled_from(PARTS), max_size=3),
              st.sampled_from(["__init__.py", "a.py", "b.py", "c.py", "x.pyi"])),
    min_size=1, max_size=25,
).map(lambda files: sorted({"/".join([*d, f]) for d, f in files}))
IMPORTS = st.lists(st.builds(
    lambda module, level, names, kind: Import(
        ".".join(module), 1, kind, level=level if kind == "from" else 0,
        names=tuple(names) if kind == "from" else (),
        bindings=tuple(Binding(n, n) for n in names) if kind == "from"
        else (Binding(".".join(module), None),)),
    MODULES, st.integers(0, 4), st.lists(st.sampled_from(PARTS + ["*"]), min_size=1,
                                         max_size=3),
    st.sampled_from(["import", "from"])), max_size=8)


@settings(max_examples=300, deadline=None)
@given(FILES, st.data())
def test_targets_are_repository_files_and_never_the_importer(paths, data):
    importer = data.draw(st.sampled_from(paths))
    imports = data.draw(IMPORTS)
    resolver = PythonResolver(paths)
    found = resolver.resolve(ParsedFile(importer, "python", 1, imports=imports))
    for edge in found.imports:
        assert (edge.target is None) != (edge.external is None)
        assert edge.target is None or (edge.target in paths and edge.target != importer)
    assert all(t.path in paths for t in found.scope.values())
