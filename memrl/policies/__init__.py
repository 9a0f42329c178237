"""Policies: the RL² recurrent actor-critic and its action heads."""

from memrl.policies.distributions import ActionHead, CategoricalHead, DiagGaussianHead, build_head
from memrl.policies.rl2 import PolicyOutput, PolicyState, RL2Policy, RunningNorm

__all__ = [
    "ActionHead",
    "CategoricalHead",
    "DiagGaussianHead",
    "PolicyOutput",
    "PolicyState",
    "RL2Policy",
    "RunningNorm",
    "build_head",
]
