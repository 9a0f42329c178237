"""Neural Turing Machine memory core (Graves, Wayne & Danihelka 2014, sections 3.1-3.3).

Sequences are time-major ``(T, B, ...)``; the memory state is batch-first, ``(B, ...)``, so the
buffer, trainer and checkpoints handle it like any other core's state (see :mod:`memrl.memory.base`).

The addressing math lives in small pure functions (:func:`content_addressing`, :func:`interpolate`,
:func:`circular_shift`, :func:`sharpen`, :func:`read`, :func:`erase_add_write`) that operate on a
batch of heads at once: weightings are ``(B, H, N)`` for ``H`` heads over ``N`` slots, memories
``(B, N, M)``. The only Python loop is the one over time, and it runs every head in one batched call.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from memrl.memory.base import MemoryCore, reset_state

#: Added to norms and weightings before dividing or taking logs, so that zero vectors stay finite.
EPSILON = 1e-6


# ----------------------------------------------------------------------------------------------
# Addressing and memory access (Graves et al. 2014, section 3.3), batched over heads
# ----------------------------------------------------------------------------------------------
def cosine_similarity(keys: torch.Tensor, memory: torch.Tensor, eps: float = EPSILON) -> torch.Tensor:
    """``K[u, v] = u.v / (|u| |v|)`` between keys ``(B, H, M)`` and memory rows ``(B, N, M)`` -> ``(B, H, N)``."""
    dots = torch.bmm(keys, memory.transpose(1, 2))  # (B, H, M) @ (B, M, N) -> (B, H, N)
    norms = keys.norm(dim=-1).unsqueeze(-1) * memory.norm(dim=-1).unsqueeze(-2)  # (B, H, 1) * (B, 1, N)
    return dots / (norms + eps)


def content_addressing(keys: torch.Tensor, strengths: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """Eq. (5): ``w_c(i) = softmax_i(beta K[k, M(i)])``; keys ``(B, H, M)``, strengths beta ``(B, H)`` >= 0."""
    return torch.softmax(strengths.unsqueeze(-1) * cosine_similarity(keys, memory), dim=-1)


def interpolate(content: torch.Tensor, previous: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """Eq. (7): ``w_g = g w_c + (1 - g) w_{t-1}``; weightings ``(B, H, N)``, gate g ``(B, H)`` in [0, 1]."""
    return torch.lerp(previous, content, gate.unsqueeze(-1))


def circular_shift(weights: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Eq. (8): ``w~(i) = sum_j w(j) s(i - j)`` with indices mod N (a circular convolution).

    ``weights`` is ``(B, H, N)``; ``shift`` is ``(B, H, 2S + 1)``, a distribution over the shifts
    ``-S, ..., +S`` in that order, so ``shift[..., S + 1] = 1`` moves every weight one slot up.
    """
    reach = (shift.shape[-1] - 1) // 2
    if reach == 0:
        return weights * shift
    n = weights.shape[-1]
    # padded[q] = w[(q - S) mod N]; window j of length N holds w[(i + j - S) mod N] = w[i - k] for shift k = S - j.
    padded = torch.cat([weights[..., n - reach :], weights, weights[..., :reach]], dim=-1)  # (B, H, N + 2S)
    windows = padded.unfold(-1, n, 1)  # (B, H, N + 2S) -> (B, H, 2S + 1, N)
    return torch.matmul(shift.flip(-1).unsqueeze(-2), windows).squeeze(-2)  # (B, H, 1, 2S+1) @ (B, H, 2S+1, N)


def sharpen(weights: torch.Tensor, gamma: torch.Tensor, eps: float = EPSILON) -> torch.Tensor:
    """Eq. (9): ``w(i) = w~(i)^gamma / sum_j w~(j)^gamma`` for gamma ``(B, H)`` >= 1, as a softmax of
    ``gamma log w~`` so that large gammas neither overflow nor underflow."""
    return torch.softmax(gamma.unsqueeze(-1) * torch.log(weights + eps), dim=-1)


def address(
    memory: torch.Tensor,
    previous: torch.Tensor,
    *,
    keys: torch.Tensor,
    strengths: torch.Tensor,
    gate: torch.Tensor,
    shift: torch.Tensor,
    gamma: torch.Tensor,
) -> torch.Tensor:
    """Figure 2 of Graves et al.: content -> interpolation -> convolutional shift -> sharpening."""
    content = content_addressing(keys, strengths, memory)
    return sharpen(circular_shift(interpolate(content, previous, gate), shift), gamma)


def read(weights: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """Eq. (2): ``r = sum_i w(i) M(i)``; weightings ``(B, R, N)``, memory ``(B, N, M)`` -> ``(B, R, M)``."""
    return torch.bmm(weights, memory)


def erase_add_write(
    memory: torch.Tensor, weights: torch.Tensor, erase: torch.Tensor, add: torch.Tensor
) -> torch.Tensor:
    """Eqs. (3)-(4): ``M(i) <- M(i) (1 - w(i) e) + w(i) a`` for one write head.

    ``memory`` ``(B, N, M)``, ``weights`` ``(B, N)``, ``erase`` ``(B, M)`` in [0, 1], ``add`` ``(B, M)``.
    """
    column = weights.unsqueeze(-1)  # (B, N) -> (B, N, 1)
    erased = memory * (1.0 - torch.bmm(column, erase.unsqueeze(1)))  # (B, N, 1) @ (B, 1, M) -> (B, N, M)
    return torch.baddbmm(erased, column, add.unsqueeze(1))


# ----------------------------------------------------------------------------------------------
# Controller shared by the NTM and MANN cores
# ----------------------------------------------------------------------------------------------
class Controller(nn.Module):
    """The controller network of a memory-augmented core: an LSTM cell or a one-layer tanh network.

    Its input at step t is ``[x_t, r_{t-1}]`` (the read vectors of the previous step, Graves et al.
    Figure 1). The ``x`` part is projected for the whole sequence in one matrix product before the
    time loop; each step then adds the projection of ``[r_{t-1}, h_{t-1}]``.
    """

    def __init__(
        self, *, input_size: int, read_size: int, hidden_size: int, kind: Literal["lstm", "feedforward"]
    ) -> None:
        super().__init__()
        if kind not in ("lstm", "feedforward"):
            raise ValueError(f"unknown controller {kind!r}; choose 'lstm' or 'feedforward'")
        self.kind, self.hidden_size = kind, hidden_size
        gates = 4 * hidden_size if kind == "lstm" else hidden_size
        recurrent = read_size + (hidden_size if kind == "lstm" else 0)
        self.input_proj = nn.Linear(input_size, gates)
        self.recurrent_weight = nn.Parameter(torch.empty(gates, recurrent))  # acts on [r_{t-1}, h_{t-1}]
        bound = 1.0 / math.sqrt(hidden_size)
        nn.init.uniform_(self.recurrent_weight, -bound, bound)
        if kind == "lstm":
            with torch.no_grad():  # gate order [input, forget, output, cell]; forget bias 1 (Jozefowicz et al. 2015)
                self.input_proj.bias[hidden_size : 2 * hidden_size] = 1.0

    def project_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """``(T, B, I) -> (T, B, G)``: the input part of every step's pre-activations, in one product."""
        return self.input_proj(x)

    def step(
        self, projected: torch.Tensor, reads: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step from the projected input ``(B, G)`` and the previous reads ``(B, R*M)``."""
        if self.kind == "feedforward":
            return torch.tanh(torch.addmm(projected, reads, self.recurrent_weight.t())), c
        pre = torch.addmm(projected, torch.cat([reads, h], dim=-1), self.recurrent_weight.t())  # (B, 4H)
        gates = torch.sigmoid(pre[:, : 3 * self.hidden_size])
        input_gate, forget_gate, output_gate = gates.chunk(3, dim=-1)
        c = torch.addcmul(forget_gate * c, input_gate, torch.tanh(pre[:, 3 * self.hidden_size :]))
        return output_gate * torch.tanh(c), c


#: Content key strength beta that ``addressing_init="sharp"`` starts every head with.
SHARP_STRENGTH = 10.0


def inverse_softplus(y: float) -> float:
    """The x with ``softplus(x) = y`` (y > 0), for setting a bias so that an output starts at y."""
    return y + math.log(-math.expm1(-y))


def check_addressing_init(addressing_init: str) -> None:
    if addressing_init not in ("neutral", "sharp"):
        raise ValueError(f"unknown addressing_init {addressing_init!r}; choose 'neutral' or 'sharp'")


def memory_bias(init: str, slots: int, width: int) -> nn.Parameter | None:
    """The learned initial memory ``(N, M)`` for ``init="learned"``; None for the small constant."""
    if init not in ("constant", "learned"):
        raise ValueError(f"unknown memory init {init!r}; choose 'constant' or 'learned'")
    if init == "constant":
        return None
    bound = 1.0 / math.sqrt(slots + width)
    return nn.Parameter(torch.empty(slots, width).uniform_(-bound, bound))


def initial_memory(
    bias: torch.Tensor | None, batch: int, slots: int, width: int, device: torch.device | str
) -> torch.Tensor:
    """``(B, N, M)``: the learned bias expanded over the batch, or the small constant ``EPSILON``."""
    if bias is not None:
        return bias.unsqueeze(0).expand(batch, slots, width)
    return torch.full((batch, slots, width), EPSILON, device=device)


def heat_map(values: np.ndarray, scale: float | None = None) -> np.ndarray:
    """A ``(rows, time)`` array as a float32 image in [0, 1]: divided by ``scale`` (default: its max)."""
    values = np.asarray(values, dtype=np.float32)
    top = float(values.max()) if scale is None else scale
    return np.clip(values / top, 0.0, 1.0) if top > 0 else np.zeros_like(values)


class NTMState(NamedTuple):
    controller_h: torch.Tensor  # (B, H) controller output (zeros for a feed-forward controller before step 1)
    controller_c: torch.Tensor  # (B, H) LSTM cell (unused by a feed-forward controller)
    memory: torch.Tensor  # (B, N, M)
    read_weights: torch.Tensor  # (B, R, N)
    write_weights: torch.Tensor  # (B, N)
    reads: torch.Tensor  # (B, R*M) read vectors, fed to the controller at the next step
    gates: torch.Tensor  # (B, R+1) interpolation gates g of the last step (read heads, then the write head)


class NTMCore(MemoryCore):
    """Neural Turing Machine (Graves, Wayne & Danihelka 2014, sections 3.1-3.3) as a memory core.

    Per step t, with controller output ``h_t = controller([x_t, r_{t-1}], h_{t-1})``, each of the R read
    heads and the write head emits ``k, beta, g, s, gamma`` and addresses memory ``M_{t-1}``::

        w_c = softmax(beta * cos(k, M_{t-1}(i)))          content, beta = softplus(.)
        w_g = g w_c + (1 - g) w_{t-1}                      interpolation, g = sigmoid(.)
        w~(i) = sum_j w_g(j) s(i - j)                      circular shift over -S..S, s = softmax(.)
        w(i) = w~(i)^gamma / sum_j w~(j)^gamma              sharpening, gamma = 1 + softplus(.)

    The write head erases and adds: ``M_t(i) = M_{t-1}(i) (1 - w^w(i) e) + w^w(i) a`` with
    ``e = sigmoid(.)``, ``a = tanh(.)``; the read heads then read ``r_t = sum_i w^r(i) M_t(i)``.
    The core's output is ``[h_t, r_t]`` (``output_size = H + R*M``). Memory starts as a small
    constant or a learned bias (``init``); head weightings start on slot 0. With
    ``addressing_init="sharp"`` the heads' biases start them on a program (see
    :meth:`_sharpen_addressing`) instead of spread weightings, whose writes blur every row alike.
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
        shift_range: int = 1,
        controller: Literal["lstm", "feedforward"] = "lstm",
        init: Literal["constant", "learned"] = "constant",
        usage_decay: float = 0.95,  # MANN only; accepted so both cores take the same policy.memory options
        addressing_init: Literal["neutral", "sharp"] = "neutral",
    ) -> None:
        super().__init__()
        if num_layers != 1:
            raise ValueError(f"the NTM controller has one layer; got policy.num_layers={num_layers}")
        check_addressing_init(addressing_init)
        if not 0 <= shift_range < slots:
            raise ValueError(f"shift_range must be in [0, slots), got {shift_range}")
        if addressing_init == "sharp" and shift_range == 0:
            raise ValueError("addressing_init='sharp' moves the write head a slot per step; it needs shift_range >= 1")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.slots, self.width, self.read_heads, self.shift_range = slots, width, read_heads, shift_range
        self.output_size = hidden_size + read_heads * width
        self.controller = Controller(
            input_size=input_size, read_size=read_heads * width, hidden_size=hidden_size, kind=controller
        )
        # Per head: key (M) | beta, gamma (2) | gate (1) | shift logits (2S + 1); then erase (M), add (M).
        self.head_size = width + 3 + 2 * shift_range + 1
        self.heads = nn.Linear(hidden_size, (read_heads + 1) * self.head_size + 2 * width)
        self.memory_bias = memory_bias(init, slots, width)
        if addressing_init == "sharp":
            self._sharpen_addressing()

    @torch.no_grad()
    def _sharpen_addressing(self) -> None:
        """Bias every head towards one program at the start: read heads by content (beta 10, gate
        0.95, no shift, gamma about 1), the write head by location (gate 0.05, shift +1, gamma 10), so
        that each step writes a fresh slot and reads find rows by what they hold."""
        M, P, S = self.width, self.head_size, self.shift_range
        bias = self.heads.bias[: (self.read_heads + 1) * P].view(self.read_heads + 1, P)
        bias[:, M] = inverse_softplus(SHARP_STRENGTH)  # beta
        bias[:-1, M + 1] = -5.0  # read heads: gamma = 1 + softplus(-5) = 1.007
        bias[:-1, M + 2] = 3.0  # read heads: gate sigmoid(3) = 0.95, mostly content
        bias[:-1, M + 3 + S] = 5.0  # read heads: shift 0
        bias[-1, M + 1] = inverse_softplus(SHARP_STRENGTH - 1.0)  # write head: gamma = 10
        bias[-1, M + 2] = -3.0  # write head: gate 0.05, mostly the previous weighting
        bias[-1, M + 3 + S + 1] = 5.0  # write head: shift +1 (the constructor asks for shift_range >= 1)

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> NTMState:
        weights = torch.zeros(batch, self.read_heads + 1, self.slots, device=device)
        weights[:, :, 0] = 1.0  # every head starts on slot 0, so shifts have a place to move from
        memory = initial_memory(self.memory_bias, batch, self.slots, self.width, device)
        return NTMState(
            controller_h=torch.zeros(batch, self.hidden_size, device=device),
            controller_c=torch.zeros(batch, self.hidden_size, device=device),
            memory=memory,
            read_weights=weights[:, : self.read_heads],
            write_weights=weights[:, self.read_heads],
            reads=read(weights[:, : self.read_heads], memory).reshape(batch, -1),  # (B, R, M) -> (B, R*M)
            gates=torch.zeros(batch, self.read_heads + 1, device=device),
        )

    def forward(self, x: torch.Tensor, state: NTMState, starts: torch.Tensor) -> tuple[torch.Tensor, NTMState]:
        T, B = starts.shape
        R, M, P = self.read_heads, self.width, self.head_size
        projected = self.controller.project_inputs(x).unbind(0)  # (T, B, G) -> T x (B, G); one backward, not T
        reset_steps = starts.any(dim=1).tolist()
        initial = self.initial_state(B, x.device) if any(reset_steps) else None
        h, c, memory, reads, gate = state.controller_h, state.controller_c, state.memory, state.reads, state.gates
        weights = torch.cat([state.read_weights, state.write_weights.unsqueeze(1)], dim=1)  # (B, R+1, N)
        outputs, read_outputs = [], []
        for t in range(T):
            if reset_steps[t]:
                assert initial is not None
                h, c, memory, weights, reads, gate = reset_state(
                    (h, c, memory, weights, reads, gate),
                    (
                        initial.controller_h,
                        initial.controller_c,
                        initial.memory,
                        torch.cat([initial.read_weights, initial.write_weights.unsqueeze(1)], dim=1),
                        initial.reads,
                        initial.gates,
                    ),
                    starts[t],
                )
            h, c = self.controller.step(projected[t], reads, h, c)
            params = self.heads(h)  # (B, (R+1)P + 2M)
            head = params[:, : (R + 1) * P].view(B, R + 1, P)  # (B, (R+1)P) -> (B, R+1, P)
            strengths = F.softplus(head[..., M : M + 2])  # beta and gamma - 1, (B, R+1, 2)
            gate = torch.sigmoid(head[..., M + 2])
            weights = address(
                memory,
                weights,
                keys=head[..., :M],
                strengths=strengths[..., 0],
                gate=gate,
                shift=torch.softmax(head[..., M + 3 :], dim=-1),
                gamma=1.0 + strengths[..., 1],
            )
            erase_add = params[:, (R + 1) * P :]
            memory = erase_add_write(
                memory, weights[:, R], torch.sigmoid(erase_add[:, :M]), torch.tanh(erase_add[:, M:])
            )
            reads = read(weights[:, :R], memory).reshape(B, R * M)  # (B, R, M) -> (B, R*M)
            outputs.append(h)
            read_outputs.append(reads)
        y = torch.cat([torch.stack(outputs), torch.stack(read_outputs)], dim=-1)  # (T, B, H + R*M)
        return y, NTMState(h, c, memory, weights[:, :R], weights[:, R], reads, gate)

    def memory_views(self, states: list[NTMState]) -> dict[str, np.ndarray]:
        """Slot x time heat maps of env 0 over ``states`` (one per step), each ``(rows, T)`` in [0, 1]:
        weightings scaled by their maximum over the trial (so that spread weightings still
        show their structure), gates unscaled."""
        read_weights = torch.stack([s.read_weights[0] for s in states], dim=-1)  # (R, N, T)
        write_weights = torch.stack([s.write_weights[0] for s in states], dim=-1)  # (N, T)
        gates = torch.stack([s.gates[0] for s in states], dim=-1)  # (R+1, T)
        return {
            "read_weights": heat_map(read_weights.reshape(-1, len(states)).cpu().numpy()),
            "write_weights": heat_map(write_weights.cpu().numpy()),
            "gates": heat_map(gates.cpu().numpy(), scale=1.0),
        }
