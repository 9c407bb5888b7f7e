"""The worker's idle-time chores (edge/schedule.py) on real stores: a registry in SQLite,
a SQLite queue, Qdrant local mode and real git repositories."""
from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge.parse.cache import FOLDER
from edge.schedule import PASS_SECONDS, Chores
from edge.worker import Worker
from shared.graph.store import SqliteGraphStore
from shared.graph.store.registry import RepoState
from shared.jobs import WorkerStatus
from shared.queue.sqlite import SqliteQueue
from shared.settings import Settings
from shared.vectors import VectorStore
from tests.test_graph_store import import_graph

DAY = 86_400


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def _commit(repo: Path, name: str) -> str:
    (repo / name).write_text(f"# {name}\n")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", name)
    return _git(repo, "rev-parse", "HEAD")


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    first = _commit(repo, "a.py")
    clock = Clock()
    settings = replace(Settings(data_dir=tmp_path / "data"), allow_local_repos=True)
    store = SqliteGraphStore(tmp_path / "graph.db", clock=clock)
    queue = SqliteQueue(tmp_path / "queue.db", clock=clock)
    vectors = VectorStore(path=tmp_path / "qdrant")
    chores = Chores(settings, queue, lambda: store, lambda: vectors, clock=clock)
    url = repo.as_uri()
    store.register(url, sync_interval=600)
    store.set_repo_state(url, RepoState.READY, branch="main", commit=first,
                         default_branch="main")
    yield repo, url, clock, store, queue, vectors, chores
    vectors.close()
    store.close()
    queue.close()


def test_a_moved_head_queues_one_sync_and_an_unmoved_one_nothing(world):
    repo, url, clock, store, queue, _, chores = world
    clock.now += 601
    chores()
    assert queue.pending_count() == 0 and chores.queue_commands == 0  # nothing moved
    head = _commit(repo, "b.py")
    clock.now += 30
    chores()  # within the pass interval: nothing asked
    assert queue.pending_count() == 0
    clock.now += 600
    chores()
    assert queue.pending_count() == 1 and chores.queue_commands == 1
    record = store.repo_record(url)
    assert record.state is RepoState.QUEUED and record.indexed().remote_commit == head
    assert record.stale
    clock.now += 700
    chores()  # queued: not asked again, not queued twice
    assert queue.pending_count() == 1 and chores.queue_commands == 1


def test_a_head_a_push_told_of_and_the_index_has_passed_stops_being_stale(world):
    """The registry had the remote at b (a push); the index went on to c by another
    sync. The next check finds the remote where the index is: not stale, nothing queued."""
    repo, url, clock, store, queue, _, chores = world
    pushed = _commit(repo, "b.py")
    store.request_sync(url, branch="main", remote_commit=pushed)
    head = _commit(repo, "c.py")
    store.set_repo_state(url, RepoState.READY, branch="main", commit=head)
    assert store.repo_record(url).stale
    clock.now += 601
    chores()
    record = store.repo_record(url)
    assert not record.stale and record.indexed().remote_commit == head
    assert queue.pending_count() == 0


def test_repositories_without_an_interval_are_never_asked(world):
    repo, url, clock, store, queue, _, chores = world
    store.update_repo(url, sync_interval=0)
    _commit(repo, "b.py")
    clock.now += 10 * DAY
    chores()
    assert queue.pending_count() == 0


def test_an_unreachable_remote_is_logged_not_fatal(world, caplog):
    _, url, clock, store, queue, _, chores = world
    store.register("file:///nowhere/at/all", sync_interval=600)
    clock.now += 601
    chores()
    assert "periodic sync of file:///nowhere/at/all" in caplog.text
    assert queue.pending_count() == 0


def test_an_untouched_repository_is_archived_and_keeps_its_record(world, tmp_path):
    repo, url, clock, store, queue, vectors, chores = world
    store.update_repo(url, sync_interval=0)
    store.write_snapshot(import_graph([("a.py", "b.py")], repo=url))
    vectors.write_structure(url, "c1", "job", ["a.py"], np.ones((1, 64), np.float32))
    cache = tmp_path / "data" / FOLDER
    cache.mkdir(parents=True)
    from edge.parse.cache import _file
    _file(tmp_path / "data", url).write_bytes(b"cached")
    clock.now += 29 * DAY
    chores()
    assert store.repo_record(url).state is RepoState.READY
    store.touch_query(url)  # a query resets the clock
    clock.now += 29 * DAY
    chores()
    assert store.repo_record(url).state is RepoState.READY
    clock.now += 2 * DAY + PASS_SECONDS
    chores()
    record = store.repo_record(url)
    assert record.state is RepoState.ARCHIVED and store.snapshots(url) == []
    assert vectors.count(url) == 0 and not any(cache.iterdir())


def test_the_caches_of_deleted_repositories_are_swept(world, tmp_path):
    _, url, clock, store, _, _, chores = world
    from edge.parse.cache import _file
    kept, gone = _file(tmp_path / "data", url), _file(tmp_path / "data", "https://gone/x")
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"1")
    gone.write_bytes(b"2")
    clock.now += PASS_SECONDS
    chores()
    assert kept.exists() and not gone.exists()


def test_the_worker_runs_its_chores_only_when_the_queue_is_empty(world):
    _, _, _, _, queue, _, _ = world
    calls = []
    worker = Worker(queue, lambda job, report: None, worker_id="w",
                    on_idle=lambda: calls.append(1))
    assert not worker.run_once()
    worker._idle()
    assert calls == [1]
    failing = Worker(queue, lambda job, report: None, worker_id="w",
                     on_idle=lambda: 1 / 0)
    failing._idle()  # a failing chore is logged, the worker goes on
    assert queue.claim(WorkerStatus(worker_id="w")) is None
