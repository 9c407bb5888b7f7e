"""Finding a repository's source files, and refusing the ones that would hurt.

The walk never follows a symlink (a link can lead outside the checkout or into a
loop), never enters the skip list's directories (unless one is a Python package:
`build/__init__.py` is source), and reads each file once.
Everything left out is reported with a reason; nothing here raises for a bad file.
"""
from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from edge.parse.model import Skipped

# Extension -> tree-sitter language. ".d.ts" ends in ".ts", so it lands on typescript.
LANGUAGES = {
    ".py": "python",
    ".js": "javascript", ".jsx": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "tsx",
}

# A file this large with lines this long is a bundle or generated data, not source.
MINIFIED_MIN_BYTES = 100_000
MINIFIED_LINE_LENGTH = 1_000
BINARY_SNIFF_BYTES = 8_192
# PEP 263: a coding cookie in the first two lines of a Python file.
_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)


@dataclass(slots=True)
class SourceFile:
    path: str  # repository-relative, POSIX
    language: str
    size: int


@dataclass(slots=True)
class Walk:
    files: list[SourceFile]
    skipped: list[Skipped]


def language_of(name: str) -> str | None:
    return LANGUAGES.get(os.path.splitext(name)[1].lower())


def walk(root: Path, skip_dirs: Iterable[str], max_file_bytes: int) -> Walk:
    """Every source file under root, sorted by path, and what was left out."""
    found = Walk(files=[], skipped=[])
    for entry, rel in _entries(str(root), "", frozenset(skip_dirs), found.skipped):
        language = language_of(entry.name)
        if entry.is_symlink():
            if language is not None or _points_to_dir(entry.path):
                found.skipped.append(Skipped(rel, _symlink_reason(root, entry.path)))
            continue
        if language is None:
            continue
        size = entry.stat(follow_symlinks=False).st_size
        if size > max_file_bytes:
            found.skipped.append(
                Skipped(rel, f"too large: {size} bytes (limit MAX_FILE_BYTES={max_file_bytes})"))
            continue
        found.files.append(SourceFile(rel, language, size))
    found.files.sort(key=lambda f: f.path)
    found.skipped.sort(key=lambda s: s.path)
    return found


def _entries(top: str, rel: str, skip_dirs, skipped) -> Iterator[tuple[os.DirEntry, str]]:
    try:
        entries = list(os.scandir(top))
    except OSError as exc:
        skipped.append(Skipped(rel or ".", f"unreadable directory: {exc.strerror}"))
        return
    for entry in entries:
        path = f"{rel}/{entry.name}" if rel else entry.name
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in skip_dirs or _is_python_package(entry.path):
                yield from _entries(entry.path, path, skip_dirs, skipped)
        else:
            yield entry, path


def _is_python_package(path: str) -> bool:
    """`pip/_internal/operations/build/` is source that happens to share a name
    with build output; output directories never hold an `__init__.py`."""
    return os.path.isfile(os.path.join(path, "__init__.py"))


def _points_to_dir(path: str) -> bool:
    try:
        return os.path.isdir(path)
    except OSError:
        return False


def _symlink_reason(root: Path, link: str) -> str:
    try:
        target = Path(link).resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: loop on older Pythons
        if "loop" in str(exc).lower() or getattr(exc, "errno", None) == 40:
            return "symlink loop (not followed)"
        return "dangling symlink (not followed)"
    if not target.is_relative_to(root.resolve()):
        return "symlink leading outside the repository (not followed)"
    return f"symlink to {target.relative_to(root.resolve()).as_posix()} (not followed)"


def read_source(root: Path, file: SourceFile) -> bytes | Skipped:
    """The file's bytes as UTF-8, or the reason it cannot be parsed."""
    try:
        data = (root / file.path).read_bytes()
    except OSError as exc:
        return Skipped(file.path, f"unreadable: {exc.strerror}")
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return Skipped(file.path, "binary content (NUL bytes)")
    try:
        if not data.isascii():  # ASCII (most source) is UTF-8: no need to decode it to know
            data.decode("utf-8")
    except UnicodeDecodeError as exc:
        recoded = _recode(data, file.language)
        if recoded is None:
            return Skipped(file.path, f"not valid UTF-8 (byte {exc.start})")
        data = recoded
    if len(data) >= MINIFIED_MIN_BYTES and len(data) / (data.count(b"\n") + 1) > MINIFIED_LINE_LENGTH:
        return Skipped(file.path, "minified or generated (average line over "
                                  f"{MINIFIED_LINE_LENGTH} characters)")
    return data


def _recode(data: bytes, language: str) -> bytes | None:
    """A Python file that declares another encoding is re-encoded to UTF-8."""
    if language != "python":
        return None
    head = b"\n".join(data.split(b"\n", 2)[:2])
    match = _CODING.search(head)
    if not match:
        return None
    try:
        codecs.lookup(match.group(1).decode("ascii"))
        return data.decode(match.group(1).decode("ascii")).encode("utf-8")
    except (LookupError, UnicodeDecodeError, UnicodeError):
        return None
