"""Random tabular MDP, the setup of Duan et al. 2016 (RL², Table 2).

A task is a finite MDP: transition probabilities ``P[s, a] ~ Dirichlet(1)`` and mean rewards
``R[s, a] ~ N(1, 1)``; a step pays ``r ~ N(R[s, a], 1)``. Episodes start in state 0 and last
``horizon`` steps. With ``context_bits > 0`` each task also carries a random binary context that
every observation shows after the one-hot state (the recurring variant, for episodic recall).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from memrl.tasks.protocol import Task


class TabularMDPEnv(gym.Env[np.ndarray, np.int64]):
    """Random finite MDP with one-hot state observations.

    The fixed horizon is part of the problem (the paper's episodes are exactly ``horizon`` steps),
    so the last step of an episode is ``terminated``, not a time-limit truncation.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, n_states: int = 10, n_actions: int = 5, horizon: int = 10, context_bits: int = 0) -> None:
        for name, value, low in (
            ("n_states", n_states, 2),
            ("n_actions", n_actions, 2),
            ("horizon", horizon, 1),
            ("context_bits", context_bits, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"TabularMDPEnv: {name} must be an integer >= {low}, got {value!r}")
        self.n_states, self.n_actions, self.horizon = n_states, n_actions, horizon
        self.context_bits = context_bits
        self.observation_space = spaces.Box(low=0.0, high=1.0, shape=(n_states + context_bits,), dtype=np.float32)
        self.action_space = spaces.Discrete(n_actions)
        self._transitions: np.ndarray | None = None  # (S, A, S)
        self._cumulative: np.ndarray | None = None  # (S, A, S) cumulative sums for fast sampling
        self._reward_means: np.ndarray | None = None  # (S, A)
        self._one_hot = np.eye(n_states, n_states + context_bits, dtype=np.float32)  # context columns filled per task
        self._state = 0
        self._t = 0

    # -- task protocol -----------------------------------------------------------------
    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        S, A = self.n_states, self.n_actions
        transitions = rng.dirichlet(np.ones(S), size=(n, S, A))
        reward_means = rng.normal(1.0, 1.0, size=(n, S, A))
        tasks: list[Task] = [
            {"transitions": p.tolist(), "reward_means": r.tolist()}
            for p, r in zip(transitions, reward_means, strict=True)
        ]
        if self.context_bits:
            for task, bits in zip(tasks, rng.integers(0, 2, size=(n, self.context_bits)), strict=True):
                task["context"] = bits.tolist()
        return tasks

    def set_task(self, task: Task) -> None:
        S, A = self.n_states, self.n_actions
        try:
            transitions = np.asarray(task["transitions"], dtype=np.float64)
            reward_means = np.asarray(task["reward_means"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"TabularMDPEnv.set_task: expected {{'transitions': {S}x{A}x{S}, 'reward_means': {S}x{A}}}: {err}"
            ) from None
        if transitions.shape != (S, A, S) or reward_means.shape != (S, A):
            raise ValueError(
                f"TabularMDPEnv.set_task: shapes {transitions.shape} and {reward_means.shape}, "
                f"expected ({S}, {A}, {S}) and ({S}, {A})"
            )
        if np.any(transitions < 0) or not np.allclose(transitions.sum(-1), 1.0, atol=1e-6):
            raise ValueError("TabularMDPEnv.set_task: each transitions[s][a] must be a probability vector")
        if self.context_bits:
            context = np.asarray(task.get("context", ()), dtype=np.float32)
            if context.shape != (self.context_bits,):
                raise ValueError(f"TabularMDPEnv.set_task: expected 'context': [{self.context_bits} bits]")
            self._one_hot[:, S:] = context
        self._transitions, self._reward_means = transitions, reward_means
        self._cumulative = np.cumsum(transitions, axis=-1)

    def get_task(self) -> Task:
        if self._transitions is None or self._reward_means is None:
            raise RuntimeError("TabularMDPEnv.get_task: no task set yet; call set_task() or reset() first")
        task: Task = {"transitions": self._transitions.tolist(), "reward_means": self._reward_means.tolist()}
        if self.context_bits:
            task["context"] = self._one_hot[0, self.n_states :].astype(int).tolist()
        return task

    # -- gymnasium API -----------------------------------------------------------------
    def _obs(self) -> np.ndarray:
        return self._one_hot[self._state].copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self._transitions is None:
            self.set_task(self.sample_tasks(1, self.np_random)[0])
        self._state, self._t = 0, 0
        return self._obs(), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict]:
        assert self._cumulative is not None and self._reward_means is not None, "call reset() before step()"
        a = int(action)
        reward = float(self._reward_means[self._state, a] + self.np_random.standard_normal())
        cumulative = self._cumulative[self._state, a]
        next_state = int(np.searchsorted(cumulative, self.np_random.random() * cumulative[-1], side="right"))
        self._state = min(next_state, self.n_states - 1)
        self._t += 1
        return self._obs(), reward, self._t >= self.horizon, False, {}
