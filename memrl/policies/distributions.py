"""Action heads: categorical (Discrete) and diagonal Gaussian (Box).

Each head maps core features to one flat parameter tensor and offers ``sample``, ``log_prob`` and
``entropy`` on it. They avoid ``torch.distributions`` objects in the hot path: building one per
step (with argument validation) costs more than the network on small batches.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from gymnasium import spaces
from torch import nn


class ActionHead(nn.Module, ABC):
    """Maps features ``(..., H)`` to distribution parameters ``(..., P)``."""

    @abstractmethod
    def sample(self, params: torch.Tensor, deterministic: bool = False) -> torch.Tensor: ...

    @abstractmethod
    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def entropy(self, params: torch.Tensor) -> torch.Tensor: ...


class CategoricalHead(ActionHead):
    """Softmax policy over ``n`` discrete actions; parameters are logits."""

    def __init__(self, features: int, n: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, n)
        nn.init.orthogonal_(self.linear.weight, gain=0.01)
        nn.init.zeros_(self.linear.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features).log_softmax(dim=-1)  # normalised logits

    def sample(self, params: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        if deterministic:
            return params.argmax(dim=-1)
        # Gumbel-max: argmax(logits + Gumbel noise) is a sample of softmax(logits).
        uniform = torch.rand_like(params).clamp_(min=1e-12)
        return (params - torch.log(-torch.log(uniform))).argmax(dim=-1)

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return params.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        return -(params.exp() * params).sum(dim=-1)


class DiagGaussianHead(ActionHead):
    """Gaussian policy with a state-independent learned log standard deviation.

    Parameters are ``[mean, log_std]`` concatenated on the last axis. Samples are unbounded; the
    trainer clips them to the action space before stepping the env and stores the raw sample.
    """

    def __init__(self, features: int, dim: int, log_std_init: float = 0.0) -> None:
        super().__init__()
        self.dim = dim
        self.mean = nn.Linear(features, dim)
        nn.init.orthogonal_(self.mean.weight, gain=0.01)
        nn.init.zeros_(self.mean.bias)
        self.log_std = nn.Parameter(torch.full((dim,), float(log_std_init)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mean = self.mean(features)
        return torch.cat([mean, self.log_std.expand_as(mean)], dim=-1)

    def sample(self, params: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        mean, log_std = params.split(self.dim, dim=-1)
        if deterministic:
            return mean
        return mean + log_std.exp() * torch.randn_like(mean)

    def log_prob(self, params: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        mean, log_std = params.split(self.dim, dim=-1)
        z = (actions - mean) * torch.exp(-log_std)
        return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(dim=-1)

    def entropy(self, params: torch.Tensor) -> torch.Tensor:
        _, log_std = params.split(self.dim, dim=-1)
        return (log_std + 0.5 * (1.0 + math.log(2 * math.pi))).sum(dim=-1)


def build_head(features: int, action_space: spaces.Space, log_std_init: float = 0.0) -> ActionHead:
    if isinstance(action_space, spaces.Discrete):
        return CategoricalHead(features, int(action_space.n))
    if isinstance(action_space, spaces.Box):
        return DiagGaussianHead(features, int(spaces.flatdim(action_space)), log_std_init)
    raise TypeError(f"memrl policies support Discrete and Box action spaces, got {action_space}")
