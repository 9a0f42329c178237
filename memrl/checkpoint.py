"""Checkpoints: plain tensors and JSON, written atomically, read without unpickling code.

A checkpoint is a ``dict`` of tensors, numbers, strings and nested dicts/lists, saved with
``torch.save``. It is loaded with ``torch.load(weights_only=True)``, which refuses to construct
arbitrary objects (SB3#2281 shows what unpickling a checkpoint can cost). The file is written to
a temporary name in the same folder and renamed over the target, so a crash mid-write never
leaves a torn checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "memrl-checkpoint-v1"


class CheckpointError(RuntimeError):
    """A checkpoint could not be read or does not belong to this version of memrl."""


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save({"format": FORMAT, **payload}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        if (path.parent / "config.yaml").is_file():
            raise CheckpointError(
                f"no checkpoint at {str(path)!r}: the run in {path.parent} stopped before writing one; train it again"
            )
        raise CheckpointError(f"no checkpoint at {str(path)!r}; pass a run directory or a checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (a failed copy or write); restore it from a backup or train again")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "Weights only load failed" in reason:  # torch's advice to unpickle code is not for memrl checkpoints
            reason = "not a torch file of tensors and plain data"
        raise CheckpointError(
            f"{path} is damaged or not a memrl checkpoint (truncated or overwritten? torch.load: {reason}); "
            "restore it from a backup or train again"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a memrl checkpoint (expected format {FORMAT!r})")
    return payload
