"""The repository registry: what the system tracks, beside the graph facts it holds.

A repository record lives in the graph database (migration 5 extends `repositories`),
so every process that answers questions about a repository also knows its state:

    registered -> queued -> indexing -> ready | failed (with the reason)
    ready -> stale (its remote moved past the indexed commit, or deleted the default
             branch: `deleted_branch`) -> queued -> ...
    any -> archived (vectors and snapshots removed, the record kept) -> queued -> ...

Per tracked branch (`branches` table): the commit and snapshot last indexed, when,
and the newest commit its remote was seen at. `webhook_deliveries` remembers each
delivery id for a week, so a replayed webhook queues nothing.

The webhook secret is stored (a signature is checked with it) but never read out
except by `webhook_secret`; `Repository.public()` says only whether one is set.
`GraphStore` inherits these methods; they use its `_query`/`_write` primitives, so
both databases behave the same.

Branches. The default branch is indexed under the repository's URL; every other
tracked branch under its own index key, `URL#branch` (shared.repo_url.index_key),
whose snapshots hang off a `repositories` row of that name. Such rows are index
rows, never records: `repo_records` leaves them out, and archiving or deleting the
repository removes them with everything they hold.

Deleting or archiving while a job runs: the caller passes a fence token issued by
the queue (`JobQueue.issue_fence`), and every index key's fence is raised to it in
the same transaction, so the job's later graph writes fail (FencedOut) instead of
bringing back what was removed. The fence rows stay (a token and a name): they are
what refuses the late write.
"""
from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from shared.repo_url import index_key

BRANCH_INDEX = "%#%"  # LIKE pattern of the index rows of branches (a parameter: psycopg
# reads a literal % in the statement as a placeholder)
DELIVERY_RETENTION = 7 * 86_400  # a replay older than this is a new delivery

_FIELDS = ("id", "url", "default_branch", "branches", "state", "reason", "sync_interval",
           "webhook_secret IS NOT NULL", "force_next", "created_at", "last_sync_at",
           "last_query_at", "last_push_at", "size", "deleted_branch")
_SELECT = f"SELECT {', '.join(_FIELDS)} FROM repositories"


class RepoState(str, enum.Enum):
    REGISTERED = "registered"
    QUEUED = "queued"
    INDEXING = "indexing"
    READY = "ready"
    FAILED = "failed"
    STALE = "stale"
    ARCHIVED = "archived"


@dataclass
class BranchState:
    commit: str = ""  # the commit last indexed ("" before the first)
    snapshot_id: int | None = None
    synced_at: float = 0.0
    remote_commit: str = ""  # where the remote's branch was last seen ("" unknown)
    reason: str = ""  # why its last job failed ("" it did not; another branch than the default)


@dataclass
class Repository:
    id: int
    url: str
    default_branch: str = ""  # "" until the first clone tells
    branches: list[str] = field(default_factory=list)  # tracked; [] = the default branch
    state: RepoState = RepoState.REGISTERED
    reason: str = ""
    sync_interval: int = 0  # seconds between periodic syncs; 0 = none
    has_secret: bool = False
    force_next: bool = False
    created_at: float = 0.0
    last_sync_at: float = 0.0
    last_query_at: float = 0.0
    last_push_at: float = 0.0
    size: dict = field(default_factory=dict)
    branch_states: dict[str, BranchState] = field(default_factory=dict)
    # The default branch the remote deleted, while the index built from it answers
    # (stale) and until the remote's default branch is indexed ("" none).
    deleted_branch: str = ""

    @property
    def tracked(self) -> list[str]:
        """The branches followed: those named, else the default branch (once known)."""
        return self.branches or ([self.default_branch] if self.default_branch else [])

    def indexed(self, branch: str | None = None) -> BranchState | None:
        return self.branch_states.get(branch or self.default_branch)

    @property
    def stale(self) -> bool:
        """The remote moved past what is indexed (as far as a push or a check told), or
        deleted the branch it was indexed from."""
        state = self.indexed()
        return self.state is RepoState.STALE or bool(self.deleted_branch) or bool(
            state and state.remote_commit and state.remote_commit != state.commit)

    def index_key(self, branch: str | None = None) -> str:
        """Where `branch`'s index lives (the URL for the default branch)."""
        return index_key(self.url, None if not branch or branch == self.default_branch
                         else branch)

    def public(self) -> dict:
        data = asdict(self)
        data["state"] = self.state.value
        data["stale"] = self.stale
        return data


class RegistryMixin:
    """Registry methods of GraphStore (shared/graph/store/base.py)."""

    def register(self, url: str, branches: Iterable[str] = (), secret: str | None = None,
                 sync_interval: int = 0) -> tuple[Repository, bool]:
        """The record of `url`, made if missing; (record, True when made now). An existing
        record keeps its settings (change them with `update_repo`)."""
        def work(writer) -> bool:
            made = writer.execute(
                "INSERT INTO repositories (url, branches, webhook_secret, sync_interval,"
                " created_at, state) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (url) DO NOTHING"
                " RETURNING id", (url, self._encode_stats(list(branches)), secret,
                                  int(sync_interval), self.clock(), RepoState.REGISTERED.value))
            return bool(made)
        created = self._write(work)
        return self.repo_record(url), created

    def repo_record(self, key: int | str) -> Repository | None:
        """The record by id or by URL."""
        column = "id" if isinstance(key, int) else "url"
        rows = self._query(f"{_SELECT} WHERE {column} = ?", (key,))
        return self._repositories(rows)[0] if rows else None

    def repo_records(self) -> list[Repository]:
        return self._repositories(self._query(f"{_SELECT} WHERE url NOT LIKE ? ORDER BY url",
                                              (BRANCH_INDEX,)))

    def index_keys(self, url: str) -> list[str]:
        """The keys of every index the repository has: its URL, then `URL#branch` for
        each other branch with snapshots or a pending rebuild."""
        prefix = url + "#"
        rows = self._query("SELECT url FROM repositories WHERE substr(url, 1, ?) = ?"
                           " ORDER BY url", (len(prefix), prefix))
        return [url, *(row[0] for row in rows)]

    def _repositories(self, rows: list[tuple]) -> list[Repository]:
        found = [self._repository(row) for row in rows]
        if not found:
            return []
        by_id = {r.id: r for r in found}
        branch_rows = self._query(
            "SELECT repo_id, name, commit_sha, snapshot_id, synced_at, remote_commit, reason"
            f" FROM branches WHERE {self._in('repo_id', 'bigint')}",
            (self._pack(list(by_id)),))
        for repo_id, name, commit, snapshot_id, synced_at, remote, reason in branch_rows:
            by_id[repo_id].branch_states[name] = BranchState(commit, snapshot_id, synced_at,
                                                             remote, reason or "")
        return found

    def _repository(self, row: tuple) -> Repository:
        (id_, url, default_branch, branches, state, reason, interval, has_secret, force,
         created, synced, queried, pushed, size, deleted) = row
        return Repository(int(id_), url, default_branch or "", list(_json(self, branches, [])),
                          RepoState(state), reason or "", int(interval or 0), bool(has_secret),
                          bool(force), float(created or 0), float(synced or 0),
                          float(queried or 0), float(pushed or 0), dict(_json(self, size, {})),
                          deleted_branch=deleted or "")

    def update_repo(self, key: int | str, **changes: Any) -> Repository | None:
        """Change `branches`, `secret` (None removes it) or `sync_interval`."""
        columns = {"branches": "branches", "secret": "webhook_secret",
                   "sync_interval": "sync_interval"}
        unknown = set(changes) - set(columns)
        if unknown:
            raise ValueError(f"cannot change {sorted(unknown)}")
        if "branches" in changes:
            changes["branches"] = self._encode_stats(list(changes["branches"]))
        if changes:
            sets = ", ".join(f"{columns[name]} = ?" for name in changes)
            column = "id" if isinstance(key, int) else "url"
            self._write(lambda writer: writer.execute(
                f"UPDATE repositories SET {sets} WHERE {column} = ?", (*changes.values(), key)))
        return self.repo_record(key)

    def set_repo_state(self, url: str, state: RepoState | None, reason: str = "", *,
                       branch: str | None = None, commit: str | None = None,
                       snapshot_id: int | None = None, remote_commit: str | None = None,
                       remote_seen: str | None = None, size: dict | None = None,
                       default_branch: str | None = None) -> None:
        """The worker's and the scheduler's transitions; with `commit`, `branch` was
        indexed at it now (READY), with `remote_commit` its remote was seen there.
        `remote_seen` (with `commit`): where the registry had the remote before the job
        fetched; the job's fetch saw at least that far, so unless a push or a check has
        told of another head since, the remote is now known to be at `commit`.
        `state` None leaves the repository's state and reason as they are (a branch
        other than the default one): `reason` is then the branch's (its job failed), and
        indexing it (`commit`) clears it."""
        now = self.clock()

        def work(writer) -> None:
            repo_id = writer.execute(
                "INSERT INTO repositories (url, created_at) VALUES (?, ?)"
                " ON CONFLICT (url) DO UPDATE SET url = excluded.url RETURNING id",
                (url, now))[0][0]
            if state is not None:
                writer.execute("UPDATE repositories SET state = ?, reason = ? WHERE id = ?",
                               (state.value, reason, repo_id))
            if default_branch:
                writer.execute("UPDATE repositories SET default_branch = ? WHERE id = ?",
                               (default_branch, repo_id))
            if size is not None:
                writer.execute("UPDATE repositories SET size = ? WHERE id = ?",
                               (self._encode_stats(size), repo_id))
            if state is RepoState.READY:  # the default branch indexed: what it follows now
                writer.execute("UPDATE repositories SET last_sync_at = ?, deleted_branch = ''"
                               " WHERE id = ?", (now, repo_id))
            branch_reason = reason if state is None and reason else None
            if branch and (commit is not None or remote_commit is not None
                           or branch_reason is not None):
                writer.execute(
                    "INSERT INTO branches (repo_id, name) VALUES (?, ?)"
                    " ON CONFLICT (repo_id, name) DO NOTHING", (repo_id, branch))
                if commit is not None:
                    writer.execute(
                        "UPDATE branches SET commit_sha = ?, snapshot_id = ?, synced_at = ?,"
                        " reason = '' WHERE repo_id = ? AND name = ?",
                        (commit, snapshot_id, now, repo_id, branch))
                    if remote_seen is not None:
                        writer.execute(
                            "UPDATE branches SET remote_commit = ? WHERE repo_id = ?"
                            " AND name = ? AND remote_commit = ?",
                            (commit, repo_id, branch, remote_seen))
                if branch_reason is not None:
                    writer.execute("UPDATE branches SET reason = ? WHERE repo_id = ? AND name = ?",
                                   (branch_reason, repo_id, branch))
                if remote_commit is not None:
                    writer.execute("UPDATE branches SET remote_commit = ?"
                                   " WHERE repo_id = ? AND name = ?",
                                   (remote_commit, repo_id, branch))
        self._write(work)

    def request_sync(self, url: str, force: bool = False, push_at: float | None = None,
                     branch: str | None = None, remote_commit: str | None = None,
                     key: str | None = None) -> None:
        """A sync was asked for (an API call, a push): remember a forced rebuild of the
        index `key` (default: the URL's), when the push came, and where it moved the
        branch."""
        def work(writer) -> None:
            if force:
                writer.execute(
                    "INSERT INTO repositories (url, created_at, force_next, force_asked)"
                    " VALUES (?, ?, ?, 1) ON CONFLICT (url) DO UPDATE SET force_next ="
                    " excluded.force_next, force_asked = repositories.force_asked + 1",
                    (key or url, self.clock(), True))
            if push_at is not None:
                writer.execute("UPDATE repositories SET last_push_at = ? WHERE url = ?",
                               (push_at, url))
            if branch and remote_commit:
                rows = writer.execute("SELECT id FROM repositories WHERE url = ?", (url,))
                if rows:
                    writer.execute(
                        "INSERT INTO branches (repo_id, name, remote_commit) VALUES (?, ?, ?)"
                        " ON CONFLICT (repo_id, name) DO UPDATE SET"
                        " remote_commit = excluded.remote_commit",
                        (rows[0][0], branch, remote_commit))
        self._write(work)

    def forced(self, key: str) -> int:
        """The forced rebuild of the index `key` asked for and not done yet, as a token
        for `rebuilt` (0: none). A job that dies or is given back before it is done
        leaves the request for the job that runs next."""
        rows = self._query("SELECT force_asked FROM repositories WHERE url = ? AND force_next",
                           (key,))
        return int(rows[0][0]) if rows else 0

    def rebuilt(self, key: str, token: int) -> None:
        """The forced rebuild that `forced` gave `token` for is done; a request made
        since stays asked for."""
        self._write(lambda writer: writer.execute(
            "UPDATE repositories SET force_next = ? WHERE url = ? AND force_asked = ?",
            (False, key, token)))

    def drop_branch(self, url: str, branch: str, fence: int | None = None) -> str | None:
        """The remote deleted `branch`: forget its indexed state, and its index unless
        it is the default branch's. The key of the index removed (its vectors are the
        caller's to remove), or None."""
        record = self.repo_record(url)
        key = record.index_key(branch) if record else url
        gone = key if key != url else None

        def work(writer) -> None:
            writer.execute("DELETE FROM branches WHERE name = ? AND repo_id IN"
                           " (SELECT id FROM repositories WHERE url = ?)", (branch, url))
            if gone:
                _drop_index(writer, gone, fence, keep_row=False)
        self._write(work)
        return gone

    def drop_default_branch(self, url: str, branch: str) -> None:
        """The remote deleted `branch`, the default one: the index built from it keeps
        answering, stale, and the record forgets which branch is the default (the next
        clone names the remote's), so a push to the remote's new default branch is
        followed. The caller queues that sync."""
        def work(writer) -> None:
            writer.execute("DELETE FROM branches WHERE name = ? AND repo_id IN"
                           " (SELECT id FROM repositories WHERE url = ?)", (branch, url))
            writer.execute(
                "UPDATE repositories SET default_branch = '', deleted_branch = ?, state = ?,"
                " reason = ? WHERE url = ?",
                (branch, RepoState.STALE.value,
                 f"its default branch {branch!r} was deleted on the remote; the index built "
                 "from it answers, stale, until the remote's default branch is indexed", url))
        self._write(work)

    def webhook_secret(self, url: str) -> str | None:
        rows = self._query("SELECT webhook_secret FROM repositories WHERE url = ?", (url,))
        return rows[0][0] if rows else None

    def record_delivery(self, delivery: str) -> bool:
        """True the first time a webhook delivery id is seen (within a week)."""
        now = self.clock()

        def work(writer) -> bool:
            writer.execute("DELETE FROM webhook_deliveries WHERE received_at < ?",
                           (now - DELIVERY_RETENTION,))
            return bool(writer.execute(
                "INSERT INTO webhook_deliveries (delivery, received_at) VALUES (?, ?)"
                " ON CONFLICT (delivery) DO NOTHING RETURNING delivery", (delivery, now)))
        return self._write(work)

    def forget_delivery(self, delivery: str) -> None:
        """What came after recording a delivery failed (a full queue): its redelivery
        must be treated as new."""
        self._write(lambda writer: writer.execute(
            "DELETE FROM webhook_deliveries WHERE delivery = ?", (delivery,)))

    def touch_query(self, url: str) -> None:
        self._write(lambda writer: writer.execute(
            "UPDATE repositories SET last_query_at = ? WHERE url = ?", (self.clock(), url)))

    def archive_repository(self, url: str, fence: int | None = None) -> list[str]:
        """Snapshots and their facts removed, the record kept (state archived); the
        index keys emptied (their vectors are the caller's to remove)."""
        return self._remove(url, keep_record=True, fence=fence)

    def delete_repository(self, url: str, fence: int | None = None) -> list[str]:
        """The record, its branches, snapshots and every fact of them: nothing left
        but the fences (see the module's docstring). The index keys it had."""
        return self._remove(url, keep_record=False, fence=fence)

    def _remove(self, url: str, keep_record: bool, fence: int | None) -> list[str]:
        keys = self.index_keys(url)

        def work(writer) -> None:
            for key in keys[1:]:
                _drop_index(writer, key, fence, keep_row=False)
            rows = writer.execute("SELECT id FROM repositories WHERE url = ?", (url,))
            if not rows:
                return
            _drop_index(writer, url, fence, keep_row=True)
            repo_id = rows[0][0]
            writer.execute("DELETE FROM branches WHERE repo_id = ?", (repo_id,))
            if keep_record:
                writer.execute("UPDATE repositories SET state = ?, reason = ?, size = ?,"
                               " deleted_branch = '' WHERE id = ?",
                               (RepoState.ARCHIVED.value, "", self._encode_stats({}), repo_id))
            else:
                writer.execute("DELETE FROM repo_accounts WHERE repo_url = ?", (url,))
                writer.execute("DELETE FROM repositories WHERE id = ?", (repo_id,))
        self._write(work)
        return keys


def _drop_index(writer, key: str, fence: int | None, keep_row: bool) -> None:
    """Every snapshot of the index `key` and its facts; its row too unless `keep_row`.
    With `fence`, the key's fence is raised to it first (a running job is shut out)."""
    from shared.graph.store.base import _delete_facts, _raise_fence

    if fence is not None:
        _raise_fence(writer, key, fence)
    rows = writer.execute("SELECT id FROM repositories WHERE url = ?", (key,))
    if not rows:
        return
    for (snapshot_id,) in writer.execute("SELECT id FROM snapshots WHERE repo_id = ?",
                                         (rows[0][0],)):
        _delete_facts(writer, snapshot_id)
    writer.execute("DELETE FROM snapshots WHERE repo_id = ?", (rows[0][0],))
    if not keep_row:
        writer.execute("DELETE FROM repositories WHERE id = ?", (rows[0][0],))


def _json(store, raw: Any, empty: Any) -> Any:
    if raw is None or raw == "":
        return empty
    return store._decode_stats(raw)
