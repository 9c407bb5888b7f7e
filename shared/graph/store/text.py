"""A snapshot's text: file sources and the keyword index (BM25 in SQL).

Written in the snapshot's own transaction, so a snapshot and its index are
replaced together. The index is an inverted one, in two tables: `documents`
(one per chunk, its length in terms) and `postings` (snapshot, term, node) with
the term's weight in that chunk, keyed so that a query term reads exactly its
posting list. Scoring is Okapi BM25 in one SQL statement, identical on SQLite
and PostgreSQL:

    score(d) = sum over query terms t in d of
               idf(t) * w(t, d) * (K1 + 1) / (w(t, d) + K1 * (1 - B + B * |d| / avg|d|))
    idf(t)   = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

with N chunks in the snapshot and df(t) of them holding t. Terms come from
shared.lexical, the same functions on both sides. Work is bounded by the
postings of the query's terms, never by the size of the snapshot.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from shared.graph.chunks import chunk_nodes, node_lines, split_lines
from shared.graph.model import Graph, Node
from shared.lexical import document_terms

K1 = 1.2  # how fast a repeated term stops adding evidence
B = 0.75  # how much a long chunk is discounted
MAX_DOCUMENT_LINES = 400  # a longer chunk is indexed by its first lines (a module-sized class)


@dataclass(frozen=True)
class KeywordHit:
    node_id: int
    score: float
    matched: int  # distinct query terms the chunk holds


@dataclass
class TextRows:
    sources: list[tuple]
    documents: list[tuple]
    postings: list[tuple]
    stats: dict  # {"documents": N, "avg_length": avg|d|}


def text_rows(snapshot_id: int, graph: Graph, nodes: Sequence[Node]) -> TextRows:
    """Rows of the sources, documents and postings tables for one snapshot."""
    sources = [(snapshot_id, path, hashlib.sha256(text.encode()).hexdigest(), text)
               for path, text in sorted(graph.sources.items())]
    texts = {path: split_lines(text) for path, text in graph.sources.items()}
    documents: list[tuple] = []
    postings: list[tuple] = []
    for node in chunk_nodes(nodes, texts):
        code = "\n".join(node_lines(node, texts[node.path])[:MAX_DOCUMENT_LINES])
        weights = document_terms(node.path, node.qualname, code)
        if not weights:
            continue
        documents.append((snapshot_id, node.id, float(sum(weights.values()))))
        postings.extend((snapshot_id, term, node.id, float(weight))
                        for term, weight in weights.items())
    postings.sort(key=lambda row: (row[1], row[2]))  # the primary key's order
    total = sum(row[2] for row in documents)
    stats = {"documents": len(documents),
             "avg_length": total / len(documents) if documents else 0.0}
    return TextRows(sources, documents, postings, stats)


def bm25(query: Callable[[str, Sequence[Any]], list[tuple]], in_: Callable[[str, str], str],
         pack: Callable[[Sequence[Any]], Any], snapshot_id: int, stats: dict,
         terms: Sequence[str], limit: int, kinds: Sequence[str] = (),
         paths: Sequence[str] | None = None) -> list[KeywordHit]:
    """The `limit` best chunks for `terms`, optionally only of `kinds` and in `paths`.

    `query`, `in_` and `pack` are the store's primitives (one statement, "column
    in a bound list", the bound list itself).
    """
    n_docs = stats.get("documents", 0)
    if not terms or not n_docs or paths == []:
        return []
    df = dict(query(f"SELECT term, COUNT(*) FROM postings WHERE snapshot_id = ?"
                    f" AND {in_('term', 'text')} GROUP BY term", (snapshot_id, pack(terms))))
    present = sorted(df)
    if not present:
        return []
    idf = [(t, math.log(1 + (n_docs - df[t] + 0.5) / (df[t] + 0.5))) for t in present]
    case = " ".join("WHEN ? THEN ?" for _ in idf)
    where, params = ["p.snapshot_id = ?", in_("p.term", "text")], [snapshot_id, pack(present)]
    join = ""
    if kinds or paths is not None:
        join = " JOIN nodes n ON n.snapshot_id = p.snapshot_id AND n.id = p.node_id"
        if kinds:
            where.append(f"n.kind IN ({', '.join('?' * len(kinds))})")
            params.extend(kinds)
        if paths is not None:
            where.append(in_("n.path", "text"))
            params.append(pack(list(paths)))
    avg = max(float(stats.get("avg_length", 1.0)), 1e-9)
    rows = query(
        f"SELECT p.node_id, SUM((CASE p.term {case} END) * p.weight * ?"
        f" / (p.weight + ? * (1 - ? + ? * d.length / ?))) AS score, COUNT(*) AS matched"
        f" FROM postings p JOIN documents d"
        f" ON d.snapshot_id = p.snapshot_id AND d.node_id = p.node_id{join}"
        f" WHERE {' AND '.join(where)} GROUP BY p.node_id"
        f" ORDER BY score DESC, p.node_id LIMIT ?",
        (*[v for pair in idf for v in pair], K1 + 1, K1, B, B, avg, *params, limit))
    return [KeywordHit(int(node), float(score), int(matched)) for node, score, matched in rows]
