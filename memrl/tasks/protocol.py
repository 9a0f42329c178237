"""The task protocol: how memrl talks to a task distribution and a task-settable env.

A *task* is one member of a task distribution (a bandit's arm probabilities, a goal position),
written as a small JSON-serialisable ``dict`` so it can be logged, saved and replayed. This is the
convention of garage, learn2learn, Meta-World and RLlib's ``TaskSettableEnv``:

- ``sample_tasks(n, rng) -> list[task]`` draws ``n`` tasks from the distribution, using only
  the generator it is given (never global ``np.random``; see varibad#18, Metaworld#437);
- ``set_task(task)`` makes the env act out ``task`` from its next ``reset``;
- ``get_task() -> task`` reports the task in force.

Any ``gymnasium.Env`` with these three methods can be meta-trained by memrl unchanged.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

Task = dict[str, Any]


@runtime_checkable
class TaskDistribution(Protocol):
    """Anything that can draw tasks: ``sample_tasks(n, rng)``."""

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]: ...


@runtime_checkable
class TaskSettable(TaskDistribution, Protocol):
    """A task distribution that is also an env able to act out one of its tasks."""

    def set_task(self, task: Task) -> None: ...

    def get_task(self) -> Task: ...


class TaskEnvError(ValueError):
    """A task env broke its Gymnasium contract mid-run: an observation outside its declared shape, or a
    reward that is not a finite number."""


def env_name(env: gym.Env) -> str:
    """The env's registered id, or its class name."""
    return env.spec.id if env.spec is not None else type(env.unwrapped).__name__


def check_task_env(env: gym.Env) -> TaskSettable:
    """Return the unwrapped env if it implements the task protocol, else raise a clear error."""
    base = env.unwrapped
    missing = [name for name in ("sample_tasks", "set_task", "get_task") if not callable(getattr(base, name, None))]
    if missing:
        raise TypeError(
            f"env {env_name(env)!r} ({type(base).__name__}) does not implement the memrl task protocol: "
            f"missing {', '.join(missing)}. Add sample_tasks(n, rng) -> list[dict], set_task(task) and "
            "get_task() -> dict to the env class (see README, 'Your own task environment')."
        )
    return base  # type: ignore[return-value]


def task_key(task: Task) -> str:
    """A stable short key for a task, used to keep train and test task sets disjoint.

    Numeric lists are hashed as float64 bytes (fast for large tasks such as MDP tables); anything
    else through its canonical JSON.
    """
    digest = hashlib.sha1()
    _feed(digest, task)
    return digest.hexdigest()


def task_id(task: Task | None) -> int:
    """A task's identity as a non-negative int64 (the first 60 bits of :func:`task_key`); 0 for no task."""
    return 0 if task is None else int(task_key(task)[:15], 16)


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, dict):
        digest.update(b"{")
        for key in sorted(value):
            digest.update(json.dumps(key).encode())
            _feed(digest, value[key])
        digest.update(b"}")
        return
    if isinstance(value, (list, tuple, np.ndarray)):
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            array = None
        if array is not None:
            digest.update(f"a{array.shape}".encode())
            digest.update(array.tobytes())
            return
        digest.update(b"[")
        for item in value:
            _feed(digest, item)
        digest.update(b"]")
        return
    digest.update(json.dumps(value, default=_to_builtin).encode())


def _to_builtin(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"task value {value!r} of type {type(value).__name__} is not JSON-serialisable")


def to_json_task(task: Task) -> Task:
    """Round-trip a task through JSON so numpy values become plain lists and floats."""
    result: Task = json.loads(json.dumps(task, default=_to_builtin))
    return result
