"""Build trial environments and vectors of them from an :class:`~memrl.config.EnvConfig`.

Vectors are Stable-Baselines3 ``VecEnv`` s (``DummyVecEnv`` or ``SubprocVecEnv``). Their autoreset
is *same-step*: the step that ends a trial returns the next trial's first observation and puts the
final one in ``info["terminal_observation"]``. That is the semantics the trainer relies on; it
avoids Gymnasium 1.x's default next-step autoreset, whose extra reset step corrupts recurrent
rollouts (cleanrl#499).
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable
from typing import Literal

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import OrderEnforcing
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

import memrl.envs  # noqa: F401  (registers the built-in task envs)
from memrl.config import ConfigError, EnvConfig, TaskConfig
from memrl.tasks.protocol import TaskEnvError, check_task_env
from memrl.tasks.sampler import TaskSampler, TaskStream
from memrl.tasks.trial import TrialWrapper, _flat_dim, check_action_space


def make_task_env(env_cfg: EnvConfig) -> gym.Env:
    """``gymnasium.make`` the inner env, turning every failure into a :class:`ConfigError`."""
    env_id = env_cfg.id
    try:
        env = gym.make(env_id, disable_env_checker=True, **env_cfg.kwargs)
    except ModuleNotFoundError as err:
        module = env_id.split(":")[0]
        missing = err.name or str(err).split(". ")[0]  # gymnasium re-raises without the name of what is missing
        raise ConfigError(
            f"env.id={env_id!r}: cannot import module {module!r} ({missing}); check the 'module:EnvId-v0' spelling "
            "and that the module and what it imports are installed, or on PYTHONPATH"
        ) from None
    except gym.error.Error as err:
        raise ConfigError(
            f"env.id={env_id!r} is not a registered Gymnasium env ({err}); run `memrl envs` to list memrl's envs, "
            "or write 'your.module:YourEnv-v0' so the module that registers it is imported first"
        ) from None
    except (TypeError, ValueError) as err:
        spec = gym.spec(env_id)
        accepted = _accepted_kwargs(spec.entry_point)
        raise ConfigError(
            f"env.kwargs {env_cfg.kwargs!r} do not fit {env_id} ({err}); it accepts: {accepted}"
        ) from None
    except Exception as err:  # the env's own code failed: name it, and how to see its traceback
        raise ConfigError(
            f"env.id={env_id!r}: making the env raised {type(err).__name__}: {err}; to see the traceback, run "
            f"python -c \"import gymnasium as gym; gym.make('{env_id}')\""
        ) from None
    try:
        check_task_env(env)
        check_action_space(env.action_space)
        _flat_dim(env.observation_space)
    except TypeError as err:
        raise ConfigError(f"env.id={env_id!r}: {err}") from None
    if isinstance(env, OrderEnforcing):  # the trial wrapper already resets before stepping
        env = env.env
    return env


def _accepted_kwargs(entry_point: Callable | str | None) -> str:
    try:
        target = gym.envs.registration.load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
        params = [p for p in inspect.signature(target).parameters if p not in ("self", "render_mode")]  # type: ignore[arg-type]
        return ", ".join(params) or "no keyword arguments"
    except Exception:  # the signature is only for the message
        return "(unknown)"


def make_sampler(env_cfg: EnvConfig, task_cfg: TaskConfig, seed: int) -> TaskSampler:
    """The task sampler for this env, using a throwaway instance as the task distribution."""
    distribution = make_task_env(env_cfg).unwrapped
    return TaskSampler(
        distribution,  # type: ignore[arg-type]
        seed=seed,
        schedule=task_cfg.schedule,
        pool_size=task_cfg.pool_size,
        recurring_tasks=task_cfg.recurring_tasks,
        recurring_repeats=task_cfg.recurring_repeats,
        new_task_fraction=task_cfg.new_task_fraction,
        num_test_tasks=task_cfg.num_test_tasks,
        test_seed=task_cfg.test_seed,
    )


def make_trial_env(env_cfg: EnvConfig, stream: TaskStream | None = None) -> gym.Env:
    """One trial-wrapped env, monitored so SB3 sees one (outer) episode per trial."""
    env = TrialWrapper(
        make_task_env(env_cfg),
        episodes_per_trial=env_cfg.episodes_per_trial,
        task_stream=stream,
        max_trial_steps=env_cfg.max_trial_steps,
        trial_progress=env_cfg.trial_progress,
        previous_observation=env_cfg.previous_observation,
    )
    return Monitor(env)


def check_env_runs(env_cfg: EnvConfig, sampler: TaskSampler) -> None:
    """One reset and one step of a trial env on the first test task, before a run writes anything:
    an env whose own code fails, or that breaks its declared spaces, is a one-line error naming it."""
    env = make_trial_env(env_cfg, sampler.stream("test", 0, 1))
    try:
        env.reset(seed=0)
        env.step(env.action_space.sample())
    except TaskEnvError as err:  # names what the env returned
        raise ConfigError(f"env.id={env_cfg.id!r}: {err}") from None
    except Exception as err:  # the env's own code failed: where
        frame = traceback.extract_tb(err.__traceback__)[-1]
        raise ConfigError(
            f"env.id={env_cfg.id!r}: its first reset and step failed: {type(err).__name__}: {err} "
            f"(at {frame.filename}:{frame.lineno}, in {frame.name})"
        ) from None
    finally:
        env.close()


class TrialVecEnv(DummyVecEnv):
    """SB3's ``DummyVecEnv`` without its per-step ``deepcopy`` of the info dicts.

    The trial wrapper builds fresh info dicts every step and never touches them again, so the
    copy (which cost more than the envs themselves on small bandits) protects nothing here.
    """

    def step_wait(self) -> VecEnvStepReturn:
        for env_idx, env in enumerate(self.envs):
            obs, self.buf_rews[env_idx], terminated, truncated, info = env.step(self.actions[env_idx])
            self.buf_dones[env_idx] = terminated or truncated
            info["TimeLimit.truncated"] = truncated and not terminated
            if self.buf_dones[env_idx]:
                info["terminal_observation"] = obs
                obs, self.reset_infos[env_idx] = env.reset()
            self.buf_infos[env_idx] = info
            self._save_obs(env_idx, obs)
        return self._obs_from_buf(), np.copy(self.buf_rews), np.copy(self.buf_dones), list(self.buf_infos)


class _EnvFactory:
    """A picklable env constructor (subprocess vectors pickle it)."""

    def __init__(self, env_cfg: EnvConfig, stream: TaskStream) -> None:
        self.env_cfg, self.stream = env_cfg, stream

    def __call__(self) -> gym.Env:
        return make_trial_env(self.env_cfg, self.stream)


def make_vec_env(
    env_cfg: EnvConfig,
    sampler: TaskSampler,
    *,
    split: Literal["train", "test"] = "train",
    num_envs: int | None = None,
    seed: int = 0,
) -> VecEnv:
    """A vector of ``num_envs`` trial envs, slot ``i`` drawing its tasks from stream ``i`` of ``split``."""
    n = num_envs or env_cfg.num_envs
    factories: list[Callable[[], gym.Env]] = [_EnvFactory(env_cfg, sampler.stream(split, i, n)) for i in range(n)]
    vec: VecEnv = SubprocVecEnv(factories) if env_cfg.vectorization == "subproc" else TrialVecEnv(factories)
    vec.seed(seed)
    return vec
