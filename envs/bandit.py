"""Bernoulli multi-armed bandit, the setup of Duan et al. 2016 (RL², Table 1).

A task is the vector of arm success probabilities, each drawn from U[0, 1]. One episode is one
pull (one step), so a trial of n episodes is n pulls of the same bandit.

With ``context_bits > 0`` each task also carries a random binary context that the observation
shows (the recurring variant, for episodic recall with ``tasks.schedule: recurring``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from memrl.tasks.protocol import Task


class BanditEnv(gym.Env[np.ndarray, np.int64]):
    """k-armed Bernoulli bandit; each episode is a single pull.

    Observation: a constant ``[0.0]`` (all information arrives through the previous action and
    reward that the trial wrapper adds), followed by the task's context bits when ``context_bits > 0``.
    Reward: 1 with probability ``probs[action]``, else 0.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, n_arms: int = 5, context_bits: int = 0) -> None:
        if not isinstance(n_arms, int) or isinstance(n_arms, bool) or n_arms < 2:
            raise ValueError(f"BanditEnv: n_arms must be an integer >= 2, got {n_arms!r}")
        if not isinstance(context_bits, int) or isinstance(context_bits, bool) or context_bits < 0:
            raise ValueError(f"BanditEnv: context_bits must be an integer >= 0, got {context_bits!r}")
        self.n_arms, self.context_bits = n_arms, context_bits
        self.observation_space = spaces.Box(low=0.0, high=1.0, shape=(1 + context_bits,), dtype=np.float32)
        self.action_space = spaces.Discrete(n_arms)
        self._obs = np.zeros(1 + context_bits, dtype=np.float32)
        self._probs: np.ndarray | None = None

    # -- task protocol -----------------------------------------------------------------
    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        probs = rng.uniform(0.0, 1.0, size=(n, self.n_arms))
        tasks: list[Task] = [{"probs": row.tolist()} for row in probs]
        if self.context_bits:
            for task, bits in zip(tasks, rng.integers(0, 2, size=(n, self.context_bits)), strict=True):
                task["context"] = bits.tolist()
        return tasks

    def set_task(self, task: Task) -> None:
        probs = np.asarray(task.get("probs", ()), dtype=np.float64)
        if probs.shape != (self.n_arms,) or not np.all((probs >= 0.0) & (probs <= 1.0)):
            raise ValueError(
                f"BanditEnv.set_task: expected {{'probs': [{self.n_arms} numbers in [0, 1]]}}, got {task!r}"
            )
        if self.context_bits:
            context = np.asarray(task.get("context", ()), dtype=np.float32)
            if context.shape != (self.context_bits,):
                raise ValueError(f"BanditEnv.set_task: expected 'context': [{self.context_bits} bits], got {task!r}")
            self._obs[1:] = context
        self._probs = probs

    def get_task(self) -> Task:
        if self._probs is None:
            raise RuntimeError("BanditEnv.get_task: no task set yet; call set_task() or reset() first")
        task: Task = {"probs": self._probs.tolist()}
        if self.context_bits:
            task["context"] = self._obs[1:].astype(int).tolist()
        return task

    # -- gymnasium API -----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self._probs is None:  # used on its own, outside a trial: draw a task from our own generator
            self.set_task(self.sample_tasks(1, self.np_random)[0])
        return self._obs.copy(), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict]:
        assert self._probs is not None, "call reset() before step()"
        reward = float(self.np_random.random() < self._probs[int(action)])
        return self._obs.copy(), reward, True, False, {}
