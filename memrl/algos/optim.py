"""The optimiser step shared by the trainer and the benchmarks."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def clipped_step(optimizer: torch.optim.Optimizer, parameters: Iterable[torch.nn.Parameter], max_norm: float) -> bool:
    """Clip the gradients to a global norm of ``max_norm`` and step; skip the step if the norm is not finite.

    Clipping rescues a large gradient but not an overflowed one (inf / inf is NaN), and one step on it
    would turn every weight into NaN for good: long BPTT through a memory core can overflow in float32
    while the forward pass is finite. Returns whether the step was taken.
    """
    norm = torch.nn.utils.clip_grad_norm_(list(parameters), max_norm)
    if not torch.isfinite(norm):
        return False
    optimizer.step()
    return True
