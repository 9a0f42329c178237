"""Speed of the episodic store: one batched lookup, and training with the store on vs off.

1. Lookup: 64 queries against a shared store holding 100,000 keys of width 64 (values of width
   128), k = 8 neighbours, LRU touch included; the median of ``--repeats`` timed lookups (1000 by
   default, about 5 s, so that one of this VM's slow stretches of a second or so does not decide the
   figure) after warm-up, each with the next of 16 fixed batches of random queries (as in training,
   where every step asks new queries), with torch's default thread count (``--threads`` to change it).
   Beside it, a peer: the bare one-thread bfloat16 product of stage 1's share (half the keys),
   timed the same way, so that a run in one of this VM's slow stretches shows as one (the lookup
   takes about 2.0-2.4 peers).
2. Training (skip with ``--lookup-only``): MetaPPO on ``configs/episodic_barcode.yaml`` with the
   store on and with ``policy.episodic.mode=off``, the same steps each, alternating twice in this
   one process; steps per second of each and their ratio.

    python benchmarks/episodic_store.py                 # last line: lookup_ms: X
    python benchmarks/episodic_store.py --lookup-only
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from memrl.memory.episodic import EpisodicStore


def time_lookup(num_keys: int, key_size: int, queries: int, neighbors: int, repeats: int) -> list[float]:
    torch.manual_seed(0)
    store = EpisodicStore(num_stores=1, capacity=num_keys, key_size=key_size, value_size=128, neighbors=neighbors)
    for start in range(0, num_keys, 10_000):  # fill it the way training does: batched writes
        keys = torch.randn(min(10_000, num_keys - start), key_size)
        store.write(keys, torch.randn(keys.shape[0], 128), torch.zeros(keys.shape[0], dtype=torch.long))
    batches = torch.randn(16, queries, key_size)
    for batch in batches:  # warm-up
        store.lookup(batch)
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        store.lookup(batches[i % 16])
        times.append((time.perf_counter() - started) * 1000)
    return times


def time_peer(num_keys: int, key_size: int, queries: int, repeats: int) -> float:
    """Median ms of the bare bfloat16 product a lookup's stage 1 does, on one thread for half the keys.

    The machine's own speed at the moment of the run: this VM has slow stretches in which every
    program runs slower, and the lookup's time means more next to this peer measured beside it.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        keys = torch.randn(num_keys // 2, key_size + 4).bfloat16()
        rows = torch.randn(key_size + 4, queries).bfloat16()
        out = torch.empty(num_keys // 2, queries, dtype=torch.bfloat16)
        for _ in range(3):
            torch.mm(keys, rows, out=out)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            torch.mm(keys, rows, out=out)
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)
    finally:
        torch.set_num_threads(threads)


def time_training(steps: int, rounds: int) -> tuple[float, float]:
    from memrl.config import load_config
    from memrl.tasks.vec import make_sampler
    from memrl.train import build_model

    models = {}
    for mode in ("reinstate", "off"):
        cfg = load_config("configs/episodic_barcode.yaml", [f"policy.episodic.mode={mode}", "train.progress_bar=false"])
        models[mode] = build_model(cfg, make_sampler(cfg.env, cfg.tasks, cfg.train.seed))
        models[mode].learn(cfg.env.num_envs * cfg.ppo.n_steps * 5)  # warm-up; fills the store
    elapsed = {"reinstate": 0.0, "off": 0.0}
    for _ in range(rounds):
        for mode, model in models.items():
            started = time.perf_counter()
            model.learn(steps, reset_num_timesteps=False)
            elapsed[mode] += time.perf_counter() - started
    return rounds * steps / elapsed["reinstate"], rounds * steps / elapsed["off"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--key-size", type=int, default=64)
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--neighbors", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1000, help="timed lookups (and peer products)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--lookup-only", action="store_true", help="skip the training-speed comparison")
    parser.add_argument("--train-steps", type=int, default=64_000, help="steps per timed training round")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    if not args.lookup_only:
        torch.set_num_threads(1)  # the training default (train.torch_threads: 1)
        with_store, without = time_training(args.train_steps, rounds=2)
        print(
            f"training steps/s on configs/episodic_barcode.yaml: store on {with_store:,.0f}, "
            f"off {without:,.0f}, ratio {with_store / without:.2f}"
        )
        torch.set_num_threads(threads)
    times = time_lookup(args.keys, args.key_size, args.queries, args.neighbors, args.repeats)
    peer = time_peer(args.keys, args.key_size, args.queries, args.repeats)
    print(
        f"peer: a bare one-thread bfloat16 product of {args.keys // 2:,} x {args.key_size + 4} by "
        f"{args.key_size + 4} x {args.queries} (stage 1's share of one thread) took {peer:.2f} ms "
        f"(about 2.0-2.3 on this machine when quiet); lookup / peer: {statistics.median(times) / peer:.2f}"
    )
    print(
        f"lookup of {args.queries} queries in {args.keys:,} keys of width {args.key_size}, k={args.neighbors}, "
        f"{threads} torch threads: median {statistics.median(times):.2f} ms, min {min(times):.2f} ms, "
        f"max {max(times):.2f} ms over {args.repeats} lookups"
    )
    print(f"lookup_ms: {statistics.median(times):.2f}")


if __name__ == "__main__":
    main()
