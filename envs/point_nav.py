"""2-D point robot navigating to a hidden goal (the meta-RL "point navigation" benchmark).

A task is a goal on the upper half of the unit circle (angle ~ U[0, pi]). The robot starts at the
origin each episode, moves by ``max_step * clip(action, -1, 1)`` and is paid the negative distance
to the goal every step, so a first episode must search while a later one can go straight there.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from memrl.tasks.protocol import Task


class PointNavEnv(gym.Env[np.ndarray, np.ndarray]):
    """Point robot with a hidden goal; episodes last ``horizon`` steps (a time limit: truncated)."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, horizon: int = 20, max_step: float = 0.1, goal_radius: float = 1.0) -> None:
        if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1:
            raise ValueError(f"PointNavEnv: horizon must be an integer >= 1, got {horizon!r}")
        if not max_step > 0 or not goal_radius > 0:
            raise ValueError("PointNavEnv: max_step and goal_radius must be positive")
        self.horizon, self.max_step, self.goal_radius = horizon, float(max_step), float(goal_radius)
        bound = goal_radius + horizon * max_step
        self.observation_space = spaces.Box(low=-bound, high=bound, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)
        self._goal: np.ndarray | None = None
        self._pos = np.zeros(2)
        self._t = 0

    # -- task protocol -----------------------------------------------------------------
    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        angles = rng.uniform(0.0, np.pi, size=n)
        goals = self.goal_radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        return [{"goal": g.tolist()} for g in goals]

    def set_task(self, task: Task) -> None:
        goal = np.asarray(task.get("goal", ()), dtype=np.float64)
        if goal.shape != (2,) or not np.all(np.isfinite(goal)):
            raise ValueError(f"PointNavEnv.set_task: expected {{'goal': [x, y]}}, got {task!r}")
        self._goal = goal

    def get_task(self) -> Task:
        if self._goal is None:
            raise RuntimeError("PointNavEnv.get_task: no task set yet; call set_task() or reset() first")
        return {"goal": self._goal.tolist()}

    # -- gymnasium API -----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self._goal is None:
            self.set_task(self.sample_tasks(1, self.np_random)[0])
        self._pos = np.zeros(2)
        self._t = 0
        return self._pos.astype(np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        assert self._goal is not None, "call reset() before step()"
        self._pos = self._pos + self.max_step * np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        self._t += 1
        reward = -float(np.linalg.norm(self._pos - self._goal))
        return self._pos.astype(np.float32), reward, False, self._t >= self.horizon, {}
