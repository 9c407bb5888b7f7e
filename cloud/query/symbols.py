"""Where a symbol is defined: the functions, methods and classes of a snapshot whose
own name or qualified name is the one asked (`total` or `Cart.total`), exactly.

One indexed read (GraphStore.nodes_named, the lookup task context uses for names
in a task), so an agent's "where is X" needs neither the text model nor a ranking.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloud.query.graph import describe
from cloud.query.requests import MAX_LIMIT, SNAPSHOT_FIELDS, Fields
from cloud.query.resolve import Target
from shared.graph.store import GraphStore

SYMBOL_KINDS = ("function", "method", "class")
MAX_NAME = 500


@dataclass(frozen=True)
class SymbolRequest:
    repo: str
    name: str
    commit: str | None = None
    kind: str | None = None
    limit: int = 20


def parse_symbols(raw: Any, allow_local: bool = False) -> SymbolRequest:
    fields = Fields(raw, SNAPSHOT_FIELDS | {"name", "kind", "limit"}, strings=True,
                    allow_local=allow_local)
    return SymbolRequest(repo=fields.repo(), name=fields.text("name", MAX_NAME, True).strip(),
                         commit=fields.commit(), kind=fields.choice("kind", SYMBOL_KINDS, None),
                         limit=fields.integer("limit", 20, 1, MAX_LIMIT))


def find(store: GraphStore, target: Target, request: SymbolRequest) -> dict:
    """The definitions, by path then line; `total` counts them all, `truncated` says
    when `limit` cut the list."""
    found = [n for n in store.nodes_named(target.snapshot, [request.name])
             if request.kind is None or n.kind.value == request.kind]
    return {"name": request.name, "kind": request.kind,
            "results": [describe(n) for n in found[:request.limit]],
            "total": len(found), "truncated": len(found) > request.limit}
