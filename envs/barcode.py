"""Contextual "barcode" bandit, the recurring-task benchmark of Ritter et al. (2018).

A task is a random binary *barcode* (the context, shown in every observation) and the one arm of
``n_arms`` that pays for it. A trial is ``episodes_per_trial`` one-pull episodes (10 in the paper)
with the same barcode. An agent without memory across trials must find the arm again every
trial; an agent that recalls the trial it played under the same barcode can pull the right arm
from the first pull. Run it with ``tasks.schedule: recurring`` so barcodes come back.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from memrl.tasks.protocol import Task


class BarcodeBanditEnv(gym.Env[np.ndarray, np.int64]):
    """One pull per episode; the observation is the barcode, the reward 1 (with ``reward_prob``) on its arm.

    Task: ``{"barcode": [0/1] * barcode_bits, "arm": int}``. Other arms pay 0.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, n_arms: int = 10, barcode_bits: int = 16, reward_prob: float = 1.0) -> None:
        if not isinstance(n_arms, int) or isinstance(n_arms, bool) or n_arms < 2:
            raise ValueError(f"BarcodeBanditEnv: n_arms must be an integer >= 2, got {n_arms!r}")
        if not isinstance(barcode_bits, int) or isinstance(barcode_bits, bool) or barcode_bits < 1:
            raise ValueError(f"BarcodeBanditEnv: barcode_bits must be a positive integer, got {barcode_bits!r}")
        if not 0.0 < float(reward_prob) <= 1.0:
            raise ValueError(f"BarcodeBanditEnv: reward_prob must be in (0, 1], got {reward_prob!r}")
        self.n_arms, self.barcode_bits, self.reward_prob = n_arms, barcode_bits, float(reward_prob)
        self.observation_space = spaces.Box(low=0.0, high=1.0, shape=(barcode_bits,), dtype=np.float32)
        self.action_space = spaces.Discrete(n_arms)
        self._barcode: np.ndarray | None = None
        self._arm = 0

    # -- task protocol -----------------------------------------------------------------
    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        barcodes = rng.integers(0, 2, size=(n, self.barcode_bits))
        arms = rng.integers(0, self.n_arms, size=n)
        return [{"barcode": code.tolist(), "arm": int(arm)} for code, arm in zip(barcodes, arms, strict=True)]

    def set_task(self, task: Task) -> None:
        try:
            barcode = np.asarray(task["barcode"], dtype=np.float32)
            arm = task["arm"]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"BarcodeBanditEnv.set_task: expected {{'barcode': [{self.barcode_bits} bits], 'arm': int}}: {err}"
            ) from None
        if barcode.shape != (self.barcode_bits,) or not np.all((barcode == 0) | (barcode == 1)):
            raise ValueError(f"BarcodeBanditEnv.set_task: barcode must be {self.barcode_bits} bits (0 or 1)")
        if not isinstance(arm, (int, np.integer)) or not 0 <= int(arm) < self.n_arms:
            raise ValueError(f"BarcodeBanditEnv.set_task: arm must be an integer in [0, {self.n_arms}), got {arm!r}")
        self._barcode, self._arm = barcode, int(arm)

    def get_task(self) -> Task:
        if self._barcode is None:
            raise RuntimeError("BarcodeBanditEnv.get_task: no task set yet; call set_task() or reset() first")
        return {"barcode": self._barcode.astype(int).tolist(), "arm": self._arm}

    # -- gymnasium API -----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self._barcode is None:
            self.set_task(self.sample_tasks(1, self.np_random)[0])
        assert self._barcode is not None
        return self._barcode.copy(), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict]:
        assert self._barcode is not None, "call reset() before step()"
        hit = int(action) == self._arm
        reward = float(hit and (self.reward_prob >= 1.0 or self.np_random.random() < self.reward_prob))
        return self._barcode.copy(), reward, True, False, {}
