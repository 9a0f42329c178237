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
        raise CheckpointError(f"no checkpoint at {str(path)!r}; pass a run directory or a checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} is not a readable memrl checkpoint: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a memrl checkpoint (expected format {FORMAT!r})")
    return payload
