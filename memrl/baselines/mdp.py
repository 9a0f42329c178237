"""Hand-designed baselines of the random tabular MDP (Duan et al. 2016, Table 2), vectorised over trials.

The task is memrl's ``TabularMDPEnv`` task: transitions ``P[s, a] ~ Dirichlet(1)``, mean rewards
``R[s, a] ~ N(1, 1)``, a step pays ``r ~ N(R[s, a], 1)``; episodes start in state 0 and last
``horizon`` steps; a trial is ``n`` episodes of one task. Arrays hold ``B`` trials side by side:
counts are ``(B, S, A)``, transition counts and models ``(B, S, A, S)``, finite-horizon Q-values
``(B, H, S, A)`` with ``H`` the episode horizon.

Every agent plans once per episode on a model built from the statistics of the trial so far, by
finite-horizon value iteration (batched over trials), and acts greedily on that plan (ties broken
uniformly at random). The Bayesian agents use conjugate priors: Dirichlet(w) on each transition row
and N(m, 1 / w) on each mean reward, whose posterior after ``N`` rewards with sum ``Σr`` (known noise
variance 1) is ``N((w m + Σr) / (w + N), 1 / (w + N))``. ``m`` is 0 in the paper-table agents and 1
(the task distribution's) in the ``*_true_prior`` ones (see ``PAPER_REWARD_PRIOR_MEAN``); the prior
weight ``w`` is 1, except in the paper's greedy and ε-greedy agents (``FLAT_PRIOR_WEIGHT``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from memrl.baselines.bandit import Tunable, argmax_random_ties

PAPER_REWARD_PRIOR_MEAN = 0.0
"""Mean of the prior on each mean reward in the Duan et al. setup as memrl reproduces it: N(0, 1).

The paper does not state its priors. With the task distribution's own N(1, 1) prior the greedy agent
scores about 155 at n = 10, far above the published 134.8; a zero-mean prior reproduces the published
greedy and PSRL values at n = 10 and n = 25 (docs/results.md, "Paper tables"), so it is the default
of the paper-table agents, and the ``*_true_prior`` agents use N(1, 1)."""
TRUE_REWARD_PRIOR_MEAN = 1.0
"""Mean of the task distribution's own prior on mean rewards, N(1, 1)."""
PRIOR_REWARD_PRECISION = 1.0
"""Precision (1 / variance) of that prior, in units of one observed reward (noise variance 1)."""
FLAT_PRIOR_WEIGHT = 1e-4
"""Prior weight of the paper's greedy and ε-greedy agents: reward-prior precision and Dirichlet concentration.

The RL² authors' public evaluation scripts (rllab's ``sandbox/rocky/neural_learner``) run Osband's
TabulaRL agents, whose ε-greedy agent (ε = 0: greedy) uses a prior of weight 1e-4: the empirical
model, with unvisited pairs at reward 0 and uniform transitions. PSRL and BEB use weight 1."""


@dataclass
class MDPStats:
    """What a trial has observed so far: visit counts, reward sums and transition counts."""

    visits: np.ndarray  # (B, S, A)
    reward_sum: np.ndarray  # (B, S, A)
    transition_counts: np.ndarray  # (B, S, A, S)
    steps: int = 0

    @classmethod
    def empty(cls, trials: int, n_states: int, n_actions: int) -> MDPStats:
        return cls(
            visits=np.zeros((trials, n_states, n_actions)),
            reward_sum=np.zeros((trials, n_states, n_actions)),
            transition_counts=np.zeros((trials, n_states, n_actions, n_states)),
        )

    def record(self, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_states: np.ndarray) -> None:
        rows = np.arange(states.size)
        self.visits[rows, states, actions] += 1.0
        self.reward_sum[rows, states, actions] += rewards
        self.transition_counts[rows, states, actions, next_states] += 1.0
        self.steps += 1

    def reward_posterior_mean(self, prior_mean: float, prior_precision: float = PRIOR_REWARD_PRECISION) -> np.ndarray:
        """Posterior mean of each mean reward under a N(prior_mean, 1 / prior_precision) prior."""
        return (prior_mean * prior_precision + self.reward_sum) / (prior_precision + self.visits)

    @property
    def reward_posterior_std(self) -> np.ndarray:
        return np.sqrt(1.0 / (PRIOR_REWARD_PRECISION + self.visits))

    def transition_posterior_mean(self, concentration: float = 1.0) -> np.ndarray:
        """Posterior mean of each transition row under a Dirichlet(concentration) prior."""
        n_states = self.transition_counts.shape[-1]
        return (self.transition_counts + concentration) / (self.visits + n_states * concentration)[..., None]


def value_iteration(
    rewards: np.ndarray, transitions: np.ndarray, horizon: int, bonus_per_step_left: np.ndarray | None = None
) -> np.ndarray:
    """Finite-horizon Q-values ``(B, H, S, A)`` of the model ``rewards (B, S, A)``, ``transitions (B, S, A, S)``:
    ``Q_h = R + P V_(h+1)``, ``V_h = max_a Q_h``, ``V_H = 0`` (Bellman 1957; undiscounted, as the trial return).

    ``bonus_per_step_left (B, S, A)``, if given, adds ``(H - 1 - h)`` times itself to ``Q_h`` (BEB's
    transition bonus, which grows with the steps left after this one)."""
    trials, n_states, n_actions = rewards.shape
    q = np.empty((trials, horizon, n_states, n_actions))
    value = np.zeros((trials, n_states))
    for h in range(horizon - 1, -1, -1):
        q[:, h] = rewards + np.einsum("bsat,bt->bsa", transitions, value)  # (B, S, A, S) . (B, S) -> (B, S, A)
        if bonus_per_step_left is not None:
            q[:, h] += (horizon - 1 - h) * bonus_per_step_left
        value = q[:, h].max(axis=-1)
    return q


def optimistic_value_iteration(
    rewards: np.ndarray, transitions: np.ndarray, radius: np.ndarray, horizon: int
) -> np.ndarray:
    """UCRL2's extended value iteration (Jaksch et al. 2010, Figure 2) over a finite horizon.

    Each transition row may move anywhere within L1 distance ``radius (B, S, A)`` of ``transitions``:
    the optimistic row puts ``radius / 2`` more mass on the best next state and takes it from the
    worst ones, in order of the current values.
    """
    trials, n_states, n_actions = rewards.shape
    q = np.empty((trials, horizon, n_states, n_actions))
    value = np.zeros((trials, n_states))
    for h in range(horizon - 1, -1, -1):
        order = np.argsort(-value, axis=1)  # (B, S) best next state first
        v_sorted = np.take_along_axis(value, order, axis=1)  # (B, S)
        p_sorted = np.take_along_axis(transitions, np.broadcast_to(order[:, None, None, :], transitions.shape), axis=-1)
        best = np.minimum(1.0, p_sorted[..., 0] + radius / 2.0)  # (B, S, A)
        added = best - p_sorted[..., 0]
        worse_mass = np.cumsum(p_sorted[..., ::-1], axis=-1)[..., ::-1]  # mass of state j and all worse ones
        beyond = np.concatenate([worse_mass[..., 1:], np.zeros_like(worse_mass[..., :1])], axis=-1)  # strictly worse
        removed = np.clip(added[..., None] - beyond, 0.0, p_sorted)
        optimistic = p_sorted - removed
        optimistic[..., 0] = best
        q[:, h] = rewards + np.einsum("bsat,bt->bsa", optimistic, v_sorted)
        value = q[:, h].max(axis=-1)
    return q


class MDPAgent(Tunable, ABC):
    """A tabular-MDP baseline: a plan per episode from the trial's statistics, greedy actions on it."""

    label: ClassVar[str]
    reward_prior_mean: float = PAPER_REWARD_PRIOR_MEAN
    bayesian: ClassVar[bool] = False
    """Whether the agent's model uses the reward prior (reported in ``params``)."""

    @abstractmethod
    def plan(self, stats: MDPStats, horizon: int, rng: np.random.Generator) -> np.ndarray:
        """Q-values ``(B, H, S, A)`` for the coming episode."""

    def act(self, q_step: np.ndarray, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Actions ``(B,)`` from ``q_step (B, S, A)``, the plan's Q-values for this step of the episode."""
        return argmax_random_ties(q_step[np.arange(states.size), states], rng)

    def params(self) -> dict[str, float]:
        values = super().params()
        if self.bayesian:
            values["reward_prior_mean"] = self.reward_prior_mean
        return values


class RandomMDPAgent(MDPAgent):
    """Uniformly random actions: about one mean reward (1) per step."""

    name, label = "random", "Random"

    def plan(self, stats: MDPStats, horizon: int, rng: np.random.Generator) -> np.ndarray:
        trials, n_states, n_actions = stats.visits.shape
        return np.zeros((trials, horizon, n_states, n_actions))


class GreedyMDPAgent(MDPAgent):
    """Optimal policy of the posterior-mean model (certainty equivalence), re-planned every episode.

    ``prior_weight`` is the prior's weight in observations: the reward prior's precision and the
    Dirichlet concentration of each transition row. The paper's greedy agent (the default) uses
    :data:`FLAT_PRIOR_WEIGHT`, i.e. the empirical model; the ``*_true_prior`` agents use 1.
    """

    name, label = "greedy", "Greedy"
    bayesian = True

    def __init__(
        self, reward_prior_mean: float = PAPER_REWARD_PRIOR_MEAN, prior_weight: float = FLAT_PRIOR_WEIGHT
    ) -> None:
        if prior_weight <= 0:
            raise ValueError(f"{self.name}: prior_weight must be > 0, got {prior_weight}")
        self.reward_prior_mean = reward_prior_mean
        self.prior_weight = prior_weight

    def mean_rewards(self, stats: MDPStats) -> np.ndarray:
        return stats.reward_posterior_mean(self.reward_prior_mean, self.prior_weight)

    def plan(self, stats: MDPStats, horizon: int, rng: np.random.Generator) -> np.ndarray:
        return value_iteration(self.mean_rewards(stats), stats.transition_posterior_mean(self.prior_weight), horizon)

    def params(self) -> dict[str, float]:
        return {**super().params(), "prior_weight": self.prior_weight}


class MyopicMDPAgent(GreedyMDPAgent):
    """Greedy on the posterior-mean reward of each action in the current state, blind to where it leads.

    A one-step plan: no transition model. Next to :class:`GreedyMDPAgent` it measures what planning
    over the transitions adds on these tasks.
    """

    name, label = "myopic", "Myopic"

    def plan(self, stats: MDPStats, horizon: int, rng: np.random.Generator) -> np.ndarray:
        rewards = self.mean_rewards(stats)  # (B, S, A)
        return np.broadcast_to(rewards[:, None], (rewards.shape[0], horizon, *rewards.shape[1:]))


class EpsilonGreedyMDPAgent(GreedyMDPAgent):
    """Greedy on the posterior-mean model, but a uniformly random action with probability epsilon (tuned).

    The grid is the one of the RL² authors' evaluation scripts, 0.1 to 1: epsilon = 0 is the Greedy
    column of the table, so this column is the best agent that does explore at random.
    """

    name, label = "epsilon_greedy", "ε-Greedy"
    parameter = "epsilon"
    grid = tuple(round(0.1 * i, 1) for i in range(1, 11))

    def __init__(
        self,
        epsilon: float = 0.1,
        reward_prior_mean: float = PAPER_REWARD_PRIOR_MEAN,
        prior_weight: float = FLAT_PRIOR_WEIGHT,
    ) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        super().__init__(reward_prior_mean, prior_weight)
        self.epsilon = epsilon

    def act(self, q_step: np.ndarray, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        greedy = super().act(q_step, states, rng)
        explore = rng.random(states.size) < self.epsilon
        return np.where(explore, rng.integers(q_step.shape[-1], size=states.size), greedy)


class PSRLAgent(MDPAgent):
    """Posterior sampling for RL (Strens 2000; Osband et al. 2013): one MDP per episode from the posterior
    (Dirichlet(1 + counts) rows, Normal mean rewards), followed optimally for the whole episode."""

    name, label = "psrl", "PSRL"
    bayesian = True

    def __init__(self, reward_prior_mean: float = PAPER_REWARD_PRIOR_MEAN) -> None:
        self.reward_prior_mean = reward_prior_mean

    def plan(self, stats: MDPStats, horizon: int, rng: np.random.Generator) -> np.ndarray:
        rewards = stats.reward_posterior_mean(
            self.reward_prior_mean
        ) + stats.reward_posterior_std * rng.standard_normal(stats.visits.shape)
        gammas = rng.standard_gamma(stats.transition_counts + 1.0)  # Dirichlet via normalised Gamma draws
        return value_iteration(rewards, gammas / gammas.sum(axis=-1, keepdims=True), horizon)


class BEBAgent(MDPAgent):
    """Bayesian exploration bonus in the form Duan et al. evaluate (Osband's TabulaRL ``BEB``).

    The posterior-mean model (N(0, 1) reward prior, Dirichlet(1) rows) planned with two bonuses: a
    reward bonus ``1 / (N(s, a) + 2)`` (one over the reward posterior's precision plus one) and a
    transition bonus ``beta H / (1 + S + N(s, a))`` for each step left after this one, with
    ``beta = 2 H^2 scaling``. ``scaling`` is tuned on training tasks over the authors' grid, 21 points
    spaced evenly in log from 1e-4 to 1. Kolter & Ng's (2009) original bonus is :class:`KolterNgBEBAgent`.
    """

    name, label = "beb", "BEB"
    bayesian = True
    parameter = "scaling"
    grid = tuple(float(x) for x in np.exp(np.linspace(np.log(1e-4), 0.0, 21)))

    def __init__(self, scaling: float = 1e-4, reward_prior_mean: float = PAPER_REWARD_PRIOR_MEAN) -> None:
        if scaling < 0:
            raise ValueError(f"BEB: scaling must be >= 0, got {scaling}")
        self.scaling = scaling
        self.reward_prior_mean = reward_prior_mean

    def plan(self, stats: MDPStats, horizon: int, rng: np.random.Generator) -> np.ndarray:
        n_states = stats.transition_counts.shape[-1]
        beta = 2.0 * horizon**2 * self.scaling
        reward_bonus = 1.0 / (PRIOR_REWARD_PRECISION + stats.visits + 1.0)  # 1 / (posterior precision + 1)
        rewards = stats.reward_posterior_mean(self.reward_prior_mean) + reward_bonus
        transition_bonus = beta * horizon / (1.0 + n_states + stats.visits)  # Dirichlet(1) row: S + N pseudo-counts
        return value_iteration(rewards, stats.transition_posterior_mean(), horizon, transition_bonus)


class KolterNgBEBAgent(MDPAgent):
    """Bayesian exploration bonus of Kolter & Ng (2009): the posterior-mean model with reward
    ``E[R(s, a)] + beta / (1 + N(s, a))``; beta tuned on training tasks."""

    name, label = "beb_kolter_ng", "BEB (Kolter & Ng)"
    bayesian = True
    parameter = "beta"
    grid = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)

    def __init__(self, beta: float = 1.0, reward_prior_mean: float = PAPER_REWARD_PRIOR_MEAN) -> None:
        if beta < 0:
            raise ValueError(f"BEB: beta must be >= 0, got {beta}")
        self.beta = beta
        self.reward_prior_mean = reward_prior_mean

    def plan(self, stats: MDPStats, horizon: int, rng: np.random.Generator) -> np.ndarray:
        rewards = stats.reward_posterior_mean(self.reward_prior_mean) + self.beta / (1.0 + stats.visits)
        return value_iteration(rewards, stats.transition_posterior_mean(), horizon)


class UCRL2Agent(MDPAgent):
    """UCRL2 (Jaksch et al. 2010), planned per episode over the episode horizon.

    Empirical model (reward mean ``r_hat``, transition frequencies ``p_hat``; unvisited pairs: 0 and
    uniform) with the confidence widths of the paper, both scaled by ``scale`` (tuned on training
    tasks, as Duan et al. tune the confidence scaling; the rewards here are unbounded Gaussians):

        r_hat + scale sqrt(7 ln(2 S A t / delta) / (2 max(1, N))),
        ||p - p_hat||_1 <= scale sqrt(14 S ln(2 A t / delta) / max(1, N)),

    with ``t`` the steps taken in the trial; the optimistic model is solved by extended value iteration.
    """

    name, label = "ucrl2", "UCRL2"
    parameter = "scale"
    grid = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0)
    delta = 0.1

    def __init__(self, scale: float = 1.0) -> None:
        if scale < 0:
            raise ValueError(f"UCRL2: scale must be >= 0, got {scale}")
        self.scale = scale

    def plan(self, stats: MDPStats, horizon: int, rng: np.random.Generator) -> np.ndarray:
        _, n_states, n_actions = stats.visits.shape
        t = max(stats.steps, 1)
        visits = np.maximum(stats.visits, 1.0)
        r_hat = stats.reward_sum / visits
        seen = stats.visits[..., None] > 0
        p_hat = np.where(seen, stats.transition_counts / visits[..., None], 1.0 / n_states)
        reward_width = np.sqrt(7.0 * np.log(2.0 * n_states * n_actions * t / self.delta) / (2.0 * visits))
        transition_width = np.sqrt(14.0 * n_states * np.log(2.0 * n_actions * t / self.delta) / visits)
        return optimistic_value_iteration(
            r_hat + self.scale * reward_width, p_hat, self.scale * transition_width, horizon
        )


MDP_AGENTS: dict[str, Callable[[], MDPAgent]] = {
    "random": RandomMDPAgent,
    "psrl": PSRLAgent,
    "beb": BEBAgent,
    "ucrl2": UCRL2Agent,
    "epsilon_greedy": EpsilonGreedyMDPAgent,
    "greedy": GreedyMDPAgent,
    "psrl_true_prior": lambda: PSRLAgent(reward_prior_mean=TRUE_REWARD_PRIOR_MEAN),
    "greedy_true_prior": lambda: GreedyMDPAgent(reward_prior_mean=TRUE_REWARD_PRIOR_MEAN, prior_weight=1.0),
    "myopic_true_prior": lambda: MyopicMDPAgent(reward_prior_mean=TRUE_REWARD_PRIOR_MEAN, prior_weight=1.0),
    "beb_kolter_ng": KolterNgBEBAgent,
}
"""Tabular-MDP baselines by name, in the column order of Duan et al.'s Table 2, then agents with no published
counterpart: the Bayesian agents with the task distribution's own N(1, 1) reward prior, and Kolter & Ng's BEB."""


def play_mdp(
    agent: MDPAgent,
    transitions: np.ndarray,
    reward_means: np.ndarray,
    *,
    episodes: int,
    horizon: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Play one trial of ``episodes`` episodes on each task at once.

    ``transitions (B, S, A, S)`` and ``reward_means (B, S, A)`` are the tasks' own tables; steps are
    drawn as ``TabularMDPEnv.step`` draws them (Normal reward, next state by inverse CDF). Returns the
    trial returns ``(B,)`` and the per-episode returns ``(B, episodes)``.
    """
    trials, n_states, n_actions = reward_means.shape
    cumulative = np.cumsum(transitions, axis=-1)
    stats = MDPStats.empty(trials, n_states, n_actions)
    rows = np.arange(trials)
    episode_returns = np.zeros((trials, episodes))
    for episode in range(episodes):
        q = agent.plan(stats, horizon, rng)
        states = np.zeros(trials, dtype=np.int64)  # episodes start in state 0
        for h in range(horizon):
            actions = agent.act(q[:, h], states, rng)
            rewards = reward_means[rows, states, actions] + rng.standard_normal(trials)
            row_cdf = cumulative[rows, states, actions]  # (B, S)
            draw = rng.random(trials) * row_cdf[:, -1]
            next_states = np.minimum((row_cdf <= draw[:, None]).sum(axis=1), n_states - 1)
            stats.record(states, actions, rewards, next_states)
            episode_returns[:, episode] += rewards
            states = next_states
    return episode_returns.sum(axis=1), episode_returns
