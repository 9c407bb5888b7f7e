"""A real project from clone to vectors: the whole worker pipeline, each stage's share.

    .venv/bin/python bench/pipeline_e2e.py [CORPUS ...] [--device cpu|cuda] [--json OUT]

Each corpus of bench/corpora.py (default: black, ~250 Python files, the issue's CPU
target; django, ~2,500 files, is the GPU one) is committed to a fresh git
repository in a temp dir and ingested by `edge.pipeline.IngestPipeline` exactly as a
worker runs it: fetch (a real `git clone` of that repository), parse, resolve, graph,
graph store (SQLite), Node2Vec, MiniLM text embeddings, upload to Qdrant local mode,
all in a fresh DATA_DIR. The text model is the worker's (TEXT_RUNTIME from the
environment, default auto), loaded before the clock starts (a worker loads it once,
at its first job; ONNX files are made then too); its load time is reported on its own. Stage times
come from the pipeline's own progress reports: a stage lasts from its first report to
the next stage's first.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from corpora import BY_NAME  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def git_repository(source: Path, into: Path) -> Path:
    shutil.copytree(source, into, symlinks=True)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "bench"]):
        subprocess.run(["git", *args], cwd=into, check=True, capture_output=True)
    return into


def timed_ingest(pipeline, repo: Path) -> tuple[float, dict[str, float], object]:
    """One job of `repo` through `pipeline`: (seconds, seconds per stage, JobResult). A
    stage lasts from its first progress report to the next stage's first."""
    from shared.jobs import Job, new_job_id

    marks: list[tuple[str, float]] = []

    def report(stage: str, progress: float) -> None:
        stage = stage.split(" ", 1)[0]
        if not marks or marks[-1][0] != stage:
            marks.append((stage, time.perf_counter()))

    job = Job(id=new_job_id(), repo_url=repo.as_uri(), submitted_at=time.time(), ttl=3600)
    start = time.perf_counter()
    result = pipeline(job, report)
    total = time.perf_counter() - start
    ends = [t for _, t in marks[1:]] + [start + total]
    return total, {stage: end - began for (stage, began), end in zip(marks, ends)}, result


def run(name: str, device: str | None) -> dict:
    from dataclasses import replace

    from edge.pipeline import IngestPipeline, open_encoder
    from shared.settings import Device, Settings

    corpus = BY_NAME[name]
    with tempfile.TemporaryDirectory(prefix="e2e-") as scratch:
        repo = git_repository(corpus.root, Path(scratch) / name)
        environment = {"DATA_DIR": f"{scratch}/data",
                       "TEXT_RUNTIME": os.environ.get("TEXT_RUNTIME", "auto")}
        settings = replace(Settings.from_env(environment),
                           allow_local_repos=True,
                           device=Device(device.upper()) if device else Device.AUTO)
        clock = time.perf_counter()
        encoder = open_encoder(settings)  # TEXT_RUNTIME from the environment, as a worker
        load = time.perf_counter() - clock
        pipeline = IngestPipeline(settings, encoder=encoder)
        total, stages, result = timed_ingest(pipeline, repo)
        pipeline.close()
    embedded = result.summary["embeddings"]
    return {"corpus": name, "files": result.files_processed, "loc": result.summary["loc"],
            "embeddings_generated": result.embeddings_generated, "chunks": embedded["chunks"],
            "node2vec_device": embedded["node2vec_device"],
            "node2vec_epochs": embedded["node2vec_epochs"], "text_runtime": encoder.runtime,
            "model_load_seconds": round(load, 2), "total_seconds": round(total, 2),
            "stages": {k: round(v, 2) for k, v in stages.items()},
            "shares": {k: round(100 * v / total, 1) for k, v in stages.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpora", nargs="*", default=["black"])
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import torch

    machine = {"python": platform.python_version(), "torch": torch.__version__,
               "cpus": os.cpu_count(),
               "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    results = [run(name, args.device) for name in args.corpora]
    for r in results:
        shares = ", ".join(f"{k} {v:.1f} s ({r['shares'][k]:.0f}%)" for k, v in r["stages"].items())
        print(f"{r['corpus']}: {r['files']} files, {r['loc']} LOC -> {r['embeddings_generated']} "
              f"vectors ({r['chunks']} chunks) in {r['total_seconds']:.1f} s "
              f"(model load {r['model_load_seconds']:.1f} s before); {shares}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=2))


if __name__ == "__main__":
    main()
