"""Hand-designed baselines of the Bernoulli bandit (Duan et al. 2016, Table 1), vectorised over trials.

Every agent acts from the Beta posterior counts of each trial: ``successes`` and ``failures`` are
``(B, k)`` arrays (``B`` trials played side by side, ``k`` arms), ``pulls_left`` counts the current
pull. The task is memrl's ``BanditEnv`` task (``{"probs": [...]}``, arm means ~ U[0, 1]); a pull of
arm ``a`` pays 1 with probability ``probs[a]``, exactly as ``BanditEnv.step`` draws it. Ties between
arms are broken uniformly at random.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import ClassVar, Self

import numpy as np

from memrl.baselines.bayes_optimal import BayesOptimalTables, bayes_optimal_tables
from memrl.baselines.gittins import gittins_index_table


def argmax_random_ties(scores: np.ndarray, rng: np.random.Generator, tolerance: float = 1e-12) -> np.ndarray:
    """Row-wise argmax of ``(B, k)`` scores, uniform among entries within ``tolerance`` of the maximum."""
    best = scores.max(axis=1, keepdims=True)
    finite = np.isfinite(best)
    slack = np.where(finite, tolerance * np.maximum(1.0, np.abs(np.where(finite, best, 0.0))), 0.0)
    tied = scores >= best - slack  # an infinite best (an untried arm in UCB1) ties only with infinities
    return np.asarray((rng.random(scores.shape) * tied).argmax(axis=1))


def posterior_mean(successes: np.ndarray, failures: np.ndarray) -> np.ndarray:
    """Mean of Beta(1 + s, 1 + f): a prior of one success in two pulls."""
    return (successes + 1.0) / (successes + failures + 2.0)


class Tunable:
    """An agent with at most one constant tuned on training tasks.

    Tunable agents name the constant in ``parameter`` and list its candidates in ``grid``; the
    evaluation protocol picks the value on training tasks only (``memrl.baselines.protocol.tune``).
    """

    name: ClassVar[str]
    parameter: ClassVar[str | None] = None
    grid: ClassVar[tuple[float, ...]] = ()

    def with_value(self, value: float) -> Self:
        """A copy with the tuned constant ``parameter`` set to ``value`` (tunable agents only)."""
        if self.parameter is None:
            raise TypeError(f"{self.name} has no tuned constant")
        agent = copy.copy(self)
        setattr(agent, self.parameter, float(value))
        return agent

    def params(self) -> dict[str, float]:
        return {} if self.parameter is None else {self.parameter: float(getattr(self, self.parameter))}


class BanditAgent(Tunable, ABC):
    """A bandit baseline: one arm per trial from the posterior counts."""

    label: ClassVar[str]

    def prepare(self, n_arms: int, pulls: int) -> None:  # noqa: B027  (optional hook)
        """Precompute whatever depends on the setting (index tables); called before a batch of trials."""

    @abstractmethod
    def act(self, successes: np.ndarray, failures: np.ndarray, pulls_left: int, rng: np.random.Generator) -> np.ndarray:
        """Arms ``(B,)`` to pull now."""


class RandomAgent(BanditAgent):
    """Uniformly random arm: the floor, n/2 in expectation."""

    name, label = "random", "Random"

    def act(self, successes: np.ndarray, failures: np.ndarray, pulls_left: int, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(rng.integers(successes.shape[1], size=successes.shape[0]))


class GreedyAgent(BanditAgent):
    """Highest posterior mean ``(s + 1) / (s + f + 2)``: a prior of one success in two pulls (Duan et al.)."""

    name, label = "greedy", "Greedy"

    def act(self, successes: np.ndarray, failures: np.ndarray, pulls_left: int, rng: np.random.Generator) -> np.ndarray:
        return argmax_random_ties(posterior_mean(successes, failures), rng)


class EpsilonGreedyAgent(BanditAgent):
    """With probability epsilon a uniformly random arm, else the greedy arm; epsilon tuned on training tasks."""

    name, label = "epsilon_greedy", "ε-Greedy"
    parameter = "epsilon"
    grid = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)

    def __init__(self, epsilon: float = 0.05) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.epsilon = epsilon

    def act(self, successes: np.ndarray, failures: np.ndarray, pulls_left: int, rng: np.random.Generator) -> np.ndarray:
        greedy = argmax_random_ties(posterior_mean(successes, failures), rng)
        explore = rng.random(successes.shape[0]) < self.epsilon
        return np.where(explore, rng.integers(successes.shape[1], size=successes.shape[0]), greedy)


class ThompsonAgent(BanditAgent):
    """Thompson sampling (Thompson 1933): the arm whose Beta(1 + s, 1 + f) sample is largest."""

    name, label = "thompson", "TS"

    def act(self, successes: np.ndarray, failures: np.ndarray, pulls_left: int, rng: np.random.Generator) -> np.ndarray:
        return argmax_random_ties(rng.beta(successes + 1.0, failures + 1.0), rng)


class OptimisticThompsonAgent(BanditAgent):
    """Optimistic Thompson sampling as Duan et al. evaluate it: the most probable of ``samples`` posterior draws.

    Each pull draws ``samples`` joint samples of the arm means from the Beta(1 + s, 1 + f) posteriors,
    keeps the one of highest posterior density, and pulls its best arm. One sample is Thompson
    sampling; more samples pull the choice towards the posterior mode, i.e. towards greedy. This is
    the rule of the RL² authors' public evaluation scripts (rllab's ``sandbox/rocky/neural_learner``,
    ``samples`` tuned over 1..20); the paper itself does not define its OTS. ``samples`` is tuned on
    training tasks. The other "optimistic" rule of the literature is :class:`MeanFloorThompsonAgent`.
    """

    name, label = "optimistic_thompson", "OTS"
    parameter = "samples"
    grid = tuple(float(n) for n in range(1, 21))

    def __init__(self, samples: int = 1) -> None:
        if samples < 1 or samples != int(samples):
            raise ValueError(f"OTS: samples must be a whole number >= 1, got {samples}")
        self.samples = samples

    def act(self, successes: np.ndarray, failures: np.ndarray, pulls_left: int, rng: np.random.Generator) -> np.ndarray:
        draws = rng.beta(successes + 1.0, failures + 1.0, size=(int(self.samples), *successes.shape))  # (n, B, k)
        draws = np.clip(draws, 1e-300, 1.0 - 1e-16)  # log(0) stays finite; 0 * log(x) is 0 for untried arms
        log_density = (successes * np.log(draws) + failures * np.log1p(-draws)).sum(-1)  # (n, B), up to a constant
        best = draws[log_density.argmax(0), np.arange(successes.shape[0])]  # (B, k) the most probable draw
        return argmax_random_ties(best, rng)


class MeanFloorThompsonAgent(BanditAgent):
    """Optimistic Bayesian sampling (May et al. 2012): Thompson samples floored at the posterior mean."""

    name, label = "ots_mean_floor", "OTS (mean floor)"

    def act(self, successes: np.ndarray, failures: np.ndarray, pulls_left: int, rng: np.random.Generator) -> np.ndarray:
        sample = rng.beta(successes + 1.0, failures + 1.0)
        return argmax_random_ties(np.maximum(sample, posterior_mean(successes, failures)), rng)


class UCB1Agent(BanditAgent):
    """UCB1 (Auer et al. 2002): the arm of largest ``mean + c sqrt(2 ln t / n)``.

    ``mean`` and ``n`` include the prior pseudo-counts of the greedy agent (one success in two pulls:
    ``mean = (s + 1) / (s + f + 2)``, ``n = s + f + 2``) and ``t`` is one plus the pulls made so far in
    the trial. Auer et al. instead pull every arm once first; that alone costs k of the n pulls and
    caps k = 10, n = 10 near 5.0, far below Duan et al.'s 6.7, so their UCB1 cannot have done it.
    The exploration scale ``c`` (1 in Auer et al.) is tuned on training tasks, as in Duan et al.
    """

    name, label = "ucb1", "UCB1"
    parameter = "c"
    grid = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)

    def __init__(self, c: float = 1.0) -> None:
        if c < 0:
            raise ValueError(f"UCB1: c must be >= 0, got {c}")
        self.c = c

    def act(self, successes: np.ndarray, failures: np.ndarray, pulls_left: int, rng: np.random.Generator) -> np.ndarray:
        pulls = successes + failures + 2.0
        t = 1.0 + float(successes[0].sum() + failures[0].sum())
        scores = posterior_mean(successes, failures) + self.c * np.sqrt(2.0 * np.log(t) / pulls)
        return argmax_random_ties(scores, rng)


class GittinsAgent(BanditAgent):
    """Largest finite-horizon Gittins index for the pulls left in the trial (see ``memrl.baselines.gittins``).

    Gittins (1979): the index policy is Bayes-optimal for discounted infinite-horizon bandits; for a
    fixed horizon it is a near-optimal heuristic (compare ``bayes_optimal``).
    """

    name, label = "gittins", "Gittins"

    def __init__(self) -> None:
        self._table: np.ndarray | None = None

    def prepare(self, n_arms: int, pulls: int) -> None:
        self._table = gittins_index_table(pulls)

    def act(self, successes: np.ndarray, failures: np.ndarray, pulls_left: int, rng: np.random.Generator) -> np.ndarray:
        needed = int(successes[0].sum() + failures[0].sum()) + pulls_left  # the trial's length n
        if self._table is None or self._table.shape[0] <= needed:
            self.prepare(successes.shape[1], needed)
        assert self._table is not None
        index = self._table[successes.astype(np.int64), failures.astype(np.int64), pulls_left]
        return argmax_random_ties(index, rng)


class BayesOptimalAgent(BanditAgent):
    """The Bayes-optimal policy by exact DP over Beta posteriors (``memrl.baselines.bayes_optimal``).

    The expected-reward ceiling under the task distribution; tractable for small settings only
    (n = 10 with k <= 10 takes well under a second).
    """

    name, label = "bayes_optimal", "Bayes-optimal"

    def __init__(self) -> None:
        self._tables: BayesOptimalTables | None = None

    def prepare(self, n_arms: int, pulls: int) -> None:
        self._tables = bayes_optimal_tables(n_arms, pulls)

    def act(self, successes: np.ndarray, failures: np.ndarray, pulls_left: int, rng: np.random.Generator) -> np.ndarray:
        pulls = int(successes[0].sum() + failures[0].sum()) + pulls_left
        tables = self._tables
        if tables is None or tables.n_arms != successes.shape[1] or tables.pulls != pulls:
            self.prepare(successes.shape[1], pulls)
            tables = self._tables
        assert tables is not None
        return argmax_random_ties(tables.lookup(successes, failures), rng)


BANDIT_AGENTS: dict[str, type[BanditAgent]] = {
    agent.name: agent
    for agent in (
        RandomAgent,
        GittinsAgent,
        ThompsonAgent,
        OptimisticThompsonAgent,
        UCB1Agent,
        EpsilonGreedyAgent,
        GreedyAgent,
        BayesOptimalAgent,
        MeanFloorThompsonAgent,
    )
}
"""Bandit baselines by name, in the column order of Duan et al.'s Table 1, then the Bayes-optimal ceiling and
May et al.'s optimistic sampling (no published counterpart)."""


def play_bandit(
    agent: BanditAgent, probs: np.ndarray, pulls: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Play one trial of ``pulls`` pulls on each task of ``probs`` ``(B, k)`` at once.

    Returns the trial returns ``(B,)`` and the per-episode (per-pull) returns ``(B, pulls)``.
    """
    trials, arms = probs.shape
    agent.prepare(arms, pulls)
    successes = np.zeros((trials, arms))
    failures = np.zeros((trials, arms))
    rewards = np.zeros((trials, pulls))
    rows = np.arange(trials)
    for t in range(pulls):
        action = agent.act(successes, failures, pulls - t, rng)
        reward = (rng.random(trials) < probs[rows, action]).astype(np.float64)  # as BanditEnv.step
        successes[rows, action] += reward
        failures[rows, action] += 1.0 - reward
        rewards[:, t] = reward
    return rewards.sum(axis=1), rewards
