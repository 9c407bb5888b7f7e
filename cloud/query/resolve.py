"""Which snapshot answers a question, and how the answer names it.

Queries answer from a repository's newest *ready* snapshot (its vectors stored
too), or from the one `commit=` names; with `ref=`, from that branch's own index
(the default branch's is the repository's). The answer says which commit that is,
when it was indexed, whether an ingest of the repository is under way
(`indexing`) and whether the commit is behind the newest one the system knows
(`stale`: an older `commit=` was asked, a newer commit is being indexed, or the
registry heard from a push or a periodic check that the remote moved past it; then
`remote_commit` says where to; or the remote deleted the default branch the index
was built from: `deleted_branch` names it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from cloud.query.errors import not_found
from shared.graph.store import GraphStore, Snapshot
from shared.graph.store.registry import Repository
from shared.repo_url import split_index_key

# Repository URL -> what an ingest of it is doing now ("running", "queued"), from
# the queue; empty when no queue is at hand.
BusyRepos = Callable[[], dict[str, str]]
# The repository URLs a caller may see (an account's own); None: every one (the owner).
Visible = frozenset[str] | None


@dataclass(frozen=True)
class Target:
    repo: str  # the index key: the URL, or URL#branch for a branch other than the default
    snapshot: Snapshot  # the one that answers
    latest: Snapshot  # the newest ready one (the cache follows it)
    indexing: bool
    remote_commit: str = ""  # where the remote's branch was last seen, when it moved on
    ref: str = ""  # the branch indexed ("" while the default branch's name is unknown)
    deleted_branch: str = ""  # the default branch it was built from, deleted on the remote

    @property
    def stale(self) -> bool:
        """A newer commit is known to be on its way, or an older one was asked for. An
        ingest under way (`indexing`) is not enough: a forced rebuild of the same commit,
        or a sync that finds nothing new, is not."""
        return (self.snapshot.id != self.latest.id or bool(self.remote_commit)
                or bool(self.deleted_branch))

    def index(self) -> dict:
        """How an answer names its evidence."""
        found = {"repo": split_index_key(self.repo)[0], "ref": self.ref or None,
                 "commit": self.snapshot.commit,
                 "indexed_at": self.snapshot.taken_at, "stale": self.stale,
                 "indexing": self.indexing}
        if self.remote_commit:
            found["remote_commit"] = self.remote_commit
        if self.deleted_branch:
            found["deleted_branch"] = self.deleted_branch
        return found


def resolve(store: GraphStore, repo: str, commit: str | None, busy: dict[str, str],
            visible: Visible = None) -> Target:
    """`repo`: an index key (shared.repo_url.index_key); a branch key naming the default
    branch is the URL's. A repository the caller may not see (not in `visible`) is
    answered exactly as one that is not indexed: its existence is not for them."""
    url, branch = split_index_key(repo)
    if visible is not None and url not in visible:
        raise _not_indexed(url)
    record = store.repo_record(url)
    if branch and record is not None and branch == record.default_branch:
        repo, branch = url, None
    snapshots = store.snapshots(repo)
    ready = [s for s in snapshots if s.ready]
    if not ready:
        what = f"branch {branch} of {url}" if branch else f"repository {url}"
        if snapshots:
            raise not_found(f"{what} is being indexed for the first time; "
                            "ask again when its ingest is complete")
        if branch:
            raise not_found(f"{what} is not indexed; track it (PATCH /api/v1/repos/{{id}} "
                            "branches) and push, or POST /api/v1/repos/{id}/sync with it")
        raise _not_indexed(url)
    latest = ready[0]
    # A newer snapshot that is not ready yet is an ingest between its graph and vectors.
    indexing = repo in busy or snapshots[0].id != latest.id
    moved = _remote_moved(record, branch, latest) or _coming(snapshots[0], latest)
    ref = branch or (record.default_branch if record is not None else "")
    deleted = record.deleted_branch if record is not None and not branch else ""
    if commit is None:
        return Target(repo, latest, latest, indexing, moved, ref, deleted)
    found = [s for s in ready if s.commit.lower().startswith(commit)]
    if len(found) != 1:
        known = ", ".join(s.commit[:12] for s in ready)
        what = "matches several indexed commits" if found else "is not an indexed commit"
        raise not_found(f"commit {commit} {what} of {repo}; indexed: {known}")
    return Target(repo, found[0], latest, indexing, moved, ref, deleted)


def _not_indexed(url: str):
    return not_found(f"repository {url} is not indexed; ingest it first "
                     "(POST /api/v1/ingestion/ingest/...)")


def _coming(newest: Snapshot, latest: Snapshot) -> str:
    """The commit of a snapshot being written past the newest ready one, when it is
    another commit ("" when none is, or when it rebuilds the same commit)."""
    return newest.commit if newest.id != latest.id and newest.commit != latest.commit else ""


def _remote_moved(record: Repository | None, branch: str | None, latest: Snapshot) -> str:
    """The remote head past the newest indexed commit, as a push or a periodic check
    told the registry ("" when none is known)."""
    branch = record.indexed(branch) if record is not None else None
    if branch is None or not branch.remote_commit:
        return ""
    return branch.remote_commit if branch.remote_commit != latest.commit else ""
