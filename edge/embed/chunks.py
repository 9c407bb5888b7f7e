"""Code chunks for text embedding, and the interface every text encoder meets.

One chunk per function, method and class node (its lines start..end: decorators,
signature, docstring, body), and one per file that defines no symbols (a script,
a config module, an index.js of re-exports). A file with no text at all (empty,
or only whitespace) gives no chunk: there is nothing to search for.

Each chunk's text is a header, then the code. The header's first line is the file
path and qualified name (a query that names a module or class finds its members);
the second says the symbol's own name in plain words, and its enclosing class's:
`send confirmation email (in order)`. The model reads `sendConfirmationEmail` as
word pieces that mean little; the words it knows. On the search benchmark's
development projects this lifts MiniLM's MRR@10 from 0.455 to 0.473, most on
camelCase JavaScript (luxon 0.367 -> 0.417), docs/BENCHMARKS.md.
A class chunk holds its methods' code too, up to the window; the methods have
their own chunks.

The model reads at most `WINDOW_TOKENS` word pieces, so a chunk's code is cut
where that window must already be full, by a cheap character count, before the
tokenizer ever sees it; the tokenizer then truncates exactly. The count ignores
indentation and line ends, which the BERT tokenizer drops: it adds up the
characters of each stripped line. Over a full window, real code averages 2.5-3
such characters per word piece and at most 7.3 (black, pip, django, zod, rxjs,
three; bench/text_embed.py re-measures it), so 10 leaves a margin: the cut
never takes text the window had room for, and a 5,000-line function costs the
tokenizer no more than a 100-line one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from edge.source import SourceFile, read_source
from shared.graph.chunks import chunk_nodes, node_lines, split_lines
from shared.graph.model import Graph, Node, NodeKind
from shared.lexical import words

WINDOW_TOKENS = 256
CHARS_PER_TOKEN = 10
CODE_CHAR_BUDGET = WINDOW_TOKENS * CHARS_PER_TOKEN


class TextEncoder(Protocol):
    """What turns chunk texts (or queries) into vectors.

    Rows of `encode` are float32 and L2-normalised, one per text, in order;
    `model` names the model (stored with every vector), `dim` its width, and
    `runtime` (where there is one) what ran it: engine and precision.
    """
    model: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class Chunk:
    path: str  # repository-relative POSIX path of the file
    qualname: str  # "" for a file chunk
    kind: str  # a NodeKind value: "function" | "method" | "class" | "file"
    start_line: int  # 1-based, inclusive, as in the graph node
    end_line: int
    text: str  # header lines, then the (possibly cut) code


def build_chunks(root: Path, graph: Graph) -> list[Chunk]:
    """The chunks of every readable file of the graph, in graph order (the texts are
    the graph's `sources`, else read from `root`)."""
    texts = {path: split_lines(text)
             for path, text in (graph.sources or read_sources(root, graph)).items()}
    return [_chunk(node, texts[node.path]) for node in chunk_nodes(graph.nodes, texts)]


def read_sources(root: Path, graph: Graph) -> dict[str, str]:
    """The text of every file node that can be read as UTF-8 (path -> text)."""
    texts: dict[str, str] = {}
    for node in graph.nodes:
        if node.kind is NodeKind.FILE:
            data = read_source(Path(root), SourceFile(node.path, node.language, 0))
            if isinstance(data, bytes):
                try:
                    texts[node.path] = data.decode("utf-8")
                except UnicodeDecodeError:
                    pass
    return texts


def header(path: str, qualname: str) -> str:
    """The lines before a chunk's code: where it is, then what it is called, in words."""
    outer, _, own = qualname.rpartition(".")
    named = words(own) if own else words(path.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    inside = f" (in {words(outer)})" if outer else ""
    return f"{path}: {qualname}\n{named}{inside}" if qualname else f"{path}\n{named}"


def _chunk(node: Node, lines: list[str]) -> Chunk:
    code = _cut(node_lines(node, lines))
    return Chunk(node.path, node.qualname, node.kind.value, node.start_line, node.end_line,
                 f"{header(node.path, node.qualname)}\n{code}")


def _cut(lines: list[str]) -> str:
    """The leading lines whose stripped characters fit the budget, the last one cut."""
    budget = CODE_CHAR_BUDGET
    kept: list[str] = []
    for line in lines:
        cost = len(line.strip())
        if cost > budget:
            indent = len(line) - len(line.lstrip())
            kept.append(line[:indent + budget])
            break
        kept.append(line)
        budget -= cost
    return "\n".join(kept)
