"""The Neo4j session of the Cypher graph store (shared/graph/cypher.py)."""
from __future__ import annotations

from typing import Any

from shared.graph.cypher import Rule, Statement
from shared.graph.store.base import GraphStoreError, GraphStoreUnavailable


class Neo4jSession:
    """The official driver: each statement one managed transaction (`execute_read` /
    `execute_write`), retried by the driver on transient errors and lost connections
    for up to `max_transaction_retry_time` (driver config, default 30 s)."""

    def __init__(self, driver: Any, database: str | None = None):
        self.driver, self.database = driver, database

    @classmethod
    def connect(cls, uri: str, user: str, password: str, database: str | None = None,
                **config: Any) -> "Neo4jSession":
        import neo4j

        return cls(neo4j.GraphDatabase.driver(uri, auth=(user, password), **config), database)

    def read(self, statement: Statement) -> list[tuple]:
        return self._run(statement, write=False)

    def write(self, statement: Statement) -> list[tuple]:
        return self._run(statement, write=True)

    def apply(self, rule: Rule) -> None:
        self._run(Statement(rule.cypher()), write=True)  # a schema change: alone in its tx

    def close(self) -> None:
        self.driver.close()

    def _run(self, statement: Statement, write: bool) -> list[tuple]:
        from neo4j import exceptions

        try:
            with self.driver.session(database=self.database) as session:
                run = session.execute_write if write else session.execute_read
                return run(_records, statement.text, statement.params)
        except (exceptions.ServiceUnavailable, exceptions.SessionExpired) as exc:
            raise GraphStoreUnavailable(f"Neo4j graph store: {exc}") from exc
        except (exceptions.Neo4jError, exceptions.DriverError) as exc:
            raise GraphStoreError(f"Neo4j graph store: {exc}") from exc


def _records(tx: Any, text: str, params: dict) -> list[tuple]:
    return [tuple(record.values()) for record in tx.run(text, params)]
