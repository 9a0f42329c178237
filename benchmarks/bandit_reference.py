"""Reference scores on memrl's held-out bandit test tasks, averaged over several reward draws.

A thin wrapper over ``memrl.baselines`` (the agents live there; ``memrl baselines memrl/Bandit-v0`` and
``benchmarks/paper_tables.py`` evaluate all of them with one draw): it plays random, greedy, Thompson
sampling and, for small horizons, the Bayes-optimal policy on the same 1000 test tasks that
``memrl eval`` uses (``tasks.test_seed`` = 12345) over ``--reps`` independent reward draws, and
prints the mean over draws and the spread (std) of one 1000-trial evaluation between draws.

    python benchmarks/bandit_reference.py --pulls 10      # k=5, n=10, with Bayes-optimal
    python benchmarks/bandit_reference.py --pulls 100     # k=5, n=100
"""

from __future__ import annotations

import argparse

import numpy as np

from memrl.baselines import BANDIT_AGENTS, bayes_optimal_tables, play_bandit
from memrl.config import EnvConfig, TaskConfig
from memrl.tasks.vec import make_sampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", type=int, default=5)
    parser.add_argument("--pulls", type=int, default=10)
    parser.add_argument("--reps", type=int, default=5, help="independent reward draws per agent")
    args = parser.parse_args()
    env_cfg = EnvConfig(id="memrl/Bandit-v0", kwargs={"n_arms": args.arms}, episodes_per_trial=args.pulls)
    sampler = make_sampler(env_cfg, TaskConfig(), seed=0)
    probs = np.array([task["probs"] for task in sampler.test_tasks])
    names = ["random", "greedy", "thompson"] + (["bayes_optimal"] if args.pulls <= 12 else [])
    print(f"bandit k={args.arms}, n={args.pulls}: mean trial return on the {len(probs)} test tasks")
    for name in names:
        scores = [
            play_bandit(BANDIT_AGENTS[name](), probs, args.pulls, np.random.default_rng(rep))[0].mean()
            for rep in range(args.reps)
        ]
        print(f"{name:>14}: {np.mean(scores):.3f} (std over draws {np.std(scores):.3f})")
    if "bayes_optimal" in names:
        value = bayes_optimal_tables(args.arms, args.pulls).value
        print(f"{'':>14}  Bayes-optimal expected value under the prior: {value:.3f}")


if __name__ == "__main__":
    main()
