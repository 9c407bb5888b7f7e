"""One repository, one job at a time, across worker *processes*.

The queue promises that no two jobs of one repository run at once, on one worker or
several: a claim skips a job whose repository has a running job, and that lock is the
running job's lease. test_queue_contract.py checks it inside one process; here real OS
processes (tests/lock_worker.py) claim from one queue on each backend (SQLite file,
real redis-server, the Upstash REST stand-in), while this process enqueues.
"""
from __future__ import annotations

import json
import os
import queue as queues
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

from shared.jobs import JobState
from tests.lock_worker import open_queue

ROOT = Path(__file__).resolve().parent.parent
R = "https://github.com/owner/locked"
S = "https://github.com/owner/other"
ANSWER_SECONDS = 15.0


class Claimer:
    """A `lock_worker serve` process: claims and finishes on command."""

    def __init__(self, spec: dict, worker_id: str, log_dir: Path):
        self.worker_id = worker_id
        self.log = log_dir / f"{worker_id}.log"
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.lock_worker", "serve",
                 json.dumps({**spec, "worker_id": worker_id})],
                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        self._lines: queues.Queue[str] = queues.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put("")  # end of output: the process is gone

    def send(self, **command) -> None:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def answer(self) -> dict:
        try:
            line = self._lines.get(timeout=ANSWER_SECONDS)
        except queues.Empty:
            line = None
        if not line:
            raise AssertionError(f"{self.worker_id} gave no answer; its log:\n"
                                 + self.log.read_text())
        return json.loads(line)

    def claim(self) -> dict | None:
        self.send(op="claim")
        return self.answer()["job"]

    def finish(self, job_id: str, state: JobState) -> bool:
        self.send(op="finish", id=job_id, state=state.value)
        return self.answer()["ok"]

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no finish, no release, no more heartbeats
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


def claim_at_once(*claimers: Claimer) -> list[dict | None]:
    """Every process claims at the same moment: the commands go out before any answer
    is read."""
    for claimer in claimers:
        claimer.send(op="claim")
    return [claimer.answer()["job"] for claimer in claimers]


@pytest.fixture
def spec(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict:
    """Where the queue lives, for this process and the worker processes alike."""
    spec = {"backend": backend, "prefix": f"lock{uuid.uuid4().hex[:10]}:"}
    if backend == "sqlite":
        spec["path"] = str(tmp_path / "queue.sqlite3")
    else:
        spec["redis_url"] = request.getfixturevalue("redis_url")
    if backend == "upstash":
        server = request.getfixturevalue("upstash_server")
        spec.update(upstash_url=server.url, token=server.token)
    return spec


@pytest.fixture
def start(tmp_path: Path):
    """Starts claimer processes, ready to take commands; stops them all at the end."""
    started: list[Claimer] = []

    def start(spec: dict, *worker_ids: str) -> list[Claimer]:
        claimers = [Claimer(spec, worker_id, tmp_path) for worker_id in worker_ids]
        started.extend(claimers)
        for claimer in claimers:
            assert claimer.answer() == {"ready": True}
        return claimers

    yield start
    for claimer in started:
        claimer.stop()


@pytest.fixture
def producer():
    made = []

    def producer(spec: dict):
        made.append(open_queue(spec))
        return made[-1]

    yield producer
    for queue in made:
        queue.close()


@pytest.mark.parametrize("end", [JobState.COMPLETE, JobState.FAILED])
def test_a_held_repository_is_skipped_by_another_process_until_its_job_ends(
        spec, start, producer, end):
    spec = {**spec, "lease": 30}
    queue = producer(spec)
    first, second = start(spec, "first", "second")
    a1 = queue.enqueue(R).job
    assert first.claim()["id"] == a1.id
    pushed = queue.enqueue(R)  # R's job runs, so this is a new job, not a1 again
    assert pushed.created and pushed.job.id != a1.id
    a2 = pushed.job
    b = queue.enqueue(S).job

    # a2 is at the head of the queue, but R is held by the first process
    assert second.claim()["id"] == b.id
    assert second.claim() is None
    assert first.claim() is None  # not even the holder gets a second job of R
    assert queue.get_job(a2.id).state is JobState.QUEUED
    assert second.finish(b.id, JobState.COMPLETE)
    assert second.claim() is None  # S's end frees S, not R

    assert first.finish(a1.id, end)
    assert queue.get_job(a1.id).state is end
    taken = second.claim()
    assert taken["id"] == a2.id and taken["worker_id"] == "second"
    assert first.claim() is None
    assert queue.get_job(a2.id).state is JobState.RUNNING


def test_the_lock_is_the_lease_of_a_killed_holder(spec, start, producer):
    lease = 1.5
    spec = {**spec, "lease": lease}
    queue = producer(spec)
    holder, one, two = start(spec, "holder", "one", "two")
    a1 = queue.enqueue(R).job
    assert holder.claim()["id"] == a1.id
    a2 = queue.enqueue(R).job
    b = queue.enqueue(S).job
    assert one.claim()["id"] == b.id

    # alive, the holder heartbeats: R stays held past the lease's first deadline
    first_deadline = queue.get_job(a1.id).lease_deadline
    while time.time() < first_deadline + lease / 2:
        assert two.claim() is None
        time.sleep(0.05)
    assert queue.get_job(a1.id).attempts == 1

    holder.kill()
    # dead, it holds R until its last lease runs out: nothing of R is claimable
    checks = 0
    while time.time() < queue.get_job(a1.id).lease_deadline - 0.15:
        assert claim_at_once(one, two) == [None, None]
        checks += 1
        time.sleep(0.05)
    assert checks >= 2
    while time.time() < queue.get_job(a1.id).lease_deadline + 0.05:
        time.sleep(0.02)
    assert queue.get_job(a2.id).state is JobState.QUEUED

    # expired: a1 goes back first and runs again on exactly one process, a2 still waits
    taken = claim_at_once(one, two)
    running = [job for job in taken if job is not None]
    assert len(running) == 1, f"R's jobs taken at once: {running}"
    [retried] = running
    assert retried["id"] == a1.id and retried["attempts"] == 2
    runner, other = (one, two) if taken[0] is not None else (two, one)
    for _ in range(3):
        assert claim_at_once(one, two) == [None, None]
        time.sleep(0.05)
    assert queue.get_job(a2.id).state is JobState.QUEUED

    # past the old deadline, the new holder's heartbeats keep R held as well
    while time.time() < first_deadline + 3 * lease:
        assert claim_at_once(one, two) == [None, None]
        time.sleep(0.05)

    assert runner.finish(a1.id, JobState.COMPLETE)
    taken = claim_at_once(runner, other)
    assert [job["id"] for job in taken if job is not None] == [a2.id]


def test_no_two_runs_of_one_repository_overlap(spec, tmp_path, producer):
    """Three worker processes, three repositories, a producer that pushes each
    repository again as soon as its job is taken: every claim could take a second job
    of a running repository. The processes take an O_EXCL lock file per repository
    (it fails on overlap) and record their intervals."""
    repos = [f"https://github.com/owner/busy-{i}" for i in range(3)]
    locks = tmp_path / "locks"
    locks.mkdir()
    spec = {**spec, "lease": 30, "cap": 200, "lock_dir": str(locks),
            "intervals": str(tmp_path / "intervals.jsonl"),
            "stop_file": str(tmp_path / "stop")}
    queue = producer(spec)
    workers = []
    for i in range(3):
        with open(tmp_path / f"w{i}.log", "w") as err:
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "tests.lock_worker", "run",
                 json.dumps({**spec, "worker_id": f"w{i}"})],
                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=err, stderr=subprocess.STDOUT))
    created: dict[str, list[float]] = defaultdict(list)
    try:
        started = time.monotonic()
        while time.monotonic() - started < 3.0:
            for repo in repos:
                if queue.enqueue(repo).created:
                    created[repo].append(time.monotonic())
            time.sleep(0.002)
    finally:
        Path(spec["stop_file"]).touch()
        codes = []
        for proc in workers:
            try:
                codes.append(proc.wait(20))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait(10))
    logs = "".join((tmp_path / f"w{i}.log").read_text() for i in range(3))
    assert codes == [0, 0, 0], logs

    runs = [json.loads(line) for line in Path(spec["intervals"]).read_text().splitlines()]
    assert [run for run in runs if run["overlap"]] == []  # no lock file was ever taken
    assert len({run["job"] for run in runs}) == len(runs)  # each job ran once
    by_repo = defaultdict(list)
    for run in runs:
        by_repo[run["repo"]].append(run)
    for repo, intervals in by_repo.items():
        intervals.sort(key=lambda run: run["start"])
        for before, after in zip(intervals, intervals[1:]):
            assert after["start"] >= before["end"], (repo, before, after)

    # the queue's own record (its clock): each job's claim came after the previous
    # job of its repository had ended
    for repo, intervals in by_repo.items():
        jobs = sorted((queue.get_job(run["job"]) for run in intervals),
                      key=lambda job: job.started_at)
        assert all(job.state in (JobState.COMPLETE, JobState.FAILED) for job in jobs)
        for before, after in zip(jobs, jobs[1:]):
            assert after.started_at >= before.finished_at, (repo, before, after)

    # the run did test the lock: many jobs per repository, spread over the processes,
    # and new jobs of a repository queued while it was running
    assert sorted(by_repo) == repos and min(map(len, by_repo.values())) >= 5, \
        {repo: len(runs) for repo, runs in by_repo.items()}
    assert len({run["worker"] for run in runs}) >= 2
    waiting = sum(1 for repo, times in created.items() for t in times
                  for run in by_repo[repo] if run["start"] < t < run["end"])
    assert waiting >= 3
    assert queue.overview().running == 0
