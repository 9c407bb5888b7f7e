"""parse_python on real tree-sitter trees: symbols, every import form, calls, bad input."""
from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.parse.expression import _LAYOUT, JAVASCRIPT, PYTHON, drop_layout
from edge.parse.model import Binding, Import
from edge.parse.python import DOCSTRING_CHARS, parse_python


def parse(source: str, path: str = "pkg/mod.py"):
    return parse_python(path, textwrap.dedent(source).encode())


def symbols(source: str) -> dict:
    return {s.qualname: s for s in parse(source).symbols}


def only_import(source: str) -> Import:
    imports = parse(source).imports
    assert len(imports) == 1, imports
    return imports[0]


# ---------------------------------------------------------------------------
# Symbols
# ---------------------------------------------------------------------------

NESTED = """\
class Outer:
    class Inner:
        def method(self):
            pass

    async def run(self):
        def helper():
            class Local:
                def go(self):
                    pass
            return Local

def top():
    def inner():
        def innermost():
            pass
"""


def test_kinds_qualnames_and_parents():
    found = symbols(NESTED)
    expected = {
        "Outer": ("class", None),
        "Outer.Inner": ("class", "Outer"),
        "Outer.Inner.method": ("method", "Outer.Inner"),
        "Outer.run": ("method", "Outer"),  # async def is a method too
        "Outer.run.helper": ("function", "Outer.run"),
        "Outer.run.helper.Local": ("class", "Outer.run.helper"),
        "Outer.run.helper.Local.go": ("method", "Outer.run.helper.Local"),
        "top": ("function", None),
        "top.inner": ("function", "top"),
        "top.inner.innermost": ("function", "top.inner"),
    }
    assert {q: (s.kind, s.parent) for q, s in found.items()} == expected
    assert found["Outer.Inner.method"].name == "method"


def test_line_ranges_are_one_based_and_decorated_defs_start_at_the_decorator():
    found = symbols("""\
        import functools

        @functools.lru_cache(
            maxsize=None)
        def cached(x):
            return x

        class A:
            @property
            def value(self):
                return 1
        """)
    assert (found["cached"].start_line, found["cached"].end_line) == (3, 6)
    assert (found["A"].start_line, found["A"].end_line) == (8, 11)
    assert (found["A.value"].start_line, found["A.value"].end_line) == (9, 11)


def test_a_method_under_if_in_a_class_body_is_still_a_method():
    found = symbols("""\
        class A:
            if True:
                def m(self):
                    pass
        """)
    assert found["A.m"].kind == "method"


@pytest.mark.parametrize("body, expected", [
    ('"""One line."""', "One line."),
    ("'single quotes'", "single quotes"),
    ('r"""Raw \\d+."""', "Raw \\d+."),
    ("# a comment first\n    '''After a comment.'''", "After a comment."),
    ('"""\n    Summary.\n\n        Indented detail.\n    """', "Summary.\n\n    Indented detail."),
    ("x = 1\n    'not first'", None),
    ('f"""{x}"""', None),  # an f-string is no docstring
    ("pass", None),
])
def test_docstrings(body, expected):
    source = f"def f():\n    {body}\n"
    assert parse_python("m.py", source.encode()).symbols[0].docstring == expected


def test_long_docstrings_are_cut():
    text = "word " * 2000
    doc = symbols(f'class A:\n    """{text}"""\n')["A"].docstring
    assert len(doc) == DOCSTRING_CHARS
    assert doc.startswith("word word")


def test_bases_as_dotted_names():
    found = symbols("""\
        class A(Base, models.Model, typing.Generic[T], *mixins, metaclass=Meta):
            pass

        class B(
            pkg .
            sub.Base,  # a comment
        ):
            pass

        class C:
            pass
        """)
    assert found["A"].bases == ("Base", "models.Model", "typing.Generic")
    assert found["B"].bases == ("pkg.sub.Base",)
    assert found["C"].bases == ()
    assert found["A"].docstring is None


# ---------------------------------------------------------------------------
# Imports
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("source, module, level, names, bindings", [
    ("import a", "a", 0, (), [("a", None)]),
    ("import a.b.c", "a.b.c", 0, (), [("a.b.c", None)]),
    ("import a.b as c", "a.b", 0, (), [("c", None)]),
    ("from a.b import c", "a.b", 0, ("c",), [("c", "c")]),
    ("from a.b import (c as d,\n    e,\n)", "a.b", 0, ("c", "e"), [("d", "c"), ("e", "e")]),
    ("from . import x", "", 1, ("x",), [("x", "x")]),
    ("from .mod import y as z", "mod", 1, ("y",), [("z", "y")]),
    ("from ..a import b", "a", 2, ("b",), [("b", "b")]),
    ("from .... import deep", "", 4, ("deep",), [("deep", "deep")]),
    ("from x import *", "x", 0, ("*",), [("*", "*")]),
    ("from .. import *", "", 2, ("*",), [("*", "*")]),
    ("from __future__ import annotations", "__future__", 0, ("annotations",),
     [("annotations", "annotations")]),
    ("from a \\\n  import b", "a", 0, ("b",), [("b", "b")]),
])
def test_import_forms(source, module, level, names, bindings):
    found = only_import(source)
    assert (found.module, found.level, found.names) == (module, level, names)
    assert found.bindings == tuple(Binding(local, name) for local, name in bindings)
    assert found.kind == ("import" if source.startswith("import") else "from")
    assert found.line == 1
    assert not found.type_only and not found.in_function


def test_one_import_per_module_of_an_import_statement():
    imports = parse("import os, a.b as ab, c\n").imports
    assert [(i.module, i.bindings) for i in imports] == [
        ("os", (Binding("os", None),)),
        ("a.b", (Binding("ab", None),)),
        ("c", (Binding("c", None),)),
    ]


def test_type_checking_blocks_mark_imports_but_not_their_else_branches():
    imports = parse("""\
        import typing
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from a import A
            try:
                import b
            except ImportError:
                pass
        elif other:
            import c
        else:
            import d
        if typing.TYPE_CHECKING:
            import e
        if not TYPE_CHECKING:
            import f
        import g
        if TYPE_CHECKING: import h
        """).imports
    marked = {i.module: i.type_only for i in imports}
    assert marked == {"typing": False, "a": True, "b": True, "c": False, "d": False, "e": True,
                      "f": False, "g": False, "h": True}


def test_imports_inside_functions_are_deferred_but_class_bodies_are_not():
    imports = parse("""\
        try:
            import fast
        except ImportError:
            import slow

        class A:
            import in_class

            def m(self):
                import in_method

        def f(x=__import__("in_default")):
            def g():
                from . import in_nested
        """).imports
    deferred = {i.module or i.names[0]: i.in_function for i in imports}
    assert deferred == {"fast": False, "slow": False, "in_class": False, "in_method": True,
                        "in_default": False, "in_nested": True}


def test_literal_dynamic_imports_are_imports_without_bindings():
    imports = parse("""\
        import importlib
        from importlib import import_module
        plugin = importlib.import_module("plugins.core")
        other = import_module('plugins.extra')
        legacy = __import__("legacy.mod")
        skipped = importlib.import_module(name)
        relative = importlib.import_module(".sibling", __package__)
        formatted = importlib.import_module(f"plugins.{name}")
        generated = import_module(m for m in mods)
        def load():
            return importlib . import_module(
                "plugins.late")
        """).imports
    dynamic = [(i.module, i.line, i.kind, i.bindings, i.function) for i in imports
               if not i.bindings]
    assert dynamic == [("plugins.core", 3, "import", (), None),
                       ("plugins.extra", 4, "import", (), None),
                       ("legacy.mod", 5, "import", (), None),
                       ("plugins.late", 12, "import", (), "load")]


# ---------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------

def test_calls_with_their_callers():
    calls = parse("""\
        setup()

        @register("x")
        class A:
            helper()

            def m(self, default=make_default()):
                self.other()
                a.b.c.d(1)
                (lambda: inner_lambda())()
                f()()
                items[0]()
                "".join(parts)

        def outer():
            def nested():
                deep.call()
            nested()
        """).calls
    assert [(c.caller, c.callee, c.line) for c in calls] == [
        (None, "setup", 1),
        (None, "register", 3),
        (None, "helper", 5),
        (None, "make_default", 7),  # defaults run where the def runs
        ("A.m", "self.other", 8),
        ("A.m", "a.b.c.d", 9),
        ("A.m", "inner_lambda", 10),
        ("A.m", "f", 11),  # f() is a call on a name; f()() itself is not recorded
        ("outer.nested", "deep.call", 17),
        ("outer", "nested", 18),
    ]


def test_a_chain_split_over_lines_is_one_dotted_name():
    calls = parse("""\
        def f():
            (x.  # why
                y.z)()
            a  .  b()
        """).calls
    assert [c.callee for c in calls] == ["a.b"]  # a parenthesised callee is not a plain chain
    calls = parse("def f():\n    return (obj\n        .method\n        .call())\n").calls
    assert [(c.callee, c.line) for c in calls] == [("obj.method.call", 2)]


# ---------------------------------------------------------------------------
# Bad input and counting
# ---------------------------------------------------------------------------

def test_syntax_error_keeps_what_parsed_and_says_where():
    parsed = parse("""\
        import os

        def good():
            return os.getcwd()

        def broken(:
            pass

        class After:
            pass
        """)
    assert parsed.error == "syntax error near line 6"
    assert "good" in {s.qualname for s in parsed.symbols}
    assert "After" in {s.qualname for s in parsed.symbols}
    assert [i.module for i in parsed.imports] == ["os"]
    assert ("good", "os.getcwd") in {(c.caller, c.callee) for c in parsed.calls}


@pytest.mark.parametrize("source, line", [
    ("import os\n\n\nx = (1,\n", 4),  # an unclosed bracket
    ("import os\n1syntax_error\n", 2),  # a missing newline the tree does not show
    ("def ok():\n    pass\ndef bad(:\n    pass\n", 3),
])
def test_syntax_error_lines(source, line):
    assert parse_python("bad.py", source.encode()).error == f"syntax error near line {line}"


def test_clean_file_has_no_error_and_counts_lines():
    assert parse_python("a.py", b"x = 1\ny = 2\n").error is None
    assert parse_python("a.py", b"x = 1\ny = 2\n").loc == 2
    assert parse_python("a.py", b"x = 1\ny = 2").loc == 2
    assert parse_python("a.py", b"").loc == 0
    empty = parse_python("a.py", b"")
    assert (empty.symbols, empty.imports, empty.calls, empty.error) == ([], [], [], None)


def test_non_utf8_bytes_do_not_break_extraction():
    source = "# -*- coding: latin-1 -*-\ndef caf\xe9():\n    'd\xe9j\xe0'\n".encode("latin-1")
    parsed = parse_python("latin.py", source)
    assert parsed.path == "latin.py" and parsed.language == "python"
    assert all(isinstance(s.name, str) for s in parsed.symbols)


def test_crlf_line_endings():
    parsed = parse_python("w.py", b"import os\r\n\r\ndef f():\r\n    os.sep()\r\n")
    assert parsed.symbols[0].start_line == 3
    assert [(c.callee, c.line) for c in parsed.calls] == [("os.sep", 4)]
    assert parsed.error is None


PYTHONISH = st.lists(st.sampled_from([
    "def f(x):\n", "class C(B):\n", "    ", "        ", "import a.b\n", "from . import x\n",
    "from ..m import (y as z)\n", "if TYPE_CHECKING:\n", "    pass\n", "f(", ")", "a.b(c)\n",
    '"""doc"""\n', "'", "@dec\n", "\n", ":", "lambda: g()\n", "\xe9", "\\\n", "*",
]), max_size=40).map("".join)


@settings(max_examples=200, deadline=None)
@given(st.one_of(PYTHONISH, st.text(max_size=200)))
def test_any_text_parses_to_consistent_records(source):
    data = source.encode()
    parsed = parse_python("x.py", data)
    last = max(parsed.loc, 1)
    for symbol in parsed.symbols:
        assert 1 <= symbol.start_line <= symbol.end_line <= last
        assert symbol.qualname.endswith(symbol.name)
        assert symbol.parent is None or symbol.qualname == f"{symbol.parent}.{symbol.name}"
    assert all(1 <= i.line <= last and i.level >= 0 for i in parsed.imports)
    assert all(1 <= c.line <= last and c.callee for c in parsed.calls)
    qualnames = {s.qualname for s in parsed.symbols}
    assert all(c.caller is None or c.caller in qualnames for c in parsed.calls)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab_(),.#/*\\ \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u3000")),
               max_size=60), st.sampled_from([PYTHON, JAVASCRIPT]))
def test_dropping_layout_without_comments_is_the_full_rule(raw, syntax):
    assert drop_layout(raw, syntax) == _LAYOUT[syntax][0].sub("", raw)


def test_floor_division_is_not_a_comment_and_a_comment_is_one_without_a_space():
    parsed = parse("""\
        def f(n):
            box = Box(n // 2)
            make(n // 2, 3).run()
            other = Box(1,  #see Box(
                        2)
            return other
        """)
    assert {(f.target, f.value) for f in parsed.facts} >= {("box", "Box()"), ("other", "Box()")}
    assert ("f", "make().run", 3) in [(c.caller, c.callee, c.line) for c in parsed.calls]


def test_a_for_loop_variable_is_an_element_and_a_subscript_callee_takes_one():
    parsed = parse("""\
        def f(items, rows):
            for item in items:
                item.run()
            for row in self.rows():
                row.cells[0].draw()
            for a, b in pairs:
                pass
            for c in items[1:]:
                pass
            items[1:].run()
            other[i].method()
        """)
    assert [(f.scope, f.target, f.value, f.line) for f in parsed.facts] == [
        ("f", "item", "items[]", 2), ("f", "row", "self.rows()[]", 4)]
    assert [(c.callee, c.line) for c in parsed.calls] == [
        ("item.run", 3), ("self.rows", 4), ("row.cells[].draw", 5), ("other[].method", 11)]
