"""The repository registry (shared/graph/store/registry.py) on PostgreSQL and SQLite."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

import shared.graph.store.base as store_base
from shared.graph.store.registry import RepoState
from tests.test_graph_store import (  # noqa: F401  (fixtures)
    ALL_VERSIONS,
    REPO,
    graph_backend,
    import_graph,
    open_store,
    store,
)


def test_a_database_indexed_before_the_registry_comes_out_ready(open_store, monkeypatch):
    monkeypatch.setattr(store_base, "MIGRATIONS", store_base.MIGRATIONS[:4])
    old = open_store()
    old.write_snapshot(import_graph([("a.py", "b.py")]))
    old.close()
    monkeypatch.undo()
    store = open_store()
    assert store.schema_versions() == ALL_VERSIONS
    (record,) = store.repo_records()
    assert record.url == REPO and record.state is RepoState.READY
    assert record.created_at > 0 and record.last_sync_at >= record.created_at


def test_register_is_idempotent_and_keeps_settings(store):
    first, created = store.register(REPO, ["main", "dev"], secret="s3cret", sync_interval=600)
    again, created_again = store.register(REPO, ["other"], secret=None, sync_interval=0)
    assert created and not created_again
    assert again.id == first.id and again.branches == ["main", "dev"]
    assert again.sync_interval == 600 and again.has_secret
    assert again.state is RepoState.REGISTERED
    assert store.repo_record(first.id).url == REPO and store.repo_record(999) is None


def test_the_secret_is_never_part_of_the_record(store):
    store.register(REPO, secret="s3cret-value")
    public = store.repo_record(REPO).public()
    assert "s3cret-value" not in repr(public) and public["has_secret"] is True
    assert store.webhook_secret(REPO) == "s3cret-value"
    store.update_repo(REPO, secret=None)
    assert store.webhook_secret(REPO) is None and not store.repo_record(REPO).has_secret
    with pytest.raises(ValueError, match="cannot change"):
        store.update_repo(REPO, url="https://elsewhere")


def test_the_worker_s_transitions_and_branch_state(store):
    store.register(REPO)
    store.set_repo_state(REPO, RepoState.INDEXING)
    assert store.repo_record(REPO).state is RepoState.INDEXING
    store.set_repo_state(REPO, RepoState.FAILED, "clone failed: not found")
    record = store.repo_record(REPO)
    assert (record.state, record.reason) == (RepoState.FAILED, "clone failed: not found")
    snapshot = store.write_snapshot(import_graph([("a.py", "b.py")], commit="abc"))
    store.set_repo_state(REPO, RepoState.READY, branch="main", commit="abc",
                         snapshot_id=snapshot.id, size={"files": 2}, default_branch="main")
    record = store.repo_record(REPO)
    assert record.state is RepoState.READY and record.reason == ""
    assert record.indexed().commit == "abc" and record.indexed().snapshot_id == snapshot.id
    assert record.size == {"files": 2} and record.tracked == ["main"] and not record.stale
    store.request_sync(REPO, push_at=123.0, branch="main", remote_commit="def")
    record = store.repo_record(REPO)
    assert record.stale and record.last_push_at == 123.0
    store.drop_branch(REPO, "main")
    assert store.repo_record(REPO).branch_states == {}


def test_a_forced_sync_stays_asked_for_until_a_job_has_done_it(store):
    store.register(REPO)
    assert store.forced(REPO) == 0
    store.request_sync(REPO, force=True)
    store.request_sync(REPO, force=True)  # two requests before a job: one rebuild
    token = store.forced(REPO)
    assert token and store.forced(REPO) == token  # a job that dies leaves it to the next
    store.rebuilt(REPO, token)
    assert store.forced(REPO) == 0 and not store.repo_record(REPO).force_next
    store.request_sync(REPO, force=True)
    seen = store.forced(REPO)
    store.request_sync(REPO, force=True)  # asked for again while that job ran
    store.rebuilt(REPO, seen)
    assert store.forced(REPO) > seen  # the later request is still there


def test_indexing_a_commit_clears_an_older_remote_head_but_not_a_newer_one(store):
    """A push (or a periodic check) recorded where the remote was; a job that fetched
    after that saw at least as far, so the index is not stale once it is at its commit,
    unless another push told of a newer head while the job ran."""
    store.register(REPO)
    store.set_repo_state(REPO, RepoState.READY, branch="main", commit="a" * 40,
                         default_branch="main")
    store.request_sync(REPO, branch="main", remote_commit="b" * 40)
    seen = store.repo_record(REPO).indexed().remote_commit
    store.set_repo_state(REPO, RepoState.READY, branch="main", commit="c" * 40,
                         remote_seen=seen)  # a manual sync went past b
    record = store.repo_record(REPO)
    assert not record.stale and record.indexed().remote_commit == "c" * 40
    seen = record.indexed().remote_commit
    store.request_sync(REPO, branch="main", remote_commit="d" * 40)  # pushed mid-job
    store.set_repo_state(REPO, RepoState.READY, branch="main", commit="e" * 40,
                         remote_seen=seen)
    record = store.repo_record(REPO)
    assert record.stale and record.indexed().remote_commit == "d" * 40


def test_deliveries_are_recorded_once_even_at_once(open_store):
    stores = [open_store() for _ in range(4)]
    with ThreadPoolExecutor(8) as pool:
        firsts = list(pool.map(lambda i: stores[i % 4].record_delivery("delivery-1"), range(16)))
    assert firsts.count(True) == 1
    assert stores[0].record_delivery("delivery-2")


def test_delete_leaves_nothing_and_archive_keeps_the_record(store):
    store.register(REPO)
    store.write_snapshot(import_graph([("a.py", "b.py")], commit="c1"))
    store.write_snapshot(import_graph([("a.py", "c.py")], commit="c2"))
    store.set_repo_state(REPO, RepoState.READY, branch="main", commit="c2")
    store.archive_repository(REPO)
    record = store.repo_record(REPO)
    assert record.state is RepoState.ARCHIVED and record.branch_states == {}
    assert store.snapshots(REPO) == []
    store.write_snapshot(import_graph([("a.py", "b.py")], commit="c3"))
    store.delete_repository(REPO)
    assert store.repo_record(REPO) is None and store.snapshots(REPO) == []
    for table in ("nodes", "edges", "sources", "snapshots", "branches"):
        assert store._query(f"SELECT COUNT(*) FROM {table}") == [(0,)], table


def test_a_branch_s_failure_is_its_own_and_cleared_when_it_is_indexed(store):
    store.register(REPO, ["main", "dev"])
    store.set_repo_state(REPO, RepoState.READY, branch="main", commit="a" * 40,
                         default_branch="main")
    store.set_repo_state(REPO, None, "FetchError: clone of dev failed", branch="dev")
    record = store.repo_record(REPO)
    assert record.state is RepoState.READY and record.reason == ""  # the default branch's
    assert record.branch_states["dev"].reason == "FetchError: clone of dev failed"
    store.set_repo_state(REPO, None, branch="dev", commit="b" * 40, snapshot_id=None)
    assert store.repo_record(REPO).branch_states["dev"].reason == ""
