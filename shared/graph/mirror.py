"""Graph facts in Neo4j (NEO4J_URI): a mirror of every snapshot, where the graph
questions are answered in Cypher.

With Neo4j configured, facts go to both stores, on purpose. PostgreSQL (or SQLite) stays
the system of record: the registry, accounts, fencing tokens, each file's source text
and the keyword index (BM25 postings) are relational data that Cypher serves badly or not
at all, and one transaction there is what makes a job's writes fenced and a snapshot's
replacement atomic. Neo4j holds what it is good at: every snapshot's nodes and
relationships (`shared/graph/cypher_store.py`), for Neo4j Browser, Bloom and your own
Cypher, and for the walks the query layer asks (dependencies, dependents, reach,
impact, shortest path, and the file graph behind hot spots, cycles and centrality).

Order of a job's writes: the SQL snapshot (fenced, not ready), the mirror's (not
ready), the vectors, the mirror's ready mark, then the SQL ready mark. So a snapshot
the query layer finds ready in SQL is ready in Neo4j too. A snapshot indexed before
Neo4j was configured is copied there on its first question (`GraphFacts`). Removing a
repository, a branch's index or an archived one removes its mirror too (`forget`).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Iterable

from shared.graph.cypher_store import CypherGraphStore
from shared.graph.store import GraphStore, Snapshot
from shared.settings import Settings

log = logging.getLogger("shared.graph.mirror")

# The questions answered in Cypher; everything else is the SQL store's.
WALKS = ("dependencies", "dependents", "reach", "impact", "shortest_path", "files",
         "file_imports")


def open_mirror(settings: Settings) -> CypherGraphStore | None:
    """The Neo4j mirror NEO4J_URI names (migrated), or None when it is unset."""
    if not settings.neo4j_uri:
        return None
    from shared.graph.cypher_neo4j import Neo4jSession

    session = Neo4jSession.connect(settings.neo4j_uri, settings.neo4j_user,
                                   settings.neo4j_password, settings.neo4j_database or None)
    return CypherGraphStore(session, keep_snapshots=settings.snapshots_kept)


def forget(mirror: CypherGraphStore | None, keys: Iterable[str]) -> None:
    """Every mirrored snapshot of the index keys (a deleted, archived or untracked index)."""
    if mirror is None:
        return
    for key in keys:
        for snapshot in mirror.snapshots(key):
            mirror.delete_snapshot(snapshot)


class GraphFacts:
    """The SQL store as the query layer uses it, with `WALKS` answered by the mirror on
    the mirror's snapshot of the same repository and commit."""

    def __init__(self, store: GraphStore, mirror: CypherGraphStore):
        self.store, self.mirror = store, mirror
        self._copying = threading.Lock()  # one copy of a missing snapshot at a time

    def __getattr__(self, name: str) -> Any:
        if name in WALKS:
            walk = getattr(self.mirror, name)
            return lambda snapshot, *args, **options: walk(self.mirrored(snapshot), *args,
                                                           **options)
        return getattr(self.store, name)

    def mirrored(self, snapshot: Snapshot) -> Snapshot:
        """The mirror's ready snapshot of `snapshot`'s repository and commit, copied from
        SQL first if the mirror lacks it (a snapshot from before Neo4j was configured)."""
        # Looked up on every question, never cached: a commit written again gets a new
        # mirror snapshot and the old one goes.
        found = self.mirror.find_snapshot(snapshot.repo, snapshot.commit)
        if found is not None and found.ready:
            return found
        with self._copying:
            found = self.mirror.find_snapshot(snapshot.repo, snapshot.commit)
            if found is None or not found.ready:
                log.info("copying %s at %s to Neo4j", snapshot.repo, snapshot.commit[:12])
                found = self.mirror.write_snapshot(self.store.load_graph(snapshot), ready=True)
        return found
