"""`analyze` over whole directories: property 5 and the command line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.analyze import analyze, file_edges
from shared.graph.model import NodeKind

ROOT = Path(__file__).resolve().parent.parent

# What a file may hold: good code, broken code and the bad inputs a job must survive.
CONTENTS = {
    "python": [b"import os\n", b"from . import sibling\n\nclass A(B):\n    def m(self): pass\n",
               b"def broken(:\n", b"", b"\x00\x01binary", b"caf\xe9 = 1\n", b"x = 1\n" * 50],
    "javascript": [b"import x from './y';\n", b"export * from './z.js';\nfunction f() {}\n",
                   b"const = ;\n", b"", b"\xff\xfe", b"var a=1;" * 15_000],
    "typescript": [b"import type { T } from './t';\nexport class C extends D {}\n",
                   b"let x: = 1;\n", b""],
}
EXTENSIONS = {"python": [".py"], "javascript": [".js", ".jsx", ".mjs", ".cjs"],
              "typescript": [".ts", ".tsx", ".d.ts"]}

names = st.text("abcdefgh_", min_size=1, max_size=6)
source_files = st.sampled_from(sorted(CONTENTS)).flatmap(lambda language: st.tuples(
    st.lists(names, min_size=1, max_size=3).map("/".join),
    st.sampled_from(EXTENSIONS[language]),
    st.sampled_from(CONTENTS[language])))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.lists(source_files, min_size=1, max_size=12), links=st.integers(0, 2))
def test_property_5_every_source_file_is_a_node_or_skipped_with_a_reason(files, links):
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "repo"
        root.mkdir()
        written = set()
        for stem, extension, content in files:
            path = root / f"{stem}{extension}"
            if any(p.is_file() for p in path.parents if p != root) or path.is_dir():
                continue  # a file where a directory must be: not a tree a repo can have
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            written.add(path.relative_to(root).as_posix())
        for index in range(links):  # symlinks out of the repository and in a loop
            os.symlink(Path(scratch), root / f"out{index}.py")
            os.symlink(root / f"loop{index}.js", root / f"loop{index}.js")
            written |= {f"out{index}.py", f"loop{index}.js"}

        graph = analyze(root, "https://example.com/o/r").graph

    nodes = [n.path for n in graph.nodes if n.kind is NodeKind.FILE]
    skipped = dict(graph.skipped)
    assert all(skipped.values())  # every skip has a reason
    partial = {p for p, reason in skipped.items() if reason.startswith("parsed partially")}
    # One file node per source file that was not left out, and only those.
    assert sorted(nodes) == sorted((written - set(skipped)) | partial)


def _repo(tmp_path: Path) -> Path:
    files = {
        "pkg/__init__.py": "from .a import f\n",
        "pkg/a.py": "from pkg import b\n\ndef f():\n    return b.g()\n",
        "pkg/b.py": "def g():\n    return 1\n",
        "web/main.ts": "import { h } from './lib';\n",
        "web/lib/index.ts": "export const h = 1;\n",
        "bin.py": b"\x00\x01",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        data = text if isinstance(text, bytes) else text.encode()
        (tmp_path / rel).write_bytes(data)
    return tmp_path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_edges_print_sorted_tab_separated_relative_paths(tmp_path):
    out = _run("analyze", str(_repo(tmp_path)), "--edges")
    assert out.returncode == 0, out.stderr
    assert out.stdout == ("pkg/__init__.py\tpkg/a.py\npkg/a.py\tpkg/b.py\n"
                          "web/main.ts\tweb/lib/index.ts\n")


def test_stats_are_json_with_counts_skipped_files_and_stage_times(tmp_path):
    out = _run("analyze", str(_repo(tmp_path)), "--stats")
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["files"] == 5 and stats["loc"] == 9
    assert stats["edges"]["IMPORTS"] == 3 and stats["edges"]["CALLS"] == 1
    assert stats["nodes"] == {"file": 5, "function": 2}
    assert stats["skipped"] == [{"path": "bin.py", "reason": "binary content (NUL bytes)"}]
    assert set(stats["seconds"]) == {"walk", "parse", "resolve", "graph"}
    assert stats["hot_spots"][0]["dependents"] == 1


def test_analyze_refuses_a_missing_directory(tmp_path):
    out = _run("analyze", str(tmp_path / "nope"))
    assert out.returncode == 2 and "not a directory" in out.stderr


def test_parallel_parse_gives_the_same_graph_as_one_process(tmp_path, monkeypatch):
    import edge.parse.pool as pool

    repo = _repo(tmp_path)
    for index in range(40):
        (repo / f"pkg/m{index}.py").write_text(f"from pkg import m{(index + 1) % 40}\n" * 20)
    one = analyze(repo, workers=1)
    monkeypatch.setattr(pool, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(pool, "BATCH_BYTES", 200)
    two = analyze(repo, workers=2)
    assert file_edges(one) == file_edges(two)
    assert [(n.id, n.kind) for n in one.graph.nodes] == [(n.id, n.kind) for n in two.graph.nodes]


def test_ingest_runs_the_whole_pipeline_into_the_embedded_store(tmp_path):
    repo = _repo(tmp_path / "src")
    for args in (["init", "-q"], ["add", "."],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    data = tmp_path / "data"
    env = {**os.environ, "DATA_DIR": str(data)}
    env.pop("DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-m", "edge", "ingest", str(repo)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["repo_url"] == repo.as_uri() and summary["files_processed"] == 5
    assert summary["edges_by_kind"]["IMPORTS"] == 3 and len(summary["commit"]) == 40

    from shared.graph.store.sqlite import SqliteGraphStore

    with SqliteGraphStore(data / "graph.db") as store:
        snapshot = store.latest_snapshot(repo.as_uri())
        assert snapshot.commit == summary["commit"]
        assert [n.qualname for n in store.nodes_in_file(snapshot, "pkg/a.py")] == ["", "f"]
    # ... and its vectors in the embedded Qdrant: one per file, one per chunk (property 8)
    from shared.vectors import CHUNK_COLLECTION, STRUCTURE_COLLECTION, VectorStore

    embedded = summary["embeddings"]
    assert embedded["structural"] == 5 and embedded["node2vec_device"] == "cpu"
    assert summary["embeddings_generated"] == 5 + embedded["chunks"]
    with VectorStore(path=data / "qdrant") as vectors:
        assert vectors.count(repo.as_uri(), STRUCTURE_COLLECTION) == 5
        assert vectors.count(repo.as_uri(), CHUNK_COLLECTION) == embedded["chunks"] > 0
