"""One evaluation protocol for hand-designed baselines and trained agents.

Baselines play the first ``trials`` tasks of the sampler's test split, the very tasks ``memrl eval``
gives a trained agent (``make_sampler(env, tasks, seed).test_tasks``, drawn with ``tasks.test_seed``;
trial ``i`` plays test task ``i`` in both), reading each task's own parameters (arm means, MDP
tables) and drawing rewards and transitions as the env does. Results are summarised exactly as
``memrl eval`` summarises them (``memrl.evaluation.summarize``: mean trial return, standard error,
95% CI, mean return per episode index).

Tuned constants (UCB1's ``c``, epsilon, BEB's ``beta``, UCRL2's confidence scale) are chosen by grid
search on *training* tasks only (``sampler.draw_train_task``, which never returns a test task), with
common random numbers across the grid; the test tasks are played once, with the chosen value.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memrl.baselines.bandit import BANDIT_AGENTS, BanditAgent, play_bandit
from memrl.baselines.bayes_optimal import bayes_optimal_tables
from memrl.baselines.mdp import MDP_AGENTS, MDPAgent, play_mdp
from memrl.config import ConfigError, EnvConfig, TaskConfig
from memrl.evaluation import EvalResult, summarize
from memrl.tasks.protocol import Task, task_key
from memrl.tasks.sampler import TaskSampler
from memrl.tasks.vec import make_sampler, make_task_env

Agent = BanditAgent | MDPAgent

BASELINE_AGENTS: dict[str, dict[str, Callable[[], Agent]]] = {
    "memrl/Bandit-v0": dict(BANDIT_AGENTS),
    "memrl/TabularMDP-v0": dict(MDP_AGENTS),
}
"""Env id -> baseline name -> constructor. Only these envs have hand-designed baselines."""

DEFAULT_TUNE_TRIALS = {"memrl/Bandit-v0": 1000, "memrl/TabularMDP-v0": 500}
"""Training tasks each tuned constant is chosen on."""

_TUNE_SALT = 0x7E57  # keeps the tuning task stream apart from the sampler's own training streams


@dataclass(frozen=True)
class Setting:
    """What a baseline needs to know about the env config: its kind and sizes."""

    env_id: str
    episodes: int
    n_arms: int = 0
    horizon: int = 0

    @classmethod
    def from_config(cls, env_cfg: EnvConfig) -> Setting:
        if env_cfg.id not in BASELINE_AGENTS:
            raise ConfigError(
                f"env {env_cfg.id!r} has no hand-designed baselines; baselines exist for {', '.join(BASELINE_AGENTS)}"
            )
        base = make_task_env(env_cfg).unwrapped  # validates env.kwargs with memrl's usual error
        if env_cfg.id == "memrl/Bandit-v0":
            return cls(env_cfg.id, env_cfg.episodes_per_trial, n_arms=int(base.n_arms))  # type: ignore[attr-defined]
        return cls(env_cfg.id, env_cfg.episodes_per_trial, horizon=int(base.horizon))  # type: ignore[attr-defined]

    @property
    def is_bandit(self) -> bool:
        return self.env_id == "memrl/Bandit-v0"

    def describe(self) -> str:
        return f"n={self.episodes},k={self.n_arms}" if self.is_bandit else f"n={self.episodes}"


@dataclass
class Tuning:
    """The grid search of one tuned constant on training tasks."""

    parameter: str
    value: float
    scores: dict[str, float]  # candidate value (as text) -> mean trial return on the training tasks
    trials: int
    task_keys: list[str] = field(repr=False)  # task_key of every training task used

    def to_json(self) -> dict[str, Any]:
        return {"parameter": self.parameter, "value": self.value, "scores": self.scores, "trials": self.trials}


@dataclass
class BaselineResult:
    """One baseline evaluated on the test tasks."""

    agent: str
    params: dict[str, float]
    result: EvalResult
    seconds: float
    tuning: Tuning | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "params": self.params,
            "tuning": None if self.tuning is None else self.tuning.to_json(),
            "seconds": self.seconds,
            "result": self.result.to_json(),
        }


def agent_names(env_id: str) -> list[str]:
    if env_id not in BASELINE_AGENTS:
        raise ConfigError(
            f"env {env_id!r} has no hand-designed baselines; baselines exist for {', '.join(BASELINE_AGENTS)}"
        )
    return list(BASELINE_AGENTS[env_id])


def make_agent(env_id: str, name: str) -> Agent:
    names = agent_names(env_id)
    if name not in names:
        raise ConfigError(f"unknown baseline {name!r} for {env_id}; valid agents: {', '.join(names)}")
    return BASELINE_AGENTS[env_id][name]()


def tractable(setting: Setting, name: str) -> bool:
    """Whether ``name`` can run in ``setting`` (the Bayes-optimal DP only fits small bandits)."""
    if name != "bayes_optimal":
        return True
    try:
        bayes_optimal_tables(setting.n_arms, setting.episodes)
    except ValueError:
        return False
    return True


def play(agent: Agent, setting: Setting, tasks: list[Task], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Trial returns ``(N,)`` and per-episode returns ``(N, n)`` of ``agent`` on ``tasks``, vectorised."""
    if isinstance(agent, BanditAgent):
        probs = np.array([task["probs"] for task in tasks], dtype=np.float64)  # (N, k)
        return play_bandit(agent, probs, setting.episodes, rng)
    transitions = np.array([task["transitions"] for task in tasks], dtype=np.float64)  # (N, S, A, S)
    reward_means = np.array([task["reward_means"] for task in tasks], dtype=np.float64)  # (N, S, A)
    return play_mdp(agent, transitions, reward_means, episodes=setting.episodes, horizon=setting.horizon, rng=rng)


def training_tasks(sampler: TaskSampler, count: int, seed: int) -> list[Task]:
    """``count`` tasks from the sampler's training distribution (never a test task)."""
    rng = np.random.default_rng([seed, _TUNE_SALT])
    return [sampler.draw_train_task(rng) for _ in range(count)]


def tune(
    agent: Agent, setting: Setting, sampler: TaskSampler, *, trials: int, seed: int
) -> tuple[Agent, Tuning | None]:
    """Pick ``agent``'s tuned constant on ``trials`` training tasks; agents without one come back as they are."""
    if agent.parameter is None:
        return agent, None
    tasks = training_tasks(sampler, trials, seed)
    scores = {}
    for value in agent.grid:
        returns, _ = play(agent.with_value(value), setting, tasks, np.random.default_rng([seed, _TUNE_SALT, 1]))
        scores[value] = float(returns.mean())
    best = max(scores, key=lambda value: scores[value])  # first (smallest) value among equals
    tuning = Tuning(
        parameter=agent.parameter,
        value=float(best),
        scores={repr(float(v)): s for v, s in scores.items()},
        trials=trials,
        task_keys=[task_key(task) for task in tasks],
    )
    return agent.with_value(best), tuning


def evaluate_baselines(
    env_cfg: EnvConfig,
    task_cfg: TaskConfig,
    agents: list[str] | None = None,
    *,
    trials: int = 1000,
    seed: int = 0,
    tune_trials: int | None = None,
    log: Callable[[str], None] | None = None,
) -> list[BaselineResult]:
    """Tune (on training tasks) and evaluate (on the first ``trials`` test tasks) each named baseline.

    ``agents=None`` runs every baseline of the env that is tractable in this setting. ``seed`` is the
    sampler seed (``train.seed`` for ``memrl eval``; it does not change the test split) and the seed of
    the reward draws.
    """
    setting = Setting.from_config(env_cfg)
    names = agent_names(env_cfg.id)
    if agents is None:
        chosen = [name for name in names if tractable(setting, name)]
    else:
        for name in agents:
            make_agent(env_cfg.id, name)  # unknown names fail before any work
        chosen = list(agents)
        for name in chosen:
            if not tractable(setting, name):
                raise ConfigError(
                    f"baseline {name!r} is intractable for {env_cfg.id} with {setting.describe()}: the exact "
                    "Bayes-optimal DP fits small settings only (e.g. n=10 with k<=10)"
                )
    if trials < 1:
        raise ConfigError(f"the number of baseline trials must be at least 1, got {trials}")
    sampler = make_sampler(env_cfg, task_cfg, seed)
    if trials > len(sampler.test_tasks):
        raise ConfigError(
            f"asked for {trials} test trials but the test split holds {len(sampler.test_tasks)} tasks; "
            "raise tasks.num_test_tasks or ask for fewer trials"
        )
    tasks = sampler.test_tasks[:trials]
    if log is not None:
        plural = "" if len(chosen) == 1 else "s"
        log(f"{env_cfg.id} {setting.describe()}: {len(chosen)} baseline{plural} on the first {trials} test tasks")
    tune_trials = DEFAULT_TUNE_TRIALS[env_cfg.id] if tune_trials is None else tune_trials
    results = []
    for name in chosen:
        started = time.perf_counter()
        agent, tuning = tune(make_agent(env_cfg.id, name), setting, sampler, trials=tune_trials, seed=seed)
        trial_returns, episode_returns = play(agent, setting, tasks, np.random.default_rng(seed))
        result = summarize("test", trial_returns, episode_returns)
        results.append(BaselineResult(name, agent.params(), result, time.perf_counter() - started, tuning))
        if log is not None:
            tuned = (
                ""
                if tuning is None
                else f" ({tuning.parameter}={tuning.value:g} tuned on {tuning.trials} training tasks)"
            )
            log(
                f"{name:>20}: {result.mean_return:9.3f} ± {result.stderr:.3f}, 95% CI "
                f"[{result.ci95[0]:.3f}, {result.ci95[1]:.3f}]{tuned} ({results[-1].seconds:.1f}s)"
            )
    return results


def write_baselines_report(
    results: list[BaselineResult], out_dir: str | Path, *, env_cfg: EnvConfig, task_cfg: TaskConfig, seed: int
) -> tuple[Path, Path]:
    """Write ``baselines.json`` and ``baselines.png`` (every agent's adaptation curve on one figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out / "baselines.json", out / "baselines.png"
    setting = Setting.from_config(env_cfg)
    payload = {
        "env": {"id": env_cfg.id, "kwargs": env_cfg.kwargs, "episodes_per_trial": env_cfg.episodes_per_trial},
        "tasks": {"test_seed": task_cfg.test_seed, "num_test_tasks": task_cfg.num_test_tasks},
        "setting": setting.describe(),
        "seed": seed,
        "agents": [r.to_json() for r in results],
    }
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(json_path)

    fig, ax = plt.subplots(figsize=(7.2, 4.5))
    for r in results:
        means = np.asarray(r.result.per_episode_mean)
        errors = 1.96 * np.asarray(r.result.per_episode_stderr)
        episodes = np.arange(1, means.size + 1)
        label = f"{r.agent} ({r.result.mean_return:.2f})"
        (line,) = ax.plot(episodes, means, marker="o" if means.size <= 30 else None, markersize=3, label=label)
        ax.fill_between(episodes, means - errors, means + errors, alpha=0.15, color=line.get_color())
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("episode index within the trial")
    ax.set_ylabel("mean episode return (95% CI)")
    trials = results[0].result.trials if results else 0
    ax.set_title(f"{env_cfg.id} {setting.describe()}: baselines on {trials} test tasks (trial return)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return json_path, png_path
