"""Node2Vec: link-prediction quality and training speed next to PyG's Node2Vec, same run.

    bench/setup_pyg.sh                                  # once: PyG 2.6.1 + torch-cluster in bench/.venv-pyg
    .venv/bin/python bench/node2vec_bench.py quality [GRAPH ...] [--seeds 0 1 2] [--json OUT]
    .venv/bin/python bench/node2vec_bench.py speed [GRAPH ...] [--threads 1 2] [--json OUT]
    .venv/bin/python bench/node2vec_bench.py speed ba10k ba100k ba1m --device cuda   # on a GPU

GRAPH: a corpus of bench/corpora.py (the file import graph of its measured folders, as
bench/speed.py copies them, from `python -m edge analyze DIR --edges`, cached in
bench/corpora/_edges/) or baN / baNk / baNm, a seeded
preferential-attachment (Barabasi-Albert) graph of N nodes, 5 edges per new node.

quality: hide 10% of the undirected edges (seeded), train on the rest, score the hidden
edges and as many random non-edges (pairs that are no edge of the whole graph) by the dot
product of their embeddings (the model's own link logit; cosine too), ROC-AUC with ties
averaged. Next to it, the degree-product heuristic on the training degrees and PyG's
Node2Vec at its defaults (10 epochs, batch 128; `--pyg-epochs` for more) on the same
split. Ours runs with its defaults, the work budget included (`--min-updates` sweeps that
floor instead); `--variants` adds other training choices on the same split (VARIANTS).

speed: one training epoch at the issue's hyperparameters (64 dims, walk 20, context 10,
10 walks per node, 1 negative, p = q = 1, SparseAdam lr 0.01), with torch.set_num_threads
T in each process. PyG runs its own example loop (loader(batch_size=128, shuffle=True),
loss, backward, SparseAdam) in bench/.venv-pyg; an epoch of more than --pyg-steps steps is
timed over its first --pyg-steps steps and scaled to the whole epoch (steps are alike:
same batch size, uniformly shuffled starts). Ours runs a whole epoch (after one warm-up
epoch) at batch 128 and at its automatic batch. Throughput is positive pairs per second:
N * walks_per_node * (walk_length - context_size + 1) * (context_size - 1) per epoch.
With --device cuda, PyG's pipeline (walks on the CPU in the DataLoader, loss and
SparseAdam on the GPU) is re-created in this process (`pyg_pipeline_epoch`), with PyG's
random walk when torch-cluster imports and ours on the CPU otherwise.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYG_PYTHON = BENCH / ".venv-pyg" / "bin" / "python"
EDGES_CACHE = BENCH / "corpora" / "_edges"
HYPER = dict(dim=64, walk_length=20, context_size=10, walks_per_node=10, num_negative=1)
PEAK_GBS = {"H200": 4800.0, "H100 PCIe": 2000.0, "H100": 3350.0, "A100": 2039.0}


# ---------------------------------------------------------------- graphs

def power_law_graph(num_nodes: int, per_node: int = 5, seed: int = 0) -> np.ndarray:
    """Linear preferential attachment: node t links to `per_node` endpoints drawn uniformly
    from the edge list of nodes < t (so in proportion to degree). Vectorised: every draw is
    an edge-list slot; a slot holding a target is resolved by pointer jumping. [2, E]."""
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(1, num_nodes, dtype=np.int64), per_node)  # [E]
    edges = src.size
    earlier = 2 * per_node * (src - 1)  # slots (2 per edge) of the edges of nodes < t
    slot = np.floor(rng.random(edges) * earlier).astype(np.int64)  # [E]
    dst = np.zeros(edges, dtype=np.int64)  # node 1 links to node 0
    resolved = earlier == 0
    while not resolved.all():
        pending = np.flatnonzero(~resolved)
        s = slot[pending]
        own = s % 2 == 0  # a source slot: the node that added that edge
        dst[pending[own]] = src[s[own] // 2]
        resolved[pending[own]] = True
        pending, earlier_edge = pending[~own], s[~own] // 2  # a target slot: that edge's dst
        known = resolved[earlier_edge]
        dst[pending[known]] = dst[earlier_edge[known]]
        resolved[pending[known]] = True
        slot[pending[~known]] = slot[earlier_edge[~known]]  # jump to that edge's own draw
    return np.stack([src, dst])


def load_graph(name: str) -> tuple[int, np.ndarray]:
    """(num_nodes, edge_index [2, E]) of a corpus's import graph or a baN graph."""
    match = re.fullmatch(r"ba(\d+)([km]?)", name)
    if match:
        n = int(match.group(1)) * {"": 1, "k": 1000, "m": 1_000_000}[match.group(2)]
        return n, power_law_graph(n)
    path = EDGES_CACHE / f"{name}.tsv"
    if not path.exists():  # the corpus's measured folders, as bench/speed.py times them
        sys.path.insert(0, str(BENCH))
        from corpora import BY_NAME
        from speed import speed_tree

        if name not in BY_NAME:
            sys.exit(f"{name}: neither a corpus of bench/corpora.py nor a baN graph")
        tree = speed_tree(BY_NAME[name]).root
        EDGES_CACHE.mkdir(parents=True, exist_ok=True)
        edges = subprocess.run([sys.executable, "-m", "edge", "analyze", str(tree), "--edges"],
                               cwd=ROOT, check=True, capture_output=True, text=True).stdout
        path.write_text(edges)
    sys.path.insert(0, str(ROOT))
    from edge.embed.node2vec import read_edge_list

    names, edge_index = read_edge_list(path)
    return len(names), edge_index.numpy()


def undirected_pairs(edge_index: np.ndarray) -> np.ndarray:
    """Distinct {u, v} pairs, u < v, no self loops: [M, 2]."""
    pairs = np.sort(edge_index.T, axis=1)
    return np.unique(pairs[pairs[:, 0] != pairs[:, 1]], axis=0)


# ---------------------------------------------------------------- quality

def degree_negative_walks(self, start):
    """_Trainer._negative_walks with word2vec's noise: nodes drawn in proportion to
    degree^0.75 (inverse CDF on the device) instead of uniformly."""
    if getattr(self, "_noise_device", None) != self.device:
        weight = self.rowptr.diff().double().pow(0.75)
        self._noise_cdf = (weight.cumsum(0) / weight.sum()).float()
        self._noise_device = self.device
    draw = torch.rand(start.numel(), self.length - 1, generator=self.generator,
                      device=self.device)
    noise = torch.searchsorted(self._noise_cdf, draw, right=True).clamp_max_(self.num_nodes - 1)
    return torch.cat([start[:, None], noise], dim=1)


# name: (module attributes to set while it trains, train_node2vec keywords)
VARIANTS = {
    # the defaults before 2026-11-21: N(0, 1) rows, the last weights, 1000 updates per row
    "before": ({"INIT_NORM": math.sqrt(HYPER["dim"])}, {"averaged_share": 0.0,
                                                        "min_updates": 1000}),
    # N(0, 1/dim) rows, the last weights, the budget's travel part only (325 updates)
    "small-init": ({}, {"averaged_share": 0.0}),
    # the defaults with negatives drawn from degree^0.75
    "degree-negatives": ({"_Trainer._negative_walks": degree_negative_walks}, {}),
}


def train_variant(name: str | None, *args, **kwargs):
    """train_node2vec(*args, **kwargs) under VARIANTS[name] (None: the defaults)."""
    import edge.embed.node2vec as module

    patches, extra = VARIANTS[name] if name else ({}, {})
    saved = {}
    for path, value in patches.items():
        owner, attr = module, path
        if "." in path:
            owner_name, attr = path.split(".")
            owner = getattr(module, owner_name)
        saved[path] = (owner, attr, getattr(owner, attr))
        setattr(owner, attr, value)
    try:
        return module.train_node2vec(*args, **{**kwargs, **extra})
    finally:
        for owner, attr, value in saved.values():
            setattr(owner, attr, value)


def split_edges(num_nodes: int, pairs: np.ndarray, seed: int):
    """(train pairs, held-out pairs, as many random non-edges of the whole graph)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pairs))
    held = max(1, len(pairs) // 10)
    test, train = pairs[order[:held]], pairs[order[held:]]
    known = set((pairs[:, 0] * num_nodes + pairs[:, 1]).tolist())
    negatives: list[tuple[int, int]] = []
    while len(negatives) < held:
        u, v = rng.integers(num_nodes, size=2)
        if u != v and min(u, v) * num_nodes + max(u, v) not in known:
            negatives.append((min(u, v), max(u, v)))
    return train, test, np.array(negatives)


def roc_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Mann-Whitney ROC-AUC, ties counted half."""
    scores = np.concatenate([positive, negative])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def link_auc(embeddings: np.ndarray, test: np.ndarray, negatives: np.ndarray) -> dict:
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    out = {}
    for name, table in (("dot", embeddings), ("cosine", unit)):
        score = lambda pairs: np.einsum("ij,ij->i", table[pairs[:, 0]], table[pairs[:, 1]])
        out[name] = roc_auc(score(test), score(negatives))
    return out


def degree_auc(num_nodes: int, train: np.ndarray, test: np.ndarray, negatives: np.ndarray):
    degree = np.bincount(train.ravel(), minlength=num_nodes).astype(np.float64)
    score = lambda pairs: degree[pairs[:, 0]] * degree[pairs[:, 1]]
    return roc_auc(score(test), score(negatives))


def both_ways(pairs: np.ndarray) -> np.ndarray:
    return np.concatenate([pairs.T, pairs.T[::-1]], axis=1)


def quality(args) -> dict:
    sys.path.insert(0, str(ROOT))
    torch.set_num_threads(args.threads)
    rows = []
    for graph in args.graphs:
        num_nodes, edge_index = load_graph(graph)
        pairs = undirected_pairs(edge_index)
        for seed in args.seeds:
            train, test, negatives = split_edges(num_nodes, pairs, seed)
            row = {"graph": graph, "seed": seed, "nodes": num_nodes, "edges": len(pairs),
                   "held_out": len(test),
                   "degree_product": degree_auc(num_nodes, train, test, negatives)}
            runs = [(None, budget) for budget in args.min_updates]
            runs += [(variant, None) for variant in args.variants]
            for variant, budget in runs:
                options = {} if budget is None else {"min_updates": budget}
                result = train_variant(variant, torch.from_numpy(train.T.copy()), num_nodes,
                                       seed=seed, device=args.device, **options)
                auc = link_auc(result.embeddings.numpy(), test, negatives)
                key = (f"ours_{variant}" if variant else
                       "ours" if budget is None else f"ours_u{budget:g}")
                row[key] = {**auc, "epochs": result.epochs, "steps": result.steps,
                            "batch": result.batch_size, "averaged": result.averaged,
                            "seconds": round(result.seconds, 2)}
            if args.pyg:
                emb, seconds = run_pyg_train(num_nodes, both_ways(train), seed, args.pyg_epochs,
                                             args.threads)
                row["pyg"] = {**link_auc(emb, test, negatives), "epochs": args.pyg_epochs,
                              "seconds": round(seconds, 2)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"rows": rows}


# ---------------------------------------------------------------- PyG, in its own venv

def run_pyg(mode: str, num_nodes: int, edge_index: np.ndarray, **options) -> dict:
    if not PYG_PYTHON.exists():
        sys.exit("bench/.venv-pyg is missing: run bench/setup_pyg.sh")
    with tempfile.TemporaryDirectory() as tmp:
        graph = Path(tmp) / "graph.npz"
        np.savez(graph, edge_index=edge_index, num_nodes=num_nodes)
        command = [str(PYG_PYTHON), __file__, "pyg-worker", mode, str(graph), Path(tmp).as_posix()]
        for key, value in options.items():
            command += [f"--{key.replace('_', '-')}", str(value)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        report = json.loads(done.stdout.strip().splitlines()[-1])
        if mode == "train":
            report["embeddings"] = np.load(Path(tmp) / "embeddings.npy")
        return report


def run_pyg_train(num_nodes, edge_index, seed, epochs, threads):
    report = run_pyg("train", num_nodes, edge_index, seed=seed, epochs=epochs, threads=threads)
    return report["embeddings"], report["seconds"]


def pyg_worker(argv: list[str]) -> None:
    """Runs under bench/.venv-pyg: PyG's own Node2Vec example loop; JSON on the last line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("train", "time"))
    parser.add_argument("graph")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=0, help="time: stop after this many steps")
    args = parser.parse_args(argv)
    from torch_geometric.nn import Node2Vec

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = np.load(args.graph)
    num_nodes = int(data["num_nodes"])
    model = Node2Vec(torch.from_numpy(data["edge_index"]), embedding_dim=HYPER["dim"],
                     walk_length=HYPER["walk_length"], context_size=HYPER["context_size"],
                     walks_per_node=HYPER["walks_per_node"],
                     num_negative_samples=HYPER["num_negative"], num_nodes=num_nodes, sparse=True)
    loader = model.loader(batch_size=128, shuffle=True, num_workers=0)
    optimizer = torch.optim.SparseAdam(list(model.parameters()), lr=0.01)
    epochs = args.epochs if args.mode == "train" else 1
    sample_s = step_s = 0.0
    steps = 0
    clock = time.perf_counter()
    for _ in range(epochs):
        batches = iter(loader)
        while True:
            tick = time.perf_counter()
            try:
                pos_rw, neg_rw = next(batches)
            except StopIteration:
                break
            tock = time.perf_counter()
            optimizer.zero_grad()
            loss = model.loss(pos_rw, neg_rw)
            loss.backward()
            optimizer.step()
            sample_s += tock - tick
            step_s += time.perf_counter() - tock
            steps += 1
            if args.mode == "time" and steps == args.steps:
                break
    seconds = time.perf_counter() - clock
    if args.mode == "train":
        np.save(Path(args.out) / "embeddings.npy", model.embedding.weight.detach().numpy())
    print(json.dumps({"seconds": seconds, "steps": steps, "epoch_steps": len(loader),
                      "sample_s": sample_s, "step_s": step_s, "loss": float(loss)}))


# ---------------------------------------------------------------- speed

def pairs_per_epoch(num_nodes: int) -> int:
    windows = HYPER["walk_length"] - HYPER["context_size"] + 1
    return num_nodes * HYPER["walks_per_node"] * windows * (HYPER["context_size"] - 1)


def our_epoch(num_nodes, edge_index, batch_size, device, repeats=1) -> dict:
    """Seconds of one epoch of ours after a warm-up epoch (best of `repeats`); batch None:
    the batch its default training would use (plan_training)."""
    from edge.embed.node2vec import plan_training, train_node2vec

    planned_batch, planned_epochs = plan_training(num_nodes, device)
    batch_size = batch_size or planned_batch
    times = []
    result = None
    for _ in range(repeats):
        sync(device)
        result = train_node2vec(torch.from_numpy(edge_index), num_nodes, epochs=2,
                                min_updates=0, batch_size=batch_size, seed=0, device=device,
                                on_epoch=lambda e, n, loss: times.append(time.perf_counter()))
    per_epoch = min(b - a for a, b in zip(times[0::2], times[1::2]))
    return {"epoch_s": per_epoch, "batch": result.batch_size, "default_epochs": planned_epochs,
            "pairs_per_s": pairs_per_epoch(num_nodes) / per_epoch, "device": result.device}


def sync(device) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def pyg_epoch(num_nodes, edge_index, threads, max_steps) -> dict:
    report = run_pyg("time", num_nodes, both_ways(undirected_pairs(edge_index)),
                     threads=threads, steps=max_steps)
    scale = report["epoch_steps"] / report["steps"]
    epoch = report["seconds"] * scale
    return {"epoch_s": epoch, "measured_steps": report["steps"],
            "epoch_steps": report["epoch_steps"],
            "sample_share": report["sample_s"] / (report["sample_s"] + report["step_s"]),
            "pairs_per_s": pairs_per_epoch(num_nodes) / epoch}


def pyg_pipeline_epoch(num_nodes, edge_index, device, max_steps) -> dict:
    """PyG's Node2Vec training path re-created on `device`: the loader samples walks on the
    CPU (torch-cluster's random_walk when it imports, ours on the CPU otherwise), then
    Embedding(sparse=True) + PyG's loss + SparseAdam on the device."""
    sys.path.insert(0, str(ROOT))
    from edge.embed.node2vec import random_walks, to_csr

    rowptr, col = to_csr(torch.from_numpy(edge_index), num_nodes)
    try:
        import torch_cluster  # noqa: F401

        walker = "torch-cluster"
        walk = lambda start: torch.ops.torch_cluster.random_walk(
            rowptr, col, start, HYPER["walk_length"] - 1, 1.0, 1.0)[0]
    except ImportError:
        walker = "ours on the CPU"
        walk = lambda start: random_walks(rowptr, col, start, HYPER["walk_length"])
    length, context = HYPER["walk_length"], HYPER["context_size"]

    def windows(rw):
        return torch.cat([rw[:, j:j + context] for j in range(length - context + 1)])

    def sample(batch):
        batch = torch.tensor(batch).repeat(HYPER["walks_per_node"])
        noise = torch.randint(num_nodes, (batch.numel(), length - 1))
        return windows(walk(batch)), windows(torch.cat([batch[:, None], noise], 1))

    embedding = torch.nn.Embedding(num_nodes, HYPER["dim"], sparse=True).to(device)
    optimizer = torch.optim.SparseAdam(list(embedding.parameters()), lr=0.01)

    def loss_of(rw, sign):
        start, rest = rw[:, 0], rw[:, 1:].contiguous()
        h_start = embedding(start).view(rw.size(0), 1, -1)
        h_rest = embedding(rest.view(-1)).view(rw.size(0), -1, HYPER["dim"])
        out = (h_start * h_rest).sum(dim=-1).view(-1)
        return -torch.log(torch.sigmoid(sign * out) + 1e-15).mean()

    loader = torch.utils.data.DataLoader(range(num_nodes), batch_size=128, shuffle=True,
                                         collate_fn=sample)
    sync(device)
    clock, steps = time.perf_counter(), 0
    for pos_rw, neg_rw in loader:
        optimizer.zero_grad()
        loss = loss_of(pos_rw.to(device), 1.0) + loss_of(neg_rw.to(device), -1.0)
        loss.backward()
        optimizer.step()
        steps += 1
        if steps == max_steps:
            break
    sync(device)
    epoch = (time.perf_counter() - clock) * len(loader) / steps
    return {"epoch_s": epoch, "measured_steps": steps, "epoch_steps": len(loader),
            "walker": walker, "pairs_per_s": pairs_per_epoch(num_nodes) / epoch}


def bandwidth(num_nodes: int, epoch_s: float, device) -> dict:
    """The issue's bound: a positive or negative pair reads two 256-byte rows and writes two
    gradient rows (1 KiB); SparseAdam's state adds ~4.5x. Against the GPU's peak."""
    name = torch.cuda.get_device_name(device)
    peak = next((gbs for key, gbs in PEAK_GBS.items() if key in name), None)
    pair_bytes = 4 * HYPER["dim"] * 4
    total = 2 * pairs_per_epoch(num_nodes) * pair_bytes
    out = {"gpu": name, "bytes_per_epoch_naive": total,
           "effective_gbs": total / epoch_s / 1e9}
    if peak:
        out.update(peak_gbs=peak, bound_s=total / (peak * 1e9),
                   fraction_of_bound=total / (peak * 1e9) / epoch_s)
    return out


def speed(args) -> dict:
    sys.path.insert(0, str(ROOT))
    rows = []
    for graph in args.graphs:
        num_nodes, edge_index = load_graph(graph)
        edge_index = np.ascontiguousarray(edge_index)
        for threads in args.threads:
            torch.set_num_threads(threads)
            row = {"graph": graph, "nodes": num_nodes, "threads": threads,
                   "pairs_per_epoch": pairs_per_epoch(num_nodes)}
            if args.device == "cuda":
                row["ours"] = our_epoch(num_nodes, edge_index, None, "cuda", args.repeats)
                row["ours"].update(bandwidth(num_nodes, row["ours"]["epoch_s"], "cuda"))
                row["pyg_pipeline_gpu"] = pyg_pipeline_epoch(num_nodes, edge_index, "cuda",
                                                             args.pyg_steps)
                row["ratio"] = row["ours"]["pairs_per_s"] / row["pyg_pipeline_gpu"]["pairs_per_s"]
            else:
                if args.pyg:
                    row["pyg"] = pyg_epoch(num_nodes, edge_index, threads, args.pyg_steps)
                row["ours_b128"] = our_epoch(num_nodes, edge_index, 128, "cpu", args.repeats)
                row["ours_auto"] = our_epoch(num_nodes, edge_index, None, "cpu", args.repeats)
                if args.pyg:
                    for key in ("ours_b128", "ours_auto"):
                        row[f"ratio_{key}"] = row[key]["pairs_per_s"] / row["pyg"]["pairs_per_s"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"rows": rows}


# ---------------------------------------------------------------- main

def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    info = {"date": date.today().isoformat(), "cpu": cpu, "cores": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "pyg-worker":
        return pyg_worker(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    q = commands.add_parser("quality")
    q.add_argument("graphs", nargs="*",
                   default=["django", "sqlalchemy", "sympy", "pip", "rxjs", "webpack", "three"])
    q.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    q.add_argument("--min-updates", type=float, nargs="+", default=[None],
                   help="sweep the work budget's floor instead of the default")
    q.add_argument("--variants", nargs="+", default=[], choices=sorted(VARIANTS),
                   help="also train these variants of ours on every split")
    q.add_argument("--pyg-epochs", type=int, default=10)
    s = commands.add_parser("speed")
    s.add_argument("graphs", nargs="*", default=["django", "ba10k", "ba100k"])
    s.add_argument("--pyg-steps", type=int, default=100,
                   help="time PyG over at most this many steps, scaled to its epoch")
    s.add_argument("--repeats", type=int, default=1, help="our epochs: best of this many runs")
    for sub in (q, s):
        sub.add_argument("--threads", type=int, nargs="+" if sub is s else None,
                         default=[1, 2] if sub is s else 2)
        sub.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
        sub.add_argument("--no-pyg", dest="pyg", action="store_false")
        sub.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = {"machine": machine(), "command": " ".join([Path(sys.executable).name] + sys.argv)}
    report.update(quality(args) if args.command == "quality" else speed(args))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
