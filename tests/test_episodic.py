"""Episodic recall (memrl.memory.episodic): the store, the kernel read, the epLSTM, schedules, persistence."""

from __future__ import annotations

import _thread
import dataclasses
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import build_model

from memrl.config import ConfigError, EnvConfig, PPOConfig, TaskConfig, load_config
from memrl.memory.base import reset_state
from memrl.memory.episodic import (
    EpisodicMemory,
    EpisodicStore,
    EpLSTMCore,
    Recall,
    _block_min,
    _search_pool,
    kernel_read,
)
from memrl.tasks import TaskSampler, task_key
from memrl.tasks.vec import make_sampler

BARCODE = EnvConfig(
    id="memrl/BarcodeBandit-v0",
    kwargs={"n_arms": 4, "barcode_bits": 8},
    episodes_per_trial=4,
    num_envs=4,
)
RECURRING = TaskConfig(schedule="recurring", recurring_tasks=2, recurring_repeats=3, num_test_tasks=20)


def episodic(**overrides: object) -> dict:
    base = {"mode": "reinstate", "key_size": 8, "neighbors": 2, "capacity": 50, "write_at": "trial"}
    return {**base, **overrides}


def make_store(capacity: int = 8, num_stores: int = 1, neighbors: int = 1, key_size: int = 4) -> EpisodicStore:
    return EpisodicStore(num_stores=num_stores, capacity=capacity, key_size=key_size, value_size=3, neighbors=neighbors)


# -- the store -------------------------------------------------------------------------------


@pytest.mark.parametrize("capacity", [64, 20_000], ids=["float32-search", "bfloat16-blocked-search"])
def test_nearest_key_returns_its_own_value(capacity: int) -> None:
    """Looking up a stored key finds that entry first, and kernel_read returns (almost only) its value."""
    torch.manual_seed(0)
    store = make_store(capacity=capacity, neighbors=4, key_size=16)
    keys, values = torch.randn(50, 16), torch.randn(50, 3)
    store.write(keys, values, torch.zeros(50, dtype=torch.long))
    recall = store.lookup(keys[:10])
    stored_slot = {tuple(store.keys[0, i].tolist()): i for i in range(store.capacity) if store.last_used[0, i] >= 0}
    for q in range(10):
        assert recall.slots[q, 0] == stored_slot[tuple(keys[q].tolist())]
        assert torch.equal(recall.values[q, 0], values[q])
    read = kernel_read(keys[:10], recall, delta=1e-6)
    torch.testing.assert_close(read, values[:10], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("num_queries", [1, 5, 32, 37, 100])
def test_large_store_lookup_matches_exact_search(num_queries: int, threads: int) -> None:
    """The two-stage bfloat16 search of a large store finds the exact k nearest neighbours of random
    queries, in order, for query counts that split into padded parts on one to three threads (20,000
    slots: the last of the 40 super-blocks of 512 entries is part empty)."""
    torch.manual_seed(1)
    store = make_store(capacity=20_000, neighbors=4, key_size=32)
    keys = torch.randn(20_000, 32)
    store.write(keys, torch.zeros(20_000, 3), torch.zeros(20_000, dtype=torch.long))
    queries = torch.randn(num_queries, 32)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        recall = store.lookup(queries, touch=False)
    finally:
        torch.set_num_threads(previous)
    distances = (queries.double().unsqueeze(1) - store.keys[0].double().unsqueeze(0)).pow(2).sum(-1)  # (Q, C)
    exact = distances.topk(4, dim=1, largest=False).indices
    assert torch.equal(recall.slots, exact)


@pytest.mark.parametrize("keys_of", ["saturated-encoder", "cluster-off-origin"])
def test_large_store_lookup_is_exact_where_bfloat16_cannot_separate_the_keys(keys_of: str) -> None:
    """Keys of a partly saturated tanh encoder of a 4-d task space, or a tight cluster far from the origin: their
    neighbours are closer together than bfloat16 resolves, so the certificate sends queries to a second search."""
    torch.manual_seed(5)
    if keys_of == "saturated-encoder":
        encoder = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh())
        with torch.no_grad():
            encoder[0].weight.mul_(3)
            keys, queries = encoder(torch.rand(30_000, 4)), encoder(torch.rand(40, 4))
    else:
        keys = 0.9 + 0.05 * torch.randn(30_000, 32)
        queries = keys[:40] + 0.001 * torch.randn(40, 32)
    store = make_store(capacity=30_000, neighbors=4, key_size=32)
    store.write(keys, torch.zeros(30_000, 3), torch.zeros(30_000, dtype=torch.long))
    recall = store.lookup(queries, touch=False)
    distances = (queries.double().unsqueeze(1) - store.keys[0].double().unsqueeze(0)).pow(2).sum(-1)
    torch.testing.assert_close(distances.gather(1, recall.slots), distances.topk(4, dim=1, largest=False).values)


def test_large_store_finds_entries_of_its_last_half_block() -> None:
    """The search ranks blocks of 64 entries; a capacity of 16,416 (whole blocks of 32) leaves the last one half
    empty, and its entries are still found."""
    store = make_store(capacity=16_400, neighbors=2, key_size=8)
    assert store.capacity == 16_416
    store.write(torch.randn(16_416, 8), torch.zeros(16_416, 3), torch.zeros(16_416, dtype=torch.long))
    recall = store.lookup(store.keys[0, -5:].clone(), touch=False)
    assert recall.slots[:, 0].tolist() == list(range(16_411, 16_416))


def spy_on_whole_store_searches(store: EpisodicStore) -> list[int]:
    """Records the number of queries of each float32 search over the whole store."""
    calls: list[int] = []
    search = store._exhaustive

    def spy(queries: torch.Tensor, k: int, *rest: object) -> torch.Tensor:
        calls.append(queries.shape[0])
        return search(queries, k, *rest)  # type: ignore[arg-type]

    store._exhaustive = spy  # type: ignore[method-assign]
    return calls


def test_a_nearly_empty_large_store_needs_no_second_search() -> None:
    """Fewer entries than neighbours: every entry left out is empty, so the certificate holds (before: each query
    was searched again over the whole store, 0.3 s per lookup of 64 queries in 100,000 slots)."""
    torch.manual_seed(6)
    store = make_store(capacity=20_000, neighbors=4, key_size=16)
    keys = torch.randn(3, 16)
    store.write(keys, torch.arange(9.0).view(3, 3), torch.zeros(3, dtype=torch.long))
    calls = spy_on_whole_store_searches(store)
    recall = store.lookup(torch.randn(16, 16), touch=False)
    assert calls == []
    assert recall.mask.sum(1).tolist() == [3] * 16 and not recall.mask[:, 3].any()
    assert all(
        set(row[:3].tolist()) == set((store.last_used[0] >= 0).nonzero().flatten().tolist()) for row in recall.slots
    )


def test_queries_that_need_the_whole_store_are_searched_together() -> None:
    """Keys bfloat16 cannot tell apart send every query to a float32 search of the whole store: one batched search
    per thread, not one per query (before: 64 searches, 0.3 s per lookup)."""
    torch.manual_seed(7)
    keys = 0.9 + 0.05 * torch.randn(20_000, 16)
    queries = keys[:24] + 0.001 * torch.randn(24, 16)
    store = make_store(capacity=20_000, neighbors=4, key_size=16)
    store.write(keys, torch.zeros(20_000, 3), torch.zeros(20_000, dtype=torch.long))
    calls = spy_on_whole_store_searches(store)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        recall = store.lookup(queries, touch=False)
    finally:
        torch.set_num_threads(previous)
    assert 1 <= len(calls) <= 2 and sum(calls) > 12
    distances = (queries.double().unsqueeze(1) - store.keys[0].double().unsqueeze(0)).pow(2).sum(-1)
    torch.testing.assert_close(distances.gather(1, recall.slots), distances.topk(4, dim=1, largest=False).values)


def brute_force_distances(store: EpisodicStore, queries: torch.Tensor, index: int = 0) -> torch.Tensor:
    """Squared distances (float64) from each query to every entry of store ``index``; empty slots are inf."""
    distances = (queries.double().unsqueeze(1) - store.keys[index].double().unsqueeze(0)).pow(2).sum(-1)
    return distances.masked_fill(store.last_used[index] < 0, float("inf"))


@pytest.mark.parametrize(
    ("capacity", "neighbors"),
    [(20_000, 4), (2_000, 4), (16_416, 400)],
    ids=["blocked-search", "float32-search", "more-neighbours-than-the-blocked-search-keeps"],
)
def test_shared_store_is_exact_on_a_tight_cluster_far_from_the_origin(capacity: int, neighbors: int) -> None:
    """Keys 10 from the origin and 1e-3 apart: the float32 product cancels (its error exceeds the gaps), so the
    certificates send the queries to a search in float64 (before: float32, wrong for every query; and 400
    neighbours of a large store crashed)."""
    torch.manual_seed(8)
    centre = torch.randn(16)
    keys = 10 * centre / centre.norm() + 1e-3 * torch.randn(capacity, 16)
    store = make_store(capacity=capacity, neighbors=neighbors, key_size=16)
    store.write(keys, torch.zeros(capacity, 3), torch.zeros(capacity, dtype=torch.long))
    queries = keys[:8] + 1e-3 * torch.randn(8, 16)
    recall = store.lookup(queries, touch=False)
    distances = brute_force_distances(store, queries)
    expected = distances.topk(neighbors, dim=1, largest=False).values
    torch.testing.assert_close(distances.gather(1, recall.slots), expected, rtol=1e-9, atol=1e-12)


def test_the_float64_search_sees_writes_and_forgets_after_it_ran() -> None:
    """The float64 table of the whole-store search is kept between lookups, and rebuilt when the store changes."""
    torch.manual_seed(10)
    keys = 10 + 1e-3 * torch.randn(20_000, 16)
    store = make_store(capacity=20_000, neighbors=1, key_size=16)
    store.write(keys[:19_000], torch.zeros(19_000, 3), torch.zeros(19_000, dtype=torch.long))
    query = keys[-1:] + 1e-5 * torch.randn(1, 16)
    before = store.lookup(query, touch=False).slots[0, 0]
    store.write(keys[-1:], torch.ones(1, 3), torch.zeros(1, dtype=torch.long))  # the query's own neighbour
    after = store.lookup(query, touch=False)
    assert after.slots[0, 0] != before and torch.equal(after.values[0, 0], torch.ones(3))
    store.forget(store.last_used == store.last_used.max())  # forget it again
    assert store.lookup(query, touch=False).slots[0, 0] == before


def test_per_env_stores_are_exact_on_a_tight_cluster_far_from_the_origin() -> None:
    torch.manual_seed(9)
    store = make_store(capacity=500, num_stores=3, neighbors=4, key_size=16)
    for _ in range(500):
        store.write(10 + 1e-3 * torch.randn(3, 16), torch.zeros(3, 3), torch.arange(3))
    queries = 10 + 1e-3 * torch.randn(3, 16)
    recall = store.lookup(queries, touch=False)
    for env in range(3):
        distances = brute_force_distances(store, queries[env : env + 1], env)
        expected = distances.topk(4, dim=1, largest=False).values
        torch.testing.assert_close(distances.gather(1, recall.slots[env : env + 1]), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("capacity", [64, 20_000])
def test_keys_the_store_cannot_rank_are_a_clear_error(capacity: int) -> None:
    store = make_store(capacity=capacity, neighbors=2, key_size=4)
    for bad in (float("nan"), float("inf"), 1e15):
        with pytest.raises(ValueError, match="not finite .* or has a norm above"):
            store.write(torch.full((1, 4), bad), torch.zeros(1, 3), torch.zeros(1, dtype=torch.long))
        with pytest.raises(ValueError, match="query is not finite"):
            store.lookup(torch.full((2, 4), bad))
    assert int(store.sizes[0]) == 0


@pytest.mark.parametrize("capacity", [64, 20_000])
def test_a_shared_store_takes_more_writes_than_it_holds_and_empty_lookups(capacity: int) -> None:
    """The last writes win; a lookup of no queries returns empty neighbours (both crashed before)."""
    store = make_store(capacity=capacity, neighbors=2, key_size=4)
    keys = torch.randn(capacity + 10, 4)
    store.write(keys, torch.zeros(capacity + 10, 3), torch.zeros(capacity + 10, dtype=torch.long))
    assert int(store.sizes[0]) == store.capacity
    assert store.lookup(keys[-1:], touch=False).slots[0, 0] >= 0
    empty = store.lookup(torch.zeros(0, 4))
    assert empty.keys.shape == (0, 2, 4) and empty.values.shape == (0, 2, 3) and empty.mask.shape == (0, 2)


def test_large_per_env_stores_search_exactly() -> None:
    """Per-env stores never take the bfloat16 path: a near neighbour 1e-5 away comes first, as in float32."""
    torch.manual_seed(2)
    store = make_store(capacity=20_000, num_stores=2, neighbors=4, key_size=16)
    base = torch.randn(16)
    for _ in range(40):
        store.write(torch.stack([base + 0.05 * torch.randn(16)] * 2), torch.zeros(2, 3), torch.arange(2))
    query = torch.stack([base, base])
    store.write(query + 1e-3, torch.ones(2, 3), torch.arange(2))  # the nearest entry of both stores
    recall = store.lookup(query, touch=False)
    assert torch.equal(recall.values[:, 0], torch.ones(2, 3))


def test_a_per_env_store_of_one_env_stays_per_env_when_resized() -> None:
    """scope=env with one env is a per-env store: grown to 3 envs it gives each env its own copy."""
    store = EpisodicStore(num_stores=1, capacity=8, key_size=4, value_size=3, neighbors=1, shared=False)
    store.write(torch.ones(1, 4), torch.full((1, 3), 10.0), torch.zeros(1, dtype=torch.long))
    grown = store.resized(3)
    assert grown.num_stores == 3 and not grown.shared
    assert EpisodicStore.from_state_dict(store.state_dict()).shared is False
    grown.clear(torch.tensor([1, 2]))
    assert grown.lookup(torch.ones(3, 4), touch=False).mask[:, 0].tolist() == [True, False, False]
    with pytest.raises(ValueError, match="a shared store is one store"):
        EpisodicStore(num_stores=2, capacity=8, key_size=4, value_size=3, neighbors=1, shared=True)


def test_two_large_stores_searched_from_two_threads_agree_with_one_thread() -> None:
    """Lookups share one worker pool; two stores searched at once from two threads get their own answers."""
    torch.manual_seed(3)
    stores, queries = [], torch.randn(16, 8)
    for _ in range(2):
        store = make_store(capacity=20_000, neighbors=2, key_size=8)
        store.write(torch.randn(20_000, 8), torch.zeros(20_000, 3), torch.zeros(20_000, dtype=torch.long))
        stores.append(store)
    expected = [store.lookup(queries, touch=False).slots for store in stores]
    results: dict[int, torch.Tensor] = {}

    def search(i: int) -> None:
        torch.set_num_threads(3)  # two pool workers
        for _ in range(20):
            results[i] = stores[i].lookup(queries, touch=False).slots

    threads = [threading.Thread(target=search, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert all(torch.equal(results[i], expected[i]) for i in range(2))


def test_an_interrupt_during_a_lookup_leaves_the_store_usable() -> None:
    """Ctrl-C while the caller waits for a busy worker: the lookup raises, and the next one works."""
    torch.manual_seed(4)
    store = make_store(capacity=20_000, neighbors=2, key_size=8)
    store.write(torch.randn(20_000, 8), torch.zeros(20_000, 3), torch.zeros(20_000, dtype=torch.long))
    queries = torch.randn(4, 8)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        expected = store.lookup(queries, touch=False).slots
        pool, _ = _search_pool(1)
        pool.submit(time.sleep, 0.5)  # the worker is busy, so the caller waits for it at the barrier
        threading.Timer(0.1, _thread.interrupt_main).start()
        with pytest.raises(KeyboardInterrupt):
            store.lookup(queries, touch=False)
        done: list[torch.Tensor] = []
        follow_up = threading.Thread(target=lambda: done.append(store.lookup(queries, touch=False).slots))
        follow_up.start()
        follow_up.join(timeout=30)
        assert done and torch.equal(done[0], expected)
    finally:
        torch.set_num_threads(previous)


def test_block_minimum_ranks_blocks_by_their_nearest_entry() -> None:
    """The int16 block minimum orders blocks like the bfloat16 minimum, and a block holding a distance
    rounded below zero (an exact match) ranks before every block of positive distances."""
    torch.manual_seed(0)
    distances = (torch.rand(64 * 32, 32) * 50).bfloat16()
    distances[5 * 32 + 7, 3] = -0.01  # block 5, query 3: rounding put an exact match just below zero
    distances[9 * 32 + 1, 3] = -0.0
    blocks = torch.empty(64, 32, dtype=torch.int16)
    _block_min(distances, blocks)
    reference = distances.view(64, 32, 32).amin(1)  # (blocks, queries)
    for query in range(32):
        order = blocks[:, query].argsort(stable=True)
        ranked = reference[order, query].float()
        if query == 3:
            assert set(order[:2].tolist()) == {5, 9}
            ranked = ranked[2:]
        assert torch.all(ranked[1:] >= ranked[:-1])


def test_eviction_removes_the_least_recently_used_entry() -> None:
    """A full store overwrites the entry whose last write or recall is oldest."""
    store = make_store(capacity=3)
    keys = torch.eye(4)[:3] * 5
    for i in range(3):
        store.write(keys[i : i + 1], torch.full((1, 3), float(i)), torch.zeros(1, dtype=torch.long))
    store.lookup(keys[0:1])  # entry 0 is recalled: now entry 1 is the least recently used
    store.write(torch.full((1, 4), -5.0), torch.full((1, 3), 9.0), torch.zeros(1, dtype=torch.long))
    kept = sorted(store.values[0, :, 0].tolist())
    assert kept == [0.0, 2.0, 9.0]


def test_per_env_stores_are_separate_and_clear_only_flagged() -> None:
    """Per-env stores answer each env from its own entries; clear() empties only the given stores."""
    store = make_store(capacity=4, num_stores=2)
    store.write(torch.ones(2, 4), torch.tensor([[1.0] * 3, [2.0] * 3]), torch.tensor([0, 1]))
    recall = store.lookup(torch.ones(2, 4))
    assert recall.values[:, 0, 0].tolist() == [1.0, 2.0]
    store.clear(torch.tensor([0]))
    assert store.sizes.tolist() == [0, 1]
    recall = store.lookup(torch.ones(2, 4))
    assert recall.mask[:, 0].tolist() == [False, True]
    assert torch.equal(kernel_read(torch.ones(2, 4), recall)[0], torch.zeros(3))  # nothing recalled: zeros


def test_kernel_read_is_differentiable_in_the_query() -> None:
    """Gradients reach the query through the inverse-distance kernel, finite and non-zero."""
    keys = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
    recall = Recall(keys, torch.tensor([[[1.0], [-1.0]]]), torch.tensor([[True, True]]), torch.tensor([[0, 1]]))
    query = torch.tensor([[0.2, 0.1]], requires_grad=True)
    kernel_read(query, recall).sum().backward()
    assert query.grad is not None and torch.isfinite(query.grad).all() and query.grad.abs().sum() > 0


# -- the epLSTM --------------------------------------------------------------------------------


def test_eplstm_step_by_step_equals_unroll_and_reset_is_per_env() -> None:
    torch.manual_seed(0)
    core = EpLSTMCore(input_size=7, hidden_size=5, memory_size=5)
    x = torch.randn(6, 3, 7)
    starts = torch.zeros(6, 3, dtype=torch.bool)
    starts[3, 1] = True
    state = core.initial_state(3)
    y_all, final = core(x, state, starts)
    steps = []
    for t in range(6):
        y, state = core(x[t : t + 1], state, starts[t : t + 1])
        steps.append(y)
    torch.testing.assert_close(torch.cat(steps), y_all)
    torch.testing.assert_close(state.c, final.c)
    # A reset at step 3 of env 1 makes its output independent of steps 0-2.
    x2 = x.clone()
    x2[:3, 1] = torch.randn(3, 7)
    y2, _ = core(x2, core.initial_state(3), starts)
    torch.testing.assert_close(y2[3:, 1], y_all[3:, 1])
    assert not torch.allclose(y2[:3, 1], y_all[:3, 1])
    torch.testing.assert_close(y2[:, 0], y_all[:, 0])
    cleared = reset_state(final, core.initial_state(3), torch.tensor([True, False, False]))
    assert cleared.c[0].abs().sum() == 0 and torch.equal(cleared.c[1:], final.c[1:])


def test_reinstatement_adds_the_recalled_state() -> None:
    """With the other gates shut, the cell state is r * tanh(m): the recalled value comes back."""
    core = EpLSTMCore(input_size=3, hidden_size=2, memory_size=2)
    with torch.no_grad():
        core.input_map.weight.zero_()
        core.hidden_map.weight.zero_()
        core.input_map.bias.copy_(torch.tensor([-50.0, -50, -50, -50, 0, 0, 50, 50, 0, 0]))  # i, f, o shut; r open
    memory = torch.tensor([[[0.5, -0.3]]])
    x = torch.cat([torch.ones(1, 1, 1), memory], -1)
    _, state = core(x, core.initial_state(1), torch.ones(1, 1, dtype=torch.bool))
    torch.testing.assert_close(state.c, torch.tanh(memory[0]), atol=1e-6, rtol=0)
    assert state.gate.min() > 0.99


# -- the driver: writes, clear policies ---------------------------------------------------------


def run_memory(memory: EpisodicMemory, episode_starts: list[bool], trial_starts: list[bool]) -> None:
    for t, (episode_start, trial_start) in enumerate(zip(episode_starts, trial_starts, strict=True)):
        obs = torch.tensor([[float(episode_start)]])
        memory.step(obs, torch.tensor([trial_start]), torch.zeros(1, 4))
        memory.remember(torch.full((1, 4), float(t)), torch.full((1, 3), float(t)))


@pytest.mark.parametrize(
    ("write_at", "clear", "expected"),
    [("episode", "never", [1.0, 3.0, 4.0]), ("trial", "never", [3.0]), ("episode", "trial", [4.0])],
)
def test_writes_follow_write_at_and_clear_policy(write_at: str, clear: str, expected: list[float]) -> None:
    """Steps 0-5; inner episodes end after steps 1, 3 and 4; a new trial starts at step 4.

    ``episode``: the last step of every episode is written; ``trial``: only the trial's last
    step; ``clear=trial`` empties the store when the new trial starts.
    """
    memory = EpisodicMemory(make_store(), num_envs=1, episode_start_index=0, write_at=write_at, clear=clear)  # type: ignore[arg-type]
    episode_starts = [True, False, True, False, True, True]
    trial_starts = [True, False, False, False, True, False]
    run_memory(memory, episode_starts, trial_starts)
    written = sorted(memory.store.values[0, memory.store.last_used[0] >= 0, 0].tolist())
    assert written == expected


def test_recurring_schedule_plays_each_task_r_times_per_bag() -> None:
    """A bag has exactly m * r trials with each of its m tasks r times, exposures counting 0..r-1."""
    sampler = make_sampler(BARCODE, dataclasses.replace(RECURRING, recurring_tasks=3, recurring_repeats=4), 0)
    stream = sampler.stream("train", 0, 1)
    draws = [(task_key(stream.next()), stream.last_exposure) for _ in range(12)]
    counts = Counter(key for key, _ in draws)
    assert len(counts) == 3 and set(counts.values()) == {4}
    for key in counts:
        assert [exposure for k, exposure in draws if k == key] == [0, 1, 2, 3]
    next_bag = {task_key(stream.next()) for _ in range(12)}
    assert not next_bag & set(counts)  # the next epoch draws new tasks
    assert not {k for k in counts} & {task_key(t) for t in sampler.test_tasks}


def test_mixed_schedule_has_the_asked_fraction_of_new_tasks() -> None:
    sampler = make_sampler(BARCODE, dataclasses.replace(RECURRING, new_task_fraction=0.5), 0)
    stream = sampler.stream("train", 0, 1)
    exposures = []
    for _ in range(2000):
        stream.next()
        exposures.append(stream.last_exposure)
    # Half the trials are fresh (exposure 0); of the bag's trials, 1 in r is a first exposure.
    new = np.mean(np.asarray(exposures) == 0)
    assert abs(new - (0.5 + 0.5 / 3)) < 0.04


def test_recurring_test_split_uses_only_test_tasks_and_is_deterministic() -> None:
    sampler = TaskSampler(make_sampler(BARCODE, RECURRING, 0).distribution, schedule="recurring", num_test_tasks=30)
    first = [task_key(sampler.stream("test", 1, 4).next()) for _ in range(1)]
    a, b = sampler.stream("test", 1, 4), sampler.stream("test", 1, 4)
    keys_a, keys_b = [task_key(a.next()) for _ in range(40)], [task_key(b.next()) for _ in range(40)]
    assert keys_a == keys_b and keys_a[0] == first[0]
    assert set(keys_a) <= {task_key(t) for t in sampler.test_tasks}


def test_test_split_exposures_stay_truthful_when_the_enumeration_wraps() -> None:
    """With 6 test tasks and 2 slots, a slot has 3 tasks: a later "fresh" draw is a recurring one."""
    tasks = dataclasses.replace(RECURRING, recurring_tasks=2, recurring_repeats=1, num_test_tasks=6)
    stream = make_sampler(BARCODE, tasks, 0).stream("test", 0, 2)
    seen: Counter[str] = Counter()
    for _ in range(12):
        key = task_key(stream.next())
        assert stream.last_exposure == seen[key]
        seen[key] += 1
    assert len(seen) == 3


# -- the policy and trainer --------------------------------------------------------------------


def test_gradients_flow_to_the_query_encoder() -> None:
    """The PPO loss reaches the key encoder through the kernel read of replayed neighbours."""
    model = build_model(BARCODE, tasks=RECURRING, core="lstm", episodic=episodic())
    model.learn(4 * 4 * 6)  # fill the stores
    rollout = model.collect_rollout(_NullCallback(model))
    assert rollout is not None and rollout["recall"].mask.any()
    policy = model.policy
    policy.zero_grad()
    state = policy.initial_state(4)
    starts = rollout["starts"].clone()
    starts[0] = True
    out = policy(rollout["observations"], state, starts, rollout["recall"])
    out.params.sum().backward()
    grad = policy.key_encoder[0].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


class _NullCallback:
    def __init__(self, model: object) -> None:
        self.model = model

    def on_rollout_start(self) -> None: ...

    def on_rollout_end(self) -> None: ...

    def update_locals(self, _: dict) -> None: ...

    def on_step(self) -> bool:
        return True


def test_first_minibatch_ratio_is_one_with_the_store() -> None:
    """Replaying the stored neighbours reproduces the acting policy exactly."""
    model = build_model(BARCODE, tasks=RECURRING, core="lstm", episodic=episodic())
    model.learn(4 * 4 * 8)
    assert model.diagnostics["first_minibatch_max_ratio_error"] < 1e-5
    assert model.diagnostics["episodic_store_size"] > 0
    assert 0.0 <= model.diagnostics["episodic_hit_rate"] <= 1.0


@pytest.mark.parametrize("mode,core", [("input", "gru"), ("input", "lstm")])
def test_input_mode_trains_with_recurrent_cores(mode: str, core: str) -> None:
    model = build_model(BARCODE, tasks=RECURRING, core=core, episodic=episodic(mode=mode))
    model.learn(4 * 4 * 4)
    assert model.diagnostics["first_minibatch_max_ratio_error"] < 1e-5
    assert model.episodic_store is not None and int(model.episodic_store.sizes.sum()) > 0


def test_checkpoint_round_trip_restores_the_store_exactly(tmp_path: Path) -> None:
    model = build_model(BARCODE, tasks=RECURRING, core="lstm", episodic=episodic())
    model.learn(4 * 4 * 5)
    model.save(tmp_path / "checkpoint.pt")
    loaded = type(model).load(tmp_path / "checkpoint.pt")
    assert model.episodic_store is not None and loaded.episodic_store is not None
    for name, tensor in model.episodic_store.state_dict().items():
        assert torch.equal(tensor, loaded.episodic_store.state_dict()[name]), name
    queries = torch.randn(4, 8)
    a, b = model.episodic_store.lookup(queries, False), loaded.episodic_store.lookup(queries, False)
    assert torch.equal(a.slots, b.slots) and torch.equal(a.values, b.values)


@pytest.mark.parametrize("clear,expect_empty", [("eval", True), ("never", False)])
def test_evaluation_store_follows_clear_policy(clear: str, expect_empty: bool) -> None:
    """predict(state=None) starts an inference store: empty with clear=eval, else a copy of the training store."""
    model = build_model(BARCODE, tasks=RECURRING, core="lstm", episodic=episodic(clear=clear))
    model.learn(4 * 4 * 5)
    assert model.episodic_store is not None
    before = model.episodic_store.state_dict()
    obs = np.zeros((4, model.observation_space.shape[0]), dtype=np.float32)  # type: ignore[index]
    model.predict(obs, state=None, episode_start=np.ones(4, dtype=bool))
    memory = model._inference_memory
    assert memory is not None and memory.store is not model.episodic_store
    assert (int(memory.store.sizes.sum()) == 0) == expect_empty
    for name, tensor in model.episodic_store.state_dict().items():  # evaluation never touches the training store
        assert torch.equal(tensor, before[name])


def test_recurring_evaluation_plays_whole_bags_per_slot(capsys: pytest.CaptureFixture) -> None:
    """Under recurring, each slot plays whole bags (m * r trials): every exposure 0..r-1 is played equally often."""
    from memrl.config import Config
    from memrl.evaluation import evaluate

    model = build_model(BARCODE, tasks=RECURRING, core="lstm", episodic=episodic())
    sampler = make_sampler(BARCODE, RECURRING, seed=0)
    config = Config(env=BARCODE, tasks=RECURRING)
    result = evaluate(model, config, sampler, trials=30, num_envs=10)  # bags of 2 x 3: 5 slots of one bag
    assert result.trials == 30
    assert [(row["exposure"], row["trials"]) for row in result.by_exposure] == [(0, 10), (1, 10), (2, 10)]
    result = evaluate(model, config, sampler, trials=4, num_envs=10)  # less than a bag: one whole bag
    assert result.trials == 6 and "whole bags of 6 trials per env: 6 trials" in capsys.readouterr().out


def test_reinstate_needs_an_lstm_core(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("policy: {core: gru, episodic: {mode: reinstate}}\n")
    with pytest.raises(ConfigError, match="policy.core=lstm"):
        load_config(path)


def test_short_training_recalls_recurring_barcodes() -> None:
    """After a short training, the first pull on a recurring barcode beats chance (1/4) clearly.

    Without the store the first pull of a trial carries no information about the barcode's arm, so
    any policy without memory across trials stays at 1/4 in expectation.
    """
    env = dataclasses.replace(BARCODE, num_envs=32, trial_progress=True)
    tasks = dataclasses.replace(RECURRING, recurring_tasks=4, recurring_repeats=4)
    ppo = PPOConfig(learning_rate=2e-3, n_steps=4, n_epochs=4, num_minibatches=2, gamma=1.0, gae_lambda=0.9)
    model = build_model(env, ppo, tasks=tasks, core="lstm", hidden_size=32, episodic=episodic(), embed_sizes=[32])
    model.learn(60_000)
    first_pull = first_episode_returns(model, env, make_sampler(env, tasks, 0), trials_per_env=32)
    recurring = [r for r, exposure in first_pull if exposure > 0]
    assert len(recurring) > 500
    assert np.mean(recurring) > 0.5, np.mean(recurring)


def first_episode_returns(model: object, env_cfg: EnvConfig, sampler: TaskSampler, trials_per_env: int) -> list:
    """(first-episode return, task exposure) of every trial of a test-split run."""
    from memrl.tasks.vec import make_vec_env

    env = make_vec_env(env_cfg, sampler, split="test", num_envs=env_cfg.num_envs, seed=1)
    obs, state, starts = env.reset(), None, np.ones(env_cfg.num_envs, dtype=bool)
    results, finished = [], np.zeros(env_cfg.num_envs, dtype=int)
    while finished.min() < trials_per_env:
        actions, state = model.predict(obs, state=state, episode_start=starts)  # type: ignore[attr-defined]
        obs, _, starts, infos = env.step(actions)
        for i in np.flatnonzero(starts):
            results.append((infos[i]["episode_returns"][0], infos[i]["task_exposure"]))
            finished[i] += 1
    return results


@pytest.mark.parametrize("path", sorted(Path("configs").glob("episodic_*.yaml")), ids=lambda p: p.stem)
def test_episodic_configs_train(path: Path) -> None:
    """Every shipped episodic config loads and runs a rollout and an update with its store."""
    from memrl.train import build_model as build_from_config

    cfg = load_config(path, ["env.num_envs=4", "ppo.num_minibatches=2", "train.progress_bar=false"])
    model = build_from_config(cfg, make_sampler(cfg.env, cfg.tasks, 0))
    model.learn(4 * cfg.ppo.n_steps * 2)
    assert model.episodic_store is not None
    assert model.diagnostics["first_minibatch_max_ratio_error"] < 1e-5


def test_cli_resume_restores_the_store(tmp_path: Path) -> None:
    """`memrl train --resume DIR` continues with the store saved in DIR's checkpoint."""
    from memrl.checkpoint import load_checkpoint
    from memrl.cli import main

    run = tmp_path / "run"
    base = ["--set", "env.num_envs=8", "--set", "ppo.num_minibatches=2", "--set", "train.progress_bar=false"]
    assert (
        main(["train", "configs/episodic_barcode.yaml", *base, "--set", "train.total_steps=800", "--run-dir", str(run)])
        == 0
    )
    saved = load_checkpoint(run)["episodic_store"]
    assert int((saved["last_used"] >= 0).sum()) > 0
    from memrl.algos.ppo import MetaPPO

    restored = MetaPPO.load(run / "checkpoint.pt").episodic_store
    assert restored is not None and torch.equal(restored.keys, saved["keys"])
    assert main(["train", "--resume", str(run), "--set", "train.total_steps=1600"]) == 0
    resumed = load_checkpoint(run)["episodic_store"]
    assert int(resumed["clock"]) > int(saved["clock"])  # it went on from the saved store
    kept = saved["last_used"] >= 0
    assert int((resumed["last_used"] >= 0).sum()) >= int(kept.sum())  # nothing was lost on resume
