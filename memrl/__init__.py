"""memrl: meta-reinforcement learning with memory, on Gymnasium.

Train agents that learn to learn: a recurrent or memory-augmented policy is meta-trained across a
distribution of tasks so that, in a new task, it adapts within a few episodes from its memory.
"""

from __future__ import annotations

import memrl.envs  # noqa: F401  (registers memrl/Bandit-v0, memrl/TabularMDP-v0, memrl/PointNav-v0)
from memrl.algos import MetaPPO
from memrl.config import Config, ConfigError, load_config
from memrl.policies import RL2Policy
from memrl.tasks import TaskSampler, TrialWrapper

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "MetaPPO", "RL2Policy", "TaskSampler", "TrialWrapper", "__version__", "load_config"]
