"""The worker's idle-time chores: periodic syncs and archiving (`Worker(on_idle=...)`).

Periodic sync. A repository registered with a `sync_interval` is looked at once per
interval: `git ls-remote` asks its remote where each tracked branch points now (a few
hundred bytes, no clone, and nothing billed by the queue). Only when the head moved
past the indexed commit is a sync queued, which costs the queue one command; the
record turns `stale` meanwhile, so answers say so. `queue_commands` counts what
these chores cost the queue, for an Upstash free tier.

Archiving. A repository with no query and no push for `ARCHIVE_AFTER_DAYS` loses its
vectors, its snapshots and this worker's parse cache; its record stays, `archived`,
and its next sync ingests it again from nothing. The parse caches of repositories
deleted through the API (on whichever machine) go at the next pass.

Every worker runs these chores; they are idempotent (a second worker finding the same
moved head merges into the same queued job), and each pass is bounded: at most
`CHECKS_PER_PASS` remotes asked, and a pass at most every `PASS_SECONDS`.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from edge.fetch import FetchError, UnsafeTarget, remote_head
from edge.parse.cache import ParseCache
from shared.graph.mirror import forget
from shared.graph.store import GraphStore
from shared.graph.store.registry import RepoState, Repository
from shared.queue import JobQueue, QueueFull
from shared.settings import Settings
from shared.vectors import VectorStore

log = logging.getLogger("edge.schedule")

PASS_SECONDS = 60.0  # between two passes over the registry
CHECKS_PER_PASS = 20  # remotes asked per pass at most: a pass stays short
DAY = 86_400.0


class Chores:
    """Callable as the worker's `on_idle`."""

    def __init__(self, settings: Settings, queue: JobQueue, store: Callable[[], GraphStore],
                 vectors: Callable[[], VectorStore], clock: Callable[[], float] = time.time,
                 head: Callable[..., str | None] = remote_head,
                 mirror: Callable[[], Any] = lambda: None):
        self.settings, self.queue = settings, queue
        self._store, self._vectors, self._mirror = store, vectors, mirror
        self.clock, self.head = clock, head
        self.checked: dict[str, float] = {}  # url -> when this worker last asked its remote
        self.queue_commands = 0  # what the chores cost the queue (Upstash bills each)
        self._last_pass = float("-inf")

    def __call__(self) -> None:
        now = self.clock()
        if now - self._last_pass < PASS_SECONDS:
            return
        self._last_pass = now
        asked = 0
        records = self._store().repo_records()
        ParseCache.sweep(self.settings.data_dir, [
            key for r in records if r.state is not RepoState.ARCHIVED
            for key in {r.url, *(r.index_key(b) for b in r.tracked)}])
        for repo in records:
            if repo.state is RepoState.ARCHIVED:
                continue
            if self._idle_too_long(repo, now):
                self.archive(repo)
            elif asked < CHECKS_PER_PASS and self._due(repo, now):
                asked += 1
                self.check(repo, now)

    def _idle_too_long(self, repo: Repository, now: float) -> bool:
        if repo.state in (RepoState.QUEUED, RepoState.INDEXING):
            return False
        last = max(repo.last_query_at or 0, repo.last_push_at or 0, repo.last_sync_at or 0,
                   repo.created_at or 0)
        return now - last > self.settings.archive_after_days * DAY

    def _due(self, repo: Repository, now: float) -> bool:
        if not repo.sync_interval or repo.state in (RepoState.QUEUED, RepoState.INDEXING):
            return False
        last = max(self.checked.get(repo.url, 0.0), repo.last_sync_at or 0.0)
        return now - last >= repo.sync_interval

    def check(self, repo: Repository, now: float) -> bool:
        """Ask the remote where each tracked branch is; queue a sync of each that moved.
        True when one was queued."""
        self.checked[repo.url] = now
        queued = False
        for branch in repo.tracked or [None]:  # None: HEAD, before the first clone
            queued = self._check_branch(repo, branch) or queued
        return queued

    def _check_branch(self, repo: Repository, branch: str | None) -> bool:
        indexed = repo.branch_states.get(branch or repo.default_branch)
        try:
            head = self.head(repo.url, self.settings, branch)
        except (FetchError, UnsafeTarget) as exc:
            log.warning("periodic sync of %s %s: %s", repo.url, branch or "HEAD", exc)
            return False
        if head is None:
            return False
        if indexed is not None and indexed.commit == head:
            if indexed.remote_commit not in ("", head):  # an older head a push once told
                self._store().set_repo_state(repo.url, None, remote_commit=head,
                                             branch=branch or repo.default_branch)
            return False
        key = repo.index_key(branch)
        default = key == repo.url  # the repository's state follows its default branch
        store = self._store()
        store.set_repo_state(repo.url, RepoState.STALE if default else None,
                             remote_commit=head, branch=branch)
        try:
            self.queue_commands += 1
            self.queue.enqueue(key)
        except QueueFull as exc:
            log.info("periodic sync of %s waits: %s", key, exc)
            return False
        if default:
            store.set_repo_state(repo.url, RepoState.QUEUED)
        log.info("periodic sync of %s: %s moved to %s; sync queued", repo.url,
                 branch or "HEAD", head[:12])
        return True

    def archive(self, repo: Repository) -> None:
        log.info("archiving %s: no query or push for %d days", repo.url,
                 self.settings.archive_after_days)
        store, vectors = self._store(), self._vectors()
        keys = store.index_keys(repo.url)
        for key in keys:
            vectors.delete_repo(key)
        store.archive_repository(repo.url, fence=self.queue.issue_fence())
        for key in keys:  # what a job uploaded meanwhile (it is fenced out now)
            vectors.delete_repo(key)
            ParseCache.remove(self.settings.data_dir, key)
        forget(self._mirror(), keys)
