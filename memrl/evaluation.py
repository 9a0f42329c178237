"""Evaluation on held-out tasks: every trial a different task, adaptation curve per episode index.

``evaluate`` runs ``trials`` trials on the first ``trials`` tasks of a split (slot ``i`` of ``n``
plays tasks ``i, i + n, ...``), so two agents evaluated with the same ``tasks.test_seed`` face
exactly the same tasks. It reports the mean trial return with its standard error and a 95%
confidence interval, and the mean return of each inner-episode index (the adaptation curve).

``record_memory_views`` plays one more trial (the first task of the split, one env) and returns the
actor core's slot x time heat maps of that trial (read and write weightings, usage, gates), for cores
with external memory; ``memrl eval`` writes them to TensorBoard as images under ``memory/``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from memrl.algos.ppo import MetaPPO
from memrl.config import Config, ConfigError
from memrl.tasks.sampler import TaskSampler
from memrl.tasks.vec import make_vec_env


@dataclass
class EvalResult:
    split: str
    trials: int
    mean_return: float
    stderr: float
    ci95: tuple[float, float]
    per_episode_mean: list[float]
    per_episode_stderr: list[float]
    trial_returns: list[float]
    by_exposure: list[dict[str, float]] = field(default_factory=list)
    """Under schedules where tasks recur: per exposure number (0 = the slot's first trial of the task),
    the number of trials and the mean (and standard error) of their first-episode and trial returns."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def mean_stderr(values: np.ndarray, clusters: np.ndarray | None = None) -> tuple[float, float]:
    """Sample mean and its standard error (ddof=1); stderr is 0 for a single value.

    With ``clusters`` (a label per value; values of one label may be correlated, like the trials of
    one task in one env slot), the cluster-robust standard error: the spread of the clusters' sums
    about their share of the mean, which treats clusters, not values, as independent.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    mean = float(values.mean())
    if clusters is not None:
        _, label = np.unique(clusters, return_inverse=True)
        groups = int(label.max()) + 1
        if 1 < groups < values.size:
            residual = np.bincount(label, weights=values - mean)  # (groups,) sums of deviations
            return mean, float(np.sqrt(groups / (groups - 1) * np.sum(residual**2)) / values.size)
    stderr = float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else 0.0
    return mean, stderr


def summarize(
    split: str,
    trial_returns: np.ndarray,
    episode_returns: np.ndarray,
    exposures: np.ndarray | None = None,
    clusters: np.ndarray | None = None,
) -> EvalResult:
    """Aggregate ``(N,)`` trial returns and ``(N, k)`` per-episode returns (nan where absent).

    ``exposures (N,)`` (how often each trial's task had been played before) adds ``by_exposure``
    when some task recurred. ``clusters (N,)`` labels trials that may be correlated (one task in one
    env slot): the standard errors over all trials are then cluster-robust (those per exposure are
    not needed: a task meets a slot once per exposure).
    """
    mean, stderr = mean_stderr(trial_returns, clusters)
    per_episode = [
        mean_stderr(col[~np.isnan(col)], None if clusters is None else clusters[~np.isnan(col)])
        for col in episode_returns.T
    ]
    return EvalResult(
        split=split,
        trials=int(trial_returns.size),
        mean_return=mean,
        stderr=stderr,
        ci95=(mean - 1.96 * stderr, mean + 1.96 * stderr),
        per_episode_mean=[m for m, _ in per_episode],
        per_episode_stderr=[s for _, s in per_episode],
        trial_returns=[float(x) for x in trial_returns],
        by_exposure=_by_exposure(trial_returns, episode_returns, exposures),
    )


def _by_exposure(
    trial_returns: np.ndarray, episode_returns: np.ndarray, exposures: np.ndarray | None
) -> list[dict[str, float]]:
    if exposures is None or not np.any(exposures > 0):
        return []
    rows = []
    for exposure in np.unique(exposures):
        chosen = exposures == exposure
        first_mean, first_stderr = mean_stderr(episode_returns[chosen, 0])
        trial_mean, trial_stderr = mean_stderr(trial_returns[chosen])
        rows.append(
            {
                "exposure": int(exposure),
                "trials": int(chosen.sum()),
                "first_episode_mean": first_mean,
                "first_episode_stderr": first_stderr,
                "trial_mean": trial_mean,
                "trial_stderr": trial_stderr,
            }
        )
    return rows


STALL_STEPS = 100_000
"""Vector steps without any trial ending after which :func:`evaluate` gives up (an env that never ends)."""


def evaluate(
    model: MetaPPO,
    config: Config,
    sampler: TaskSampler,
    *,
    split: Literal["train", "test"] = "test",
    trials: int = 1000,
    num_envs: int = 100,
    deterministic: bool = False,
    seed: int = 0,
) -> EvalResult:
    """Run ``trials`` trials, one per task of ``split``, with the model's memory carried within each.

    Under the ``recurring`` schedule each env slot plays whole bags (``recurring_tasks`` x
    ``recurring_repeats`` trials), as in training: ``trials // bag`` slots at most ``num_envs``, the
    trial count rounded up to whole bags.
    """
    if trials < 1:
        raise ConfigError(f"the number of evaluation trials must be at least 1, got {trials}")
    if split == "test" and sampler.schedule != "recurring" and trials > len(sampler.test_tasks):
        raise ConfigError(
            f"asked for {trials} test trials but the test split holds {len(sampler.test_tasks)} tasks; "
            "raise tasks.num_test_tasks or ask for fewer trials"
        )
    n = min(num_envs, trials)
    if sampler.schedule == "recurring":  # whole bags per slot, so that exposures run as in training
        bag = sampler.recurring_tasks * sampler.recurring_repeats
        n = max(1, min(num_envs, trials // bag))
        whole = n * bag * -(-trials // (n * bag))
        if whole != trials:
            print(f"note: the recurring schedule is evaluated in whole bags of {bag} trials per env: {whole} trials")
        trials = whole
    env = make_vec_env(config.env, sampler, split=split, num_envs=n, seed=seed)
    quota = np.array([len(range(i, trials, n)) for i in range(n)])  # trials slot i must finish
    finished = np.zeros(n, dtype=int)
    k = config.env.episodes_per_trial
    exposures = np.zeros(trials, dtype=int)
    clusters = np.zeros(trials, dtype=np.int64)  # (slot, task) of each trial, hashed
    trial_returns = np.full(trials, np.nan)
    episode_returns = np.full((trials, k), np.nan)
    torch.manual_seed(seed)
    obs = env.reset()
    starts = np.ones(n, dtype=bool)
    state = None
    idle = 0  # vector steps since a trial last ended
    while np.any(finished < quota):
        if idle >= STALL_STEPS:
            env.close()
            raise ConfigError(
                f"evaluation: no trial of {config.env.id} ended in {STALL_STEPS:,} steps; does the env ever return "
                "terminated or truncated? Set env.max_trial_steps to cut its trials"
            )
        actions, state = model.predict(
            obs,  # type: ignore[arg-type]  # a flat Box: always an ndarray
            state=state,
            episode_start=starts,
            deterministic=deterministic,
        )
        obs, _, dones, infos = env.step(actions)
        idle = 0 if dones.any() else idle + 1
        for i in np.flatnonzero(dones):
            if finished[i] < quota[i]:
                index = i + finished[i] * n  # the task index this slot just played
                trial_returns[index] = infos[i]["episode"]["r"]
                returns = infos[i].get("episode_returns", [])[:k]
                episode_returns[index, : len(returns)] = returns
                exposures[index] = infos[i].get("task_exposure", 0)
                clusters[index] = hash((int(i), int(infos[i].get("task_id", index))))
                finished[i] += 1
        starts = dones
    env.close()
    recurring = sampler.schedule == "recurring"
    return summarize(split, trial_returns, episode_returns, exposures, clusters if recurring else None)


MEMORY_VIEWS = "memory"
"""TensorBoard prefix of the memory-view images (``memory/read_weights``, ``memory/write_weights``, ...)."""


def record_memory_views(
    model: MetaPPO,
    config: Config,
    sampler: TaskSampler,
    *,
    split: Literal["train", "test"] = "test",
    deterministic: bool = False,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Heat maps ``{name: (rows, steps) in [0, 1]}`` of the actor core's memory over one trial.

    The core's ``memory_views(states)`` (NTM, MANN) turns the per-step states into images; cores
    without it (GRU, LSTM) give ``{}`` and no trial is played.
    """
    views = getattr(model.policy.actor.core, "memory_views", None)
    if views is None:
        return {}
    env = make_vec_env(config.env, sampler, split=split, num_envs=1, seed=seed)
    torch.manual_seed(seed)
    obs, starts, state = env.reset(), np.ones(1, dtype=bool), None
    states = []
    while True:
        actions, state = model.predict(
            obs,  # type: ignore[arg-type]  # a flat Box: always an ndarray
            state=state,
            episode_start=starts,
            deterministic=deterministic,
        )
        states.append(state.actor)
        obs, _, starts, _ = env.step(actions)
        if starts[0]:  # the trial ended
            break
    env.close()
    return dict(views(states))


def upscale_view(view: np.ndarray, min_height: int = 128, min_width: int = 200) -> np.ndarray:
    """Repeat rows and columns of a ``(rows, steps)`` heat map so TensorBoard shows it at a readable size."""
    rows, cols = view.shape
    return np.repeat(np.repeat(view, -(-min_height // rows), axis=0), -(-min_width // cols), axis=1)


def write_report(result: EvalResult, out_dir: str | Path, title: str = "") -> tuple[Path, Path]:
    """Write ``eval.json`` and ``eval.png`` (mean return per episode index, with 95% bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out / "eval.json", out / "eval.png"
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=2))
    tmp.replace(json_path)

    means = np.asarray(result.per_episode_mean)
    errors = 1.96 * np.asarray(result.per_episode_stderr)
    episodes = np.arange(1, means.size + 1)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(episodes, means, marker="o" if means.size <= 30 else None, label="mean episode return")
    ax.fill_between(episodes, means - errors, means + errors, alpha=0.25, label="95% CI")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("episode index within the trial")
    ax.set_ylabel("return")
    ax.set_title(
        title
        or f"{result.split} split, {result.trials} trials: trial return {result.mean_return:.2f} "
        f"(95% CI ± {1.96 * result.stderr:.2f})"
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return json_path, png_path
