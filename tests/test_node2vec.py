"""Node2Vec trainer: shapes on any graph, determinism, walk validity and bias, the
out-of-memory path, the command line, and a quality sanity check. CPU, seconds."""
from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from edge.__main__ import main
from edge.embed.node2vec import (Node2VecError, random_walks, read_edge_list, to_csr,
                                 train_node2vec)

TINY = dict(epochs=1, min_updates=0)  # one step: shapes, not learning


@pytest.fixture(autouse=True)
def one_thread():
    """These graphs are tiny: torch's parallel kernels only wait on each other here, and
    on a busy 2-core machine a step can take 100x longer with two threads than with one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def neighbours(edge_index, num_nodes) -> list[set[int]]:
    rowptr, col = to_csr(edge_index, num_nodes)
    return [set(col[rowptr[v]:rowptr[v + 1]].tolist()) for v in range(num_nodes)]


def assert_walks_follow_edges(walks, adjacency):
    for walk in walks.tolist():
        for here, there in zip(walk, walk[1:]):
            if adjacency[here]:
                assert there in adjacency[here], (walk, here, there)
            else:  # a node with no neighbours keeps the walk in place
                assert there == here, walk


edge_lists = st.integers(1, 12).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=30)))


@settings(max_examples=100, deadline=None)
@given(edge_lists)
def test_every_node_gets_one_64_dim_cpu_float_row(graph):
    num_nodes, pairs = graph  # self loops, duplicates, both directions, isolated nodes
    edge_index = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t()
    result = train_node2vec(edge_index, num_nodes, seed=0, **TINY)
    assert result.embeddings.shape == (num_nodes, 64)
    assert result.embeddings.dtype == torch.float32
    assert result.embeddings.device.type == "cpu" and result.device == "cpu"
    assert torch.isfinite(result.embeddings).all()
    assert result.epochs == 1 and result.steps == math.ceil(num_nodes / result.batch_size)


def test_csr_is_undirected_deduplicated_sorted_without_self_loops():
    edge_index = torch.tensor([[2, 0, 0, 1, 3, 2], [0, 2, 2, 1, 0, 3]])
    rowptr, col = to_csr(edge_index, 5)
    assert rowptr.tolist() == [0, 2, 2, 4, 6, 6]  # node 1 (self loop only) and 4: no neighbours
    assert col.tolist() == [2, 3, 0, 3, 0, 2]
    with pytest.raises(Node2VecError, match="outside"):
        to_csr(torch.tensor([[0], [5]]), 5)


def test_same_seed_same_embeddings_other_seed_others():
    edge_index = torch.randint(0, 40, (2, 120), generator=torch.Generator().manual_seed(1))
    run = lambda seed, **kw: train_node2vec(edge_index, 40, seed=seed, epochs=3, min_updates=0,
                                            **kw).embeddings
    assert torch.equal(run(7), run(7))
    assert torch.equal(run(7, p=0.5, q=2.0), run(7, p=0.5, q=2.0))
    assert not torch.equal(run(7), run(8))


@pytest.mark.parametrize("p,q", [(1.0, 1.0), (0.25, 4.0), (4.0, 0.25)])
def test_walks_follow_edges_or_stay_on_isolated_nodes(p, q):
    generator = torch.Generator().manual_seed(3)
    edge_index = torch.randint(0, 30, (2, 45), generator=generator)  # leaves some isolated
    adjacency = neighbours(edge_index, 35)
    assert any(not a for a in adjacency)
    rowptr, col = to_csr(edge_index, 35)
    start = torch.arange(35).repeat(20)
    walks = random_walks(rowptr, col, start, 20, p, q, generator)
    assert walks.shape == (700, 20) and torch.equal(walks[:, 0], start)
    assert_walks_follow_edges(walks, adjacency)


def test_biased_step_has_the_papers_probabilities():
    # 0-1, 0-2, 1-2, 1-3. Having come 0 -> 1, the next node is 0 (weight 1/p), 2 (a
    # neighbour of 0: weight 1) or 3 (farther from 0: weight 1/q).
    rowptr, col = to_csr(torch.tensor([[0, 0, 1, 1], [1, 2, 2, 3]]), 4)
    p, q = 0.5, 2.0
    walks = random_walks(rowptr, col, torch.zeros(40_000, dtype=torch.long), 3, p, q,
                         torch.Generator().manual_seed(0))
    via_1 = walks[walks[:, 1] == 1, 2]
    seen = torch.bincount(via_1, minlength=4).double() / via_1.numel()
    weights = torch.tensor([1 / p, 0.0, 1.0, 1 / q], dtype=torch.double)
    assert torch.allclose(seen, weights / weights.sum(), atol=0.02)


def torus(side: int) -> torch.Tensor:
    """A side x side grid wrapped around: degree 4, no triangles."""
    node = torch.arange(side * side).view(side, side)
    right, down = node.roll(1, 1), node.roll(1, 0)
    return torch.cat([torch.stack([node.flatten(), right.flatten()]),
                      torch.stack([node.flatten(), down.flatten()])], dim=1)


def step_frequencies(p: float, q: float) -> tuple[float, float]:
    """(returns to the node two steps back, steps to distance 2) of walks on a torus."""
    rowptr, col = to_csr(torus(12), 144)
    walks = random_walks(rowptr, col, torch.arange(144).repeat(30), 12, p, q,
                         torch.Generator().manual_seed(5))
    back = (walks[:, 2:] == walks[:, :-2]).double().mean().item()
    return back, 1.0 - back  # no triangles: every other step moves away


def test_p_and_q_move_return_and_outward_frequencies_the_right_way():
    uniform_back, uniform_out = step_frequencies(1.0, 1.0)
    assert uniform_back == pytest.approx(0.25, abs=0.02)  # 1 of 4 neighbours
    low_p_back, _ = step_frequencies(0.25, 1.0)  # returning weighs 4
    high_p_back, _ = step_frequencies(4.0, 1.0)
    assert low_p_back == pytest.approx(4 / 7, abs=0.03)
    assert high_p_back == pytest.approx(0.25 / 3.25, abs=0.02)
    _, low_q_out = step_frequencies(1.0, 0.25)  # moving outward weighs 4
    _, high_q_out = step_frequencies(1.0, 4.0)
    assert low_q_out > uniform_out > high_q_out
    assert low_q_out == pytest.approx(12 / 13, abs=0.02)


def test_out_of_memory_halves_the_batch_and_stays_when_that_suffices(caplog):
    edge_index = torus(8)
    fallbacks = []
    with caplog.at_level(logging.WARNING, "edge.embed.node2vec"):
        result = train_node2vec(edge_index, 64, seed=0, epochs=2, min_updates=0,
                                batch_size=64, simulate_oom_above=400,
                                on_fallback=fallbacks.append)
    # 64 starts x 10 walks x (1 positive + 1 negative) = 1280 walks > 400: 32, then 16 fit
    assert result.batch_size == 16 and result.steps == 2 * 4
    assert result.fallback is None and not fallbacks
    assert "batch halved to 16" in caplog.text


def test_out_of_memory_below_the_floor_moves_training_to_the_cpu(caplog):
    fallbacks, epochs = [], []
    with caplog.at_level(logging.WARNING, "edge.embed.node2vec"):
        result = train_node2vec(torus(8), 64, seed=0, epochs=3, min_updates=0, batch_size=64,
                                simulate_oom_above=100, on_fallback=fallbacks.append,
                                on_epoch=lambda *args: epochs.append(args))
    # 8 starts are 160 walks > 100 and 4 is below the floor: give the device up
    assert fallbacks == [result.fallback] and "continues on the CPU" in result.fallback
    assert result.device == "cpu" and result.embeddings.shape == (64, 64)
    assert [e[:2] for e in epochs] == [(1, 3), (2, 3), (3, 3)]
    assert all(math.isfinite(e[2]) for e in epochs)
    assert "continues on the CPU" in caplog.text


def test_small_graphs_get_the_updates_they_need_large_enough_budgets_run_as_asked():
    edge_index = torus(5)
    # travel 10 * (start norm 1 + end norm 1.6) / (sqrt(64) * lr 0.1) = 32.5 updates, twice
    # that with the averaged half of the epochs
    result = train_node2vec(edge_index, 25, seed=0, epochs=2, lr=0.1)
    assert result.epochs == 65 and result.steps == 65  # one step of 25 starts per epoch
    assert result.averaged == 32  # int(65 * 0.5)
    last_only = train_node2vec(edge_index, 25, seed=0, epochs=2, lr=0.1, averaged_share=0)
    assert last_only.epochs == 33 and last_only.averaged == 1
    assert train_node2vec(edge_index, 25, seed=0, epochs=2, min_updates=0).epochs == 2


@pytest.mark.parametrize("dim", [16, 64, 256])
def test_rows_start_near_unit_norm_whatever_the_dimension(dim):
    # lr 1e-9: one step leaves the start as it was; N(0, 1/dim) rows have norm ~1, so the
    # first logits are ~N(0, 1/dim), far from saturating the sigmoid
    start = train_node2vec(torus(6), 36, dim=dim, lr=1e-9, seed=0, **TINY).embeddings
    assert start.norm(dim=1).mean().item() == pytest.approx(1.0, abs=0.1)
    logits = start @ start.t()
    assert logits[~torch.eye(36, dtype=torch.bool)].std().item() == pytest.approx(
        dim ** -0.5, rel=0.25)


def test_result_is_the_mean_of_the_last_epochs_weights():
    run = lambda epochs, share: train_node2vec(torus(5), 25, seed=4, epochs=epochs,
                                               min_updates=0, averaged_share=share)
    third, fourth = run(3, 0.0).embeddings, run(4, 0.0).embeddings  # one trajectory
    averaged = run(4, 0.5)
    assert averaged.averaged == 2 and not torch.equal(third, fourth)
    assert torch.allclose(averaged.embeddings, (third + fourth) / 2, atol=1e-6)
    assert torch.equal(run(4, 0.4).embeddings, fourth)  # int(4 * 0.4) = 1 epoch: its weights


def test_progress_is_reported_every_epoch():
    seen = []
    train_node2vec(torus(4), 16, seed=0, epochs=4, min_updates=0,
                   on_epoch=lambda *args: seen.append(args))
    assert [s[:2] for s in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert seen[-1][2] < seen[0][2] * 1.5 and all(s[2] > 0 for s in seen)


def test_two_disconnected_cliques_embed_apart():
    clique = [(a, b) for a in range(8) for b in range(a + 1, 8)]
    pairs = clique + [(a + 8, b + 8) for a, b in clique]
    edge_index = torch.tensor(pairs).t()
    z = torch.nn.functional.normalize(train_node2vec(edge_index, 16, seed=0).embeddings, dim=1)
    cosine = z @ z.t()
    same = torch.arange(16)[:, None] // 8 == torch.arange(16)[None, :] // 8
    off_diagonal = ~torch.eye(16, dtype=torch.bool)
    within, across = cosine[same & off_diagonal], cosine[~same]
    assert within.min() > across.max()
    assert within.mean() - across.mean() > 0.5


def test_bad_arguments_are_refused():
    with pytest.raises(Node2VecError, match="context_size"):
        train_node2vec(torus(3), 9, walk_length=5, context_size=10)
    with pytest.raises(Node2VecError, match="positive"):
        train_node2vec(torus(3), 9, p=0)
    with pytest.raises(Node2VecError, match="averaged_share"):
        train_node2vec(torus(3), 9, averaged_share=1.0)
    if not torch.cuda.is_available():
        with pytest.raises(Node2VecError, match="CUDA"):
            train_node2vec(torus(3), 9, device="cuda")


def test_edge_list_names_in_order_of_appearance(tmp_path):
    path = tmp_path / "edges.tsv"
    path.write_text("src/a.py\tsrc/b c.py\n\nsrc/b c.py\tπ.ts\r\nsrc/a.py\tπ.ts\n",
                    encoding="utf-8")
    names, edge_index = read_edge_list(path)
    assert names == ["src/a.py", "src/b c.py", "π.ts"]
    assert edge_index.tolist() == [[0, 1, 0], [1, 2, 2]]


@pytest.mark.parametrize("line", ["lonely", "a\tb\tc", "\tb", "a\t"])
def test_a_bad_edge_line_is_named(tmp_path, line):
    path = tmp_path / "edges.tsv"
    path.write_text(f"a\tb\n{line}\n")
    with pytest.raises(Node2VecError, match=r"edges.tsv:2: expected"):
        read_edge_list(path)


def test_command_line_round_trip(tmp_path, capsys):
    edges = tmp_path / "graph.tsv"
    edges.write_text("".join(f"n{i}\tn{(i + 1) % 12}\n" for i in range(12)) + "x y\tn0\n")
    out = tmp_path / "out.bin"
    assert main(["node2vec", str(edges), str(out), "--epochs", "2", "--seed", "3",
                 "--device", "cpu", "--p", "0.5", "--q", "2", "--min-updates", "0"]) == 0
    saved = np.load(out)  # written under the exact name given
    assert saved["nodes"].tolist() == [f"n{i}" for i in range(12)] + ["x y"]
    assert saved["embeddings"].dtype == np.float32 and saved["embeddings"].shape == (13, 64)
    names, edge_index = read_edge_list(edges)
    again = train_node2vec(edge_index, 13, epochs=2, seed=3, p=0.5, q=2.0,
                           min_updates=0).embeddings
    assert np.array_equal(saved["embeddings"], again.numpy())
    assert '"device": "cpu"' in capsys.readouterr().out


def test_command_line_names_the_bad_line(tmp_path, capsys):
    edges = tmp_path / "graph.tsv"
    edges.write_text("a\tb\nb c\n")
    assert main(["node2vec", str(edges), str(tmp_path / "out.npz")]) == 2
    assert "graph.tsv:2: expected 'src<TAB>dst', got 'b c'" in capsys.readouterr().err
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="needs a CUDA device; torch.cuda.is_available() is False here")
def test_cuda_smoke():
    generator = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, 5000, (2, 25_000), generator=generator)
    result = train_node2vec(edge_index, 5000, seed=0, epochs=2, min_updates=0, p=0.5, q=2.0)
    assert result.device.startswith("cuda") and result.fallback is None
    assert result.embeddings.device.type == "cpu" and result.embeddings.shape == (5000, 64)
    assert torch.isfinite(result.embeddings).all()
    rowptr, col = to_csr(edge_index, 5000, "cuda")
    walks = random_walks(rowptr, col, torch.arange(5000, device="cuda"), 20, 0.5, 2.0)
    assert_walks_follow_edges(walks[:300].cpu(), neighbours(edge_index, 5000))
    print(f"cuda smoke: {result.steps} steps in {result.seconds:.2f} s, batch "
          f"{result.batch_size}, loss {result.loss:.3f}")


def test_small_graphs_train_on_one_cpu_thread_and_restore_the_count():
    torch.set_num_threads(2)
    seen = []
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 3]])
    train_node2vec(edge_index, 4, **TINY, seed=0,
                   on_epoch=lambda *_: seen.append(torch.get_num_threads()))
    assert seen == [1] and torch.get_num_threads() == 2
