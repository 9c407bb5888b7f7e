"""The edge command line.

    python -m edge worker               take jobs from the queue until SIGINT/SIGTERM
    python -m edge analyze PATH         graph a local directory: --stats, --graph (JSON) or --edges (TSV)
    python -m edge ingest PATH_OR_URL   the whole pipeline in-process, into the configured stores
    python -m edge export-onnx DIR      the text model as ONNX + tokenizer, for the control plane
    python -m edge node2vec EDGES OUT   Node2Vec embeddings of any src<TAB>dst edge list (.npz)
    python -m edge check                self-test: settings, queue, stores, GPU, model, git
    python -m edge demo [PACKAGE]       ingest an installed package's source offline, then query it
"""
from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import replace
from pathlib import Path
import signal
import socket
import sys

from edge.device import describe_device
from edge.worker import Pipeline, Worker
from shared.jobs import Job
from shared.queue import open_queue
from shared.repo_url import InvalidRepoUrl, normalize_repo_url
from shared.secrets import Scrubber, scrub_logs
from shared.settings import Settings, SettingsError

log = logging.getLogger("edge")


def build_worker(settings: Settings, pipeline: Pipeline | None = None,
                 stop_grace_seconds: float = 60.0) -> Worker:
    device = describe_device(settings.device)  # DEVICE=cuda without a GPU stops here
    log.info("device: %s", device)
    chores = None
    queue = open_queue(settings)
    if pipeline is None:
        from edge.pipeline import IngestPipeline
        from edge.schedule import Chores
        from shared.limits import Limiter
        limiter = Limiter.for_queue(queue)  # the plans' counters live beside the queue
        pipeline = IngestPipeline(settings, meter=lambda account, chunks: limiter.add(
            str(account), "embeddings", chunks))
        # the pipeline's stores: Qdrant's local mode admits one client per process
        chores = Chores(settings, queue, lambda: pipeline.store, lambda: pipeline.vectors,
                        mirror=lambda: pipeline.mirror)
    return Worker(
        queue,
        pipeline,
        worker_id=settings.worker_id or socket.gethostname(),
        device=device,
        heartbeat_seconds=settings.heartbeat_seconds,
        idle_poll_seconds=settings.idle_poll_seconds,
        stop_grace_seconds=stop_grace_seconds,
        on_idle=chores,
    )


def serve(worker: Worker) -> None:
    """Run until a stop signal; the job in hand finishes or goes back to the queue."""
    stop_on_signals(worker)
    try:
        worker.run()
    finally:
        close_worker(worker)


def stop_on_signals(worker: Worker) -> None:
    """SIGINT, SIGTERM and Ctrl+Break (Windows; NSSM sends Ctrl+C first) stop the worker;
    a second signal gives the running job back at once instead of after the grace."""
    def stop(*_) -> None:
        worker.stop(grace=0.0 if worker.stopping else None)

    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop)


def close_worker(worker: Worker) -> None:
    """After the loop ends: the queue and stores closed, no workspace left behind.

    A job given back whose pipeline is still inside a long call (a Node2Vec epoch, a
    text batch) would have its stores closed under it, and an interpreter exiting
    around native threads still at work aborts (SIGABRT). The job is back in the queue
    and fenced, so the process ends here at once, its logs flushed."""
    from edge.workspace import remove_abandoned_workspaces

    worker.queue.close()
    stuck = worker.pipeline_running
    close = getattr(worker.pipeline, "close", None)
    if close is not None and not stuck:
        close()
    abandoned = remove_abandoned_workspaces()
    if abandoned:
        log.info("removed %d workspace(s) of a job given back", len(abandoned))
    if stuck:
        logging.shutdown()
        os._exit(0)


def analyze_command(args, settings: Settings) -> int:
    from edge.analyze import analyze, file_edges, graph_json
    from edge.graph import stats

    root = Path(args.path)
    if not root.is_dir():
        print(f"not a directory: {root}", file=sys.stderr)
        return 2
    analysis = analyze(root, skip_dirs=settings.skip_dirs,
                       max_file_bytes=settings.max_file_bytes, workers=args.workers)
    if args.edges:
        sys.stdout.writelines(f"{src}\t{dst}\n" for src, dst in file_edges(analysis))
        return 0
    if args.graph:
        json.dump(graph_json(analysis.graph), sys.stdout, separators=(",", ":"))
        print()
        return 0
    report = stats(analysis.graph)
    report["seconds"] = analysis.seconds
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


def ingest_command(args, settings: Settings) -> int:
    from edge.pipeline import IngestPipeline

    try:  # the owner runs this by hand: local paths are always allowed
        repo_url = normalize_repo_url(args.target, allow_local=True)
    except InvalidRepoUrl as exc:
        print(f"invalid repository: {exc}", file=sys.stderr)
        return 2
    job = Job.in_process(repo_url, settings.task_ttl)
    pipeline = IngestPipeline(replace(settings, allow_local_repos=True))
    try:
        result = pipeline(job, lambda stage, progress: log.info("%s %.0f%%", stage, progress))
    except Exception as exc:  # the reason, not a traceback: it is the user's input
        print(f"ingest failed: {exc}", file=sys.stderr)
        return 1
    finally:
        pipeline.close()
    summary = {"repo_url": repo_url, "files_processed": result.files_processed,
               "embeddings_generated": result.embeddings_generated, **result.summary}
    json.dump(summary, sys.stdout, indent=2)
    print()
    return 0


def demo_command(args, settings: Settings) -> int:
    from edge.demo import DEFAULT_QUERY, DemoError, run_demo

    logging.getLogger().setLevel(logging.WARNING)  # the demo prints its own progress
    try:
        run_demo(settings, args.package, args.query or DEFAULT_QUERY, keep=args.keep)
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    return 0


def node2vec_command(args) -> int:
    """Embed the nodes of an edge list; the tool for benchmarks and for users' own graphs."""
    import numpy as np

    from edge.embed.node2vec import Node2VecError, read_edge_list, train_node2vec

    try:
        names, edge_index = read_edge_list(args.edges)
        if not names:
            raise Node2VecError(f"{args.edges}: no edges")
        result = train_node2vec(edge_index, len(names), epochs=args.epochs, seed=args.seed,
                                device=args.device, p=args.p, q=args.q,
                                min_updates=args.min_updates)
    except (Node2VecError, OSError, UnicodeDecodeError) as exc:
        print(f"node2vec: {exc}", file=sys.stderr)
        return 2
    with open(args.out, "wb") as out:  # a file object: numpy would append .npz to a name
        np.savez(out, nodes=np.array(names, dtype=str), embeddings=result.embeddings.numpy())
    json.dump({"nodes": len(names), "edges": edge_index.size(1), "device": result.device,
               "epochs": result.epochs, "steps": result.steps, "batch_size": result.batch_size,
               "seconds": round(result.seconds, 3), "loss": round(result.loss, 4),
               "fallback": result.fallback}, sys.stdout, indent=2)
    print()
    return 0


def export_command(args) -> int:
    """The control plane's query model, made from the worker's weights by the converter its
    install runs (deploy/query-model): for a folder of one's own or to compare."""
    from edge.embed.minilm import EncoderError
    from edge.embed.onnx_export import export_onnx

    try:
        print(export_onnx(args.dir))
    except EncoderError as exc:
        print(f"export-onnx: {exc}", file=sys.stderr)
        return 2
    return 0


def keep_caches_in(data_dir: Path) -> None:
    """torch makes a compiler cache folder in the temp dir as soon as torch-geometric or
    transformers is imported; a worker keeps it with its other files, not in /tmp."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(data_dir.resolve() / "torch-cache"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="take jobs from the queue and run them")
    analyze = commands.add_parser("analyze", help="graph a local directory (no queue, no store)")
    analyze.add_argument("path")
    output = analyze.add_mutually_exclusive_group()
    output.add_argument("--edges", action="store_true",
                        help="print internal file->file import edges as src<TAB>dst")
    output.add_argument("--stats", action="store_true", help="print JSON statistics (default)")
    output.add_argument("--graph", action="store_true",
                        help="print the whole graph as one JSON object (nodes and edges)")
    analyze.add_argument("--workers", type=int, default=None,
                         help="parser processes (default: one per core)")
    ingest = commands.add_parser("ingest", help="run the whole pipeline on a path or URL")
    ingest.add_argument("target")
    node2vec = commands.add_parser("node2vec", help="Node2Vec embeddings of an edge list")
    node2vec.add_argument("edges", help="src<TAB>dst per line, any node names")
    node2vec.add_argument("out", help="output .npz: nodes (names), embeddings (float32 [N, 64])")
    node2vec.add_argument("--epochs", type=int, default=10,
                          help="at least this many epochs; small graphs get more (default 10)")
    node2vec.add_argument("--min-updates", type=float, default=None,
                          help="optimiser updates every row must get (default: 650 at the "
                               "defaults, see default_updates(); 0 runs exactly --epochs)")
    node2vec.add_argument("--seed", type=int, default=None)
    node2vec.add_argument("--device", choices=("cpu", "cuda"), default=None,
                          help="default: cuda when torch sees a GPU, else cpu")
    node2vec.add_argument("--p", type=float, default=1.0, help="return parameter (default 1)")
    node2vec.add_argument("--q", type=float, default=1.0, help="in-out parameter (default 1)")
    export = commands.add_parser(
        "export-onnx", help="write the text model as ONNX (+ tokenizer) for the control plane")
    export.add_argument("dir", help="output folder: model.onnx (+ .data), tokenizer.json, encoder.json")
    check = commands.add_parser(
        "check", help="self-test: settings, queue, stores, GPU, model, git; says how to fix")
    check.add_argument("--timeout", type=float, default=None,
                       help="seconds any step may take (default: each step's own, 5-60)")
    demo = commands.add_parser(
        "demo", help="ingest an installed package's source into temp stores, then query it")
    demo.add_argument("package", nargs="?", default="git",
                      help="an installed package (default: git, i.e. gitpython)")
    demo.add_argument("--query", default=None, help="the text search to show")
    demo.add_argument("--keep", metavar="DIR", default=None,
                      help="keep the repository and stores in DIR instead of a temp dir")
    args = parser.parse_args(argv)
    if args.command == "check":  # before the logging set-up: its lines are the output
        from edge import check as self_test
        return self_test.main(seconds=args.timeout)

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "node2vec":  # needs no settings: it runs on any machine, on any graph
        return node2vec_command(args)
    if args.command == "export-onnx":
        return export_command(args)
    try:
        settings = Settings.from_env()
        scrub_logs(Scrubber.of_settings(settings))
        return _with_settings(args, settings)
    except SettingsError as exc:  # at start, or DEVICE=cuda without a GPU
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


def _with_settings(args, settings: Settings) -> int:
    keep_caches_in(settings.data_dir)
    if args.command == "analyze":
        return analyze_command(args, settings)
    if args.command == "ingest":
        return ingest_command(args, settings)
    if args.command == "demo":
        return demo_command(args, settings)
    serve(build_worker(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
