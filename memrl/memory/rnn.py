"""GRU and LSTM memory cores with a fused fast path.

Within a segment that has no reset after its first step, the whole segment goes through one call
of PyTorch's fused ``nn.GRU`` / ``nn.LSTM`` kernel; the Python loop runs only over segments
(see :func:`memrl.memory.base.reset_segments`). For RL² rollouts whose trials all start together
this is a single call per minibatch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from memrl.memory.base import MemoryCore, reset_segments


class GRUState(NamedTuple):
    h: torch.Tensor  # (B, num_layers, hidden)


class LSTMState(NamedTuple):
    h: torch.Tensor  # (B, num_layers, hidden)
    c: torch.Tensor  # (B, num_layers, hidden)


class _RNNCore(MemoryCore):
    rnn: nn.GRU | nn.LSTM

    def __init__(self, *, input_size: int, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.output_size = hidden_size

    def _zeros(self, batch: int, device: torch.device | str) -> torch.Tensor:
        return torch.zeros(batch, self.num_layers, self.hidden_size, device=device)

    def _cell_weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        rnn = self.rnn
        return rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0  # type: ignore[return-value]

    @staticmethod
    def _orthogonal_init(rnn: nn.Module) -> None:
        for name, param in rnn.named_parameters():
            if "weight" in name:
                nn.init.orthogonal_(param)
            else:
                nn.init.zeros_(param)


class GRUCore(_RNNCore):
    """Gated recurrent unit (Cho et al. 2014); the memory of RL² (Duan et al. 2016)."""

    def __init__(self, *, input_size: int, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        self.rnn = nn.GRU(input_size, hidden_size, num_layers)
        self._orthogonal_init(self.rnn)

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> GRUState:
        return GRUState(self._zeros(batch, device))

    def forward(self, x: torch.Tensor, state: GRUState, starts: torch.Tensor) -> tuple[torch.Tensor, GRUState]:
        if x.shape[0] == 1 and self.num_layers == 1:  # one rollout step: the cell kernel skips nn.GRU's overhead
            keep = (~starts[0]).to(x.dtype).unsqueeze(-1)  # (B,) -> (B, 1)
            h1 = torch.gru_cell(x[0], state.h[:, 0] * keep, *self._cell_weights())
            return h1.unsqueeze(0), GRUState(h1.unsqueeze(1))
        h = state.h.transpose(0, 1)  # (B, L, H) -> (L, B, H)
        outputs = []
        for t0, t1 in reset_segments(starts):
            keep = (~starts[t0]).to(h.dtype).view(1, -1, 1)  # (B,) -> (1, B, 1): zero the flagged envs
            y, h = self.rnn(x[t0:t1], (h * keep).contiguous())
            outputs.append(y)
        y = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=0)
        return y, GRUState(h.transpose(0, 1))


class LSTMCore(_RNNCore):
    """Long short-term memory (Hochreiter & Schmidhuber 1997); RL² of Wang et al. 2016."""

    def __init__(self, *, input_size: int, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        self.rnn = nn.LSTM(input_size, hidden_size, num_layers)
        self._orthogonal_init(self.rnn)
        # Forget-gate bias of 1 (Jozefowicz et al. 2015) so memory is kept by default.
        for name, param in self.rnn.named_parameters():
            if name.startswith("bias_ih"):
                param.data[hidden_size : 2 * hidden_size] = 1.0

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> LSTMState:
        return LSTMState(self._zeros(batch, device), self._zeros(batch, device))

    def forward(self, x: torch.Tensor, state: LSTMState, starts: torch.Tensor) -> tuple[torch.Tensor, LSTMState]:
        if x.shape[0] == 1 and self.num_layers == 1:  # one rollout step: the cell kernel skips nn.LSTM's overhead
            keep = (~starts[0]).to(x.dtype).unsqueeze(-1)  # (B,) -> (B, 1)
            h1, c1 = torch.lstm_cell(x[0], (state.h[:, 0] * keep, state.c[:, 0] * keep), *self._cell_weights())
            return h1.unsqueeze(0), LSTMState(h1.unsqueeze(1), c1.unsqueeze(1))
        h, c = state.h.transpose(0, 1), state.c.transpose(0, 1)  # (B, L, H) -> (L, B, H)
        outputs = []
        for t0, t1 in reset_segments(starts):
            keep = (~starts[t0]).to(h.dtype).view(1, -1, 1)
            y, (h, c) = self.rnn(x[t0:t1], ((h * keep).contiguous(), (c * keep).contiguous()))
            outputs.append(y)
        y = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=0)
        return y, LSTMState(h.transpose(0, 1), c.transpose(0, 1))
