"""Syncs against full ingests on real projects: what a push costs once a repository is indexed.

    .venv/bin/python bench/sync.py [CORPUS ...] [--json OUT]

For each corpus of bench/corpora.py (default: black and zod) this builds one git
repository whose history is real, then edits it:

  full      the corpus's previous release (its sdist / npm tarball, fetched once
            like the pinned one) committed and ingested from nothing: the baseline
  release   the pinned release committed on top and synced: a real release's changes
  one-file  one function appended to one source file (the median-sized one)
  ten-file  one function appended to each of ten source files
  renames   the source folder with the most files moved to a new name (git mv)

Every sync runs through `edge.pipeline.IngestPipeline` as a worker runs it (a real
`git clone`, SQLite graph store, Qdrant local mode, the worker's text model with
TEXT_RUNTIME from the environment, loaded before the clock starts), in one DATA_DIR,
so each reuses what the previous one left. Each row: seconds, its share of the full
ingest, each stage's share of the sync, files parsed again and chunks embedded again.
At the end the last commit is also ingested from nothing in a fresh DATA_DIR and the
two indexes are compared: graph facts and chunk points with their payloads exactly,
chunk vectors by cosine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from corpora import BY_NAME, download, unpack  # noqa: E402
from pipeline_e2e import git_repository, timed_ingest  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
PREVIOUS = {"black": "26.10.0", "zod": "4.6.6", "pip": "26.2", "rxjs": "7.8.1"}
SUFFIXES = {".py": "\n\ndef added_by_bench_{n}(value):\n    return value + {n}\n",
            ".ts": "\nexport function addedByBench{n}(value: number) {{ return value + {n}; }}\n",
            ".js": "\nexport function addedByBench{n}(value) {{ return value + {n}; }}\n"}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", message,
        "--allow-empty")


def release(name: str, version: str) -> Path:
    """The corpus at another release, fetched and unpacked once beside the pinned one."""
    corpus = replace(BY_NAME[name], name=f"{name}-{version}", version=version)
    unpack(corpus, download(corpus))
    return corpus.root


def replace_tree(repo: Path, source: Path) -> None:
    for entry in repo.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for entry in source.iterdir():
        target = repo / entry.name
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, target, symlinks=True)
        else:
            shutil.copy2(entry, target, follow_symlinks=False)


def sources(repo: Path) -> list[Path]:
    files = [p for p in repo.rglob("*") if p.suffix in SUFFIXES and p.is_file()
             and ".git" not in p.parts and "node_modules" not in p.parts
             and not p.name.endswith(".d.ts")]
    return sorted(files, key=lambda p: (p.stat().st_size, str(p)))


def append_functions(repo: Path, count: int, tag: int) -> list[str]:
    files = sources(repo)
    middle = len(files) // 2
    picked = files[middle:middle + count]
    for n, path in enumerate(picked):
        with open(path, "a") as stream:
            stream.write(SUFFIXES[path.suffix].format(n=tag * 100 + n))
    return [str(p.relative_to(repo)) for p in picked]


def rename_biggest_folder(repo: Path) -> str:
    counts: dict[Path, int] = {}
    for path in sources(repo):
        counts[path.parent] = counts.get(path.parent, 0) + 1
    folder = max(counts, key=lambda f: (counts[f], str(f)))
    target = folder.with_name(folder.name + "_moved")
    git(repo, "mv", str(folder), str(target))
    return f"{folder.relative_to(repo)} ({counts[folder]} files)"


def row(label: str, seconds: float, stages: dict, result, baseline: float | None) -> dict:
    sync = result.summary["sync"]
    chunks = result.summary["embeddings"]["chunks"]
    return {"step": label, "seconds": round(seconds, 2),
            "vs_full": round(seconds / baseline, 3) if baseline else 1.0,
            "stages": {k: round(v, 2) for k, v in stages.items()},
            "shares": {k: round(100 * v / seconds, 1) for k, v in stages.items()},
            "files": result.files_processed, "files_parsed": sync["files_parsed"],
            "chunks": chunks, "chunks_embedded": sync["chunks_embedded"],
            "chunks_embedded_share": round(sync["chunks_embedded"] / max(chunks, 1), 4),
            "mode": sync["mode"], "reason": sync["reason"],
            "nodes": result.summary["nodes"], "edges": result.summary["edges"]}


def run(name: str, scratch: Path) -> dict:
    from edge.pipeline import IngestPipeline, open_encoder
    from shared.settings import Settings

    def settings(data: str) -> Settings:
        return replace(Settings.from_env({"DATA_DIR": str(scratch / data),
                                          "TEXT_RUNTIME": os.environ.get("TEXT_RUNTIME", "auto")}),
                       allow_local_repos=True)

    encoder = open_encoder(settings("data"))
    repo = git_repository(release(name, PREVIOUS[name]), scratch / name)
    pipeline = IngestPipeline(settings("data"), encoder=encoder)
    rows = []
    try:
        seconds, stages, result = timed_ingest(pipeline, repo)
        rows.append(row(f"full ({PREVIOUS[name]})", seconds, stages, result, None))
        baseline = seconds
        steps = [(f"release ({BY_NAME[name].version})",
                  lambda: replace_tree(repo, BY_NAME[name].root)),
                 ("one-file", lambda: append_functions(repo, 1, 1)),
                 ("ten-file", lambda: append_functions(repo, 10, 2)),
                 ("renames", lambda: rename_biggest_folder(repo))]
        for label, change in steps:
            detail = change()
            commit(repo, label)
            seconds, stages, result = timed_ingest(pipeline, repo)
            rows.append({**row(label, seconds, stages, result, baseline), "change": detail})
        fresh = IngestPipeline(settings("fresh"), encoder=encoder)
        try:
            seconds, stages, check = timed_ingest(fresh, repo)
            same = compare(pipeline, fresh, repo.as_uri())
        finally:
            fresh.close()
    finally:
        pipeline.close()
    return {"corpus": name, "text_runtime": encoder.runtime, "rows": rows,
            "check": {"full_seconds": round(seconds, 2), **same,
                      "nodes": check.summary["nodes"], "edges": check.summary["edges"],
                      "chunks": check.summary["embeddings"]["chunks"]}}


def compare(synced, fresh, url: str) -> dict:
    """The last sync's index against a from-nothing ingest of the same commit: graph facts
    and chunk payloads exactly (as tests/test_sync.py does), chunk vectors by cosine
    (another runtime than fp32 may differ in the last bits with another batch)."""
    import numpy as np

    from shared.vectors import CHUNK_COLLECTION
    from tests.test_sync import _facts, _points

    a = _points(synced, url, CHUNK_COLLECTION, synced.encoder.dim)
    b = _points(fresh, url, CHUNK_COLLECTION, fresh.encoder.dim)
    same_points = sorted(a) == sorted(b) and all(a[i][0] == b[i][0] for i in a)
    cosines = [float(np.dot(a[i][1], b[i][1]) / (np.linalg.norm(a[i][1])
                                                  * np.linalg.norm(b[i][1]) or 1.0))
               for i in a if i in b]
    return {"same_facts": _facts(synced, url) == _facts(fresh, url),
            "same_chunk_points": same_points,
            "chunk_vector_cosine_min": round(min(cosines, default=0.0), 6)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpora", nargs="*", default=["black", "zod"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    for name in args.corpora:
        with tempfile.TemporaryDirectory(prefix="sync-") as scratch:
            results.append(run(name, Path(scratch)))
        r = results[-1]
        print(f"{name} ({r['text_runtime']}):")
        for step in r["rows"]:
            shares = ", ".join(f"{k} {v:.0f}%" for k, v in step["shares"].items())
            print(f"  {step['step']:<18} {step['seconds']:7.2f} s  {100 * step['vs_full']:5.1f}% "
                  f"of full  parsed {step['files_parsed']}/{step['files']} files, embedded "
                  f"{step['chunks_embedded']}/{step['chunks']} chunks  [{shares}]")
        c = r["check"]
        print(f"  check: from nothing {c['full_seconds']} s; same graph facts: "
              f"{c['same_facts']}, same chunk points and payloads: {c['same_chunk_points']}, "
              f"chunk vectors' cosine at least {c['chunk_vector_cosine_min']}")
    if args.json:
        machine = {"python": platform.python_version(), "cpus": os.cpu_count(),
                   "date": time.strftime("%Y-%m-%d")}
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2))


if __name__ == "__main__":
    main()
