"""`make demo` / `python -m edge demo`: the whole job on a real project, offline.

The project is the source of an installed Python package (gitpython by default: every
worker has it), committed to a git repository in a temp dir and ingested by the real
pipeline into embedded stores in another temp dir, never into the configured servers.
Then the graph is read back from its store and the vectors from Qdrant: counts, hot
spots, the files whose Node2Vec vectors sit nearest the hottest file, and a text query.
Everything is removed at the end unless --keep is given.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from edge.workspace import remove_tree
from edge.graph import stats
from shared.graph.model import NodeKind
from shared.jobs import Job
from shared.settings import Settings
from shared.vectors import STRUCTURE_COLLECTION, chunk_collection

DEFAULT_PACKAGE = "git"
DEFAULT_QUERY = "raise an error when a command fails"


class DemoError(Exception):
    """The demo cannot run as asked (e.g. the package is not installed)."""


def package_source(package: str) -> tuple[Path, str]:
    """The folder of an installed package and a name with its version."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DemoError(f"{package!r} is not an installed package (a folder with __init__.py)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    dists = metadata.packages_distributions().get(package, [])
    label = f"{dists[0]} {metadata.version(dists[0])}" if dists else package
    return folder, label


def make_repository(source: Path, target: Path) -> Path:
    """A one-commit git repository holding `source` as `target/<name>`."""
    shutil.copytree(source, target / source.name,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=demo", "-c", "user.email=demo@localhost",
                  "commit", "-q", "-m", f"{source.name} source"]):
        subprocess.run(["git", *args], cwd=target, check=True, capture_output=True)
    return target


def run_demo(settings: Settings, package: str = DEFAULT_PACKAGE, query: str = DEFAULT_QUERY,
             keep: Path | None = None, say=print) -> dict:
    from edge.pipeline import IngestPipeline

    source, label = package_source(package)
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="neo-demo-"))
    try:
        repo_dir = make_repository(source, work / "repo")
        # embedded stores only: a demo never writes into the configured servers
        settings = replace(settings, data_dir=work / "data", database_url="", qdrant_url="",
                           qdrant_api_key="", allow_local_repos=True)
        repo_url = repo_dir.resolve().as_uri()
        say(f"Ingesting {label} ({source}) as {repo_url}")
        job = Job.in_process(repo_url, settings.task_ttl)
        pipeline = IngestPipeline(settings)
        started = time.perf_counter()
        try:
            result = pipeline(job, _progress(say))
            report = {"seconds": time.perf_counter() - started,
                      "files": result.files_processed,
                      "device": result.summary["embeddings"]["node2vec_device"]}
            report.update(_read_back(pipeline, repo_url, query))
        finally:
            pipeline.close()
        _print_report(report, query, say)
        return report
    finally:
        if keep is None:
            remove_tree(work)  # git's objects are read-only: plain rmtree fails on Windows


def _progress(say):
    last = [""]

    def report(stage: str, progress: float) -> None:
        if stage != last[0]:
            last[0] = stage
            say(f"  {progress:5.1f}%  {stage}")
    return report


def _read_back(pipeline, repo_url: str, query: str) -> dict:
    """What the stores hold now: the graph from its database, neighbours from Qdrant."""
    graph = pipeline.store.load_graph(pipeline.store.latest_snapshot(repo_url))
    facts = stats(graph)
    files = {n.path: n.id for n in graph.nodes if n.kind is NodeKind.FILE}
    anchor = facts["hot_spots"][0]["path"] if facts["hot_spots"] else min(files)
    vectors = pipeline.vectors
    neighbours = vectors.similar(STRUCTURE_COLLECTION, files[anchor], repo=repo_url, limit=5)
    encoder = pipeline.encoder
    [query_vector] = encoder.encode([query])
    found = vectors.search(chunk_collection(encoder.model), query_vector, repo=repo_url,
                           limit=5)
    return {
        "graph": facts, "anchor": anchor,
        "structural": vectors.count(repo_url, STRUCTURE_COLLECTION),
        "chunks": vectors.count(repo_url, chunk_collection(encoder.model)),
        "neighbours": [(h.score, h.payload["file_path"]) for h in neighbours],
        "search": [(h.score, f"{h.payload['file_path']}:{h.payload['start_line']}",
                    h.payload["qualified_name"]) for h in found],
    }


def _print_report(report: dict, query: str, say) -> None:
    graph = report["graph"]
    say("")
    say(f"Done in {report['seconds']:.1f} s: {report['files']} files, "
        f"{graph['loc']:,} lines, {report['structural']} structural and "
        f"{report['chunks']} text vectors in Qdrant (Node2Vec on {report['device']})")
    say("Graph (read back from the graph store)")
    say("  nodes  " + ", ".join(f"{k} {v:,}" for k, v in graph["nodes"].items()))
    say("  edges  " + ", ".join(f"{k} {v:,}" for k, v in graph["edges"].items()))
    say("Hot spots: the files most imported")
    for spot in graph["hot_spots"][:5]:
        say(f"  {spot['dependents']:4d}  {spot['path']}")
    say(f"Structural neighbours of {report['anchor']} (Node2Vec, cosine)")
    for score, path in report["neighbours"]:
        say(f"  {score:5.2f}  {path}")
    say(f"Text search: {query!r} (all-MiniLM-L6-v2, cosine)")
    for score, where, name in report["search"]:
        say(f"  {score:5.2f}  {where}  {name}")
