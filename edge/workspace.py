"""The job's workspace: one fresh directory per job, always removed.

A job clones into `job_workspace()`; whatever ends the job (success, an error,
an interrupt) removes the directory. A worker that stops while a pipeline is
still inside one calls `remove_abandoned_workspaces()` last, and `remove_tree`
removes what git leaves read-only.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
import tempfile
import threading
from pathlib import Path
from typing import Iterator

_LIVE_WORKSPACES: set[Path] = set()
_LIVE_LOCK = threading.Lock()


@contextlib.contextmanager
def job_workspace(prefix: str = "na-job-") -> Iterator[Path]:
    """A new temporary directory for one job, removed however the job ends.

    mkdtemp creates it atomically with a random name, so concurrent jobs never
    share one (property 13); the finally removes it on success, error and
    interrupt alike (property 14).
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    with _LIVE_LOCK:
        _LIVE_WORKSPACES.add(path)
    try:
        yield path
    finally:
        remove_tree(path)
        with _LIVE_LOCK:
            _LIVE_WORKSPACES.discard(path)


def remove_abandoned_workspaces() -> list[Path]:
    """Remove the workspaces of pipelines still running at exit.

    A worker stopping past its grace period gives the job back and exits while
    the pipeline thread is still inside `job_workspace`; that thread dies with
    the process, so its `finally` never runs. The worker calls this last.
    """
    with _LIVE_LOCK:
        left = sorted(_LIVE_WORKSPACES)
        _LIVE_WORKSPACES.clear()
    for path in left:
        remove_tree(path)
    return left


def remove_tree(path: Path | str) -> None:
    """rmtree that also removes read-only entries (git's packs are 0444) and
    unreadable directories, by making them and their parent the owner's to change."""
    root = os.path.abspath(path)
    retried: set[str] = set()

    def make_writable_and_retry(func, failed: str, _error) -> None:
        if failed != root:  # root's parent is the system's temp dir, not ours to change
            _allow_owner(os.path.dirname(failed))
        try:
            _allow_owner(failed)  # only now can a closed parent show whether it exists
        except FileNotFoundError:
            return  # an earlier retry already removed it with its directory
        if failed in retried:
            raise PermissionError(f"cannot remove {failed}")
        retried.add(failed)
        if func in (os.unlink, os.remove, os.rmdir):
            func(failed)
        elif os.path.isdir(failed) and not os.path.islink(failed):
            # It could not be opened or listed: start over on it, now readable.
            shutil.rmtree(failed, **{_RMTREE_HOOK: make_writable_and_retry})
        else:
            os.unlink(failed)

    if os.path.lexists(root):
        shutil.rmtree(root, **{_RMTREE_HOOK: make_writable_and_retry})


def _allow_owner(path: str) -> None:
    if os.path.islink(path):
        return  # chmod would change the link's target, maybe outside the tree
    mode = os.lstat(path).st_mode
    wanted = stat.S_IRWXU if stat.S_ISDIR(mode) else stat.S_IRUSR | stat.S_IWUSR
    os.chmod(path, stat.S_IMODE(mode) | wanted)


# Python 3.12 renamed rmtree's error hook (and passes the exception, not exc_info).
_RMTREE_HOOK = "onexc" if sys.version_info >= (3, 12) else "onerror"
