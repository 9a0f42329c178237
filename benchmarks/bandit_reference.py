"""Reference scores on memrl's held-out bandit test tasks: random, greedy, Thompson sampling, Bayes-optimal.

The same 1000 test tasks that ``memrl eval`` uses (``tasks.test_seed`` = 12345, arm means ~ U[0, 1]),
so a trained RL² agent can be read against them. Greedy pulls the arm of highest posterior mean
under a prior of one success in two pulls; Thompson sampling draws from Beta(1 + s, 1 + f). The
Bayes-optimal policy (small horizons only) maximises the expected total reward under the uniform
prior by exact dynamic programming over the arms' success/failure counts, so no agent can beat it
in expectation. Each agent is scored over ``--reps`` independent reward draws; the table gives the
mean over draws and, in brackets, the spread (std) of one 1000-trial evaluation between draws.

    python benchmarks/bandit_reference.py --pulls 10      # k=5, n=10, with Bayes-optimal
    python benchmarks/bandit_reference.py --pulls 100     # k=5, n=100
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import cache

import numpy as np

from memrl.config import EnvConfig, TaskConfig
from memrl.tasks.vec import make_sampler

Counts = tuple[tuple[int, int], ...]  # per arm (successes, failures)


def bayes_optimal_q(counts: Counts, left: int) -> list[float]:
    """Expected future reward of pulling each arm now, then acting optimally (uniform Beta priors)."""
    values = []
    for arm, (s, f) in enumerate(counts):
        p = (s + 1) / (s + f + 2)  # posterior mean of the arm
        win = list(counts)
        win[arm] = (s + 1, f)
        lose = list(counts)
        lose[arm] = (s, f + 1)
        values.append(p * (1 + _value(tuple(sorted(win)), left - 1)) + (1 - p) * _value(tuple(sorted(lose)), left - 1))
    return values


@cache
def _value(counts: Counts, left: int) -> float:
    """Bayes-optimal value; arms are exchangeable, so counts are kept sorted to share states."""
    return 0.0 if left == 0 else max(bayes_optimal_q(counts, left))


def play(
    rule: Callable[[np.ndarray, np.ndarray, int, np.random.Generator], np.ndarray],
    probs: np.ndarray,
    pulls: int,
    rng: np.random.Generator,
) -> float:
    """Mean trial return of ``rule`` over the tasks ``probs`` (trials x arms), vectorised over trials."""
    trials, arms = probs.shape
    successes, failures = np.zeros((trials, arms)), np.zeros((trials, arms))
    total = np.zeros(trials)
    rows = np.arange(trials)
    for t in range(pulls):
        action = rule(successes, failures, pulls - t, rng)
        reward = (rng.random(trials) < probs[rows, action]).astype(float)
        successes[rows, action] += reward
        failures[rows, action] += 1 - reward
        total += reward
    return float(total.mean())


def _argmax_random_ties(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (scores + 1e-9 * rng.random(scores.shape)).argmax(axis=1)


def random_rule(s: np.ndarray, f: np.ndarray, left: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(s.shape[1], size=s.shape[0])


def greedy_rule(s: np.ndarray, f: np.ndarray, left: int, rng: np.random.Generator) -> np.ndarray:
    return _argmax_random_ties((s + 1) / (s + f + 2), rng)


def thompson_rule(s: np.ndarray, f: np.ndarray, left: int, rng: np.random.Generator) -> np.ndarray:
    return _argmax_random_ties(rng.beta(s + 1, f + 1), rng)


def bayes_rule(s: np.ndarray, f: np.ndarray, left: int, rng: np.random.Generator) -> np.ndarray:
    actions = np.empty(s.shape[0], dtype=int)
    for i, (succ, fail) in enumerate(zip(s.astype(int), f.astype(int), strict=True)):
        q = np.asarray(bayes_optimal_q(tuple(zip(succ.tolist(), fail.tolist(), strict=True)), left))
        actions[i] = rng.choice(np.flatnonzero(q >= q.max() - 1e-12))
    return actions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", type=int, default=5)
    parser.add_argument("--pulls", type=int, default=10)
    parser.add_argument("--reps", type=int, default=5, help="independent reward draws per agent")
    args = parser.parse_args()
    env_cfg = EnvConfig(id="memrl/Bandit-v0", kwargs={"n_arms": args.arms}, episodes_per_trial=args.pulls)
    sampler = make_sampler(env_cfg, TaskConfig(), seed=0)
    probs = np.array([task["probs"] for task in sampler.test_tasks])
    rules = {"random": random_rule, "greedy": greedy_rule, "thompson": thompson_rule}
    if args.pulls <= 12:
        rules["bayes_optimal"] = bayes_rule
    print(f"bandit k={args.arms}, n={args.pulls}: mean trial return on the {len(probs)} test tasks")
    for name, rule in rules.items():
        scores = [play(rule, probs, args.pulls, np.random.default_rng(rep)) for rep in range(args.reps)]
        print(f"{name:>14}: {np.mean(scores):.3f} (std over draws {np.std(scores):.3f})")
    if "bayes_optimal" in rules:
        prior_value = _value(tuple([(0, 0)] * args.arms), args.pulls)
        print(f"{'':>14}  Bayes-optimal expected value under the prior: {prior_value:.3f}")


if __name__ == "__main__":
    main()
