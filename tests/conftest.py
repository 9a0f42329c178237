"""Shared helpers: tiny env configs and models sized for a 2-core CPU (imported as ``conftest``).

Torch runs single-threaded: on a shared 2-core machine two OpenMP threads contending with another
process made a 10-step GRU update 40x slower, and every model here is tiny anyway.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

import memrl
from memrl.config import EnvConfig, PPOConfig, TaskConfig
from memrl.tasks.vec import make_sampler, make_vec_env

torch.set_num_threads(1)

SMALL_TASKS = TaskConfig(num_test_tasks=20)


def build_model(
    env_cfg: EnvConfig,
    ppo_cfg: PPOConfig | None = None,
    *,
    seed: int = 0,
    tasks: TaskConfig = SMALL_TASKS,
    **policy_kwargs: Any,
) -> memrl.MetaPPO:
    """A MetaPPO on a fresh training vector env of ``env_cfg`` (hidden size 16 unless given)."""
    sampler = make_sampler(env_cfg, tasks, seed)
    env = make_vec_env(env_cfg, sampler, seed=seed)
    policy_kwargs = {"hidden_size": 16, **policy_kwargs}
    return memrl.MetaPPO(
        "RL2Policy",
        env,
        config=ppo_cfg or PPOConfig(n_steps=10, num_minibatches=2, n_epochs=2),
        policy_kwargs=policy_kwargs,
        seed=seed,
        device="cpu",
    )


def bandit_env_cfg(**overrides: Any) -> EnvConfig:
    """A 3-armed bandit, 5 pulls per trial, 4 envs (override any field)."""
    base = EnvConfig(id="memrl/Bandit-v0", kwargs={"n_arms": 3}, episodes_per_trial=5, num_envs=4)
    return dataclasses.replace(base, **overrides)


def point_nav_env_cfg(**overrides: Any) -> EnvConfig:
    """PointNav with 4-step episodes, 3 episodes per trial, 3 envs (override any field)."""
    base = EnvConfig(id="memrl/PointNav-v0", kwargs={"horizon": 4}, episodes_per_trial=3, num_envs=3)
    return dataclasses.replace(base, **overrides)
