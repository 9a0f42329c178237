"""Training speed of RL² policies with different memory cores, measured in one run.

Builds MetaPPO exactly as ``memrl train`` does from ``configs/ntm_bandit.yaml`` (NTM: memory 32 x 16,
one read head, LSTM controller of 128), ``configs/mann_bandit.yaml`` and the same config with
``policy.core: gru`` (a GRU of 128, the same embedding, PPO settings and 256 envs of the k=5, n=100
bandit). After a warm-up update, each model runs ``learn`` for ``--updates`` further updates (rollout +
4 epochs x 4 minibatches); models alternate within each of ``--rounds`` rounds and the best round of
each counts (shared machines drift). One torch thread (the training default). Last line::

    ntm_steps_per_s: X, gru_steps_per_s: Y, ntm_over_gru: Z

With ``--configs``, the same timing for whole configs instead (each built as ``memrl train``
builds it), each one's speed also given relative to the first's::

    python benchmarks/core_speed.py
    python benchmarks/core_speed.py --configs configs/rl2_tabular_mdp.yaml configs/rl2_tabular_mdp_transformer.yaml
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from memrl.algos.ppo import MetaPPO
from memrl.config import load_config
from memrl.tasks.vec import make_sampler
from memrl.train import build_model

REPO = Path(__file__).resolve().parents[1]


def make(core: str) -> MetaPPO:
    config = REPO / "configs" / ("mann_bandit.yaml" if core == "mann" else "ntm_bandit.yaml")
    return make_from(str(config), [f"policy.core={core}"])


def make_from(config: str, overrides: list[str]) -> MetaPPO:
    cfg = load_config(config, [*overrides, "train.progress_bar=false"])
    return build_model(cfg, make_sampler(cfg.env, cfg.tasks, cfg.train.seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cores", nargs="+", default=["gru", "ntm", "mann"])
    parser.add_argument("--configs", nargs="+", help="time these config files instead of the bandit cores")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.configs:
        models = {Path(config).stem: make_from(config, []) for config in args.configs}
    else:
        models = {core: make(core) for core in args.cores}
    per_update = {core: model.config.n_steps * model.env.num_envs for core, model in models.items()}  # type: ignore[union-attr]
    for model in models.values():
        model.learn(1)  # warm-up: one update
    best: dict[str, float] = {}
    for round_index in range(args.rounds):
        for core, model in models.items():
            steps = args.updates * per_update[core]
            started = time.perf_counter()
            model.learn(steps, reset_num_timesteps=False)
            rate = steps / (time.perf_counter() - started)
            best[core] = max(best.get(core, 0.0), rate)
            print(f"round {round_index + 1} {core}: {rate:,.0f} steps/s", flush=True)
    for core, rate in best.items():
        params = sum(p.numel() for p in models[core].policy.parameters())
        print(f"{core}: best {rate:,.0f} steps/s ({params} parameters)")
    if args.configs:
        first = Path(args.configs[0]).stem
        print(", ".join(f"{name}_over_{first}: {rate / best[first]:.3f}" for name, rate in best.items()))
        return
    ratio = best["ntm"] / best["gru"]
    print(f"ntm_steps_per_s: {best['ntm']:.0f}, gru_steps_per_s: {best['gru']:.0f}, ntm_over_gru: {ratio:.3f}")


if __name__ == "__main__":
    main()
