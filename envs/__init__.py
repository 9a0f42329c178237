"""memrl's built-in task environments, registered under the ``memrl/`` Gymnasium namespace.

Importing ``memrl`` (or ``memrl.envs``) registers them, so ``gymnasium.make("memrl/Bandit-v0")``
works afterwards. Every env implements the task protocol of :mod:`memrl.tasks.protocol`.
"""

from __future__ import annotations

import gymnasium as gym
from memrl.envs.bandit import BanditEnv
from memrl.envs.barcode import BarcodeBanditEnv
from memrl.envs.point_nav import PointNavEnv
from memrl.envs.tabular_mdp import TabularMDPEnv

__all__ = ["BanditEnv", "BarcodeBanditEnv", "PointNavEnv", "TabularMDPEnv", "BUILTIN_ENV_IDS"]

BUILTIN_ENV_IDS = ("memrl/Bandit-v0", "memrl/TabularMDP-v0", "memrl/PointNav-v0", "memrl/BarcodeBandit-v0")


def _register() -> None:
    registry = gym.envs.registration.registry
    if "memrl/Bandit-v0" not in registry:
        gym.register(id="memrl/Bandit-v0", entry_point="memrl.envs.bandit:BanditEnv")
    if "memrl/TabularMDP-v0" not in registry:
        gym.register(id="memrl/TabularMDP-v0", entry_point="memrl.envs.tabular_mdp:TabularMDPEnv")
    if "memrl/PointNav-v0" not in registry:
        gym.register(id="memrl/PointNav-v0", entry_point="memrl.envs.point_nav:PointNavEnv")
    if "memrl/BarcodeBandit-v0" not in registry:
        gym.register(id="memrl/BarcodeBandit-v0", entry_point="memrl.envs.barcode:BarcodeBanditEnv")


_register()
