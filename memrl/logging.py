"""TensorBoard tags, grouped by prefix, and the run logger.

- ``charts/``: trial returns and training-progress quantities;
- ``meta/``: mean return of inner episode *i* of a trial (the adaptation curve);
- ``losses/``: PPO losses and diagnostics (``approx_kl``, ``clip_fraction``, ``explained_variance``);
- ``perf/``: throughput;
- ``episodic/``: the episodic store (size, hit rate, reinstatement gate); first-episode returns of
  new and recurring tasks are under ``meta/``;
- ``config/``: hyper-parameters as text.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stable_baselines3.common.logger import HumanOutputFormat, KVWriter, Logger, TensorBoardOutputFormat

TRIAL_RETURN = "charts/trial_return"
TRIAL_LENGTH = "charts/trial_length"
TRIALS = "charts/trials_finished"
LEARNING_RATE = "charts/learning_rate"
ENT_COEF = "charts/ent_coef"
EPOCHS = "charts/epochs_completed"
UPDATES = "charts/updates"
SKIPPED_STEPS = "losses/skipped_steps"  # gradient steps of the update left out: the gradient was not finite
SPS = "perf/steps_per_second"
ROLLOUT_SECONDS = "perf/rollout_seconds"
UPDATE_SECONDS = "perf/update_seconds"
STORE_SIZE = "episodic/store_size"
STORE_HIT_RATE = "episodic/hit_rate"
REINSTATEMENT_GATE = "episodic/reinstatement_gate"
FIRST_EPISODE_NEW = "meta/first_episode_return_new_task"
FIRST_EPISODE_RECURRING = "meta/first_episode_return_recurring_task"
TEXT_HYPERPARAMETERS = "config/hyperparameters"
TEXT_ADVANTAGE_BOUNDARY = "config/advantages"
LOSS_TAGS = tuple(
    f"losses/{name}"
    for name in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "explained_variance")
)


def meta_episode_return(index: int, width: int = 1) -> str:
    """Tag of the mean return of inner episode ``index`` (0-based), zero-padded to sort."""
    return f"meta/return_episode_{index:0{width}d}"


def make_logger(tensorboard_dir: str | Path, stdout: bool = False) -> Logger:
    """An SB3 logger writing TensorBoard events into ``tensorboard_dir`` (and optionally stdout)."""
    path = Path(tensorboard_dir)
    path.mkdir(parents=True, exist_ok=True)
    formats: list[KVWriter] = [TensorBoardOutputFormat(str(path))]
    if stdout:
        formats.append(HumanOutputFormat(sys.stdout))
    return Logger(folder=str(path), output_formats=formats)


def read_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """All scalar series in the TensorBoard event files of ``run_dir``: ``{tag: [(step, value), ...]}``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(Path(run_dir).glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            series.setdefault(tag, []).extend((e.step, e.value) for e in accumulator.Scalars(tag))
    return {tag: sorted(values) for tag, values in series.items()}
