"""The one memory interface shared by every core (GRU, LSTM, NTM, MANN, episodic store).

Tensor layout is time-major throughout memrl: sequences are ``(T, B, ...)``. Memory *state* tensors
put the batch first, ``(B, ...)``, so the rollout buffer, the trainer, checkpoints and ``predict``
can store, slice and reset any core's state generically.

A core implements

- ``initial_state(batch, device) -> State``: the state of a fresh trial (a typed ``NamedTuple``);
- ``forward(x, state, starts) -> (y, state)``: ``x`` is ``(T, B, input_size)``, ``starts`` is a
  ``(T, B)`` bool mask, and ``starts[t, b]`` means env ``b``'s memory is reset to its initial state
  *before* step ``t`` is processed; ``y`` is ``(T, B, output_size)``.

States may nest (a policy keeps one state per core); :func:`map_state` walks them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

State = Any  # a NamedTuple of tensors (possibly nested); typed per core


def map_state(fn: Callable[..., torch.Tensor], *states: State) -> State:
    """Apply ``fn`` leaf-wise to one or more states of the same structure (None leaves stay None)."""
    first = states[0]
    if first is None:
        return None
    if isinstance(first, torch.Tensor):
        return fn(*states)
    if isinstance(first, tuple):
        mapped = [map_state(fn, *parts) for parts in zip(*states, strict=True)]
        return type(first)(*mapped) if hasattr(first, "_fields") else tuple(mapped)
    raise TypeError(f"memory state leaves must be tensors, tuples or None, got {type(first).__name__}")


def reset_state(state: State, initial: State, mask: torch.Tensor) -> State:
    """Return ``state`` with the rows flagged in ``mask`` (shape ``(B,)``, bool) set to ``initial``."""

    def reset_leaf(current: torch.Tensor, init: torch.Tensor) -> torch.Tensor:
        flags = mask.view(-1, *([1] * (current.dim() - 1)))  # (B,) -> (B, 1, ..., 1)
        return torch.where(flags, init, current)

    return map_state(reset_leaf, state, initial)


def index_state(state: State, index: torch.Tensor | slice) -> State:
    """Select batch rows of a state."""
    return map_state(lambda t: t[index], state)


def detach_state(state: State) -> State:
    return map_state(lambda t: t.detach(), state)


def clone_state(state: State) -> State:
    return map_state(lambda t: t.detach().clone(), state)


def reset_segments(starts: torch.Tensor) -> list[tuple[int, int]]:
    """Split ``range(T)`` into segments ``[t0, t1)`` that have resets only at their first step.

    A sequence with no reset after step 0 is one segment, so the fused RNN kernel runs once; we
    loop over time only around resets (sb3-contrib#113: a per-step loop made LSTM PPO several
    times slower).
    """
    T = starts.shape[0]
    if T <= 1:
        return [(0, T)]
    boundaries = torch.nonzero(starts[1:].any(dim=1)).flatten().add_(1).tolist()
    edges = [0, *boundaries, T]
    return list(zip(edges[:-1], edges[1:], strict=False))


class MemoryCore(nn.Module, ABC):
    """Base class of every memory core; see the module docstring for the contract."""

    input_size: int
    output_size: int

    @abstractmethod
    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> State: ...

    @abstractmethod
    def forward(self, x: torch.Tensor, state: State, starts: torch.Tensor) -> tuple[torch.Tensor, State]: ...
