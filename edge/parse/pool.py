"""Parsing a repository's files: one entry point for every language.

`parse_files` fans out over processes (spawn-safe, so Windows works too) once a
repository is big enough to pay for starting them; tree-sitter holds the GIL
while parsing, so threads would not help.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

from edge.graph import drop_unresolvable, paused_collection
from edge.parse.cache import ParseCache, digest
from edge.parse.model import ParsedFile, Skipped
from edge.source import SourceFile, read_source

log = logging.getLogger(__name__)

# Below this much source a second process costs more to start than it saves.
PARALLEL_MIN_BYTES = 4_000_000
BATCH_BYTES = 1_000_000


def parse_source(path: str, language: str, data: bytes) -> ParsedFile:
    if language == "python":
        from edge.parse.python import parse_python
        return parse_python(path, data)
    from edge.parse.javascript import parse_javascript
    return parse_javascript(path, data, language)


def parse_one(root: Path, file: SourceFile) -> ParsedFile | Skipped:
    """Read and parse one file; a file that breaks the parser is skipped, not fatal."""
    data = read_source(root, file)
    if isinstance(data, Skipped):
        return data
    try:
        return drop_unresolvable(parse_source(file.path, file.language, data))
    except Exception as exc:  # a bad file never fails a job
        log.warning("parser failed on %s: %s", file.path, exc)
        return Skipped(file.path, f"parser failed: {type(exc).__name__}: {exc}")


def parse_batch(root: str, files: Sequence[SourceFile]) -> list[ParsedFile | Skipped]:
    with paused_collection():  # a parser process: results pile up, no cycles among them
        return [parse_one(Path(root), file) for file in files]


def parse_files(root: Path, files: Sequence[SourceFile], *, workers: int | None = None,
                progress: Callable[[float], None] | None = None,
                cache: ParseCache | None = None) -> list[ParsedFile | Skipped]:
    """Every file parsed (or skipped with a reason), in the order given; with a
    `cache`, only the files whose bytes it does not hold a result for."""
    if cache is None:
        return _parse(root, files, workers, progress)
    found: dict[str, ParsedFile | Skipped] = {}
    keys: dict[str, str] = {}
    missed = []
    for file in files:
        data = read_source(root, file)
        if isinstance(data, Skipped):
            found[file.path] = data
            continue
        keys[file.path] = digest(data)
        hit = cache.get(file.path, file.language, keys[file.path])
        if hit is None:
            missed.append(file)
        else:
            found[file.path] = hit
    for result in _parse(root, missed, workers, progress):
        found[result.path] = result
        if isinstance(result, ParsedFile):
            cache.put(result.path, keys[result.path], result)
    return [found[file.path] for file in files]


def _parse(root: Path, files: Sequence[SourceFile], workers: int | None,
           progress: Callable[[float], None] | None) -> list[ParsedFile | Skipped]:
    total = sum(f.size for f in files)
    workers = min(workers or os.cpu_count() or 1, max(1, total // BATCH_BYTES))
    if workers < 2 or total < PARALLEL_MIN_BYTES:
        return _parse_here(root, files, progress)
    batches = _batches(files, max(BATCH_BYTES, total // (workers * 4)))
    results: list[ParsedFile | Skipped] = []
    with process_pool(workers) as pool:
        futures = [pool.submit(parse_batch, str(root), batch) for batch in batches]
        for done, future in enumerate(futures, 1):
            results.extend(future.result())
            if progress:
                progress(done / len(futures))
    return results


def process_pool(workers: int) -> ProcessPoolExecutor:
    """Spawned (Windows has no fork) parser processes that ignore Ctrl+C: a terminal's
    SIGINT and NSSM's console Ctrl+C reach every process of the group, and it is the
    worker that decides whether the job finishes or goes back to the queue."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_ignore_stop_signals)


def _ignore_stop_signals() -> None:
    for name in ("SIGINT", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def _parse_here(root, files, progress):
    results = []
    step = max(1, len(files) // 20)
    for index, file in enumerate(files, 1):
        results.append(parse_one(root, file))
        if progress and index % step == 0:
            progress(index / len(files))
    return results


def _batches(files: Sequence[SourceFile], size: int) -> list[list[SourceFile]]:
    batches, current, filled = [], [], 0
    for file in files:
        current.append(file)
        filled += file.size
        if filled >= size:
            batches.append(current)
            current, filled = [], 0
    if current:
        batches.append(current)
    return batches
