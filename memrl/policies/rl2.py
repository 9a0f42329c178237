"""The RL² actor-critic (Duan et al. 2016; Wang et al. 2016).

Input at step t: ``[o_t, a_{t-1}, r_{t-1}, episode_start_t]`` (built by the trial wrapper), so the
memory core can infer the task from its own experience. The core's state carries across the
episodes of a trial and is reset only at trial starts (``starts``). On top of the core sit an
action head and a value head; the critic either shares the core (``shared_critic``) or has a
core of its own.

Values are predicted in normalised units when value normalisation is on; :attr:`value_norm` keeps
the running statistics (a buffer, so it is saved with the weights) and converts back.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from gymnasium import spaces
from torch import nn

from memrl.memory import MemoryCore, State, build_core
from memrl.memory.episodic import EpLSTMCore, Recall, kernel_read
from memrl.policies.distributions import build_head

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU}


class PolicyState(NamedTuple):
    actor: State
    critic: State | None  # None when the critic shares the actor's core


class PolicyOutput(NamedTuple):
    params: torch.Tensor  # (T, B, P) action distribution parameters
    values: torch.Tensor  # (T, B) value estimates (normalised units)
    state: PolicyState
    query: torch.Tensor | None = None  # (T, B, K) episodic keys of the steps (None without a store)
    memory_value: torch.Tensor | None = None  # (B, V) what the store would keep of the last step
    features: torch.Tensor | None = None  # (T, B, F) the actor's memory features (what the heads read)


class RunningNorm(nn.Module):
    """Running mean and variance of value targets (Welford/Chan merge), kept as buffers."""

    mean: torch.Tensor
    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, epsilon: float = 1e-4) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("var", torch.ones(()))
        self.register_buffer("count", torch.tensor(epsilon))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        batch_mean, batch_var, batch_count = x.mean(), x.var(unbiased=False), x.numel()
        delta = batch_mean - self.mean
        total = self.count + batch_count
        new_mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + delta.pow(2) * self.count * batch_count / total
        self.mean.copy_(new_mean)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    @property
    def std(self) -> torch.Tensor:
        return self.var.clamp(min=1e-8).sqrt()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean


def _mlp(sizes: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=False):
        layers += [nn.Linear(fan_in, fan_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


class _HyperLayer(nn.Module):
    """``z = act(W(m) x + b(m))``: a layer on the step's input ``x`` whose weights a linear hypernetwork
    computes from the memory features ``m`` (the recurrent hypernetwork of Beck et al. 2023).

    The memory then acts on the input multiplicatively: a memory that holds, say, each state's best
    action can pick it out for the current state with a single layer. Bias-HyperInit (Beck et al.):
    the hypernetwork's bias holds an ordinarily initialised layer and its weights start small, so
    at first the layer is a plain one and the memory's say in it grows with training.
    """

    def __init__(self, memory_size: int, input_size: int, size: int, activation: str) -> None:
        super().__init__()
        self.input_size, self.size = input_size, size
        self.hyper = nn.Linear(memory_size, (input_size + 1) * size)
        base = nn.Linear(input_size, size)
        with torch.no_grad():
            self.hyper.weight.mul_(0.1)
            self.hyper.bias.copy_(torch.cat([base.weight.t().reshape(-1), base.bias]))
        self.act = ACTIVATIONS[activation]()

    def forward(self, memory: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``memory (..., F)`` and ``x (..., D)`` -> ``(..., size)``."""
        params = self.hyper(memory)  # (..., (D + 1) * Z)
        weight = params[..., : self.input_size * self.size].unflatten(-1, (self.input_size, self.size))  # (..., D, Z)
        bias = params[..., self.input_size * self.size :]  # (..., Z)
        return self.act((x.unsqueeze(-2) @ weight).squeeze(-2) + bias)


class _Tower(nn.Module):
    """Input embedding -> memory core -> optional layer norm."""

    def __init__(
        self,
        *,
        obs_dim: int,
        core: str,
        hidden_size: int,
        num_layers: int,
        embed_sizes: list[int],
        layer_norm: bool,
        activation: str,
        memory: dict[str, Any] | None,
        transformer: dict[str, Any] | None = None,
        recall_size: int = 0,
        reinstate: bool = False,
    ) -> None:
        super().__init__()
        self.embed: nn.Module = _mlp([obs_dim, *embed_sizes], activation) if embed_sizes else nn.Identity()
        core_in = (embed_sizes[-1] if embed_sizes else obs_dim) + recall_size  # recalled value joins the input
        if reinstate:
            self.core: MemoryCore = EpLSTMCore(input_size=core_in, hidden_size=hidden_size, memory_size=recall_size)
        else:
            self.core = build_core(
                core,
                input_size=core_in,
                hidden_size=hidden_size,
                num_layers=num_layers,
                memory=memory,
                transformer=transformer,
            )
        self.norm: nn.Module = nn.LayerNorm(self.core.output_size) if layer_norm else nn.Identity()

    def forward(
        self, obs: torch.Tensor, state: State, starts: torch.Tensor, recalled: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, State]:
        """Core features after the norm, raw core output, new state."""
        x = self.embed(obs)
        if recalled is not None:
            x = torch.cat([x, recalled], dim=-1)
        output, state = self.core(x, state, starts)
        return self.norm(output), output, state


class RL2Policy(nn.Module):
    """Recurrent actor-critic for meta-RL; any core of :mod:`memrl.memory` can be its memory."""

    def __init__(
        self,
        *,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        core: str = "gru",
        hidden_size: int = 128,
        num_layers: int = 1,
        embed_sizes: list[int] | tuple[int, ...] = (),
        head_sizes: list[int] | tuple[int, ...] = (),
        layer_norm: bool = False,
        shared_critic: bool = True,
        activation: str = "tanh",
        log_std_init: float = 0.0,
        memory: dict[str, Any] | None = None,
        transformer: dict[str, Any] | None = None,
        episodic: dict[str, Any] | None = None,
        episodic_layout: dict[str, list[int]] | None = None,
        reward_head: bool = False,
        hyper_size: int = 0,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        self.observation_space, self.action_space = observation_space, action_space
        obs_dim = int(spaces.flatdim(observation_space))
        tower_kwargs = dict(
            obs_dim=obs_dim,
            core=core,
            hidden_size=hidden_size,
            num_layers=num_layers,
            embed_sizes=list(embed_sizes),
            layer_norm=layer_norm,
            activation=activation,
            memory=memory,
            transformer=transformer,
        )
        self.episodic = dict(episodic or {})
        self.episodic_on = self.episodic.get("mode", "off") != "off"
        self.hidden_size = hidden_size
        recall_size = 0
        if self.episodic_on:
            # Keys from the context (the env's observation) or the whole input, by a learned encoder.
            if episodic_layout is None:
                raise ValueError(
                    "an episodic policy needs episodic_layout (the trial wrapper's obs and episode_start slots)"
                )
            self.episodic_layout = {k: list(v) for k, v in episodic_layout.items()}
            start, stop = (
                self.episodic_layout["obs"] if self.episodic.get("key_source", "obs") == "obs" else (0, obs_dim)
            )
            self._context = slice(start, stop)
            key_size = int(self.episodic.get("key_size", 32))
            self.key_encoder = nn.Sequential(nn.Linear(stop - start, key_size), nn.Tanh())
            self.kernel_delta = float(self.episodic.get("kernel_delta", 1e-3))
            recall_size = hidden_size
        self.recall_size = recall_size
        self.actor = _Tower(
            **tower_kwargs,  # type: ignore[arg-type]
            recall_size=recall_size,
            reinstate=self.episodic.get("mode") == "reinstate",
        )
        self.critic: _Tower | None = None if shared_critic else _Tower(**tower_kwargs)  # type: ignore[arg-type]
        features = self.actor.core.output_size
        self.actor_hyper: _HyperLayer | None = None
        self.critic_hyper: _HyperLayer | None = None
        if hyper_size > 0:
            self.actor_hyper = _HyperLayer(features, obs_dim, hyper_size, activation)
            if self.critic is not None:
                self.critic_hyper = _HyperLayer(self.critic.core.output_size, obs_dim, hyper_size, activation)
            features = hyper_size
        # MLPs between the core and the heads (SB3's net_arch pi / vf), one for the actor, one for the critic.
        self.actor_mlp: nn.Module = _mlp([features, *head_sizes], activation) if head_sizes else nn.Identity()
        self.critic_mlp: nn.Module = _mlp([features, *head_sizes], activation) if head_sizes else nn.Identity()
        features = head_sizes[-1] if head_sizes else features
        self.action_head = build_head(features, action_space, log_std_init)
        self.value_head = nn.Linear(features, 1)
        nn.init.orthogonal_(self.value_head.weight, gain=1.0)
        nn.init.zeros_(self.value_head.bias)
        self.value_norm = RunningNorm()
        # Auxiliary reward prediction (MetaPPO's ``reward_coef``): r_t from the memory features and a_t.
        self._action_size = int(spaces.flatdim(action_space))
        self.reward_head: nn.Module | None = None
        if reward_head:
            size = head_sizes[-1] if head_sizes else hidden_size
            self.reward_head = nn.Sequential(
                _mlp([self.actor.core.output_size + self._action_size, size], activation), nn.Linear(size, 1)
            )

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> PolicyState:
        critic = None if self.critic is None else self.critic.core.initial_state(batch, device)
        return PolicyState(self.actor.core.initial_state(batch, device), critic)

    def episodic_query(self, obs: torch.Tensor) -> torch.Tensor:
        """Keys of the episodic store for ``obs (..., D)``: ``(..., key_size)``."""
        return self.key_encoder(obs[..., self._context])

    def forward(
        self, obs: torch.Tensor, state: PolicyState, starts: torch.Tensor, recall: Recall | None = None
    ) -> PolicyOutput:
        """Unroll over ``obs`` of shape ``(T, B, D)`` with reset mask ``starts`` of shape ``(T, B)``.

        With an episodic store, ``recall`` holds each step's neighbours (``(T, B, k, ...)``) and the
        recalled value ``kernel_read(query, recall)`` joins the core's input (differentiable in the
        query); without ``recall`` the recalled value is zero (an empty store).
        """
        query = recalled = None
        if self.episodic_on:
            query = self.episodic_query(obs)  # (T, B, K)
            if recall is None:
                recalled = obs.new_zeros(*obs.shape[:-1], self.recall_size)
            else:
                recalled = kernel_read(query, recall, self.kernel_delta)  # (T, B, V)
        features, output, actor_state = self.actor(obs, state.actor, starts, recalled)
        head_input = features if self.actor_hyper is None else self.actor_hyper(features, obs)
        params = self.action_head(self.actor_mlp(head_input))
        critic_state = None
        if self.critic is not None:
            critic_features, _, critic_state = self.critic(obs, state.critic, starts)
            if self.critic_hyper is not None:
                critic_features = self.critic_hyper(critic_features, obs)
        else:
            critic_features = head_input
        values = self.value_head(self.critic_mlp(critic_features)).squeeze(-1)  # (T, B, 1) -> (T, B)
        memory_value = self._memory_value(actor_state, output[-1]) if self.episodic_on else None
        return PolicyOutput(params, values, PolicyState(actor_state, critic_state), query, memory_value, features)

    def predict_reward(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The auxiliary head's reward prediction ``(T, B)`` for ``actions`` taken on ``features (T, B, F)``."""
        if self.reward_head is None:
            raise RuntimeError("this policy has no reward head: build it with reward_head=True (ppo.reward_coef > 0)")
        if isinstance(self.action_space, spaces.Discrete):
            encoded = nn.functional.one_hot(actions.long(), self._action_size).to(features.dtype)
        else:
            encoded = actions.reshape(*actions.shape[:2], -1).to(features.dtype)
        return self.reward_head(torch.cat([features, encoded], dim=-1)).squeeze(-1)

    def _memory_value(self, state: State, last_output: torch.Tensor) -> torch.Tensor:
        """What the store keeps of a step: the (last layer's) LSTM cell state, else the core's output."""
        cell = getattr(state, "c", None)
        if isinstance(cell, torch.Tensor):
            return cell if cell.dim() == 2 else cell[:, -1]  # (B, L, H) -> (B, H)
        return last_output[..., : self.recall_size]

    def values(self, obs: torch.Tensor, state: PolicyState, recall: Recall | None = None) -> torch.Tensor:
        """Denormalised value of ``obs`` ``(B, D)`` read from ``state`` without resetting it (``recall``: the
        episodic store's neighbours, ``(1, B, k, ...)``, for a policy that reads one)."""
        starts = torch.zeros(1, obs.shape[0], dtype=torch.bool, device=obs.device)
        output = self(obs.unsqueeze(0), state, starts, recall)
        return self.value_norm.denormalize(output.values[0])
