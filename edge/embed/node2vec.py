"""Node2Vec structural embeddings, trained on the device the graph lives on.

The model of `"node2vec: Scalable Feature Learning for Networks"
<https://arxiv.org/abs/1607.00653>`_ (Grover & Leskovec, KDD 2016) with the sampling and
loss of PyG's `torch_geometric.nn.Node2Vec`, but with nothing on the host per step: the
graph is a CSR on the training device, random walks (p/q-biased too) are tensor operations
there, and each optimiser step gathers the rows its walks touch once, computes the
skip-gram loss and its gradient on them, and applies SparseAdam to exactly those rows.

Public API:
    train_node2vec(edge_index, num_nodes, ...) -> Node2VecResult
    plan_training(num_nodes, device, ...) -> (batch_size, epochs) it will use
    default_updates(dim, lr, averaged_share) -> the default work budget (updates per row)
    random_walks(rowptr, col, start, length, p=1, q=1, generator=None) -> Tensor [S, length]
    to_csr(edge_index, num_nodes, device=None) -> (rowptr [N+1], col [E'])
    edge_keys(rowptr, col) -> sorted row * N + col [E'] (neighbour tests of biased walks)
    read_edge_list(path) -> (names, edge_index)
    Node2VecError: bad arguments or a bad edge list; nothing else is raised on purpose.
"""
from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor
from torch_geometric.index import index2ptr
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

log = logging.getLogger("edge.embed.node2vec")

# on_epoch(epoch (1-based), epochs, mean loss of that epoch)
EpochCallback = Callable[[int, int, float], None]

# Batch sizes (start nodes per optimiser step), measured in bench/node2vec_bench.py. On a
# small graph quality follows the number of updates, not the batch, so the smallest batch
# that still keeps a core busy is the cheapest; large graphs take large batches (pairs/s
# grows with the batch on the CPU); a GPU needs thousands of walks per step to hide
# kernel-launch latency.
CPU_BATCH = (32, 2048)
CUDA_BATCH = (128, 16384)
# Walks per loss block on the CPU: a block's rows, scores and gradients stay in a core's L2.
WALK_CHUNK = 256
MIN_OOM_BATCH = 8  # out of memory below this many start nodes: give the GPU up
# Below this many nodes a CPU step is a few small kernels: a second thread only adds
# waiting (5 ms a step on one thread, up to 700 ms on two of a busy 2-core machine; the
# worker's pipeline test went from 105 s to 11 s), so such graphs train on one thread.
ONE_THREAD_NODES = 4096
# The work budget (train_node2vec): rows start at norm ~INIT_NORM, N(0, INIT_NORM^2 / dim),
# not torch.nn.Embedding's N(0, 1) (norm sqrt(dim), initial logits ~N(0, dim): saturated
# sigmoids); trained rows end at norm ~FINAL_NORM (1.4-1.8 measured on the 9 graphs of
# bench/results/node2vec.md, 64 dims); a coordinate nets about lr / TRAVEL per update.
INIT_NORM = 1.0
FINAL_NORM = 1.6
TRAVEL = 10.0
AVERAGED_SHARE = 0.5  # the last epochs whose end-of-epoch weights are averaged into the result
BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.SparseAdam's defaults


class Node2VecError(ValueError):
    """Bad arguments or a bad edge list."""


@dataclass(frozen=True)
class Node2VecResult:
    embeddings: Tensor  # [num_nodes, dim] float32, on the CPU
    device: str  # where training finished ("cpu" after a CUDA fallback)
    epochs: int
    steps: int  # optimiser steps
    batch_size: int  # start nodes per step at the end (halved on out-of-memory)
    seconds: float
    loss: float  # mean loss of the last epoch
    averaged: int = 1  # epochs whose end-of-epoch weights were averaged into embeddings
    fallback: str | None = None  # why training left the GPU, when it did


def to_csr(edge_index: Tensor, num_nodes: int, device=None) -> tuple[Tensor, Tensor]:
    """Undirected, deduplicated, self-loop-free CSR: rowptr [N+1], col [E'] sorted per row.

    edge_index [2, E] may hold edges in one or both directions, duplicates and self loops
    (a file importing itself says nothing about its neighbourhood).
    """
    edge_index = torch.as_tensor(edge_index, dtype=torch.long).reshape(2, -1)
    if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= num_nodes):
        raise Node2VecError(f"edge_index holds node ids outside [0, {num_nodes})")
    edge_index, _ = remove_self_loops(edge_index)
    edge_index = coalesce(to_undirected(edge_index, num_nodes=num_nodes), num_nodes=num_nodes)
    row, col = edge_index.to(device)  # coalesce sorts by (row, col)
    return index2ptr(row, num_nodes), col


def random_walks(rowptr: Tensor, col: Tensor, start: Tensor, length: int, p: float = 1.0,
                 q: float = 1.0, generator: torch.Generator | None = None,
                 keys: Tensor | None = None) -> Tensor:
    """Walks [S, length] from start [S] (the start included), on start's device.

    Each step moves to a neighbour; a node with none keeps the walk where it is. With
    p == q == 1 steps are uniform; otherwise second order as in the paper: from v, having
    come from t, neighbour x has weight 1/p if x == t, 1 if x neighbours t, else 1/q.
    keys: edge_keys(rowptr, col), when the caller keeps them across calls.
    """
    device = start.device
    walks = torch.empty(start.numel(), length, dtype=torch.long, device=device)  # [S, L]
    walks[:, 0] = start
    if length == 1:
        return walks
    if p == q == 1.0:
        keys = None
    elif keys is None:
        keys = edge_keys(rowptr, col)
    uniform = torch.rand(start.numel(), length - 1, generator=generator, device=device)
    for step in range(1, length):
        cur = walks[:, step - 1]
        if keys is None or step == 1:
            walks[:, step] = _neighbour(rowptr, col, cur, uniform[:, step - 1])
        else:
            walks[:, step] = _biased_neighbour(rowptr, col, keys, walks[:, step - 2], cur,
                                               uniform[:, step - 1], p, q, generator)
    return walks


def _neighbour(rowptr: Tensor, col: Tensor, cur: Tensor, uniform: Tensor) -> Tensor:
    """A uniform neighbour of each cur [S] picked by uniform [S] in [0, 1); cur if none."""
    first = rowptr.index_select(0, cur)
    degree = rowptr.index_select(0, cur + 1) - first
    if col.numel() == 0:
        return cur.clone()
    offset = torch.minimum((uniform * degree).long(), (degree - 1).clamp_min(0))
    picked = col.index_select(0, (first + offset).clamp_max(col.numel() - 1))
    return torch.where(degree > 0, picked, cur)


def edge_keys(rowptr: Tensor, col: Tensor) -> Tensor:
    """row * N + col for every CSR entry: sorted, because rows are and columns within them."""
    num_nodes = rowptr.numel() - 1
    row = torch.repeat_interleave(torch.arange(num_nodes, device=col.device), rowptr.diff())
    return row * num_nodes + col


def _biased_neighbour(rowptr, col, keys, prev, cur, uniform, p, q, generator) -> Tensor:
    """Second-order step by rejection sampling, as torch-cluster does but vectorised: each
    walker proposes `tries` uniform neighbours at once and takes the first accepted (with
    probability weight / max weight); walkers with none accepted propose again."""
    num_nodes, device = rowptr.numel() - 1, cur.device
    top = max(1.0 / p, 1.0, 1.0 / q)
    worst = min(1.0 / p, 1.0, 1.0 / q) / top  # the lowest acceptance probability
    tries = 1 if worst >= 1.0 else min(16, math.ceil(math.log(0.05) / math.log1p(-worst)))
    nxt = _neighbour(rowptr, col, cur, uniform)
    pending = torch.nonzero(rowptr[cur + 1] > rowptr[cur]).flatten()  # walkers that can move
    while pending.numel():
        here = cur[pending].repeat_interleave(tries)  # [P * tries]
        draw = torch.rand(here.numel(), generator=generator, device=device)
        proposal = _neighbour(rowptr, col, here, draw).view(-1, tries)  # [P, tries]
        t = prev[pending][:, None]  # [P, 1]
        key = t * num_nodes + proposal
        where = torch.searchsorted(keys, key.flatten()).clamp_max(keys.numel() - 1)
        linked = keys[where].view_as(key) == key
        weight = torch.where(proposal == t, 1.0 / p, torch.where(linked, 1.0, 1.0 / q))
        accept = torch.rand(proposal.shape, generator=generator, device=device) * top < weight
        first = accept.int().argmax(dim=1)  # [P]: the first accepted try (0 if none)
        done = accept.any(dim=1)
        nxt[pending[done]] = proposal[done, first[done]]
        pending = pending[~done]
    return nxt


def train_node2vec(edge_index: Tensor, num_nodes: int, *, dim: int = 64, walk_length: int = 20,
                   context_size: int = 10, walks_per_node: int = 10, num_negative: int = 1,
                   p: float = 1.0, q: float = 1.0, epochs: int = 10, lr: float = 0.01,
                   batch_size: int | None = None, min_updates: float | None = None,
                   averaged_share: float = AVERAGED_SHARE, seed: int | None = None,
                   device: str | torch.device | None = None,
                   on_epoch: EpochCallback | None = None,
                   on_fallback: Callable[[str], None] | None = None,
                   simulate_oom_above: int | None = None) -> Node2VecResult:
    """Train Node2Vec embeddings of a graph's nodes; returns them on the CPU.

    Sampling and loss follow PyG's Node2Vec: each epoch visits every node once as a start
    (in batches of `batch_size`), walks `walks_per_node` times from it, and cuts every walk
    into its `walk_length - context_size + 1` windows; a window pairs its first node with
    the `context_size - 1` after it (positives). Negatives are "walks" of the start then
    uniformly random nodes, cut the same way. Loss: mean -log sigmoid(z_u . z_v) over the
    positive pairs plus mean -log sigmoid(-z_u . z_v) over the negative ones, on one shared
    embedding table initialised N(0, INIT_NORM^2 / dim) (small, as word2vec's: no logit
    starts saturated); optimiser: SparseAdam, applied only to the rows a step touches. The
    result is the mean of the weights at the end of each of the last `averaged_share` of the
    epochs (Polyak-Ruppert tail averaging): SparseAdam's constant step leaves every row
    jittering by ~lr per coordinate around its place, and the mean cancels most of that.

    Work budget. SparseAdam moves a row by at most `lr` per coordinate in each step that
    touches it, whatever the gradient's size, and sampled gradients flip sign, so a
    coordinate nets about lr / TRAVEL per update. A row must travel from its start (norm
    INIT_NORM) to its place (norm ~FINAL_NORM), at most (INIT_NORM + FINAL_NORM) / sqrt(dim)
    per coordinate: TRAVEL * (INIT_NORM + FINAL_NORM) / (sqrt(dim) * lr) updates, 325 at the
    defaults, before the averaged tail, which gets as many again:
    `min_updates` defaults to that divided by (1 - averaged_share), i.e. 650 expected
    updates for every row (bench/results/node2vec.md: AUC by budget and start). A row is
    updated in the step where it starts walks and, in every other step, at least whenever
    one of the step's B*walks_per_node*num_negative*(walk_length-1) uniform negatives hits
    it, so an epoch gives it at least 1 + (steps - 1)(1 - (1 - 1/N)^negatives) updates;
    training runs max(epochs, ceil(min_updates / that)) epochs. Small graphs (few steps per
    epoch) thus get the extra epochs they need to converge; graphs large enough that
    `epochs` already meets the floor run exactly `epochs`. min_updates=0 runs exactly `epochs`.

    Args:
        edge_index: [2, E] integer node pairs, any direction, duplicates and self loops
            allowed; trained on as undirected, deduplicated, without self loops.
        num_nodes: N; nodes without edges get (untrained-by-walks) embeddings too.
        dim: embedding size.
        walk_length: nodes per walk, the start included (PyG's walk_length).
        context_size: window length; each window gives context_size - 1 positive pairs.
        walks_per_node: walks started from each node per epoch.
        num_negative: negative walks per positive walk.
        p: return parameter (1/p weighs going straight back).
        q: in-out parameter (1/q weighs moving away from the previous node).
        epochs: passes over the nodes, at least; see the work budget above.
        lr: SparseAdam learning rate (betas 0.9/0.999, eps 1e-8 as torch's defaults).
        batch_size: start nodes per step; None picks it from the device and the graph:
            as large as the device's efficient range allows while `epochs` epochs still
            give every row `min_updates` updates (N * epochs / min_updates, clamped to
            CPU_BATCH or CUDA_BATCH).
        min_updates: the expected updates per row to guarantee (None: the default above).
        averaged_share: the share of the last epochs averaged into the result, in [0, 1);
            0 returns the last weights (and halves the default budget).
        seed: seeds the initial embeddings, the walks and the negatives; on the CPU a
            seed makes runs bit-for-bit identical (CUDA kernels may sum in any order).
        device: "cuda", "cpu" or a torch.device; None takes CUDA when torch sees it.
        on_epoch: called after every epoch with (epoch, epochs, mean loss of the epoch).
        on_fallback: called with the reason when training leaves CUDA for the CPU: out of
            memory placing the graph, or with batches below MIN_OOM_BATCH (also in
            result.fallback).
        simulate_oom_above: a test aid standing in for a full device: a step holding more
            than this many walks on the starting device raises torch.OutOfMemoryError
            where a real allocation would, so the recovery runs as on a real GPU.

    On torch.OutOfMemoryError the step is retried with the batch halved; below
    MIN_OOM_BATCH a CUDA run moves its state to the CPU and goes on there, and a CPU run
    raises Node2VecError.
    """
    _check(num_nodes, dim, walk_length, context_size, walks_per_node, num_negative, p, q,
           epochs, lr, batch_size, averaged_share)
    device = _pick_device(device)
    batch_size, epochs = plan_training(num_nodes, device, epochs=epochs, lr=lr,
                                       batch_size=batch_size, min_updates=min_updates,
                                       walk_length=walk_length, walks_per_node=walks_per_node,
                                       num_negative=num_negative, dim=dim,
                                       averaged_share=averaged_share)
    trainer = _Trainer(edge_index, num_nodes, dim=dim, walk_length=walk_length,
                       context_size=context_size, walks_per_node=walks_per_node,
                       num_negative=num_negative, p=p, q=q, lr=lr, batch_size=batch_size,
                       seed=seed, device=device, walk_cap=simulate_oom_above,
                       on_fallback=on_fallback)
    small = device.type == "cpu" and num_nodes < ONE_THREAD_NODES
    with _one_thread() if small else contextlib.nullcontext():
        return trainer.fit(epochs, epochs - int(epochs * averaged_share), on_epoch)


@contextlib.contextmanager
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check(num_nodes, dim, walk_length, context_size, walks_per_node, num_negative, p, q,
           epochs, lr, batch_size, averaged_share) -> None:
    positive = {"num_nodes": num_nodes, "dim": dim, "context_size": context_size,
                "walks_per_node": walks_per_node, "num_negative": num_negative,
                "epochs": epochs, "batch_size": batch_size if batch_size is not None else 1}
    for name, value in positive.items():
        if int(value) != value or value < 1:
            raise Node2VecError(f"{name} must be a positive integer, got {value!r}")
    if context_size < 2 or walk_length < context_size:
        raise Node2VecError(f"need 2 <= context_size <= walk_length, got context_size "
                            f"{context_size} and walk_length {walk_length}")
    if not (p > 0 and q > 0 and lr > 0):
        raise Node2VecError(f"p, q and lr must be positive, got {p}, {q}, {lr}")
    if not 0.0 <= averaged_share < 1.0:
        raise Node2VecError(f"averaged_share must be in [0, 1), got {averaged_share!r}")


def _pick_device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise Node2VecError("device cuda asked for, but torch sees no CUDA device")
    if device.type not in ("cuda", "cpu"):
        raise Node2VecError(f"unsupported device {device}")
    return device


def plan_training(num_nodes: int, device: str | torch.device, *, epochs: int = 10,
                  lr: float = 0.01, batch_size: int | None = None,
                  min_updates: float | None = None, walk_length: int = 20,
                  walks_per_node: int = 10, num_negative: int = 1, dim: int = 64,
                  averaged_share: float = AVERAGED_SHARE) -> tuple[int, int]:
    """(batch_size, epochs) train_node2vec will use: the work budget of its docstring."""
    device = torch.device(device)
    budget = (default_updates(dim, lr, averaged_share) if min_updates is None
              else float(min_updates))
    per_start_noise = walks_per_node * num_negative * (walk_length - 1)
    if batch_size is None:
        batch_size = _auto_batch(num_nodes, epochs, budget, per_start_noise, device)
    updates = _updates_per_epoch(num_nodes, batch_size, batch_size * per_start_noise)
    return batch_size, max(epochs, math.ceil(budget / updates))


def default_updates(dim: int = 64, lr: float = 0.01,
                    averaged_share: float = AVERAGED_SHARE) -> float:
    """Expected updates per row the default budget asks (train_node2vec's docstring)."""
    travel = TRAVEL * (INIT_NORM + FINAL_NORM) / (math.sqrt(dim) * lr)
    return travel / (1.0 - averaged_share)


def _auto_batch(num_nodes: int, epochs: int, budget: float, per_start_noise: int,
                device: torch.device) -> int:
    """The largest batch in the device's efficient range with which `epochs` epochs still
    give every row `budget` updates (the range's low end when none does)."""
    low, high = CUDA_BATCH if device.type == "cuda" else CPU_BATCH
    batch = int(min(max(num_nodes * epochs / max(budget, 1.0), low), high))
    while batch > low and epochs * _updates_per_epoch(
            num_nodes, batch, batch * per_start_noise) < budget:
        batch = max(low, int(batch * 0.9))
    return batch


def _updates_per_epoch(num_nodes: int, batch_size: int, negatives: int) -> float:
    """A lower bound on the expected SparseAdam updates of one row in one epoch."""
    steps = math.ceil(num_nodes / batch_size)
    hit = -math.expm1(negatives * math.log1p(-1.0 / num_nodes)) if num_nodes > 1 else 1.0
    return 1.0 + (steps - 1) * hit


class _Trainer:
    """The graph, the embeddings and SparseAdam's state on one device, and the epoch loop."""

    def __init__(self, edge_index, num_nodes, *, dim, walk_length, context_size,
                 walks_per_node, num_negative, p, q, lr, batch_size, seed, device, walk_cap,
                 on_fallback=None):
        self.num_nodes, self.dim, self.length = num_nodes, dim, walk_length
        self.windows = walk_length - context_size + 1
        self.walks_per_node, self.num_negative, self.p, self.q = walks_per_node, num_negative, p, q
        self.lr, self.batch_size, self.walk_cap = lr, batch_size, walk_cap
        self.device, self.fallback, self.steps = device, None, 0
        self.on_fallback = on_fallback
        self.seed = seed if seed is not None else torch.Generator().seed()  # global RNG untouched
        init = torch.Generator().manual_seed(self.seed)  # same start on every device
        self.weight = torch.randn(num_nodes, dim, generator=init).mul_(
            INIT_NORM / math.sqrt(dim))  # [N, dim]
        self.average = None  # [N, dim] sum of the averaged epochs' weights
        self.exp_avg = torch.zeros(num_nodes, dim)  # [N, dim]
        self.exp_avg_sq = torch.zeros(num_nodes, dim)  # [N, dim]
        self.rowptr, self.col = to_csr(edge_index, num_nodes)  # [N+1], [E']
        # band [windows, walk_length-1]: window i pairs node i with nodes i+1 .. i+context-1
        offset = torch.arange(walk_length - 1) - torch.arange(self.windows)[:, None]
        self.band = ((offset >= 0) & (offset < context_size - 1)).float()
        self.pairs = self.windows * (context_size - 1)  # positive pairs per walk
        # [E'] sorted row * N + col: neighbour tests of biased walks
        self.keys = None if p == q == 1.0 else edge_keys(self.rowptr, self.col)
        try:
            self._move(device, self.seed)
        except torch.OutOfMemoryError as exc:  # the graph and tables alone do not fit
            self._leave_for_cpu(f"out of memory on {device} placing the graph: {exc}")

    def _move(self, device: torch.device, seed: int) -> None:
        for name in ("weight", "exp_avg", "exp_avg_sq", "average", "rowptr", "col", "band",
                     "keys"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name).to(device))
        self.device = device
        # a GPU has no cache to fit: one block per half spares kernel launches
        self.chunk = WALK_CHUNK if device.type == "cpu" else 1 << 40
        self.generator = torch.Generator(device).manual_seed(seed)
        self.slot = torch.empty(self.num_nodes, dtype=torch.long, device=device)  # [N]

    def fit(self, epochs: int, average_after: int, on_epoch) -> Node2VecResult:
        """Trains `epochs` epochs; returns the mean of the weights at the ends of the epochs
        after `average_after` (the last weights when that is every epoch)."""
        clock, loss = time.perf_counter(), float("nan")
        every = max(1, epochs // 10)
        if epochs - average_after < 2:  # a mean of one epoch is its weights
            average_after = epochs
        for epoch in range(1, epochs + 1):
            loss = self._epoch()
            if epoch > average_after:
                self._accumulate()
            if epoch % every == 0 or epoch in (1, epochs):
                log.info("node2vec epoch %d/%d loss %.4f (%s, batch %d)", epoch, epochs, loss,
                         self.device, self.batch_size)
            if on_epoch is not None:
                on_epoch(epoch, epochs, loss)
        averaged = max(1, epochs - average_after)
        final = self.weight if self.average is None else self.average / averaged
        return Node2VecResult(embeddings=final.to("cpu", torch.float32), averaged=averaged,
                              device=str(self.device), epochs=epochs, steps=self.steps,
                              batch_size=self.batch_size,
                              seconds=time.perf_counter() - clock, loss=loss,
                              fallback=self.fallback)

    def _accumulate(self) -> None:
        if self.average is None:
            self.average = self.weight.clone()
        else:
            self.average.add_(self.weight)

    def _epoch(self) -> float:
        order = torch.randperm(self.num_nodes, generator=self.generator, device=self.device)
        total, steps, done = torch.zeros((), device=self.device), 0, 0
        while done < self.num_nodes:
            start = order[done:done + self.batch_size]
            try:
                total = total + self._step(start)
            except torch.OutOfMemoryError as exc:
                self._recover(exc)
                order = order.to(self.device)
                total = total.to(self.device)
                continue
            done, steps = done + start.numel(), steps + 1
        return float(total) / steps

    def _recover(self, exc: Exception) -> None:
        """Halve the batch; below MIN_OOM_BATCH leave CUDA for the CPU (or give up there)."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        if self.batch_size // 2 >= MIN_OOM_BATCH:
            self.batch_size //= 2
            log.warning("node2vec: out of memory on %s, batch halved to %d", self.device,
                        self.batch_size)
            return
        if self.device.type == "cpu" and self.walk_cap is None:
            raise Node2VecError(f"out of memory on the CPU even with batch "
                                f"{self.batch_size}: {exc}") from exc
        seed = int(torch.randint(2**62, (), generator=self.generator, device=self.device))
        self._leave_for_cpu(f"out of memory on {self.device} with batch {self.batch_size}",
                            seed)

    def _leave_for_cpu(self, reason: str, seed: int | None = None) -> None:
        self.fallback = f"{reason}; training continues on the CPU"
        log.warning("node2vec: %s", self.fallback)
        self.walk_cap = None  # the simulated limit belongs to the device given up
        self._move(torch.device("cpu"), self.seed if seed is None else seed)
        self.batch_size = CPU_BATCH[0]
        if self.on_fallback is not None:
            self.on_fallback(self.fallback)

    def _step(self, start: Tensor) -> Tensor:
        """One SparseAdam step on the walks from start [B]; returns the loss (a 0-d tensor)."""
        positive = random_walks(self.rowptr, self.col, start.repeat(self.walks_per_node),
                                self.length, self.p, self.q, self.generator,
                                self.keys)  # [S, L]
        negative = self._negative_walks(start.repeat(self.walks_per_node * self.num_negative))
        walks = torch.cat([positive, negative])  # [S + S', L]
        if self.walk_cap is not None and walks.size(0) > self.walk_cap:
            raise torch.OutOfMemoryError(f"simulated: {walks.size(0)} walks in one step")
        rows, inverse = self._touched(walks.flatten())  # [U], [(S + S') * L]
        slots = inverse.view(-1, self.length)  # [S + S', L]: walks as rows of table
        table = self.weight.index_select(0, rows)  # [U, dim]
        grad = torch.zeros_like(table)  # [U, dim]
        loss = torch.zeros((), device=self.device)
        halves = ((slots[:positive.size(0)], 1.0), (slots[positive.size(0):], -1.0))
        for half, sign in halves:
            weight = 1.0 / (half.size(0) * self.pairs)  # each half's loss is a mean
            for chunk in half.split(self.chunk):
                loss += self._window_pairs(table, chunk, sign, weight, grad)
        self._sparse_adam(rows, grad)
        return loss

    def _negative_walks(self, start: Tensor) -> Tensor:
        noise = torch.randint(self.num_nodes, (start.numel(), self.length - 1),
                              generator=self.generator, device=self.device)
        return torch.cat([start[:, None], noise], dim=1)  # [S', L]

    def _touched(self, nodes: Tensor) -> tuple[Tensor, Tensor]:
        """The distinct nodes [U] (sorted) and each entry's index into them: torch.unique
        without its sort, by marking a node-sized slot table."""
        marked = torch.zeros(self.num_nodes, dtype=torch.bool, device=self.device)
        marked[nodes] = True
        rows = marked.nonzero().flatten()
        self.slot[rows] = torch.arange(rows.numel(), device=self.device)
        return rows, self.slot.index_select(0, nodes)

    def _window_pairs(self, table: Tensor, slots: Tensor, sign: float, weight: float,
                      grad: Tensor) -> Tensor:
        """Skip-gram loss of every window pair of the walks slots [r, L] (indices into
        table [U, dim]), all positive (sign 1) or all negative (sign -1), times weight;
        adds its gradient into grad [U, dim]. Closed form, no autograd graph: two batched
        matrix products forward, two back."""
        # index_select: several times faster than table[slots] on the CPU
        h = table.index_select(0, slots.flatten()).view(-1, self.length, self.dim)  # [r, L, dim]
        centre, context = h[:, :self.windows], h[:, 1:]  # [r, W, dim], [r, L-1, dim]
        signed = torch.bmm(centre, context.transpose(1, 2))  # [r, W, L-1]
        if sign < 0:
            signed.neg_()
        loss = torch.nn.functional.softplus(-signed).mul_(self.band).sum() * weight
        dscore = torch.sigmoid(signed.neg_()).mul_(self.band * (-sign * weight))
        grad.index_add_(0, slots[:, :self.windows].flatten(),
                        torch.bmm(dscore, context).view(-1, self.dim))
        grad.index_add_(0, slots[:, 1:].flatten(),
                        torch.bmm(dscore.transpose(1, 2), centre).view(-1, self.dim))
        return loss

    def _sparse_adam(self, rows: Tensor, grad: Tensor) -> None:
        """torch.optim.SparseAdam's update of the rows [U] with their summed gradient
        [U, dim]; every new value is computed before any state is written, so an
        out-of-memory error leaves the state as it was."""
        self.steps += 1
        (beta1, beta2), step = BETAS, self.steps
        exp_avg = self.exp_avg.index_select(0, rows).lerp_(grad, 1 - beta1)
        exp_avg_sq = self.exp_avg_sq.index_select(0, rows).lerp_(grad * grad, 1 - beta2)
        step_size = self.lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
        delta = exp_avg.div(exp_avg_sq.sqrt().add_(EPS)).mul_(-step_size)
        self.exp_avg.index_copy_(0, rows, exp_avg)
        self.exp_avg_sq.index_copy_(0, rows, exp_avg_sq)
        self.weight.index_add_(0, rows, delta)


def read_edge_list(path: str | Path) -> tuple[list[str], Tensor]:
    """Names (in order of first appearance) and edge_index [2, E] of a `src<TAB>dst` file.

    Blank lines are skipped; any other line must be two non-empty names separated by one
    tab, or Node2VecError names the line.
    """
    ids: dict[str, int] = {}
    pairs: list[tuple[int, int]] = []
    with open(path, encoding="utf-8", newline="") as lines:
        for number, line in enumerate(lines, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 2 or not fields[0] or not fields[1]:
                raise Node2VecError(f"{path}:{number}: expected 'src<TAB>dst', got {line!r}")
            pairs.append(tuple(ids.setdefault(name, len(ids)) for name in fields))
    edge_index = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t().contiguous()
    return list(ids), edge_index
