"""Code search: keyword, semantic, structural and hybrid, over one snapshot at a time.

keyword     BM25 over the snapshot's chunks in the graph database (identifiers
            split, terms stemmed: shared/lexical.py, shared/graph/store/text.py).
semantic    cosine of the query's MiniLM vector to the chunks' vectors in Qdrant.
structural  the query names a file or symbol; the files whose Node2Vec vectors are
            nearest to its file's (code that sits in the same place of the graph).
hybrid      candidates of keyword and semantic (CANDIDATES each), every candidate
            scored on every signal (a keyword-only candidate's vector is read back,
            so no signal is missing), then a weighted sum:

              score = cosine + W_KEYWORD * bm25 / max bm25 + W_NAME * name
                      + W_CENTRALITY * centrality

            `name` is the share of the query's terms that the symbol's own name holds
            (a question usually says what the function is called, in other words)
            times the share of the name's words that the query holds (so a name the
            query covers whole beats a longer one that merely contains the query's
            words: MRR@10 0.527 -> 0.533 on the dev projects, 0.653 -> 0.664 check);
            `centrality` the percentile of its file's PageRank in the import graph
            (of two equal matches, the code the rest depends on).

The weights are set on the development projects of bench/search_quality.py
(bench/hybrid_weights.py) and never on the check projects it reports.

Exact names (keyword and hybrid): when the whole query is a symbol's name (`Line`,
`Line.append`, `black.lines.Line`, `Compiler#run`; spaces, backticks, quotes and a
trailing `()` around it allowed), the symbols of that name or qualified name come first,
whatever their other signals, then the rest as ranked above: a partial match such as
`_is_line_decorated` for `Line` holds the query's every term too, and the prose around a
class says its name no more than its neighbours do. Leading parts that the qualified name
lacks must be folders or the file of the symbol's path, in order (`black.lines.Line`,
`black.Line`). Each such hit carries `exact_name`, 1.0 less: 0.5 when it matches only with
case ignored, 0.2 in a test file, 0.1 for a method or nested function found by its own
name alone (`append` for `Line.append`; a user naming a member usually names its owner),
0.05 x (1 - its file's centrality). Each step outweighs the smaller ones together, so the
order is: case, then code over tests, then top-level definitions, then the file the
repository depends on most; equal ones keep their score's order. The signal is part of
the score, W_EXACT * exact_name on top of the mode's own, so hits rank by score alone,
within a repository and across repositories, and an answer's scores read in its order.
In keyword mode the mode's own score is BM25 over the repository's best BM25 (0-1, as
hybrid weighs it), so the two are on one scale. A query of several words is never a
name, so questions rank as before.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Callable, Sequence

import numpy as np

from cloud.query.errors import bad_request
from cloud.query.glob import compile_glob
from cloud.query.impact import is_test
from cloud.query.requests import SearchRequest
from cloud.query.resolve import Target
from shared.graph.chunks import node_lines, split_lines
from shared.graph.model import Node, NodeKind
from shared.graph.store import GraphStore
from shared.lexical import identifier_terms, query_terms, words
from shared.vectors import STRUCTURE_COLLECTION, VectorStore

CANDIDATES = 50  # per signal, before fusion
# Set by bench/hybrid_weights.py on the dev projects (MRR@10 0.516 -> 0.525 there; set
# again for the name signal that covers the whole name: 0.533 -> 0.539; a flat region,
# these sit inside it); docs/BENCHMARKS.md has the check projects' figures.
W_KEYWORD = 0.15
W_NAME = 0.3
W_CENTRALITY = 0.01
# What an exact name match loses, from 1.0, for what makes it less likely the one meant;
# each step outweighs all the smaller ones together, so they order in this priority.
EXACT_FOLDED = 0.5  # matches only when case is ignored
EXACT_TEST = 0.2  # in a test file
EXACT_NESTED = 0.1  # a method or nested function matched by its own name alone
EXACT_CENTRALITY = 0.05  # times (1 - its file's centrality percentile)
# The exact name's weight in the score. A mode's own score spans under 2.5 (hybrid: cosine
# -1..1 plus the weights above; keyword: 0-1), and W_EXACT times the smallest gap the
# steps above leave (0.05) exceeds it: every exact hit scores above every other hit, and
# case, tests and nesting each outweigh all below them; centrality and the mode's own
# score then add up.
W_EXACT = 60.0
# Dotted names (`Line.append`, `black.lines.Line`), `::` and `#` read as dots (Rust, C++,
# JSDoc's Class#method).
_SYMBOL = re.compile(r"[A-Za-z_$][\w$]*(?:(?:\.|::|#)[A-Za-z_$][\w$]*)*")
SNIPPET_LINES = 6
SNIPPET_SCAN_LINES = 300  # a snippet comes from the first lines of a long symbol


@dataclass
class Candidate:
    node: Node
    signals: dict[str, float] = field(default_factory=dict)
    score: float = 0.0


@dataclass
class SearchContext:
    """What a search needs besides the request, given by the service."""
    store: GraphStore
    vectors: Callable[[], VectorStore]
    query_vector: Callable[[str], np.ndarray]  # raises QueryError(503) without a model
    chunk_collection: Callable[[], str]
    files: Callable[[Target], list[Node]]  # the snapshot's file nodes (cached)
    centrality: Callable[[Target], dict[str, float]]  # path -> PageRank percentile (cached)


def search_target(ctx: SearchContext, target: Target, request: SearchRequest) -> list[dict]:
    """The request's hits in one repository, best first, as answer rows."""
    return _rows(ctx, target, request.query, ranked(ctx, target, request))


def ranked(ctx: SearchContext, target: Target, request: SearchRequest) -> list[Candidate]:
    """The request's best `limit` candidates in one repository, best first."""
    paths = _allowed_paths(ctx, target, request)
    if paths == []:
        return []
    kinds = [request.kind] if request.kind else []
    if request.mode == "structural":
        found = _structural(ctx, target, request, paths)
    elif request.mode == "semantic":
        found = _semantic(ctx, target, ctx.query_vector(request.query), request.limit,
                          kinds, paths)
    else:
        named = _named(ctx, target, request.query, max(CANDIDATES, request.limit), kinds, paths)
        found = _relative(_keyword(ctx, target, request.query, request.limit, kinds, paths)) \
            if request.mode == "keyword" else _hybrid(ctx, target, request, kinds, paths, named)
        found = _exact_first(found, named)
    return found[:request.limit]


def merge(per_repo: Sequence[list[dict]], limit: int) -> list[dict]:
    """Every repository's hits by score (exact names' included: they come first)."""
    rows = [row for rows in per_repo for row in rows]
    rows.sort(key=lambda r: (-r["score"], r["repo"], r["path"], r["start_line"]))
    return rows[:limit]


# --- signals ---------------------------------------------------------------------------------

def _keyword(ctx: SearchContext, target: Target, query: str, limit: int, kinds: list[str],
             paths: list[str] | None) -> list[Candidate]:
    terms = query_terms(query)
    hits = ctx.store.keyword_search(target.snapshot, terms, limit, kinds, paths)
    nodes = ctx.store.nodes(target.snapshot, [h.node_id for h in hits])
    return [Candidate(nodes[h.node_id], {"keyword": h.score, "matched_terms": h.matched},
                      h.score) for h in hits if h.node_id in nodes]


def _relative(found: list[Candidate]) -> list[Candidate]:
    """Keyword hits scored by BM25 over the best one's (0-1); `keyword` keeps BM25."""
    top = max((c.score for c in found), default=0.0) or 1.0
    for candidate in found:
        candidate.score /= top
    return found


def _semantic(ctx: SearchContext, target: Target, vector: np.ndarray, limit: int,
              kinds: list[str], paths: list[str] | None) -> list[Candidate]:
    where: dict = {"commit": target.snapshot.commit}
    if kinds:
        where["kind"] = kinds
    if paths is not None:
        where["file_path"] = paths
    hits = ctx.vectors().search(ctx.chunk_collection(), vector, repo=target.repo,
                                limit=limit, where=where, payload=False)
    nodes = ctx.store.nodes(target.snapshot, [h.id for h in hits])
    return [Candidate(nodes[h.id], {"semantic": h.score}, h.score)
            for h in hits if h.id in nodes]


def _hybrid(ctx: SearchContext, target: Target, request: SearchRequest, kinds: list[str],
            paths: list[str] | None, named: dict[int, tuple[Node, float]]) -> list[Candidate]:
    """Fused candidates, the symbols the query names among them (scored like the rest)."""
    vector = ctx.query_vector(request.query)
    pool = max(CANDIDATES, request.limit)
    found: dict[int, Candidate] = {}
    for candidate in _semantic(ctx, target, vector, pool, kinds, paths) + \
            _keyword(ctx, target, request.query, pool, kinds, paths):
        known = found.setdefault(candidate.node.id, candidate)
        if known is not candidate:
            known.signals.update(candidate.signals)
    for key, (node, _) in named.items():
        found.setdefault(key, Candidate(node))
    _fill_semantic(ctx, target, vector, found)
    top_keyword = max((c.signals.get("keyword", 0.0) for c in found.values()), default=0.0)
    terms = set(query_terms(request.query))
    central = ctx.centrality(target)
    for candidate in found.values():
        signals = candidate.signals
        signals.setdefault("keyword", 0.0)
        signals["name"] = _name_share(candidate.node, terms)
        signals["centrality"] = central.get(candidate.node.path, 0.0)
        candidate.score = (signals["semantic"]
                           + W_KEYWORD * signals["keyword"] / (top_keyword or 1.0)
                           + W_NAME * signals["name"] + W_CENTRALITY * signals["centrality"])
    return sorted(found.values(), key=lambda c: -c.score)


def _fill_semantic(ctx: SearchContext, target: Target, vector: np.ndarray,
                   found: dict[int, Candidate]) -> None:
    """Cosine for the candidates that only the keyword index proposed."""
    missing = [key for key, c in found.items() if "semantic" not in c.signals]
    stored = ctx.vectors().vectors(ctx.chunk_collection(), missing, repo=target.repo) \
        if missing else {}
    for key in missing:
        row = stored.get(key)
        found[key].signals["semantic"] = float(row @ vector) if row is not None else 0.0


def _name_share(node: Node, terms: set[str]) -> float:
    """The share of the query's terms that the own name holds, times the share of the
    name's words that the query holds: a name the query covers whole (`Line` for "line")
    above a longer one that merely holds it (`_is_line_decorated`)."""
    if not terms:
        return 0.0
    name = node.name if node.kind is not NodeKind.FILE else node.path.rsplit("/", 1)[-1]
    name = name.rsplit(".", 1)[0]
    held = len(terms & set(identifier_terms(name))) / len(terms)
    # The name's words alone: identifier_terms adds the whole compound identifier as a term,
    # which a query in words never holds.
    own = set(query_terms(words(name)))
    return held * len(own & terms) / len(own) if own else 0.0


# --- exact names ---------------------------------------------------------------------------

def symbol_query(query: str) -> str | None:
    """The symbol name a query is, dotted (`Line`, `Line.append`, `black.lines.Line`), or
    None when it is anything else (words, a sentence). Surrounding spaces, backticks and
    quotes and a trailing `()` are not part of the name."""
    text = query.strip().strip("`'\"").strip().removesuffix("()")
    return re.sub(r"::|#", ".", text) if _SYMBOL.fullmatch(text) else None


def _named(ctx: SearchContext, target: Target, query: str, limit: int, kinds: list[str],
           paths: list[str] | None) -> dict[int, tuple[Node, float]]:
    """The `limit` likeliest symbols the query names exactly (id -> node, exact_name);
    empty when the query is not a symbol's name. One indexed store read: every suffix of
    the dotted name, as a name or a qualified name."""
    symbol = symbol_query(query)
    if symbol is None:
        return {}
    parts = symbol.split(".")
    suffixes = [".".join(parts[i:]) for i in range(len(parts))]
    allowed = None if paths is None else set(paths)
    central = ctx.centrality(target)
    found = []
    for node in ctx.store.nodes_named(target.snapshot, suffixes, fold_case=True):
        if (kinds and node.kind.value not in kinds) or (allowed is not None
                                                        and node.path not in allowed):
            continue
        value = _exact_value(node, parts, central.get(node.path, 0.0))
        if value:
            found.append((node, value))
    found.sort(key=lambda pair: -pair[1])
    return {node.id: (node, value) for node, value in found[:limit]}


def _exact_value(node: Node, parts: list[str], centrality: float) -> float:
    """The exact_name signal: 1.0 for the symbol a name most likely means, less by the
    EXACT_* steps; 0.0 when the node does not match the name at all."""
    nested = _match(node, parts, str)
    folded = nested is None
    if folded:
        nested = _match(node, parts, str.lower)
    if nested is None:
        return 0.0
    return (1.0 - EXACT_FOLDED * folded - EXACT_TEST * is_test(node.path)
            - EXACT_NESTED * nested - EXACT_CENTRALITY * (1.0 - centrality))


def _match(node: Node, parts: list[str], key: Callable[[str], str]) -> bool | None:
    """Whether `node` is the dotted name `parts` under `key` (str, or str.lower to ignore
    case): None if not; else whether it matched by its own name alone while nested in
    something the name does not say. A leading part the qualified name lacks must be a
    folder or the file of its path, in order (`black.lines.Line`, `black.Line`)."""
    whole = key(".".join(parts))
    if key(node.qualname) == whole:
        return False
    if key(node.name) == whole:
        return True
    folders = iter(key(p) for p in PurePosixPath(node.path).with_suffix("").parts)
    for i in range(1, len(parts)):
        if key(node.qualname) == key(".".join(parts[i:])):
            return False if all(key(p) in folders for p in parts[:i]) else None
    return None


def _exact_first(found: list[Candidate],
                 named: dict[int, tuple[Node, float]]) -> list[Candidate]:
    """`found` with the named symbols (added if missing) scored up by their exact_name,
    so they come first, then the rest as they were ranked."""
    by_id = {c.node.id: c for c in found}
    for key, (node, value) in named.items():
        candidate = by_id.setdefault(key, Candidate(node))
        candidate.signals["exact_name"] = value
        candidate.score += W_EXACT * value
    return sorted(by_id.values(), key=lambda c: -c.score)


def _structural(ctx: SearchContext, target: Target, request: SearchRequest,
                paths: list[str] | None) -> list[Candidate]:
    anchor = _anchor_file(ctx, target, request.query.strip())
    if request.kind not in (None, "file"):
        raise bad_request("structural search finds files: kind must be file or omitted")
    where: dict = {"commit": target.snapshot.commit}
    if paths is not None:
        where["file_path"] = paths
    hits = ctx.vectors().similar(STRUCTURE_COLLECTION, anchor.id, repo=target.repo,
                                 limit=request.limit, where=where)
    nodes = ctx.store.nodes(target.snapshot, [h.id for h in hits])
    return [Candidate(nodes[h.id], {"structural": h.score}, h.score)
            for h in hits if h.id in nodes]


def _anchor_file(ctx: SearchContext, target: Target, query: str) -> Node:
    """The file a structural query names: a path (or its unique tail), or a symbol's file."""
    files = ctx.files(target)
    cleaned = query.replace("\\", "/").removeprefix("./")
    exact = [f for f in files if f.path == cleaned]
    tails = exact or [f for f in files if f.path.endswith("/" + cleaned)]
    if len(tails) == 1:
        return tails[0]
    symbols = ctx.store.nodes_named(target.snapshot, [query])
    owners = {s.path for s in symbols}
    if len(owners) == 1:
        return next(f for f in files if f.path in owners)
    found = sorted(owners or {f.path for f in tails})
    if found:
        raise bad_request(f"structural: {query!r} is ambiguous in {target.repo}: "
                          f"{', '.join(found[:10])}")
    raise bad_request(f"structural: {query!r} names no file or symbol of {target.repo}")


def _allowed_paths(ctx: SearchContext, target: Target,
                   request: SearchRequest) -> list[str] | None:
    """The file paths the filters leave (None: no path filter)."""
    if request.path is None and not request.languages:
        return None
    pattern = compile_glob(request.path) if request.path else None
    return [f.path for f in ctx.files(target)
            if (pattern is None or pattern.match(f.path))
            and (not request.languages or f.language in request.languages)]


# --- rows ------------------------------------------------------------------------------------

def _rows(ctx: SearchContext, target: Target, query: str, found: list[Candidate]) -> list[dict]:
    texts = ctx.store.sources(target.snapshot, {c.node.path for c in found})
    terms = set(query_terms(query))
    rows = []
    for c in found:
        lines = split_lines(texts.get(c.node.path, ""))
        start, snippet = snippet_of(c.node, lines, terms)
        rows.append({"repo": target.repo, "commit": target.snapshot.commit,
                     "path": c.node.path, "name": c.node.qualname or c.node.path,
                     "kind": c.node.kind.value, "language": c.node.language,
                     "start_line": c.node.start_line, "end_line": c.node.end_line,
                     "score": round(c.score, 6), "snippet": snippet, "snippet_line": start,
                     "signals": {k: round(v, 6) for k, v in c.signals.items()}})
    return rows


def snippet_of(node: Node, lines: list[str], terms: set[str]) -> tuple[int, str]:
    """The SNIPPET_LINES of the node that hold most query terms (its head on a tie),
    and the line number of the first."""
    own = node_lines(node, lines)[:SNIPPET_SCAN_LINES] if lines else []
    if not own:
        return node.start_line, ""
    hits = [terms.intersection(query_terms(line)) if terms else set() for line in own]
    best, best_count = 0, -1
    for offset in range(0, max(1, len(own) - SNIPPET_LINES + 1)):
        count = len(set().union(*hits[offset:offset + SNIPPET_LINES]))
        if count > best_count:
            best, best_count = offset, count
    return node.start_line + best, "\n".join(own[best:best + SNIPPET_LINES])
