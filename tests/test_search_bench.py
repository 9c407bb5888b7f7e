"""The search benchmark's blanking and task extraction (bench/docstrings.py).

Small synthetic files only: the blanked copy keeps every line where it was,
still parses, holds nothing of any docstring, and the queries are the first
sentences of the docstrings, named as the graph names their functions.
"""
from __future__ import annotations

import ast
import textwrap

import pytest

from bench.docstrings import (
    blank_source,
    check_blanked,
    first_sentence,
    function_tasks,
    python_definition_lines,
    symbol_lines,
    unique_queries,
)

PYTHON = textwrap.dedent('''\
    """Module summary line.

    More about the module.
    """
    from __future__ import annotations

    import functools


    def plain(a, b):
        """Add two numbers together. Then more words."""
        return a + b


    def only_doc():
        """Nothing but a docstring,
        over two lines."""


    def same_line(): "Inline docstring here."; return 1


    class Shape:
        """A shape with corners.

        Args:
            corners: how many.
        """

        @functools.cache
        @staticmethod
        def area(x):
            # a comment before the docstring
            r"""Compute the area of the shape, e.g. a square.

            >>> Shape.area(2)
            4
            """
            return x * x

        def outer(self):
            """Return a closure over the shape."""
            def inner():
                """Inner helper for the closure."""
                return self
            return inner


    class Empty:
        """Only a docstring in this class body."""


    def not_a_docstring():
        x = 1
        "Just a string statement in the body."
        return x
    ''')

JAVASCRIPT = textwrap.dedent('''\
    /**
     * File header, not attached to anything.
     */

    const glob = "/**/*.js";

    /**
     * Parse the header into a map of fields.
     *
     * @param {string} header - the raw header
     * @returns {Map}
     */
    export function parseHeader(header) {
      return new Map(/** @type {any} */ (header));
    }

    class Client {
      /**
       * Send a {@link Message} to the server. Retries on failure.
       */
      send(message) {
        return message;
      }

      /** Close the connection politely. */
      close() {}
    }
    ''')

TYPESCRIPT = textwrap.dedent('''\
    export class Cache<T> {
      /**
       * Returns the cached value for `key`, if any.
       */
      get(key: string): T | undefined {
        return undefined;
      }
    }

    /**
     * Builds a cache from the given entries.
     * @param entries - initial entries
     */
    export const build = <T,>(entries: [string, T][]): Cache<T> => new Cache<T>();
    ''')

PY_DOCSTRINGS = ["Module summary line", "More about the module", "Add two numbers",
                 "Then more words", "Nothing but a docstring", "over two lines",
                 "Inline docstring here", "A shape with corners", "how many",
                 "Compute the area", "Shape.area(2)", "Return a closure",
                 "Inner helper", "Only a docstring in this class"]
JS_DOCSTRINGS = ["File header", "Parse the header", "the raw header", "@returns",
                 "Send a", "Retries on failure", "Close the connection", "@type"]
TS_DOCSTRINGS = ["Returns the cached value", "Builds a cache", "initial entries"]


@pytest.mark.parametrize("source, language, removed", [
    (PYTHON, "python", PY_DOCSTRINGS),
    (JAVASCRIPT, "javascript", JS_DOCSTRINGS),
    (TYPESCRIPT, "typescript", TS_DOCSTRINGS),
])
def test_blanking_keeps_lines_and_removes_every_docstring(source, language, removed):
    original = source.encode()
    blanked, count = blank_source(original, language)
    assert count > 0
    assert blanked.count(b"\n") == original.count(b"\n")
    assert symbol_lines("f", blanked, language) == symbol_lines("f", original, language)
    assert check_blanked("f", original, blanked, language) == []
    text = blanked.decode()
    for words in removed:
        assert words not in text, words


def test_python_blanked_copy_still_compiles_with_the_same_definitions():
    original = PYTHON.encode()
    blanked, count = blank_source(original, "python")
    assert count == 9  # module, plain, only_doc, same_line, Shape, area, outer, inner, Empty
    compile(blanked, "<blanked>", "exec")  # __future__ import still first
    assert python_definition_lines(blanked) == python_definition_lines(original)
    tree = ast.parse(blanked)
    owners = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef,
                                                                   ast.ClassDef)))]
    assert all(ast.get_docstring(o) is None for o in owners)
    # What was not a docstring stays, and a body left empty gets `...`.
    assert "Just a string statement in the body." in blanked.decode()
    lines = blanked.decode().split("\n")
    assert lines[0] == "" and lines[3] == ""
    assert lines[16] == "    ..."  # only_doc's docstring ended on its second line
    assert lines[19] == 'def same_line(): ...; return 1'


def test_javascript_blanking_leaves_look_alikes_and_separates_tokens():
    blanked = blank_source(JAVASCRIPT.encode(), "javascript")[0].decode()
    assert 'const glob = "/**/*.js";' in blanked
    assert "return new Map(  (header));" in blanked
    lines = blanked.split("\n")
    assert lines[6:12] == [""] * 6  # the JSDoc block of parseHeader: empty lines
    assert lines[12] == "export function parseHeader(header) {"


def test_blanking_a_file_without_docstrings_changes_nothing():
    source = b"def f(x):\n    return x  # no docstring\n"
    assert blank_source(source, "python") == (source, 0)
    source = b"// a line comment\n/* a block comment */\nfunction f() {}\n"
    assert blank_source(source, "javascript") == (source, 0)


@pytest.mark.parametrize("docstring, query", [
    ("Add two numbers together. Then more words.", "Add two numbers together"),
    ("Compute the area of the shape, e.g. a square.\n\n>>> area(2)",
     "Compute the area of the shape, e.g. a square"),
    ("Return the :class:`~pkg.mod.Thing` for ``name``!", "Return the Thing for name"),
    ("Send a {@link Message} to the server. Retries.", "Send a Message to the server"),
    ("See {@link Foo#bar the bar method} for more", "See the bar method for more"),
    ("Converts a thing.\n\n<span class=\"informal\">Long story</span>",
     "Converts a thing"),
    ("Emits <b>values</b> as a [stream](http://x.y) now ![](pic.png)",
     "Emits values as a stream now"),
    ("Summary spread over\ntwo lines without a stop\n\nSecond paragraph.",
     "Summary spread over two lines without a stop"),
    ("Do the thing\nArgs:\n    x: the x.", "Do the thing"),
    ("Parse version 2.0 strings quickly. Next.", "Parse version 2.0 strings quickly"),
    ("Make a **bold** move with *args.", "Make a bold move with *args"),
])
def test_first_sentence(docstring, query):
    assert first_sentence(docstring) == query


def test_tasks_name_functions_as_the_graph_does():
    tasks = function_tasks("p", "pkg/mod.py", PYTHON.encode(), "python")
    found = {t.qualname: t for t in tasks}
    assert set(found) == {"plain", "only_doc", "same_line", "Shape.area", "Shape.outer",
                          "Shape.outer.inner"}  # classes and non-docstrings left out
    area = found["Shape.area"]
    assert (area.kind, area.start_line, area.path) == ("method", 30, "pkg/mod.py")
    assert area.query == "Compute the area of the shape, e.g. a square"
    assert found["Shape.outer.inner"].kind == "function"
    assert found["plain"].query == "Add two numbers together"

    js = {t.qualname: t for t in function_tasks("p", "a.js", JAVASCRIPT.encode(),
                                                "javascript")}
    assert set(js) == {"parseHeader", "Client.send", "Client.close"}
    assert js["parseHeader"].query == "Parse the header into a map of fields"
    assert js["parseHeader"].start_line == 13
    ts = {t.qualname: t.query for t in function_tasks("p", "c.ts", TYPESCRIPT.encode(),
                                                      "typescript")}
    assert ts == {"Cache.get": "Returns the cached value for key, if any",
                  "build": "Builds a cache from the given entries"}


def test_tasks_leave_out_dunders_tests_short_and_shared_queries():
    source = textwrap.dedent('''\
        class A:
            def __init__(self):
                """Make a new instance of A."""
            def test_thing(self):
                """Check that the thing works."""
            def short(self):
                """Too short."""
            def one(self):
                """Return the value of the field."""
            def two(self):
                """Return the value of the field."""
            def three(self):
                """Return another value entirely."""
        ''').encode()
    tasks = function_tasks("p", "a.py", source, "python")
    assert [t.qualname for t in tasks] == ["A.one", "A.two", "A.three"]
    assert [t.qualname for t in unique_queries(tasks)] == ["A.three"]


def test_the_benchmark_reads_back_every_item_of_a_markdown_context():
    """bench/search_quality.py scores the default (markdown) context: its reading of the
    `path:start-end` markers gives back exactly the items the query layer rendered, and
    a look-alike line inside the code is not one."""
    from bench.search_quality import markdown_items
    from cloud.query.context import Item, render
    from shared.graph.model import Node, NodeKind

    def node(i, kind, path, start, end, language):
        return Node(id=i, kind=kind, path=path, name="n", qualname="n", start_line=start,
                    end_line=end, language=language)

    items = [Item(node(1, NodeKind.FUNCTION, "pkg/a b.py", 3, 5, "python"), 0, "seed", True,
                  ["def f():", "    # pkg/a b.py:1-2", "    return 1"]),
             Item(node(2, NodeKind.CLASS, "src/x.ts", 10, 40, "typescript"), 1, "seed", False,
                  ["class C {"]),
             Item(node(3, NodeKind.FUNCTION, "pkg/a b.py", 20, 21, "python"), 2, "seed", True,
                  ["def g():", "    pass"])]
    assert markdown_items(render(items, "# Context: x\n")) == [
        {"path": "pkg/a b.py", "start_line": 3, "end_line": 5, "form": "body"},
        {"path": "pkg/a b.py", "start_line": 20, "end_line": 21, "form": "body"},
        {"path": "src/x.ts", "start_line": 10, "end_line": 10, "form": "signature"}]
