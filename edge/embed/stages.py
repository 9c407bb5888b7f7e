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

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edge.embed.chunks import Chunk, TextEncoder, build_chunks
from shared.graph.model import EdgeKind, Graph, NodeKind
from shared.settings import Settings
from shared.vectors import (
    STRUCTURE_DIM,
    VectorStore,
    chunk_collection,
    chunk_ids,
    file_ids,
    text_hash,
)

log = logging.getLogger("edge.embed")

# progress(stage, fraction of it done); a stage may rename itself ("node2vec (CPU ...)").
Progress = Callable[[str, float], None]
ENCODE_SLICE = 512  # texts per encode call: progress moves, memory stays bounded


@dataclass
class Structure:
    paths: list[str]  # file paths, in graph order
    vectors: np.ndarray  # float32 [len(paths), STRUCTURE_DIM]; not set when kept
    device: str
    epochs: int
    fallback: str | None
    graph_hash: str = ""  # the file graph and settings trained on (see graph_hash)
    kept: bool = False  # the stored vectors were trained on this very graph: not retrained


@dataclass
class Text:
    chunks: list[Chunk]
    vectors: np.ndarray  # float32 [len(chunks), encoder.dim]; rows of `kept` are not set
    model: str
    runtime: str = ""  # what ran the model: engine and precision
    kept: list[int] = field(default_factory=list)  # chunks stored as they are: not rewritten
    reused: int = 0  # chunks rewritten with their stored vector (only their lines moved)

    @property
    def embedded(self) -> int:
        return len(self.chunks) - len(self.kept) - self.reused


def file_graph(graph: Graph) -> tuple[list[str], list[tuple[int, int]]]:
    """The file nodes' paths and the IMPORTS edges between them as index pairs."""
    files = [node for node in graph.nodes if node.kind is NodeKind.FILE]
    index = {node.id: i for i, node in enumerate(files)}
    pairs = [(index[e.src], index[e.dst]) for e in graph.edges
             if e.kind is EdgeKind.IMPORTS and e.src in index and e.dst in index]
    return [node.path for node in files], pairs


def graph_hash(paths: list[str], pairs: list[tuple[int, int]], settings: Settings) -> str:
    """What Node2Vec's vectors are a function of (up to its random start): the files, the
    imports between them, and the training settings."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((settings.node2vec_epochs, settings.node2vec_p, settings.node2vec_q,
                        STRUCTURE_DIM)).encode())
    digest.update("\0".join(paths).encode())
    digest.update(repr(sorted((paths[a], paths[b]) for a, b in pairs)).encode())
    return digest.hexdigest()


def embed_structure(graph: Graph, settings: Settings, progress: Progress,
                    stored: VectorStore | None = None) -> Structure:
    """One Node2Vec vector per file. With the vector store (`stored`), a file graph that
    did not change since the stored vectors were trained keeps them: training again would
    only draw another sample of the same embedding (its start is random)."""
    import torch

    from edge.embed.node2vec import train_node2vec

    progress("node2vec", 0.0)
    paths, pairs = file_graph(graph)
    if not paths:
        return Structure([], np.zeros((0, STRUCTURE_DIM), np.float32), "none", 0, None)
    trained_on = graph_hash(paths, pairs, settings)
    if stored is not None:
        state = stored.structure_state(graph.repo)
        ids = set(file_ids(graph.repo, paths))
        if set(state) == ids and set(state.values()) == {trained_on}:
            progress("node2vec", 1.0)
            return Structure(paths, np.zeros((len(paths), STRUCTURE_DIM), np.float32), "kept",
                             0, None, trained_on, kept=True)
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
                     result.fallback, trained_on)


def embed_text(root: Path, graph: Graph, encoder: TextEncoder, progress: Progress,
               stored: VectorStore | None = None) -> Text:
    """The graph's chunks and their vectors. With the vector store (`stored`), a chunk
    whose point already holds a vector of the same text made by the same model and
    runtime is not encoded again: a sync embeds only what changed."""
    progress("text", 0.0)
    chunks = build_chunks(root, graph)
    runtime = getattr(encoder, "runtime", "")
    vectors = np.zeros((len(chunks), encoder.dim), np.float32)
    kept, reused, todo = _plan(stored, graph.repo, encoder.model, runtime, chunks)
    if reused:
        ids = chunk_ids(graph.repo, chunks)
        found = stored.vectors(chunk_collection(encoder.model), [ids[i] for i in reused],
                               repo=graph.repo)
        todo += [i for i in reused if ids[i] not in found]  # gone meanwhile: encode it
        reused = [i for i in reused if ids[i] in found]
        for i in reused:
            vectors[i] = found[ids[i]]
    # Longest first, so each encoder batch pads to texts of about its own length. (No two
    # chunk texts are the same: each starts with its path and name.)
    order = sorted(todo, key=lambda i: -len(chunks[i].text))
    for start in range(0, len(order), ENCODE_SLICE):
        picked = order[start:start + ENCODE_SLICE]
        vectors[picked] = encoder.encode([chunks[i].text for i in picked])
        progress("text", (start + len(picked)) / len(order))
    return Text(chunks, vectors, encoder.model, runtime, kept, len(reused))


def _plan(stored: VectorStore | None, repo: str, model: str, runtime: str,
          chunks: list[Chunk]) -> tuple[list[int], list[int], list[int]]:
    """Chunk indexes (stored exactly as they are, same text with other lines, to encode)."""
    state = stored.chunk_state(repo, model) if stored is not None else {}
    if not state:
        return [], [], list(range(len(chunks)))
    kept, reused, todo = [], [], []
    for i, (point, chunk) in enumerate(zip(chunk_ids(repo, chunks), chunks)):
        old = state.get(point)
        if old is None or old.text_hash != text_hash(chunk.text) or old.runtime != runtime:
            todo.append(i)
        elif (old.start_line, old.end_line, old.kind) == (
                chunk.start_line, chunk.end_line, str(getattr(chunk.kind, "value", chunk.kind))):
            kept.append(i)
        else:
            reused.append(i)
    return kept, reused, todo


def upload(vectors: VectorStore, graph: Graph, ingest: str, structure: Structure, text: Text,
           progress: Progress, fence: int | None = None) -> int:
    """Write both sets under the job's lease token `fence`; returns the number of
    embeddings stored (property 8)."""
    total = (0 if structure.kept else len(structure.paths)) + len(text.chunks) - len(text.kept)

    def moved(before: int) -> Callable[[int, int], None]:
        return lambda done, _: progress("upload", (before + done) / max(total, 1))

    written = vectors.write_structure(graph.repo, graph.commit, ingest, structure.paths,
                                      structure.vectors, on_batch=moved(0), fence=fence,
                                      graph_hash=structure.graph_hash, kept=structure.kept)
    written += vectors.write_chunks(graph.repo, graph.commit, ingest, text.chunks, text.vectors,
                                    text.model,
                                    on_batch=moved(0 if structure.kept else len(structure.paths)),
                                    fence=fence, runtime=text.runtime, kept=text.kept)
    progress("upload", 1.0)  # also when everything was kept and no batch reported
    return written
