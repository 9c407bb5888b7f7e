"""The repository walk and the reads: bad input is skipped with a reason, never fatal."""
from __future__ import annotations

import os

import pytest

from edge.parse.model import Skipped
from edge.source import read_source, walk
from shared.settings import DEFAULT_SKIP_DIRS


def _walk(root, max_file_bytes=2_000_000):
    return walk(root, DEFAULT_SKIP_DIRS, max_file_bytes)


def _write(root, rel, data: bytes | str = ""):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_finds_every_language_and_ignores_other_files(tmp_path):
    for rel in ["a.py", "b/c.js", "b/d.jsx", "e.mjs", "f.cjs", "g.ts", "h.tsx", "i.d.ts",
                "j.mts", "README.md", "setup.cfg", "img.png"]:
        _write(tmp_path, rel, "x")
    found = _walk(tmp_path)
    assert [(f.path, f.language) for f in found.files] == [
        ("a.py", "python"), ("b/c.js", "javascript"), ("b/d.jsx", "javascript"),
        ("e.mjs", "javascript"), ("f.cjs", "javascript"), ("g.ts", "typescript"),
        ("h.tsx", "tsx"), ("i.d.ts", "typescript"), ("j.mts", "typescript")]
    assert found.skipped == []


@pytest.mark.parametrize("directory", DEFAULT_SKIP_DIRS)
def test_skip_dirs_are_never_entered(tmp_path, directory):
    _write(tmp_path, f"pkg/{directory}/inner/x.py", "import os")
    _write(tmp_path, "pkg/kept.py", "")
    assert [f.path for f in _walk(tmp_path).files] == ["pkg/kept.py"]


def test_a_python_package_named_like_build_output_is_source(tmp_path):
    _write(tmp_path, "pip/operations/build/__init__.py")
    _write(tmp_path, "pip/operations/build/wheel.py")
    _write(tmp_path, "build/lib/pip/copy.py")
    assert [f.path for f in _walk(tmp_path).files] == [
        "pip/operations/build/__init__.py", "pip/operations/build/wheel.py"]


def test_the_skip_list_is_a_setting(tmp_path):
    _write(tmp_path, "vendor/x.py")
    _write(tmp_path, "node_modules/y.js")
    found = walk(tmp_path, ("vendor",), 1000)
    assert [f.path for f in found.files] == ["node_modules/y.js"]


def test_symlinks_are_never_followed_and_say_where_they_lead(tmp_path):
    repo = tmp_path / "repo"
    outside = _write(tmp_path, "secret/creds.py", "TOKEN = 1")
    _write(repo, "real.py", "x = 1")
    os.symlink(outside, repo / "leak.py")
    os.symlink(outside.parent, repo / "leakdir")
    os.symlink(repo / "real.py", repo / "alias.py")
    os.symlink(repo / "loop_a.py", repo / "loop_b.py")
    os.symlink(repo / "loop_b.py", repo / "loop_a.py")
    os.symlink(repo, repo / "sub_loop")
    os.symlink(repo / "missing.py", repo / "dangling.py")
    found = _walk(repo)
    assert [f.path for f in found.files] == ["real.py"]
    reasons = {s.path: s.reason for s in found.skipped}
    assert "outside the repository" in reasons["leak.py"]
    assert "outside the repository" in reasons["leakdir"]
    assert reasons["alias.py"] == "symlink to real.py (not followed)"
    assert "loop" in reasons["loop_a.py"] and "loop" in reasons["loop_b.py"]
    assert "symlink to" in reasons["sub_loop"]
    assert "dangling" in reasons["dangling.py"]


def test_oversized_files_are_skipped_before_reading(tmp_path):
    _write(tmp_path, "bundle.js", "x" * 5000)
    found = _walk(tmp_path, max_file_bytes=4096)
    assert found.files == []
    assert "too large: 5000 bytes" in found.skipped[0].reason


def test_bad_contents_are_skipped_with_a_reason(tmp_path):
    found = {f.path: f for f in _walk(_repo_of_bad_files(tmp_path)).files}
    reasons = {path: read_source(tmp_path, f) for path, f in found.items()}
    assert reasons["binary.py"] == Skipped("binary.py", "binary content (NUL bytes)")
    assert reasons["latin.js"] == Skipped("latin.js", "not valid UTF-8 (byte 11)")
    assert "minified" in reasons["min.js"].reason
    assert reasons["empty.py"] == b""
    assert reasons["ok.py"] == b"x = 1\n"
    # A declared encoding is honoured: the parser gets UTF-8.
    assert reasons["declared.py"].decode("utf-8").endswith('name = "caf\u00e9"\n')


def _repo_of_bad_files(root):
    _write(root, "binary.py", b"\x00\x01\x02import os")
    _write(root, "latin.js", b"const s = '\xe9t\xe9';")
    _write(root, "min.js", b"var a=1;" * 20_000)
    _write(root, "empty.py", b"")
    _write(root, "ok.py", b"x = 1\n")
    _write(root, "declared.py", b'# -*- coding: latin-1 -*-\nname = "caf\xe9"\n')
    return root
