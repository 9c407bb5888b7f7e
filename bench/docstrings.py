"""Docstrings out of the index, first sentences into the questions.

The docstring→code benchmark (bench/search_quality.py) asks for a function by
the first sentence of its docstring while the index holds the code with every
docstring removed, so the question's words are never found in what is indexed.
This module does both halves, on one file at a time:

Blanking (`blank_source`): the indexed copy of a file loses every docstring
and keeps every line where it was, so a function has the same start and end
line (and the same qualified name) in the index as in the original.
- Python: the first statement of a module, class or function body when it is a
  string literal (what `ast.get_docstring` reads; f-strings and bytes too, a
  harmless superset). A docstring alone on its lines becomes as many empty
  lines; one that shares a line with code (`def f(): "doc"`), or is the only
  statement of its body, becomes `...` followed by the empty lines, so the file
  still parses. A module docstring never becomes `...`: a statement there would
  put `from __future__` imports out of place.
- JS/TS: every `/** ... */` block (JSDoc), wherever it stands, becomes as many
  empty lines; one inside a line of code (`/** @type {X} */ (y)`) becomes a
  space and the line breaks it held, which keeps automatic semicolon insertion
  as it was (a comment with a line break counts as one).
Both work on tree-sitter's byte offsets, so comments and strings that merely
look like docstrings (`"/**/*.js"`) are left alone.

Queries (`first_sentence`): the docstring as the product's own parser reads it
(edge.parse: Python's cleaned docstring, JSDoc's description before the first
tag), cut to its first paragraph, stopped at a section heading (`Args:`,
`:param`, `>>>`, `@returns`...), stripped of markup (reST roles and literals,
Markdown links, images and emphasis, HTML tags, `{@link ...}`), then cut at
the first `.`, `!` or `?` followed by a space (not after "e.g.", "i.e.",
"etc.", "vs."). `function_tasks` lists one task per documented function or
method with the graph's own naming: path, qualified name, kind, start line
(decorators included) and end line.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache

import tree_sitter_javascript
import tree_sitter_python
import tree_sitter_typescript
from tree_sitter import Language, Node, Parser, Query, QueryCursor

from edge.parse.javascript import parse_javascript
from edge.parse.model import Symbol
from edge.parse.python import parse_python

_GRAMMARS = {
    "python": tree_sitter_python.language,
    "javascript": tree_sitter_javascript.language,
    "typescript": tree_sitter_typescript.language_typescript,
    "tsx": tree_sitter_typescript.language_tsx,
}
_STRING_TYPES = ("string", "concatenated_string")
MIN_QUERY_WORDS = 3


@cache
def _language(language: str) -> Language:
    return Language(_GRAMMARS[language]())


@cache
def _query(language: str) -> Query:
    if language == "python":
        return Query(_language(language), "(class_definition body: (block) @body)\n"
                                          "(function_definition body: (block) @body)")
    return Query(_language(language), "(comment) @comment")


def _tree(source: bytes, language: str):
    return Parser(_language(language)).parse(source)


# ---------------------------------------------------------------------------
# Blanking
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Cut:
    start: int  # byte range of the literal or comment
    end: int
    placeholder: bool  # leave `...` where the body would otherwise be empty or broken


def blank_source(source: bytes, language: str) -> tuple[bytes, int]:
    """The source with its docstrings (Python) or JSDoc blocks (JS/TS) blanked,
    and how many were blanked. Every line keeps its number."""
    cuts = _python_cuts(source) if language == "python" else _jsdoc_cuts(source, language)
    out = bytearray(source)
    for cut in sorted(cuts, key=lambda c: c.start, reverse=True):  # offsets stay valid
        start, end, replacement = _replacement(source, cut)
        out[start:end] = replacement
    return bytes(out), len(cuts)


def _replacement(source: bytes, cut: _Cut) -> tuple[int, int, bytes]:
    line_start = source.rfind(b"\n", 0, cut.start) + 1
    line_end = source.find(b"\n", cut.end)
    line_end = len(source) if line_end == -1 else line_end
    alone = not source[line_start:cut.start].strip() and _only_comment(
        source[cut.end:line_end])
    breaks = b"\n" * source.count(b"\n", cut.start, cut.end)
    if cut.placeholder and alone:
        # `...` on the docstring's last line: a body that ends there still ends there.
        indent = source[line_start:cut.start]
        return line_start, cut.end, breaks + indent + b"..."
    if cut.placeholder or not alone:
        # Python: `...` keeps a statement where one is needed. JS: a space keeps the
        # tokens on either side apart.
        return cut.start, cut.end, (b"..." if cut.placeholder else b" ") + breaks
    # Alone on its lines: the indentation goes too, the lines become empty.
    return line_start, cut.end, breaks


def _only_comment(rest: bytes) -> bool:
    rest = rest.strip()
    return not rest or rest.startswith(b"#") or rest.startswith(b"//")


def _python_cuts(source: bytes) -> list[_Cut]:
    tree = _tree(source, "python")
    cuts = []
    module_doc = _docstring_statement(tree.root_node)
    if module_doc is not None:
        cuts.append(_Cut(module_doc.start_byte, module_doc.end_byte,
                         placeholder=not _alone_on_lines(source, module_doc)))
    for body in QueryCursor(_query("python")).captures(tree.root_node).get("body", ()):
        statement = _docstring_statement(body)
        if statement is not None:
            sole = sum(c.type != "comment" for c in body.named_children) == 1
            cuts.append(_Cut(statement.start_byte, statement.end_byte,
                             placeholder=sole or not _alone_on_lines(source, statement)))
    return cuts


def _docstring_statement(body: Node) -> Node | None:
    """The body's first statement when it is a string literal (comments skipped)."""
    statement = next((c for c in body.named_children if c.type != "comment"), None)
    if statement is None or statement.type != "expression_statement" \
            or statement.named_child_count != 1:
        return None
    value = statement.named_child(0)
    while value.type == "parenthesized_expression" and value.named_child_count == 1:
        value = value.named_child(0)  # ("a" "b") is a docstring to Python as well
    return statement if value.type in _STRING_TYPES else None


def _alone_on_lines(source: bytes, node: Node) -> bool:
    line_start = source.rfind(b"\n", 0, node.start_byte) + 1
    line_end = source.find(b"\n", node.end_byte)
    rest = source[node.end_byte:len(source) if line_end == -1 else line_end]
    return not source[line_start:node.start_byte].strip() and _only_comment(rest)


def _jsdoc_cuts(source: bytes, language: str) -> list[_Cut]:
    tree = _tree(source, language)
    comments = QueryCursor(_query(language)).captures(tree.root_node).get("comment", ())
    return [_Cut(c.start_byte, c.end_byte, placeholder=False) for c in comments
            if _is_jsdoc(source[c.start_byte:c.end_byte])]


def _is_jsdoc(text: bytes) -> bool:
    return text.startswith(b"/**") and text != b"/**/"


# ---------------------------------------------------------------------------
# What must stay the same
# ---------------------------------------------------------------------------

def parse_symbols(path: str, source: bytes, language: str) -> list[Symbol]:
    """The symbols the product's parser finds, as the graph will name them."""
    if language == "python":
        return parse_python(path, source).symbols
    return parse_javascript(path, source, language).symbols


def symbol_lines(path: str, source: bytes, language: str) -> list[tuple[str, str, int, int]]:
    """(kind, qualified name, start line, end line) of every symbol, in order."""
    return [(s.kind, s.qualname, s.start_line, s.end_line)
            for s in parse_symbols(path, source, language)]


def python_definition_lines(source: bytes) -> list[tuple[str, int, int]] | None:
    """(name, first line with decorators, end line) of every def and class, by `ast`;
    None when Python cannot parse the file."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            found.append((node.name, first, node.end_lineno))
    return sorted(found, key=lambda f: (f[1], f[0]))


def python_docstrings(source: bytes) -> list[str]:
    """Every docstring `ast` finds (module, classes, functions)."""
    tree = ast.parse(source)
    owners = [tree, *(n for n in ast.walk(tree) if isinstance(
        n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))]
    return [doc for doc in (ast.get_docstring(o, clean=False) for o in owners) if doc]


def check_blanked(path: str, original: bytes, blanked: bytes, language: str) -> list[str]:
    """What went wrong in blanking one file (empty: nothing). Checked on every file."""
    problems = []
    if blanked.count(b"\n") != original.count(b"\n"):
        problems.append("line count changed")
    if symbol_lines(path, original, language) != symbol_lines(path, blanked, language):
        problems.append("symbol names or lines changed")
    if _tree(blanked, language).root_node.has_error \
            and not _tree(original, language).root_node.has_error:
        problems.append("no longer parses (tree-sitter)")
    if language == "python":
        before = python_definition_lines(original)
        after = python_definition_lines(blanked)
        if before is not None and after != before:
            problems.append("no longer parses, or definitions moved (ast)")
        # A string after the docstring becomes the first statement, so Python now
        # calls it a docstring: only an original docstring left is a leak.
        if after is not None and before is not None \
                and set(python_docstrings(blanked)) & set(python_docstrings(original)):
            problems.append("a docstring is left")
    elif any(_is_jsdoc(blanked[c.start_byte:c.end_byte]) for c in QueryCursor(
            _query(language)).captures(_tree(blanked, language).root_node).get("comment", ())):
        problems.append("a JSDoc block is left")
    return problems


# ---------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------

# A line that starts a section after the summary: Google/NumPy/reST/doctest/JSDoc.
_SECTION = re.compile(
    r"^\s*(?:(?:Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Throws|Examples?|"
    r"Usage|Notes?|Warnings?|See Also|Attributes|Keyword Arguments|Kwargs|Todo|"
    r"Deprecated|Example usage)\s*:|:\w[^:`]*:(?=\s|$)|>>>|\.\. |@\w|[-=~^]{3,}\s*$|```)")
_INLINE_TAG = re.compile(r"\{@(?:link|linkcode|linkplain|code)\s+([^}|\s]+)(?:[\s|]+([^}]*))?\}")
_ROLE = re.compile(r":[\w.+-]+(?::[\w.+-]+)*:`(~?)([^`]+)`")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_REST_LINK = re.compile(r"`([^`<]+?)\s*<[^>]+>`_{1,2}")
_HTML = re.compile(r"</?[A-Za-z][^>]*>")
_EMPHASIS = re.compile(r"(\*{1,2})([^*\s](?:[^*]*[^*\s])?)\1")
_TICKS = re.compile(r"`+")
_SPACES = re.compile(r"\s+")
# A sentence ends at . ! ? before a space or the end, except after an abbreviation.
_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bvs)(?<!\bcf)[.!?](?=\s|$)")


def first_sentence(docstring: str) -> str:
    """The first sentence of a docstring's summary, as plain words."""
    text = _strip_markup(_summary(docstring))
    end = _END.search(text)
    sentence = text[:end.start()] if end else text
    return sentence.strip(" :;,-")


def _summary(docstring: str) -> str:
    """The first paragraph, up to the first section heading."""
    lines = []
    for line in docstring.strip().splitlines():
        if not line.strip():
            if lines:
                break
            continue
        if _SECTION.match(line):
            break
        lines.append(line.strip())
    return " ".join(lines)


def _strip_markup(text: str) -> str:
    text = _INLINE_TAG.sub(lambda m: (m[2] or m[1].replace("#", ".")).strip(), text)
    text = _ROLE.sub(lambda m: m[2].rsplit(".", 1)[-1] if m[1] else m[2], text)
    text = _REST_LINK.sub(r"\1", text)
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _HTML.sub("", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _TICKS.sub("", text)
    return _SPACES.sub(" ", text).strip()


@dataclass(frozen=True)
class Task:
    """One question and the function that answers it."""
    project: str
    query: str
    path: str  # repository-relative POSIX path
    qualname: str  # as the graph names it ("Class.method", "outer.inner")
    kind: str  # "function" | "method"
    start_line: int  # 1-based, decorators included
    end_line: int


def function_tasks(project: str, path: str, source: bytes, language: str) -> list[Task]:
    """A task for every documented function and method of one original file,
    dunders and tests left out and queries under MIN_QUERY_WORDS words too."""
    tasks = []
    for symbol in parse_symbols(path, source, language):
        if symbol.kind == "class" or not symbol.docstring or _excluded(symbol.name):
            continue
        query = first_sentence(symbol.docstring)
        if len(query.split()) >= MIN_QUERY_WORDS:
            tasks.append(Task(project, query, path, symbol.qualname, symbol.kind,
                              symbol.start_line, symbol.end_line))
    return tasks


def _excluded(name: str) -> bool:
    dunder = name.startswith("__") and name.endswith("__") and len(name) > 4
    return dunder or name.lower().startswith("test")


def unique_queries(tasks: list[Task]) -> list[Task]:
    """Tasks whose query no other task of the list shares (an answer must be one function)."""
    seen: dict[str, int] = {}
    for task in tasks:
        key = task.query.lower()
        seen[key] = seen.get(key, 0) + 1
    return [t for t in tasks if seen[t.query.lower()] == 1]
