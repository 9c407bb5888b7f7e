"""The graph facts store: one contract (base.GraphStore), PostgreSQL or SQLite.

`open_graph_store(settings)` picks PostgreSQL when DATABASE_URL is set (Neon in
production), else the SQLite file `graph.db` in DATA_DIR. The PostgreSQL backend
is imported only when asked for, so SQLite users never load psycopg.
"""
from __future__ import annotations

from typing import Any

from shared.graph.store.base import (
    DEPENDENCY_KINDS,
    KEEP_SNAPSHOTS,
    FencedOut,
    GraphStore,
    GraphStoreError,
    GraphStoreUnavailable,
    Reached,
    Snapshot,
)
from shared.settings import Settings

__all__ = ["DEPENDENCY_KINDS", "KEEP_SNAPSHOTS", "FencedOut", "GraphStore", "GraphStoreError",
           "GraphStoreUnavailable",
           "PostgresGraphStore", "Reached", "Snapshot", "SqliteGraphStore",
           "open_graph_store"]


def open_graph_store(settings: Settings) -> GraphStore:
    if settings.database_url:
        from shared.graph.store.postgres import PostgresGraphStore

        return PostgresGraphStore(settings.database_url, keep_snapshots=settings.snapshots_kept)
    from shared.graph.store.sqlite import SqliteGraphStore

    return SqliteGraphStore(settings.data_dir / "graph.db", keep_snapshots=settings.snapshots_kept)


def __getattr__(name: str) -> Any:
    if name == "PostgresGraphStore":
        from shared.graph.store.postgres import PostgresGraphStore

        return PostgresGraphStore
    if name == "SqliteGraphStore":
        from shared.graph.store.sqlite import SqliteGraphStore

        return SqliteGraphStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
