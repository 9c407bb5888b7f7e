"""Text embeddings on real code: chunking, MiniLM throughput, ONNX agreement, query encoder.

    .venv/bin/python bench/text_embed.py [CORPUS] [--device cpu|cuda] [--limit N]
        [--cut-corpora black,pip,zod] [--queries N] [--json OUT]

CORPUS is a folder of bench/corpora (default black). Its chunks are what a job
would embed: `edge.analyze.analyze` then `edge.embed.chunks.build_chunks`.
Measured, all in one run:
- chunking: time, chunks, how many were cut by the character bound, and for
  those whether the window (256 tokens) was still full after the cut, over the
  --cut-corpora too (characters per word piece, max over full windows);
- MiniLMEncoder.encode on --device: chunks/s and tokens/s (real word pieces,
  window-truncated, no padding), against the reference, sentence-transformers'
  own `encode(texts, batch_size=32)` on the same texts and device; on a CPU
  also in bfloat16 (speed, cosine to float32);
- the ONNX export run by shared.query_encoder.QueryEncoder (CPU) on the same
  chunks: throughput, and cosine against the MiniLM vectors (mean, min, p0.1);
- short queries (first docstring lines of the corpus) one at a time through
  QueryEncoder: latency p50/p99 and queries/s, 1 thread and all cores; the
  RSS of a fresh process that imports, loads and serves them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.analyze import analyze  # noqa: E402
from edge.embed import chunks as chunks_module  # noqa: E402
from edge.embed.chunks import CODE_CHAR_BUDGET, WINDOW_TOKENS, Chunk, build_chunks  # noqa: E402
from edge.embed.minilm import MiniLMEncoder, load_sentence_transformer, model_dir  # noqa: E402
from edge.embed.onnx_export import export_onnx  # noqa: E402
from shared.graph.model import NodeKind  # noqa: E402

CORPORA = ROOT / "bench" / "corpora"


def tokenizer(window: int | None):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.no_padding()
    if window:
        tok.enable_truncation(window)
    else:
        tok.no_truncation()
    return tok


def chunk_corpus(name: str) -> tuple[list[Chunk], list[Chunk], list[str], dict]:
    """The corpus's chunks as a job makes them, the same uncut, and its docstrings."""
    root = CORPORA / name
    started = time.perf_counter()
    graph = analyze(root, workers=os.cpu_count()).graph
    analysed = time.perf_counter()
    chunks = build_chunks(root, graph)
    done = time.perf_counter()
    bound, chunks_module.CODE_CHAR_BUDGET = chunks_module.CODE_CHAR_BUDGET, 10**12
    try:
        uncut = build_chunks(root, graph)
    finally:
        chunks_module.CODE_CHAR_BUDGET = bound
    docstrings = [n.docstring.strip().split("\n")[0] for n in graph.nodes
                  if n.kind is not NodeKind.FILE and n.docstring and len(n.docstring.strip()) > 15]
    return chunks, uncut, docstrings, {
        "files": sum(n.kind is NodeKind.FILE for n in graph.nodes),
        "analyze_s": round(analysed - started, 2), "chunk_s": round(done - analysed, 3),
        "chunks": len(chunks)}


def cut_check(chunks: list[Chunk], uncut: list[Chunk]) -> dict:
    """Was the window still full wherever the character bound cut a chunk?"""
    tok = tokenizer(None)
    cut = [c for c, whole in zip(chunks, uncut) if c.text != whole.text]
    short = [c for c, e in zip(cut, tok.encode_batch([c.text for c in cut]))
             if len(e.ids) < WINDOW_TOKENS]
    codes = [c.text.split("\n", 1)[-1] for c in uncut]
    ratios = []
    for code, enc in zip(codes, tok.encode_batch(codes, add_special_tokens=False)):
        if len(enc.ids) >= WINDOW_TOKENS - 2:
            ratios.append(_stripped(code[:enc.offsets[WINDOW_TOKENS - 3][1]]) / (WINDOW_TOKENS - 2))
    return {"chunks": len(chunks), "cut": len(cut), "cut_with_window_not_full": len(short),
            "full_windows": len(ratios),
            "chars_per_token_p50": round(statistics.median(ratios), 2) if ratios else None,
            "chars_per_token_max": round(max(ratios), 2) if ratios else None,
            "bound_chars_per_token": CODE_CHAR_BUDGET // WINDOW_TOKENS}


def _stripped(code: str) -> int:
    return sum(len(line.strip()) for line in code.split("\n"))


def machine() -> str:
    cpu = {}
    with open("/proc/cpuinfo") as info:
        for line in info:
            key, _, value = line.partition(":")
            cpu.setdefault(key.strip(), value.strip())
    amx = "amx_bf16" in cpu.get("flags", "").split()
    return (f"{cpu.get('model name', platform.machine())}, {os.cpu_count()} cores, "
            f"AMX bf16: {'yes' if amx else 'no'}")


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def query_process(folder: Path, queries: list[str], threads: int) -> dict:
    """Latency and RSS of the query encoder in a fresh process, as the control plane runs it."""
    script = textwrap.dedent(f"""
        import json, sys, time
        def rss(field):
            for line in open("/proc/self/status"):
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
        start = rss("VmRSS:")
        from shared.query_encoder import QueryEncoder
        imported = rss("VmRSS:")
        encoder = QueryEncoder({str(folder)!r}, threads={threads or None})
        loaded = rss("VmRSS:")
        queries = json.loads(sys.stdin.read())
        encoder.encode(queries[:5])
        latencies = []
        for q in queries:
            t = time.perf_counter(); encoder.encode([q]); latencies.append(time.perf_counter() - t)
        t = time.perf_counter(); encoder.encode(queries); batch = time.perf_counter() - t
        assert "torch" not in sys.modules
        print(json.dumps({{"rss_start_mb": start, "rss_imported_mb": imported,
                          "rss_loaded_mb": loaded, "rss_after_mb": rss("VmRSS:"),
                          "rss_peak_mb": rss("VmHWM:"), "latencies": latencies,
                          "batch_s": batch}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, input=json.dumps(queries),
                          capture_output=True, text=True, check=True)
    raw = json.loads(done.stdout)
    lat = sorted(raw.pop("latencies"))
    return {"threads": threads or os.cpu_count(), "queries": len(lat),
            "p50_ms": round(1000 * lat[len(lat) // 2], 2),
            "p99_ms": round(1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2),
            "one_at_a_time_qps": round(len(lat) / sum(lat), 1),
            "batched_qps": round(len(lat) / raw.pop("batch_s"), 1),
            **{k: round(v, 1) for k, v in raw.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", nargs="?", default="black")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, default=0,
                        help="embed at most N chunks, spread over the corpus (0: all)")
    parser.add_argument("--cut-corpora", default="pip,zod")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report: dict = {"machine": machine(), "device": args.device,
                    "command": " ".join([".venv/bin/python", "bench/text_embed.py", *sys.argv[1:]])}

    chunks, uncut, docstrings, report["chunking"] = chunk_corpus(args.corpus)
    report["cut"] = {args.corpus: cut_check(chunks, uncut)}
    for name in filter(None, args.cut_corpora.split(",")):
        report["cut"][name] = cut_check(*chunk_corpus(name)[:2])
    print(json.dumps({"chunking": report["chunking"], "cut": report["cut"]}, indent=1), flush=True)

    step = max(1, len(chunks) // args.limit) if args.limit else 1
    texts = [c.text for c in chunks[::step]][:args.limit or None]  # spread over the corpus
    tokens = sum(len(e.ids) for e in tokenizer(WINDOW_TOKENS).encode_batch(texts))
    encoder, load_s = timed(MiniLMEncoder, device=args.device)
    encoder.encode(texts[:64])  # warm-up: first-call allocations, CUDA kernels
    ours, ours_s = timed(encoder.encode, texts)
    reference_model = load_sentence_transformer(args.device)
    if args.device.startswith("cuda"):
        reference_model.half()
    _, reference_s = timed(reference_model.encode, texts, batch_size=32,
                           normalize_embeddings=True, show_progress_bar=False)
    report["minilm"] = {"texts": len(texts), "tokens": tokens, "load_s": round(load_s, 2),
                        "dtype": encoder.dtype, "batch_size": encoder.batch_size,
                        "seconds": round(ours_s, 2), "chunks_per_s": round(len(texts) / ours_s, 1),
                        "tokens_per_s": round(tokens / ours_s),
                        "reference_seconds": round(reference_s, 2),
                        "reference_chunks_per_s": round(len(texts) / reference_s, 1),
                        "speed_vs_reference": round(reference_s / ours_s, 2)}
    if not args.device.startswith("cuda"):
        del reference_model
        half = MiniLMEncoder(device=args.device, dtype="bfloat16")
        half.encode(texts[:64])
        halves, half_s = timed(half.encode, texts)
        cosine = (ours * halves).sum(axis=1)
        report["minilm"]["bfloat16"] = {
            "seconds": round(half_s, 2), "chunks_per_s": round(len(texts) / half_s, 1),
            "speed_vs_float32": round(ours_s / half_s, 2),
            "cosine_to_float32_mean": float(cosine.mean()),
            "cosine_to_float32_min": float(cosine.min())}
        del half
    print(json.dumps({"minilm": report["minilm"]}, indent=1), flush=True)

    from shared.query_encoder import QueryEncoder
    with tempfile.TemporaryDirectory() as scratch:
        model_file, export_s = timed(export_onnx, Path(scratch) / "onnx")
        onnx = QueryEncoder(model_file.parent)
        onnx.encode(texts[:64])
        theirs, onnx_s = timed(onnx.encode, texts)
        cosine = (ours * theirs).sum(axis=1)
        report["onnx"] = {"export_s": round(export_s, 2),
                          "model_mb": round(model_file.stat().st_size / 2**20, 1),
                          "texts": len(texts), "seconds": round(onnx_s, 2),
                          "chunks_per_s": round(len(texts) / onnx_s, 1),
                          "cosine_mean": float(cosine.mean()), "cosine_min": float(cosine.min()),
                          "cosine_p0.1": float(np.percentile(cosine, 0.1))}
        print(json.dumps({"onnx": report["onnx"]}, indent=1), flush=True)
        queries = (docstrings * (1 + args.queries // max(1, len(docstrings))))[:args.queries]
        report["queries"] = [query_process(model_file.parent, queries, threads)
                             for threads in (1, 0)]
    print(json.dumps({"queries": report["queries"]}, indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
