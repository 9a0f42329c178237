"""The trial wrapper: k inner episodes of one task, seen from outside as one episode.

Running the k episodes of a trial inside a wrapper makes every vector env, autoreset rule and
"reset memory at episode start" rule correct by construction (AMAGO does the same;
ray-project/ray#6610 shows what happens otherwise):

- ``reset()`` draws the next task from the slot's :class:`~memrl.tasks.sampler.TaskStream`
  (or takes ``options={"task": ...}``), applies it with ``set_task`` and resets the inner env;
- when an inner episode ends, the wrapper resets the inner env *without* drawing a new task;
- after the k-th inner episode the trial is ``terminated``; if ``max_trial_steps`` runs out first,
  it is ``truncated``.

The observation is a flat ``float32`` vector ``[inner obs, previous action, previous reward,
episode_start]`` (layout in :attr:`TrialWrapper.layout`), optionally followed by the trial's
progress ``episode_index / episodes_per_trial`` (``trial_progress``: no task information, only
a clock that spares the memory from counting episodes) and, with ``previous_observation``, by the
inner observation on which the previous action was taken (zeros at a trial's first step), so one
input holds the whole transition ``(s, a, r, s')`` and the memory need not carry ``s`` over a step
to bind the reward to it. Box and Discrete inner observations and
Dict/Tuple spaces (flattened with ``gymnasium.spaces.flatten``); a Discrete previous action is
one-hot, a Box one is its flat value. ``episode_start`` is 1 at the first step of every inner
episode. At an inner reset the previous reward is the *last reward of the episode that just
ended*, so the agent learns whether it succeeded (garage zeroes it and loses that).

``info`` keeps inner ``terminated`` and ``truncated`` apart (``inner_terminated``,
``inner_truncated``); when an inner episode ends inside a trial it also holds
``inner_final_observation`` (the augmented last observation before the inner reset), which the
per-episode advantage mode needs for bootstrapping (``record_inner_final_observation=False``
skips building it; :class:`~memrl.algos.MetaPPO` turns it off when advantages span the trial).
At trial end ``info["episode_returns"]`` lists the return of each inner episode: the adaptation
curve. Every ``info`` (reset and step) also holds ``task_id`` (the task's int64 identity, see
:func:`~memrl.tasks.protocol.task_id`) and ``task_exposure`` (how many earlier trials of this slot
played the same task: 0 for a new task, 1 or more for a recurring one).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from memrl.tasks.protocol import Task, TaskEnvError, check_task_env, env_name, task_id
from memrl.tasks.sampler import TaskStream


def _flat_dim(space: spaces.Space) -> int:
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, (spaces.Box, spaces.Dict, spaces.Tuple, spaces.MultiBinary, spaces.MultiDiscrete)):
        return int(spaces.flatdim(space))
    raise TypeError(f"unsupported space {space}: memrl handles Box, Discrete, Dict, Tuple, MultiBinary, MultiDiscrete")


def check_action_space(space: spaces.Space) -> None:
    """memrl's policies act in a ``Discrete(n)`` space starting at 0 or a one-dimensional ``Box``; else a TypeError."""
    if isinstance(space, spaces.Discrete) and int(space.start) != 0:
        raise TypeError(f"memrl supports Discrete action spaces that start at 0, got {space}; shift the env's actions")
    if isinstance(space, spaces.Box) and len(space.shape) != 1:
        raise TypeError(f"memrl supports one-dimensional Box action spaces, got shape {space.shape}; flatten them")
    if not isinstance(space, (spaces.Discrete, spaces.Box)):
        raise TypeError(f"memrl supports Discrete and Box action spaces, got {space}")


class TrialWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Turn a task-settable env into trials of ``episodes_per_trial`` episodes of one task."""

    def __init__(
        self,
        env: gym.Env,
        *,
        episodes_per_trial: int,
        task_stream: TaskStream | None = None,
        max_trial_steps: int | None = None,
        trial_progress: bool = False,
        previous_observation: bool = False,
        record_inner_final_observation: bool = True,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self,
            episodes_per_trial=episodes_per_trial,
            task_stream=task_stream,
            max_trial_steps=max_trial_steps,
            trial_progress=trial_progress,
            previous_observation=previous_observation,
            record_inner_final_observation=record_inner_final_observation,
        )
        gym.Wrapper.__init__(self, env)
        if episodes_per_trial < 1:
            raise ValueError(f"episodes_per_trial must be >= 1, got {episodes_per_trial}")
        if max_trial_steps is not None and max_trial_steps < 1:
            raise ValueError(f"max_trial_steps must be >= 1 or None, got {max_trial_steps}")
        self._task_env = check_task_env(env)
        self.episodes_per_trial = episodes_per_trial
        self.task_stream = task_stream
        self.max_trial_steps = max_trial_steps
        self.trial_progress = trial_progress
        self.previous_observation = previous_observation
        self.record_inner_final_observation = record_inner_final_observation

        inner_obs, act = env.observation_space, env.action_space
        check_action_space(act)
        self._discrete_obs = isinstance(inner_obs, spaces.Discrete)
        self._box_obs = isinstance(inner_obs, spaces.Box)
        self._discrete_act = isinstance(act, spaces.Discrete)
        obs_dim, act_dim = _flat_dim(inner_obs), _flat_dim(act)
        self.layout: dict[str, slice] = {
            "obs": slice(0, obs_dim),
            "prev_action": slice(obs_dim, obs_dim + act_dim),
            "prev_reward": slice(obs_dim + act_dim, obs_dim + act_dim + 1),
            "episode_start": slice(obs_dim + act_dim + 1, obs_dim + act_dim + 2),
        }
        size = obs_dim + act_dim + 2
        if trial_progress:
            self.layout["trial_progress"] = slice(size, size + 1)
            size += 1
        if previous_observation:
            self.layout["previous_observation"] = slice(size, size + obs_dim)
            size += obs_dim
        self.observation_space = spaces.Box(low=-np.inf, high=np.inf, shape=(size,), dtype=np.float32)
        self.action_space = act
        self._size, self._obs_end, self._reward_index = size, obs_dim, obs_dim + act_dim
        self._episode_index = 0
        self._episode_return = 0.0
        self._episode_returns: list[float] = []
        self._trial_steps = 0
        self._task: Task | None = None
        self._task_id, self._task_exposure = 0, 0
        self._acted_on = np.zeros(obs_dim, dtype=np.float32)  # flat inner obs the last action was taken on

    # -- observation building ------------------------------------------------------------
    def _augment(self, inner_obs: Any, prev_action: Any, prev_reward: float, episode_start: bool) -> np.ndarray:
        buf = np.zeros(self._size, dtype=np.float32)
        if self._discrete_obs:
            buf[int(inner_obs)] = 1.0
        elif self._box_obs:
            try:
                buf[: self._obs_end] = np.ravel(inner_obs)
            except ValueError:
                raise TaskEnvError(
                    f"env {env_name(self.env)!r} returned an observation of shape {np.shape(inner_obs)}, but its "
                    f"observation_space is {self.env.observation_space}; return observations of the declared shape"
                ) from None
        else:
            buf[: self._obs_end] = np.asarray(spaces.flatten(self.env.observation_space, inner_obs))
        if prev_action is not None:
            if self._discrete_act:
                buf[self._obs_end + int(prev_action)] = 1.0
            else:
                buf[self._obs_end : self._reward_index] = np.ravel(prev_action)
        buf[self._reward_index] = prev_reward
        buf[self._reward_index + 1] = 1.0 if episode_start else 0.0
        if self.trial_progress:
            buf[self._reward_index + 2] = self._episode_index / self.episodes_per_trial
        if self.previous_observation and prev_action is not None:
            buf[self.layout["previous_observation"]] = self._acted_on
        return buf

    def _acting_on(self, augmented: np.ndarray) -> np.ndarray:
        """Remember the observation the agent now acts on (for ``previous_observation``) and return it."""
        if self.previous_observation:
            self._acted_on = augmented[: self._obs_end].copy()
        return augmented

    # -- gymnasium API -------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        task = (options or {}).get("task")
        if task is None and self.task_stream is not None:
            task = self.task_stream.next()
        if task is not None:
            self._task_env.set_task(task)
        obs, info = self.env.reset(seed=seed)
        self._task = task if task is not None else self._task_env.get_task()
        self._task_id = task_id(self._task)
        self._task_exposure = self.task_stream.last_exposure if task is not None and self.task_stream else 0
        self._episode_index, self._episode_return, self._trial_steps = 0, 0.0, 0
        self._episode_returns = []
        info = dict(info, task=self._task, episode_index=0, task_id=self._task_id, task_exposure=self._task_exposure)
        return self._acting_on(self._augment(obs, None, 0.0, True)), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        reward = float(reward)
        if not math.isfinite(reward):
            raise TaskEnvError(
                f"env {env_name(self.env)!r} returned the reward {reward} (task {self._task}); rewards must be "
                "finite numbers"
            )
        self._episode_return += reward
        self._trial_steps += 1
        info = dict(
            info,
            inner_terminated=bool(terminated),
            inner_truncated=bool(truncated),
            task_id=self._task_id,
            task_exposure=self._task_exposure,
        )
        trial_truncated = self.max_trial_steps is not None and self._trial_steps >= self.max_trial_steps
        if not (terminated or truncated):
            info["episode_index"] = self._episode_index
            if trial_truncated:
                info["episode_returns"] = [*self._episode_returns, self._episode_return]
            return self._acting_on(self._augment(obs, action, reward, False)), reward, False, trial_truncated, info

        # An inner episode ended.
        self._episode_returns.append(self._episode_return)
        self._episode_return = 0.0
        info["episode_index"] = self._episode_index
        self._episode_index += 1
        trial_over = self._episode_index >= self.episodes_per_trial
        if trial_over or trial_truncated:
            info["episode_returns"] = list(self._episode_returns)
            return self._augment(obs, action, reward, False), reward, trial_over, not trial_over, info
        if self.record_inner_final_observation:  # only per-episode advantages need it
            info["inner_final_observation"] = self._augment(obs, action, reward, False)
        next_obs, _ = self.env.reset()
        return self._acting_on(self._augment(next_obs, action, reward, True)), reward, False, False, info

    # -- task protocol passthrough -------------------------------------------------------
    def get_task(self) -> Task | None:
        return self._task
