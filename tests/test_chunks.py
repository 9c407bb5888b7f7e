"""Code chunks from real temporary repositories analysed by edge.analyze."""
from __future__ import annotations

from pathlib import Path

import pytest

from edge.analyze import analyze
from edge.embed.chunks import CODE_CHAR_BUDGET, WINDOW_TOKENS, build_chunks, header
from edge.embed.minilm import model_dir
from shared.graph.model import NodeKind

PY_MODULE = '''\
"""A module."""
import functools


def plain(a, b):
    """Add."""
    return a + b


@functools.cache
def decorated(x):
    def inner():
        return x
    return inner


class Shape:
    """A shape."""

    def area(self):
        return 0

    @property
    def name(self):
        return "shape"
'''

TS_MODULE = '''\
export class Stack<T> {
  private items: T[] = [];
  push(item: T): void {
    this.items.push(item);
  }
}

export function top<T>(s: Stack<T>): T | undefined {
  return undefined;
}
'''


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def chunks_of(root: Path):
    return build_chunks(root, analyze(root, "https://example.com/o/r", workers=1).graph)


def test_one_chunk_per_symbol_with_header_and_its_exact_lines(tmp_path):
    root = write(tmp_path, {"pkg/shapes.py": PY_MODULE, "web/stack.ts": TS_MODULE})
    graph = analyze(root, "https://example.com/o/r", workers=1).graph
    chunks = build_chunks(root, graph)

    symbols = {(n.path, n.qualname, n.kind.value) for n in graph.nodes
               if n.kind is not NodeKind.FILE}
    assert {(c.path, c.qualname, c.kind) for c in chunks} == symbols
    assert len(chunks) == len(symbols)
    assert {"decorated.inner", "Shape.area", "Shape.name", "Stack.push", "top"} <= {
        c.qualname for c in chunks}
    for chunk in chunks:
        lines = (root / chunk.path).read_text().split("\n")
        head, code = chunk.text.split("\n", 2)[:2], chunk.text.split("\n", 2)[2]
        assert "\n".join(head) == header(chunk.path, chunk.qualname)
        assert head[0] == f"{chunk.path}: {chunk.qualname}"
        assert code == "\n".join(lines[chunk.start_line - 1:chunk.end_line])

    by_name = {c.qualname: c for c in chunks}
    assert by_name["decorated"].text.split("\n")[2] == "@functools.cache"
    assert '"""A shape."""' in by_name["Shape"].text and "def area" in by_name["Shape"].text
    assert by_name["Stack.push"].text.endswith("this.items.push(item);\n  }")


def test_a_file_without_symbols_is_one_chunk_and_an_empty_file_none(tmp_path):
    root = write(tmp_path, {
        "settings.py": "DEBUG = True\nNAMES = ['a', 'b']\n",
        "index.js": "export * from './a.js';\n",
        "a.js": "",
        "blank.py": "\n   \n\n",
        "lib.py": "def f():\n    return 1\n",
    })
    chunks = {c.path: c for c in chunks_of(root)}

    assert set(chunks) == {"settings.py", "index.js", "lib.py"}
    settings = chunks["settings.py"]
    assert (settings.kind, settings.qualname, settings.start_line) == ("file", "", 1)
    assert settings.text == "settings.py\nsettings\nDEBUG = True\nNAMES = ['a', 'b']"
    assert chunks["index.js"].text == "index.js\nindex\nexport * from './a.js';"
    assert chunks["lib.py"].kind == "function"  # a file with symbols has no file chunk


def test_long_code_is_cut_where_the_window_is_already_full(tmp_path):
    from tokenizers import Tokenizer

    body = "".join(f"    total_{i} = compute(value_{i}, factor={i}) + offset\n" for i in range(5000))
    root = write(tmp_path, {"big.py": f"def huge(value):\n{body}    return total_0\n",
                            "small.py": "def tiny():\n    return 1\n"})
    chunks = {c.qualname: c for c in chunks_of(root)}
    huge = chunks["huge"]

    assert (huge.start_line, huge.end_line) == (1, 5002)  # the node's range, not the cut's
    code_lines = huge.text.split("\n")[2:]
    assert len(code_lines) < 200
    assert sum(len(line.strip()) for line in code_lines) <= CODE_CHAR_BUDGET
    assert code_lines[:2] == ["def huge(value):", "    total_0 = compute(value_0, factor=0) + offset"]
    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    assert len(tokenizer.encode(huge.text).ids) > WINDOW_TOKENS  # the cut left the window full
    assert chunks["tiny"].text == "small.py: tiny\ntiny\ndef tiny():\n    return 1"


def test_one_overlong_line_is_cut_inside_the_line(tmp_path):
    line = "    data = [" + ", ".join(str(i) for i in range(3000)) + "]"
    root = write(tmp_path, {"table.py": f"def table():\n{line}\n    return data\n"})
    (chunk,) = chunks_of(root)
    code_lines = chunk.text.split("\n")[2:]
    assert code_lines[0] == "def table():"
    assert code_lines[1].startswith("    data = [0, 1, 2")
    assert len(code_lines) == 2 and len(code_lines[1].strip()) < len(line.strip())


def test_unreadable_and_undecodable_files_are_skipped_the_rest_chunked(tmp_path):
    root = write(tmp_path, {"gone.py": "def gone():\n    pass\n",
                            "garbled.js": "function g() {}\n",
                            "ok.py": "def ok():\n    pass\n"})
    graph = analyze(root, "https://example.com/o/r", workers=1).graph
    (root / "gone.py").unlink()  # deleted between parse and chunking
    (root / "garbled.js").write_bytes(b"function g() { return '\xff\xfe'; }\n")

    chunks = build_chunks(root, graph)

    assert [(c.path, c.qualname) for c in chunks] == [("ok.py", "ok")]


def test_lines_match_the_parser_across_form_feeds_crlf_and_declared_encodings(tmp_path):
    root = write(tmp_path, {
        "feed.py": "x = 1\n\x0c\ndef after_feed():\n    return 2\n",
        "dos.py": b"def dos():\r\n    return 3\r\n",
        "latin.py": "# -*- coding: latin-1 -*-\ndef caf\u00e9_name():\n    return 'caf\u00e9'\n"
                    .encode("latin-1"),
    })
    chunks = {c.qualname: c for c in chunks_of(root)}

    assert chunks["after_feed"].text == \
        "feed.py: after_feed\nafter feed\ndef after_feed():\n    return 2"
    assert chunks["dos"].text == "dos.py: dos\ndos\ndef dos():\n    return 3"
    assert chunks["caf\u00e9_name"].text.endswith("return 'caf\u00e9'")


@pytest.mark.parametrize("path, qualname, expected", [
    ("a/b.py", "", "a/b.py\nb"),
    ("a/b.py", "C.m", "a/b.py: C.m\nm (in c)"),
    ("src/DateTime.js", "DateTime.fromISO", "src/DateTime.js: DateTime.fromISO\n"
                                            "from iso (in date time)"),
    ("q.py", "Outer.Inner.send_email", "q.py: Outer.Inner.send_email\nsend email (in outer inner)"),
    ("web/http_client.ts", "", "web/http_client.ts\nhttp client"),
])
def test_header_says_the_name_in_words(path, qualname, expected):
    assert header(path, qualname) == expected
