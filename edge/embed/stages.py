"""The pipeline's embedding stages: a stored graph becomes vectors in Qdrant.

node2vec  the file-level import graph, undirected, trained on DEVICE; one 64-d
          vector per file node, isolated files included (properties 6 and 7)
text      one chunk per function, method and class (and per symbol-less file),
          encoded by the configured provider
upload    both sets into Qdrant, tagged with the job's id, so that what this
          repository no longer has is removed once everything is written

Each stage reports its progress as a fraction; the pipeline places it on the bar.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edge.embed.chunks import Chunk, TextEncoder, build_chunks
from shared.graph.model import EdgeKind, Graph, NodeKind
from shared.settings import Settings
from shared.vectors import STRUCTURE_DIM, VectorStore

log = logging.getLogger("edge.embed")

# progress(stage, fraction of it done); a stage may rename itself ("node2vec (CPU ...)").
Progress = Callable[[str, float], None]
ENCODE_SLICE = 512  # texts per encode call: progress moves, memory stays bounded


@dataclass
class Structure:
    paths: list[str]  # file paths, in graph order
    vectors: np.ndarray  # float32 [len(paths), STRUCTURE_DIM]
    device: str
    epochs: int
    fallback: str | None


@dataclass
class Text:
    chunks: list[Chunk]
    vectors: np.ndarray  # float32 [len(chunks), encoder.dim]
    model: str
    runtime: str = ""  # what ran the model: engine and precision


def file_graph(graph: Graph) -> tuple[list[str], list[tuple[int, int]]]:
    """The file nodes' paths and the IMPORTS edges between them as index pairs."""
    files = [node for node in graph.nodes if node.kind is NodeKind.FILE]
    index = {node.id: i for i, node in enumerate(files)}
    pairs = [(index[e.src], index[e.dst]) for e in graph.edges
             if e.kind is EdgeKind.IMPORTS and e.src in index and e.dst in index]
    return [node.path for node in files], pairs


def embed_structure(graph: Graph, settings: Settings, progress: Progress) -> Structure:
    import torch

    from edge.embed.node2vec import train_node2vec

    progress("node2vec", 0.0)
    paths, pairs = file_graph(graph)
    if not paths:
        return Structure([], np.zeros((0, STRUCTURE_DIM), np.float32), "none", 0, None)
    stage = ["node2vec"]

    def fell_back(reason: str) -> None:
        stage[0] = "node2vec (on the CPU: CUDA out of memory)"
        log.warning("node2vec for %s: %s", graph.repo, reason)

    edge_index = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t()
    result = train_node2vec(
        edge_index, len(paths), epochs=settings.node2vec_epochs, p=settings.node2vec_p,
        q=settings.node2vec_q, device=settings.device.torch_name,
        on_epoch=lambda epoch, epochs, loss: progress(stage[0], epoch / epochs),
        on_fallback=fell_back, simulate_oom_above=0 if settings.node2vec_force_oom else None)
    log.info("node2vec for %s: %d files, %d epochs on %s in %.1f s", graph.repo, len(paths),
             result.epochs, result.device, result.seconds)
    return Structure(paths, result.embeddings.numpy(), result.device, result.epochs,
                     result.fallback)


def embed_text(root: Path, graph: Graph, encoder: TextEncoder, progress: Progress) -> Text:
    progress("text", 0.0)
    chunks = build_chunks(root, graph)
    # Longest first, so each encoder batch pads to texts of about its own length. (No two
    # chunk texts are the same: each starts with its path and name.)
    order = sorted(range(len(chunks)), key=lambda i: -len(chunks[i].text))
    vectors = np.zeros((len(chunks), encoder.dim), np.float32)
    for start in range(0, len(order), ENCODE_SLICE):
        picked = order[start:start + ENCODE_SLICE]
        vectors[picked] = encoder.encode([chunks[i].text for i in picked])
        progress("text", (start + len(picked)) / len(order))
    return Text(chunks, vectors, encoder.model, getattr(encoder, "runtime", ""))


def upload(vectors: VectorStore, graph: Graph, ingest: str, structure: Structure, text: Text,
           progress: Progress, fence: int | None = None) -> int:
    """Write both sets under the job's lease token `fence`; returns the number of
    embeddings stored (property 8)."""
    total = len(structure.paths) + len(text.chunks)

    def moved(before: int) -> Callable[[int, int], None]:
        return lambda done, _: progress("upload", (before + done) / max(total, 1))

    written = vectors.write_structure(graph.repo, graph.commit, ingest, structure.paths,
                                      structure.vectors, on_batch=moved(0), fence=fence)
    written += vectors.write_chunks(graph.repo, graph.commit, ingest, text.chunks, text.vectors,
                                    text.model, on_batch=moved(len(structure.paths)),
                                    fence=fence, runtime=text.runtime)
    return written
