"""Training runs: a run directory, a model built from a config, checkpoints, resume.

A run directory holds ``config.yaml`` (the resolved config), ``checkpoint.pt`` (written
atomically, at ``train.checkpoint_every`` steps and at the end) and the TensorBoard event files.
Resuming reloads the checkpoint and continues the same TensorBoard curve at the same global step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback

from memrl.algos.ppo import MetaPPO
from memrl.checkpoint import CheckpointError
from memrl.config import Config, ConfigError, config_from_dict, read_yaml
from memrl.logging import make_logger
from memrl.tasks.sampler import TaskSampler
from memrl.tasks.vec import check_env_runs, make_sampler, make_vec_env

CONFIG_FILE = "config.yaml"
CHECKPOINT_FILE = "checkpoint.pt"


RESUMABLE = (  # what --resume may change, and what a run's config.yaml may differ in from its checkpoint
    "train.total_steps",
    "train.checkpoint_every",
    "train.progress_bar",
    "train.torch_threads",
    "train.device",
    "eval.",
)


def config_changes(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """The dotted keys whose values differ between two config dicts."""
    changes = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes += config_changes(old, new, f"{prefix}{key}.")
        elif old != new:
            changes.append((f"{prefix}{key}", old, new))
    return changes


class PeriodicCheckpoint(BaseCallback):
    """Save the model into the run directory every ``every`` environment steps."""

    def __init__(self, path: Path, every: int) -> None:
        super().__init__()
        self.path, self.every = path, every
        self._next = 0

    def _on_training_start(self) -> None:
        self._next = (self.model.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        if self.model.num_timesteps >= self._next:
            self.model.save(self.path)
            self._next += self.every
        return True


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r} but CUDA is not available here; use 'auto' or 'cpu'")
    return name


def build_model(cfg: Config, sampler: TaskSampler) -> MetaPPO:
    env = make_vec_env(cfg.env, sampler, split="train", seed=cfg.train.seed)
    model = MetaPPO(
        "RL2Policy",
        env,
        config=cfg.ppo,
        policy_kwargs=dataclasses.asdict(cfg.policy),
        seed=cfg.train.seed,
        device=resolve_device(cfg.train.device),
    )
    model.run_config = cfg
    return model


def read_run_config(run_dir: Path) -> Config:
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a memrl run directory (no {CONFIG_FILE}); pass the directory of a run")
    try:
        return config_from_dict(read_yaml(path))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def load_model(run_dir: Path, cfg: Config, sampler: TaskSampler | None = None, with_env: bool = False) -> MetaPPO:
    """Load the run's checkpoint; with ``with_env`` attach a fresh training vector env."""
    checkpoint = run_dir / CHECKPOINT_FILE
    env = make_vec_env(cfg.env, sampler, split="train", seed=cfg.train.seed) if with_env and sampler else None
    model = MetaPPO.load(checkpoint, env=env, device=resolve_device(cfg.train.device))
    if model.saved_run_config is not None:  # a config.yaml edited after training misdescribes the model
        changed = [
            f"{key} ({trained!r} in the checkpoint, {now!r} in {CONFIG_FILE})"
            for key, trained, now in config_changes(model.saved_run_config, cfg.to_dict())
            if not key.startswith(RESUMABLE)
        ]
        if changed:
            raise ConfigError(
                f"{run_dir / CONFIG_FILE} differs from the config {checkpoint} was trained with: {', '.join(changed)}; "
                "restore those values (a new setting needs a new run)"
            )
    model.run_config = cfg
    return model


def train(cfg: Config, run_dir: str | Path, *, resume: bool = False, log_stdout: bool = False) -> MetaPPO:
    """Train ``cfg`` in ``run_dir`` (continuing the run there when ``resume``)."""
    run_dir = Path(run_dir)
    check_directory(run_dir, "--run-dir")
    if cfg.train.torch_threads:
        torch.set_num_threads(cfg.train.torch_threads)
    sampler = make_sampler(cfg.env, cfg.tasks, cfg.train.seed)  # validates env.id and env.kwargs early
    check_env_runs(cfg.env, sampler)
    checkpoint = run_dir / CHECKPOINT_FILE
    if resume:
        if not checkpoint.is_file():
            raise CheckpointError(
                f"cannot resume: {checkpoint} does not exist (the run stopped before writing one); start it again "
                f"with memrl train CONFIG --run-dir {run_dir}"
            )
        model = load_model(run_dir, cfg, sampler, with_env=True)
        if cfg.train.total_steps <= model.num_timesteps:
            print(f"{run_dir}: already trained for {model.num_timesteps} steps; raise train.total_steps to continue")
            return model
    else:
        if checkpoint.exists():
            raise ConfigError(
                f"{run_dir} already holds a run; pass --resume {run_dir} to continue it, or choose another --run-dir"
            )
        if (run_dir / CONFIG_FILE).exists():  # a run that stopped before its first checkpoint: nothing to keep
            stale = list(run_dir.glob("events.out.tfevents.*"))
            for path in stale:
                path.unlink()
            print(f"note: {run_dir} holds no checkpoint (a run that stopped before writing one); starting it afresh")
        model = build_model(cfg, sampler)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(run_dir / CONFIG_FILE, cfg.to_yaml())
    model.set_logger(make_logger(run_dir, stdout=log_stdout))

    callbacks: list[BaseCallback] = []
    if cfg.train.checkpoint_every:
        callbacks.append(PeriodicCheckpoint(checkpoint, cfg.train.checkpoint_every))
    started, steps_before = time.perf_counter(), model.num_timesteps
    try:
        with _sigterm_as_interrupt():
            model.learn(
                cfg.train.total_steps - model.num_timesteps,
                callback=callbacks or None,
                reset_num_timesteps=False,
                progress_bar=cfg.train.progress_bar,
            )
    except KeyboardInterrupt:
        model.save(checkpoint)  # what was learned so far; the rollout in progress is lost
        print(
            f"interrupted after {model.num_timesteps} steps; saved {checkpoint}; continue with: "
            f"memrl train --resume {run_dir}"
        )
        raise
    except Exception as err:  # an env (or anything else) failed mid-run: keep what was learned
        if model.num_timesteps > steps_before:
            model.save(checkpoint)
            print(
                f"training stopped after {model.num_timesteps} steps by {type(err).__name__}; saved {checkpoint}; "
                f"once fixed, continue with: memrl train --resume {run_dir}",
                file=sys.stderr,
            )
        raise
    model.save(checkpoint)
    elapsed = time.perf_counter() - started
    print(f"trained {model.num_timesteps} steps in {elapsed:.0f}s; run directory: {run_dir}")
    return model


def check_directory(directory: Path, option: str) -> None:
    """``directory`` (given as ``option``) must be a directory or creatable as one: checked before any work."""
    for path in (directory, *directory.parents):
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{option} {directory}: {path} is a file; pass a directory")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While training, SIGTERM (a scheduler's stop) ends the run like Ctrl-C: with a checkpoint saved."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: signals stay as they were
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
