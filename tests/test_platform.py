"""Windows, simulated: Windows cannot run here, so the platform branches are driven
directly. Processes start by spawn (Windows has no fork), Ctrl+C / Ctrl+Break stop the
worker as SIGINT/SIGTERM do, and a second one gives the job back at once. (Removing
read-only git objects is tested in test_fetch.py.)"""
from __future__ import annotations

import os
import signal
import time

import pytest

import edge.parse.pool as pool
from edge.__main__ import stop_on_signals
from edge.source import walk
from edge.worker import Worker
from shared.jobs import JobResult
from shared.queue.sqlite import SqliteQueue


def test_parsing_in_processes_never_forks(tmp_path, monkeypatch):
    for n in range(6):
        (tmp_path / f"m{n}.py").write_text(f"import m{(n + 1) % 6}\n\ndef f{n}():\n    pass\n")
    files = walk(tmp_path, (), 1_000_000).files
    monkeypatch.setattr(pool, "PARALLEL_MIN_BYTES", 1)  # a pool even for six tiny files
    monkeypatch.setattr(pool, "BATCH_BYTES", 1)

    def no_fork():
        raise AssertionError("os.fork called: Windows has no fork, use spawn")
    monkeypatch.setattr(os, "fork", no_fork)

    parsed = pool.parse_files(tmp_path, files, workers=2)
    assert [p.path for p in parsed] == [f.path for f in files]
    assert all(p.symbols and p.symbols[0].name.startswith("f") for p in parsed)


def test_parser_processes_outlive_a_ctrl_c_sent_to_the_whole_console():
    with pool.process_pool(1) as processes:
        child = processes.submit(os.getpid).result(timeout=60)
        processes.submit(os.kill, child, signal.SIGINT).result(timeout=10)
        assert processes.submit(os.getpid).result(timeout=10) == child  # still there


@pytest.fixture
def worker(tmp_path):
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    yield Worker(queue, lambda job, report: JobResult(), worker_id="w",
                 stop_grace_seconds=60.0)
    queue.close()


@pytest.fixture
def restore_handlers():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGBREAK"])
def test_each_stop_signal_stops_the_worker_and_a_second_gives_the_job_back(
        worker, monkeypatch, restore_handlers, name):
    # SIGBREAK (Ctrl+Break, which NSSM may send) exists only on Windows: stand one in
    monkeypatch.setattr(signal, "SIGBREAK", signal.SIGUSR1, raising=False)
    stop_on_signals(worker)
    handler = signal.getsignal(getattr(signal, name))
    assert callable(handler)

    handler(getattr(signal, name), None)  # as the interpreter would call it
    assert worker.stopping
    assert worker._stop_deadline == pytest.approx(time.monotonic() + 60.0, abs=2)

    handler(getattr(signal, name), None)
    assert worker._stop_deadline <= time.monotonic()  # grace over: the job goes back now


def test_without_sigbreak_only_the_posix_signals_are_taken(worker, monkeypatch,
                                                           restore_handlers):
    monkeypatch.delattr(signal, "SIGBREAK", raising=False)
    before = signal.getsignal(signal.SIGUSR1)
    stop_on_signals(worker)
    assert signal.getsignal(signal.SIGUSR1) is before
    assert callable(signal.getsignal(signal.SIGTERM))
