"""Memory-augmented neural network with least-recently-used access (Santoro et al. 2016).

Sequences are time-major ``(T, B, ...)``; the memory state is batch-first ``(B, ...)`` (see
:mod:`memrl.memory.base`). Reads are content-based (:func:`memrl.memory.ntm.content_addressing`);
writes follow :func:`lrua_write_weights` and :func:`least_used`, which tests hit directly.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from memrl.memory.base import MemoryCore, reset_state
from memrl.memory.ntm import (
    SHARP_STRENGTH,
    Controller,
    check_addressing_init,
    content_addressing,
    heat_map,
    initial_memory,
    inverse_softplus,
    memory_bias,
    read,
)


def least_used(usage: torch.Tensor, count: int) -> torch.Tensor:
    """``w_lu(i) = 1`` if ``w_u(i)`` is among the ``count`` smallest usages, else 0; ``(B, N) -> (B, N)``.

    Santoro et al.: ``w_lu(i) = 0 if w_u(i) > m(w_u, n) else 1``, ``m(v, n)`` the n-th smallest element
    of v and n the number of reads. Ties go to the lower slot index, so exactly ``count`` slots are 1.
    """
    ramp = torch.arange(usage.shape[-1], device=usage.device, dtype=usage.dtype) * 1e-7  # tie-break by index
    index = torch.topk(usage.detach() + ramp, count, dim=-1, largest=False).indices  # (B, count)
    return torch.zeros_like(usage).scatter_(-1, index, 1.0)


def lrua_write_weights(
    gate: torch.Tensor, previous_read: torch.Tensor, previous_least_used: torch.Tensor
) -> torch.Tensor:
    """``w^w_t = sigmoid(alpha) w^r_{t-1} + (1 - sigmoid(alpha)) w^lu_{t-1}``; gate ``(B, R)`` = sigmoid(alpha),
    previous read weights ``(B, R, N)``, previous least-used weights ``(B, N)`` -> ``(B, R, N)``."""
    return torch.lerp(previous_least_used.unsqueeze(1), previous_read, gate.unsqueeze(-1))


class MANNState(NamedTuple):
    controller_h: torch.Tensor  # (B, H)
    controller_c: torch.Tensor  # (B, H)
    memory: torch.Tensor  # (B, N, M)
    read_weights: torch.Tensor  # (B, R, N)
    write_weights: torch.Tensor  # (B, R, N)
    usage: torch.Tensor  # (B, N) usage weights w^u
    least_used: torch.Tensor  # (B, N) least-used weights w^lu (R ones)
    reads: torch.Tensor  # (B, R*M), fed to the controller at the next step
    gates: torch.Tensor  # (B, R) write gates sigmoid(alpha) of the last step


class MANNCore(MemoryCore):
    """MANN with least-recently-used access (Santoro et al. 2016, "One-shot learning with
    memory-augmented neural networks", section 3.1) as a memory core.

    Per step t, from the controller output ``h_t = controller([x_t, r_{t-1}], h_{t-1})`` each of the R
    heads emits a key ``k``, a key strength ``beta`` and a gate ``alpha``::

        w^w_t = sigmoid(alpha) w^r_{t-1} + (1 - sigmoid(alpha)) w^lu_{t-1}     write weights
        M_t(i) = [w^lu_{t-1}(i) = 0] M_{t-1}(i) + sum_heads w^w_t(i) k_t        least-used slot cleared, then written
        w^r_t(i) = softmax_i(beta K(k_t, M_t(i)))                                  cosine content read
        w^u_t = gamma w^u_{t-1} + sum_heads (w^r_t + w^w_t)                         usage, decay gamma = usage_decay
        w^lu_t(i) = 1 if w^u_t(i) is among the R smallest usages else 0
        r_t = sum_i w^r_t(i) M_t(i)

    As in the paper, the key is both the read key and the written vector. One deviation: a learned
    key strength ``beta = softplus(.)`` scales the cosine (the paper's softmax of the raw cosine, in
    [-1, 1], cannot put more than ``e^2 / (e^2 + N - 1)`` of the weight on one slot). The output is
    ``[h_t, r_t]`` (``output_size = H + R*M``). With ``addressing_init="sharp"`` the heads start with
    beta = 10 and sigmoid(alpha) = 0.05, so that writes go to the least-used slots instead of half
    into the spread previous read weighting, which blurs every row alike. As the paper's equations
    have it, ``w^lu`` marks the R least-used slots and every head writes towards all of them, so each
    step fills R slots with the sum of the heads' keys: N slots hold about the last N / R steps.
    """

    options_section = "memory"  # its options come from policy.memory

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        slots: int = 32,
        width: int = 16,
        read_heads: int = 1,
        shift_range: int = 1,  # NTM only; accepted so both cores take the same policy.memory options
        controller: Literal["lstm", "feedforward"] = "lstm",
        init: Literal["constant", "learned"] = "constant",
        usage_decay: float = 0.95,
        addressing_init: Literal["neutral", "sharp"] = "neutral",
    ) -> None:
        super().__init__()
        check_addressing_init(addressing_init)
        if num_layers != 1:
            raise ValueError(f"the MANN controller has one layer; got policy.num_layers={num_layers}")
        if read_heads > slots:
            raise ValueError(f"read_heads ({read_heads}) cannot exceed slots ({slots})")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.slots, self.width, self.read_heads, self.usage_decay = slots, width, read_heads, usage_decay
        self.output_size = hidden_size + read_heads * width
        self.controller = Controller(
            input_size=input_size, read_size=read_heads * width, hidden_size=hidden_size, kind=controller
        )
        self.heads = nn.Linear(hidden_size, read_heads * (width + 2))  # per head: key (M) | beta | alpha
        self.memory_bias = memory_bias(init, slots, width)
        if addressing_init == "sharp":  # reads by content with beta 10, writes to the least-used slots
            with torch.no_grad():
                bias = self.heads.bias.view(read_heads, width + 2)
                bias[:, width] = inverse_softplus(SHARP_STRENGTH)
                bias[:, width + 1] = -3.0  # sigmoid(alpha) = 0.05

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> MANNState:
        R, N = self.read_heads, self.slots
        memory = initial_memory(self.memory_bias, batch, N, self.width, device)
        read_weights = torch.full((batch, R, N), 1.0 / N, device=device)
        usage = torch.zeros(batch, N, device=device)
        return MANNState(
            controller_h=torch.zeros(batch, self.hidden_size, device=device),
            controller_c=torch.zeros(batch, self.hidden_size, device=device),
            memory=memory,
            read_weights=read_weights,
            write_weights=torch.zeros(batch, R, N, device=device),
            usage=usage,
            least_used=least_used(usage, R),
            reads=read(read_weights, memory).reshape(batch, -1),  # (B, R, M) -> (B, R*M)
            gates=torch.zeros(batch, R, device=device),
        )

    def forward(self, x: torch.Tensor, state: MANNState, starts: torch.Tensor) -> tuple[torch.Tensor, MANNState]:
        T, B = starts.shape
        R, M = self.read_heads, self.width
        projected = self.controller.project_inputs(x).unbind(0)  # (T, B, G) -> T x (B, G); one backward, not T
        reset_steps = starts.any(dim=1).tolist()
        initial = self.initial_state(B, x.device) if any(reset_steps) else None
        outputs, read_outputs = [], []
        for t in range(T):
            if reset_steps[t]:
                assert initial is not None
                state = reset_state(state, initial, starts[t])
            h, c = self.controller.step(projected[t], state.reads, state.controller_h, state.controller_c)
            head = self.heads(h).view(B, R, M + 2)  # (B, R(M+2)) -> (B, R, M+2)
            keys = head[..., :M]
            gate = torch.sigmoid(head[..., M + 1])
            write_weights = lrua_write_weights(gate, state.read_weights, state.least_used)
            kept = (1.0 - state.least_used).unsqueeze(-1)  # (B, N, 1): zero the least-used slot(s) first
            memory = torch.baddbmm(state.memory * kept, write_weights.transpose(1, 2), keys)  # (B,N,R)@(B,R,M)
            read_weights = content_addressing(keys, F.softplus(head[..., M]), memory)
            usage = self.usage_decay * state.usage + (read_weights + write_weights).sum(dim=1)
            reads = read(read_weights, memory).reshape(B, R * M)  # (B, R, M) -> (B, R*M)
            state = MANNState(h, c, memory, read_weights, write_weights, usage, least_used(usage, R), reads, gate)
            outputs.append(h)
            read_outputs.append(reads)
        y = torch.cat([torch.stack(outputs), torch.stack(read_outputs)], dim=-1)  # (T, B, H + R*M)
        return y, state

    def memory_views(self, states: list[MANNState]) -> dict[str, np.ndarray]:
        """Slot x time heat maps of env 0 over ``states`` (one per step), each ``(rows, T)`` in [0, 1]:
        weightings and usage scaled by their maximum over the trial (so that spread weightings still
        show their structure), gates unscaled."""
        steps = len(states)
        read_weights = torch.stack([s.read_weights[0] for s in states], dim=-1)  # (R, N, T)
        write_weights = torch.stack([s.write_weights[0] for s in states], dim=-1)  # (R, N, T)
        usage = torch.stack([s.usage[0] for s in states], dim=-1)  # (N, T)
        gates = torch.stack([s.gates[0] for s in states], dim=-1)  # (R, T)
        return {
            "read_weights": heat_map(read_weights.reshape(-1, steps).cpu().numpy()),
            "write_weights": heat_map(write_weights.reshape(-1, steps).cpu().numpy()),
            "usage": heat_map(usage.cpu().numpy()),
            "least_used": heat_map(torch.stack([s.least_used[0] for s in states], dim=-1).cpu().numpy(), scale=1.0),
            "gates": heat_map(gates.cpu().numpy(), scale=1.0),
        }
