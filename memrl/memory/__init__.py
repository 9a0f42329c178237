"""Memory cores behind one interface (see :mod:`memrl.memory.base`)."""

from __future__ import annotations

from typing import Any

from memrl.memory.base import MemoryCore, State, clone_state, index_state, map_state, reset_state
from memrl.memory.mann import MANNCore, MANNState
from memrl.memory.ntm import NTMCore, NTMState
from memrl.memory.rnn import GRUCore, GRUState, LSTMCore, LSTMState
from memrl.memory.transformer import TransformerCore, TransformerState

CORES: dict[str, type[MemoryCore]] = {
    "gru": GRUCore,
    "lstm": LSTMCore,
    "ntm": NTMCore,
    "mann": MANNCore,
    "transformer": TransformerCore,
}


def build_core(
    name: str,
    *,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    memory: dict[str, Any] | None = None,
    transformer: dict[str, Any] | None = None,
) -> MemoryCore:
    """Build a memory core by its config name.

    ``memory`` holds the external-memory options (``policy.memory``) and ``transformer`` the
    attention options (``policy.transformer``); each core takes the section it names in its
    ``options_section`` (NTM, MANN: ``memory``; transformer: ``transformer``; GRU, LSTM: none).
    """
    try:
        cls = CORES[name]
    except KeyError:
        raise ValueError(f"unknown memory core {name!r}; choose one of {', '.join(CORES)}") from None
    sections = {"memory": memory, "transformer": transformer}
    options = dict(sections.get(getattr(cls, "options_section", "")) or {})
    return cls(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, **options)


__all__ = [
    "CORES",
    "GRUCore",
    "GRUState",
    "LSTMCore",
    "LSTMState",
    "MANNCore",
    "MANNState",
    "MemoryCore",
    "NTMCore",
    "NTMState",
    "State",
    "TransformerCore",
    "TransformerState",
    "build_core",
    "clone_state",
    "index_state",
    "map_state",
    "reset_state",
]
