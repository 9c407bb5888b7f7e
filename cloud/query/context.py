"""Context for a task: the code a model needs, ranked by the graph, fitted to a budget.

The idea is Aider's repo map (rank code by a graph, fit the best of it to a token
budget), driven by the task instead of by the files in a chat:

1. Seeds, each with a reason: the hybrid search hits for the task (weight falls
   with rank), symbols and files the task names (identifiers like `parse_header`,
   `Queue.put`, paths like `src/app.py`), and `files`, the code being edited.
2. Personalised PageRank over the snapshot's symbol graph from those seeds:
   CALLS, IMPORTS and EXTENDS edges carry relevance to what is used (weight 1)
   and back to the users (BACKWARD), CONTAINS between a file or class and its
   members both ways, so relevance spreads from a function to its callees, its
   class, its file's imports.
3. Fitting: chunks (functions, methods, classes, symbol-less files) in rank
   order; the best get their whole body while the bodies use at most
   BODY_SHARE (half) of the budget, the rest their signature; each item only if
   the rendering still fits. Files appear by relevance, items in file order with a
   line marker, gaps shown as "⋮".

Tokens are counted by cl100k_base (cloud/query/tokens.py) on what the answer
carries: the exact text returned (markdown), or the `items` array exactly as it is
serialised, every field of it (json). Never more than the budget.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from cloud.query.graph import describe, pagerank
from cloud.query.tokens import count_tokens
from shared.graph.chunks import chunk_nodes, node_lines, split_lines
from shared.graph.model import EdgeKind, Graph, Node, NodeKind

SEARCH_SEEDS = 20  # hybrid hits that seed the walk
BACKWARD = 0.5  # how much relevance flows from a used symbol back to its users
CONTAINS_WEIGHT = 0.5
NAMED_WEIGHT = 2.0  # a symbol or path the task names outweighs the first search hit
EDITED_WEIGHT = 3.0
# Bodies stop at this share of the budget; signatures may use the rest. On the dev projects
# at 2,048 tokens, 0.75 -> 0.5 put the wanted function in 81% -> 84% of contexts (its
# whole body in 74% -> 68%): more candidates seen beats fewer seen whole.
BODY_SHARE = 0.5
MAX_SIGNATURE_LINES = 8
MAX_ITEMS_SCANNED = 150  # far more than a 16K budget holds; bounds the sources read

_IDENTIFIER = re.compile(r"`([^`\n]{1,200})`|\b([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+"
                         r"|[a-z$][\w$]*_[\w$]+|[A-Za-z$]+[a-z0-9][A-Z][\w$]*)\b")
_PY_HEAD = re.compile(r"\s*(?:async\s+)?(?:def|class)\b")
_COMMENT = {"python": "#"}


@dataclass
class SymbolGraph:
    """A snapshot's graph arranged for ranking: nodes by index, weighted edges."""
    nodes: list[Node]
    index: dict[int, int]
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    neighbours: list[list[int]]
    chunks: list[int]  # node indexes of chunks (what can be rendered)
    by_path: dict[str, list[int]]  # file path -> its nodes' indexes

    @classmethod
    def of(cls, graph: Graph, source_paths: set[str]) -> "SymbolGraph":
        nodes = list(graph.nodes)
        index = {n.id: i for i, n in enumerate(nodes)}
        src, dst, weight = [], [], []
        forward = {EdgeKind.CALLS: 1.0, EdgeKind.IMPORTS: 1.0, EdgeKind.EXTENDS: 1.0,
                   EdgeKind.CONTAINS: CONTAINS_WEIGHT}
        for edge in graph.edges:
            a, b = index.get(edge.src), index.get(edge.dst)
            if a is None or b is None or a == b:
                continue
            w = forward[edge.kind]
            back = w if edge.kind is EdgeKind.CONTAINS else w * BACKWARD
            src += [a, b]
            dst += [b, a]
            weight += [w, back]
        neighbours: list[list[int]] = [[] for _ in nodes]
        for a, b in zip(src, dst):
            neighbours[b].append(a)
        # Whether a file has text decides if it has chunks; lines are read when rendering.
        texts = {path: [""] for path in source_paths}
        chunk_ids = {n.id for n in chunk_nodes(nodes, texts)}
        by_path: dict[str, list[int]] = {}
        for i, node in enumerate(nodes):
            by_path.setdefault(node.path, []).append(i)
        return cls(nodes, index, np.array(src, dtype=np.int64), np.array(dst, dtype=np.int64),
                   np.array(weight, dtype=float), neighbours,
                   [i for i, n in enumerate(nodes) if n.id in chunk_ids], by_path)

    def ranked_chunks(self, scores: np.ndarray) -> list[int]:
        """Chunk indexes with a score, best first, at most MAX_ITEMS_SCANNED."""
        found = sorted((i for i in self.chunks if scores[i] > 0), key=lambda i: -scores[i])
        return found[:MAX_ITEMS_SCANNED]


@dataclass
class Item:
    node: Node
    rank: int
    reason: str
    body: bool
    lines: list[str]  # the rendered lines


def named_in(task: str) -> tuple[list[str], list[str]]:
    """Identifiers (`x`, dotted, snake_case, camelCase) and path-like words of a task."""
    names, paths = [], []
    for quoted, bare in _IDENTIFIER.findall(task):
        word = (quoted or bare).strip().strip("()")
        (paths if "/" in word or re.search(r"\.(py|[cm]?[jt]sx?)$", word) else names).append(word)
    paths += re.findall(r"[\w./-]+\.(?:py|[cm]?[jt]sx?)\b", task)
    return list(dict.fromkeys(names)), list(dict.fromkeys(paths))


def rank(symbols: SymbolGraph, seeds: dict[int, tuple[float, str]]) -> np.ndarray:
    """Personalised PageRank from `seeds` (node id -> (weight, reason))."""
    restart = np.zeros(len(symbols.nodes))
    for node_id, (weight, _) in seeds.items():
        if node_id in symbols.index:
            restart[symbols.index[node_id]] += weight
    if restart.sum() == 0:
        return restart
    return pagerank(len(symbols.nodes), symbols.src, symbols.dst, symbols.weight, restart)


def fit(symbols: SymbolGraph, scores: np.ndarray, seeds: dict[int, tuple[float, str]],
        texts: dict[str, list[str]], budget: int,
        form: Markdown | Json) -> tuple[list[Item], str, int]:
    """The items that fit the budget, the text `form` makes of them (what the answer
    carries) and its token count; `texts` holds the lines of the files of
    `symbols.ranked_chunks(scores)`."""
    order = symbols.ranked_chunks(scores)
    items: list[Item] = []
    covered: set[int] = set()
    used = form.start()
    body_budget = BODY_SHARE * budget
    body_used = 0
    for rank_, i in enumerate(order):
        node = symbols.nodes[i]
        if node.id in covered or node.path not in texts:
            continue
        reason = _reason(symbols, scores, seeds, i)
        lines = texts[node.path]
        options = []
        body = Item(node, rank_, reason, True, node_lines(node, lines))
        if body_used + form.body_cost(body) <= body_budget:
            options.append(body)
        options.append(Item(node, rank_, reason, False, signature(node, lines)))
        for item in options:
            cost = form.cost(item, items)
            if used + cost <= budget:
                items.append(item)
                used += cost
                body_used += cost if item.body else 0
                if item.body:
                    covered.update(_members(symbols, node))
                break
    while True:  # the estimate is per piece; the text made of them is what counts
        text = form.text(items)
        tokens = count_tokens(text)
        if tokens <= budget or not items:
            return items, text, tokens
        items.remove(max(items, key=lambda it: it.rank))


class Markdown:
    """format "markdown": one text, the header then each file's items in line order."""

    def __init__(self, header: str):
        self.header = header

    def start(self) -> int:
        return count_tokens(self.header)

    def body_cost(self, item: Item) -> int:
        return _estimate(item.lines)

    def cost(self, item: Item, chosen: list[Item]) -> int:
        new_file = not any(it.node.path == item.node.path for it in chosen)
        return _estimate(item.lines) + (_estimate([item.node.path]) + 8 if new_file else 2)

    def text(self, items: list[Item]) -> str:
        return render(items, self.header)


class Json:
    """format "json": the `items` array as the answer serialises it (compact JSON, as
    Starlette's JSONResponse and the MCP tools write it), every field of every item
    counted: what an agent reads is all of it, not only the code."""

    def start(self) -> int:
        return count_tokens("[]")

    def body_cost(self, item: Item) -> int:
        return self.cost(item, [])

    def cost(self, item: Item, chosen: list[Item]) -> int:
        return count_tokens(_compact(json_item(item))) + 1  # and its comma

    def text(self, items: list[Item]) -> str:
        return _compact(json_items(items))


def json_items(items: list[Item]) -> list[dict]:
    """The answer's `items`, best first."""
    return [json_item(item) for item in sorted(items, key=lambda it: it.rank)]


def json_item(item: Item) -> dict:
    node = item.node
    end = node.end_line if item.body else node.start_line + len(item.lines) - 1
    return {**describe(node), "end_line": end, "text": "\n".join(item.lines),
            "reason": item.reason, "form": "body" if item.body else "signature"}


def _compact(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render(items: list[Item], header: str) -> str:
    by_file: dict[str, list[Item]] = {}
    for item in sorted(items, key=lambda it: it.rank):
        by_file.setdefault(item.node.path, []).append(item)
    parts = [header]
    for path, found in by_file.items():
        language = found[0].node.language
        mark = _COMMENT.get(language, "//")
        parts.append(f"\n## {path}\n```{language}")
        last_end = None
        for item in sorted(found, key=lambda it: it.node.start_line):
            if last_end is not None and item.node.start_line > last_end + 1:
                parts.append("⋮")
            shown = item.node.end_line if item.body else \
                item.node.start_line + len(item.lines) - 1
            parts.append(f"{mark} {path}:{item.node.start_line}-{shown}"
                         + ("" if item.body else " (signature)"))
            parts.append("\n".join(item.lines))
            last_end = shown
        parts.append("```")
    return "\n".join(parts) + "\n"


def signature(node: Node, lines: list[str]) -> list[str]:
    """Decorators and the header of a definition, through the line that opens its body."""
    own = node_lines(node, lines)[:MAX_SIGNATURE_LINES]
    if node.kind is NodeKind.FILE:
        return own[:3]
    depth, started = 0, False
    for i, line in enumerate(own):
        code = line.split("#", 1)[0] if node.language == "python" else line
        started = started or bool(_PY_HEAD.match(code)) or node.language != "python"
        depth += code.count("(") + code.count("[") - code.count(")") - code.count("]")
        if not started:
            continue
        if node.language == "python" and depth <= 0 and code.rstrip().endswith(":"):
            return own[:i + 1]
        if node.language != "python" and depth <= 0 and ("{" in code or "=>" in code):
            return own[:i + 1]
    return own  # a header longer than MAX_SIGNATURE_LINES: its first lines


def _members(symbols: SymbolGraph, node: Node) -> set[int]:
    """Symbols inside `node`'s lines in its file (a rendered class body covers its methods)."""
    inside = (symbols.nodes[j] for j in symbols.by_path.get(node.path, ()))
    return {n.id for n in inside if n.id != node.id and n.kind is not NodeKind.FILE
            and node.start_line <= n.start_line and n.end_line <= node.end_line}


def _reason(symbols: SymbolGraph, scores: np.ndarray, seeds: dict[int, tuple[float, str]],
            i: int) -> str:
    node = symbols.nodes[i]
    if node.id in seeds:
        return seeds[node.id][1]
    linked = max(symbols.neighbours[i], key=lambda j: scores[j], default=None)
    if linked is None:
        return "related in the graph"
    other = symbols.nodes[linked]
    return f"linked to {other.qualname or other.path}"


def _estimate(lines: list[str]) -> int:
    # Pieces are counted exactly; their joins may merge a token or two (fit re-checks).
    return count_tokens("\n".join(lines)) + 1


def text_lines(sources: dict[str, str]) -> dict[str, list[str]]:
    return {path: split_lines(text) for path, text in sources.items()}
