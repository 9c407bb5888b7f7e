"""What each MCP tool answers: its output schema, as typed dictionaries.

The fields are the HTTP API's (docs: cloud/openapi_query.py), so a tool's
structured answer is the API's answer, bounded. Each shape admits extra fields:
a field the query layer adds later reaches agents untyped instead of vanishing.
Optional keys (NotRequired) are absent rather than null, as in the API.
"""
from __future__ import annotations

from pydantic import ConfigDict, with_config
from typing_extensions import NotRequired, TypedDict

OPEN = ConfigDict(extra="allow")


@with_config(OPEN)
class Index(TypedDict):
    """The evidence: the commit that answered, when it was indexed, whether an ingest
    of the repository is under way and whether the commit is behind the newest."""
    repo: str
    ref: NotRequired[str | None]  # the branch whose index answered
    commit: str
    indexed_at: float
    stale: bool
    indexing: bool
    remote_commit: NotRequired[str]  # where a push or a check saw the remote's branch
    deleted_branch: NotRequired[str]  # the default branch it came from, deleted remotely


@with_config(OPEN)
class Node(TypedDict):
    """A file or symbol: repository-relative path, qualified name, 1-based lines."""
    path: str
    name: str
    kind: str
    start_line: int
    end_line: int
    language: str | None


@with_config(OPEN)
class Reached(Node):
    distance: int


@with_config(OPEN)
class Hit(TypedDict):
    repo: str
    commit: str
    path: str
    name: str
    kind: str
    language: str | None
    start_line: int
    end_line: int
    score: float
    snippet: str
    snippet_line: int
    signals: dict[str, float]


@with_config(OPEN)
class SearchOutput(TypedDict):
    results: list[Hit]
    mode: str
    took_ms: float
    index: list[Index]
    notes: NotRequired[list[str]]


@with_config(OPEN)
class ContextItem(Node):
    text: str
    reason: str
    form: str


@with_config(OPEN)
class ContextOutput(TypedDict):
    """`text` (format markdown) or `items` (format json), never over budget_tokens:
    the tokens of `text`, or of `items` as serialised (every field counted)."""
    tokens: int
    budget_tokens: int
    tokenizer: str
    notes: list[str]
    format: str
    text: NotRequired[str]
    items: NotRequired[list[ContextItem]]
    took_ms: float
    index: Index


@with_config(OPEN)
class ChangedFile(TypedDict):
    path: str
    change: str
    known: bool
    direct_dependents: int
    dependents: int
    tests: list[str]
    risk: str


@with_config(OPEN)
class Dependent(Reached):
    is_test: bool
    via: str


@with_config(OPEN)
class ImpactOutput(TypedDict):
    changed: list[ChangedFile]
    files: list[Dependent]
    symbols: list[Dependent]
    truncated: bool
    total_files: NotRequired[int]  # how many depend, listed or not
    total_symbols: NotRequired[int]
    summary: str
    base: str | None
    took_ms: float
    index: Index
    notes: NotRequired[list[str]]


@with_config(OPEN)
class NeighboursOutput(TypedDict):
    node: Node
    direction: str
    depth: int
    kinds: list[str]
    results: list[Reached]
    total: int
    truncated: bool
    took_ms: float
    index: Index
    notes: NotRequired[list[str]]


@with_config(OPEN)
class SymbolsOutput(TypedDict):
    name: str
    kind: str | None
    results: list[Node]
    total: int
    truncated: bool
    took_ms: float
    index: Index
    notes: NotRequired[list[str]]


@with_config(OPEN)
class Repository(TypedDict):
    """`commit` and `indexed_at` are null until a first ingest is complete; `stale`: a
    newer commit is known (a push, a periodic check, a snapshot being written);
    `indexing`: an ingest is under way; `deleted_branch`: the remote deleted the
    default branch this index was built from (it answers, stale, until the remote's
    default branch is indexed); `last_job`: the job running, else the one queued,
    else the newest that ended.
    The repository registry adds its record's fields (id, state, branches, ...)."""
    url: str
    commit: str | None
    indexed_at: float | None
    files: int
    symbols: int
    chunks: int
    loc: int
    languages: dict[str, int]
    indexing: bool
    stale: bool
    deleted_branch: NotRequired[str | None]
    last_job: dict | None


@with_config(OPEN)
class ReposOutput(TypedDict):
    repos: list[Repository]
    notes: NotRequired[list[str]]


@with_config(OPEN)
class IngestOutput(TypedDict):
    """The job that will (re-)index the repository, and what is indexed now (`index`,
    null when nothing is yet)."""
    status: str
    job_id: str
    duplicate: bool
    queue_position: int
    queue_size: int
    max_queue_size: int
    target: str
    index: Index | None


@with_config(OPEN)
class SyncOutput(IngestOutput):
    force: bool
    branch: NotRequired[str | None]
    notes: NotRequired[list[str]]
