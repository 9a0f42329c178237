"""Memory cores behind one interface (see :mod:`memrl.memory.base`)."""

from __future__ import annotations

from memrl.memory.base import MemoryCore, State, clone_state, index_state, map_state, reset_state
from memrl.memory.rnn import GRUCore, GRUState, LSTMCore, LSTMState

CORES: dict[str, type[MemoryCore]] = {"gru": GRUCore, "lstm": LSTMCore}


def build_core(name: str, *, input_size: int, hidden_size: int, num_layers: int = 1) -> MemoryCore:
    """Build a memory core by its config name."""
    try:
        cls = CORES[name]
    except KeyError:
        raise ValueError(f"unknown memory core {name!r}; choose one of {', '.join(CORES)}") from None
    return cls(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)


__all__ = [
    "CORES",
    "GRUCore",
    "GRUState",
    "LSTMCore",
    "LSTMState",
    "MemoryCore",
    "State",
    "build_core",
    "clone_state",
    "index_state",
    "map_state",
    "reset_state",
]
