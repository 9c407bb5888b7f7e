"""What the last ingest of a repository parsed, kept on the worker's disk for the next one.

A parse is a pure function of (path, language, the file's bytes, the parser's code):
nothing of one file's ParsedFile depends on another file. So a sync parses only the
files whose bytes changed since the repository's last ingest and takes every other
file's result from here; resolving imports and building the graph then run over all
files as in a full ingest, which is what makes a sync's graph equal a full ingest's.

One file per repository under DATA_DIR/parse-cache/: a pickle of {path: (digest of
the bytes, ParsedFile)} for the files of the last commit ingested, so its size is
bounded by the repository's, and written whole by rename (a crash leaves the old one
or none). It is stamped with `PARSER_VERSION`, a digest of the installed tree-sitter
and grammar versions and of this package's source: any change to how files are
parsed makes every entry a miss, and the sync is a full parse (`reason` says so).
Only the worker writes these files; they are never read from anywhere else.
"""
from __future__ import annotations

import hashlib
import logging
import os
import pickle
from importlib import metadata
from pathlib import Path

from edge.parse.model import ParsedFile

log = logging.getLogger(__name__)

FOLDER = "parse-cache"
_GRAMMARS = ("tree-sitter", "tree-sitter-python", "tree-sitter-javascript",
             "tree-sitter-typescript")
Entry = tuple[str, ParsedFile]  # (digest of the file's bytes, what parsing them gave)


def _parser_version() -> str:
    digest = hashlib.sha256()
    for name in _GRAMMARS:
        try:
            digest.update(f"{name}={metadata.version(name)};".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=none;".encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    # Reading (edge/source.py recodes) and drop_unresolvable (edge/graph.py) run where a
    # file is parsed: their rules shape the cached result too.
    for module in ("source.py", "graph.py"):
        digest.update((Path(__file__).parent.parent / module).read_bytes())
    return digest.hexdigest()[:16]


PARSER_VERSION = _parser_version()


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class ParseCache:
    """The parse results of one repository's last ingest, and those of this one."""

    def __init__(self, file: Path, entries: dict[str, Entry], reason: str):
        self.file = file
        self.entries = entries  # what the last ingest left
        self.reason = reason  # why nothing can be reused ("" when something can)
        self.fresh: dict[str, Entry] = {}  # this ingest's, written by save()
        self.hits = 0

    @classmethod
    def open(cls, data_dir: Path, repo: str) -> "ParseCache":
        """The repository's cache; empty (with the reason) when missing, unreadable or
        made by another parser version."""
        file = _file(data_dir, repo)
        try:
            with open(file, "rb") as stream:
                stored = pickle.load(stream)
        except FileNotFoundError:
            return cls(file, {}, "no parse results of an earlier ingest on this worker")
        except Exception as exc:  # a truncated or foreign file is only a cache miss
            log.warning("parse cache %s unreadable (%s): parsing every file", file, exc)
            return cls(file, {}, "the earlier parse results could not be read")
        if stored.get("repo") != repo or stored.get("version") != PARSER_VERSION:
            return cls(file, {}, "the parser changed since the last ingest")
        return cls(file, stored["files"], "")

    @classmethod
    def empty(cls, data_dir: Path, repo: str, reason: str) -> "ParseCache":
        """A cache that reuses nothing (a forced rebuild) but is saved for the next sync."""
        return cls(_file(data_dir, repo), {}, reason)

    def get(self, path: str, language: str, key: str) -> ParsedFile | None:
        entry = self.entries.get(path)
        if entry is None or entry[0] != key or entry[1].language != language:
            return None
        self.hits += 1
        self.fresh[path] = entry
        return entry[1]

    def put(self, path: str, key: str, parsed: ParsedFile) -> None:
        self.fresh[path] = (key, parsed)

    def save(self, repo: str) -> None:
        """Keep this ingest's results (and only them) for the next one."""
        self.file.parent.mkdir(parents=True, exist_ok=True)
        partial = self.file.with_name(f"{self.file.name}.{os.getpid()}.partial")
        try:
            with open(partial, "wb") as stream:
                pickle.dump({"repo": repo, "version": PARSER_VERSION, "files": self.fresh},
                            stream, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(partial, self.file)
        finally:
            partial.unlink(missing_ok=True)

    @staticmethod
    def sweep(data_dir: Path, keep: list[str]) -> int:
        """Remove the caches of every repository but those in `keep`; how many went."""
        wanted = {_file(data_dir, repo).name for repo in keep}
        gone = 0
        for cached in (Path(data_dir) / FOLDER).glob("*.pickle"):
            if cached.name not in wanted:
                cached.unlink(missing_ok=True)
                gone += 1
        return gone

    @staticmethod
    def remove(data_dir: Path, repo: str) -> None:
        _file(data_dir, repo).unlink(missing_ok=True)


def _file(data_dir: Path, repo: str) -> Path:
    return Path(data_dir) / FOLDER / f"{hashlib.sha256(repo.encode()).hexdigest()[:32]}.pickle"
