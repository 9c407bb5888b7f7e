"""The code graph both halves read: nodes, edges, one snapshot of a repository.

Node ids are stable across runs: derived from repository URL, path and
qualified name, so a re-ingest of the same commit writes the same ids (idempotent
writes) and Qdrant points can share them.
"""
from __future__ import annotations

import enum
import hashlib
import uuid
from dataclasses import dataclass, field


class NodeKind(str, enum.Enum):
    FILE = "file"
    CLASS = "class"
    FUNCTION = "function"
    METHOD = "method"


# The methods that run when a class is called (Python, JS/TS): a call to a class is a
# CALLS edge to the one that runs (edge/graph.py), so a class's users include its callers.
CONSTRUCTORS = ("__init__", "constructor")


class EdgeKind(str, enum.Enum):
    IMPORTS = "IMPORTS"  # file -> file
    CONTAINS = "CONTAINS"  # file -> symbol, class -> method, function -> nested def
    EXTENDS = "EXTENDS"  # class -> class
    CALLS = "CALLS"  # function -> function


def node_id(repo: str, path: str, qualname: str = "") -> int:
    """A signed 63-bit id (fits BIGINT and Qdrant's unsigned ids) for a node."""
    key = f"{repo}\0{path}\0{qualname}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") >> 1


def point_uuid(node: int) -> str:
    """The node id as a UUID string, for stores that want one."""
    return str(uuid.UUID(int=node))


@dataclass(slots=True)
class Node:
    id: int
    kind: NodeKind
    path: str  # repository-relative POSIX path of the file
    name: str  # file name for files, else the symbol's own name
    qualname: str  # "" for files, "Outer.method" for symbols
    start_line: int
    end_line: int
    language: str
    docstring: str | None = None


@dataclass(slots=True)
class Edge:
    src: int
    dst: int
    kind: EdgeKind
    line: int | None = None  # first statement that made the edge
    weight: int = 1  # statements/call sites folded into this edge
    type_only: bool = False  # every statement behind it is typing-only
    # CALLS: the fewest targets any site behind the edge could reach; 1 = certain,
    # more = one of a union's (or branches') possible callees.
    candidates: int = 1


@dataclass(slots=True)
class Graph:
    """One repository at one commit."""
    repo: str
    commit: str = ""
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    # Imports that left the repository: top-level package -> statements.
    external: dict[str, int] = field(default_factory=dict)
    # Files left out and why: [(path, reason)].
    skipped: list[tuple[str, str]] = field(default_factory=list)
    loc: int = 0
    # Each readable file's text (path -> text), for snippets, context and the keyword
    # index; a graph made without them still stores and walks.
    sources: dict[str, str] = field(default_factory=dict)
