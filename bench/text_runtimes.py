"""The text model's runtimes side by side on the same real chunks: speed and agreement.

    .venv/bin/python bench/text_runtimes.py [CORPUS] [--chunks 2000]
        [--runtimes torch,torch-bf16,onnx,onnx-int8] [--json OUT]

CORPUS is a folder of bench/corpora (default django); its chunks are what a
job embeds (`analyze` then `build_chunks`), `--chunks` of them taken evenly
across the repository. Each runtime of edge/embed/runtimes.py encodes all of
them, in the same process one after the other, through the encoder class the
worker uses (batches sorted by length); chunks/s counts encode time only
(models loaded and ONNX files made before the clock starts). Agreement is
cosine of each runtime's vector to torch float32's for the same chunk: mean,
min, 0.1th percentile. Also: how many of the repository's chunk texts are
duplicates (encoded once by the pipeline). The CPU's name and flags (AMX,
AVX512-BF16, VNNI) are printed: runtimes rank differently on other CPUs.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.analyze import analyze  # noqa: E402
from edge.embed.chunks import build_chunks  # noqa: E402
from edge.embed.runtimes import open_text_encoder, usable_cores  # noqa: E402
from shared.settings import TextRuntime  # noqa: E402

FLAGS = ("amx_bf16", "avx512_bf16", "avx512_vnni", "avx_vnni", "avx512f", "avx2")


def cpu() -> dict:
    name, flags = platform.processor(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not name.strip():
                name = line.split(":", 1)[1].strip()
            elif line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"name": name, "cores": usable_cores(), "flags": [f for f in FLAGS if f in flags]}


def sample(corpus: Path, count: int) -> tuple[list[str], dict]:
    analysis = analyze(corpus)
    chunks = build_chunks(corpus, analysis.graph)
    texts = [c.text for c in chunks]
    step = max(1, len(texts) // count)
    picked = texts[::step][:count]
    return picked, {"corpus_chunks": len(texts), "distinct_texts": len(set(texts))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", nargs="?", default="django")
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--runtimes", default="torch,torch-bf16,onnx,onnx-int8")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    texts, counts = sample(ROOT / "bench" / "corpora" / args.corpus, args.chunks)
    machine = cpu()
    print(f"{machine['name']}, {machine['cores']} cores, flags: {', '.join(machine['flags'])}")
    print(f"{args.corpus}: {counts['corpus_chunks']:,} chunks, {counts['distinct_texts']:,} "
          f"distinct texts; {len(texts):,} encoded by each runtime")
    results, reference = {}, None
    with tempfile.TemporaryDirectory() as data_dir:
        for name in args.runtimes.split(","):
            encoder = open_text_encoder(TextRuntime(name.upper()), "cpu", Path(data_dir))
            encoder.encode(texts[:8])  # warm: first-run allocations are not the model's speed
            started = time.perf_counter()
            vectors = encoder.encode(texts)
            seconds = time.perf_counter() - started
            if reference is None:
                reference = vectors  # the first runtime listed: torch float32
            cosine = (vectors * reference).sum(axis=1)
            results[name] = {"runtime": encoder.runtime, "seconds": round(seconds, 1),
                             "chunks_per_s": round(len(texts) / seconds, 2),
                             "cosine_mean": float(cosine.mean()),
                             "cosine_min": float(cosine.min()),
                             "cosine_p0_1": float(np.percentile(cosine, 0.1))}
            base = results[args.runtimes.split(",")[0]]["chunks_per_s"]
            row = results[name]
            print(f"{name:11} {row['runtime']:11} {row['chunks_per_s']:7.2f} chunks/s "
                  f"({row['chunks_per_s'] / base:.2f}x)  cosine mean {row['cosine_mean']:.6f} "
                  f"min {row['cosine_min']:.6f} p0.1 {row['cosine_p0_1']:.6f}", flush=True)
            del encoder
    if args.json:
        args.json.write_text(json.dumps({"cpu": machine, "corpus": args.corpus, **counts,
                                         "encoded": len(texts), "runtimes": results}, indent=2))


if __name__ == "__main__":
    main()
