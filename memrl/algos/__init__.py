"""Algorithms: the PPO meta-trainer and its loss functions."""

from memrl.algos.losses import compute_gae, explained_variance, ppo_clip_loss, value_loss
from memrl.algos.ppo import MetaPPO

__all__ = ["MetaPPO", "compute_gae", "explained_variance", "ppo_clip_loss", "value_loss"]
