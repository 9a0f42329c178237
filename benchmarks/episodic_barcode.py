"""Episodic recall on the barcode bandit: first-pull reward by exposure, and a 50%-recurring schedule.

Evaluates trained runs on their held-out test barcodes (``tasks.test_seed``, the split their training
tasks were kept apart from), never on training tasks. Trials of one barcode are correlated (the
standard errors treat them as independent), so read the per-exposure curves across barcodes:

1. *Recurring schedule* (the runs' own: bags of m barcodes, each r times): every env slot plays
   one whole bag; the reward of the first pull of a trial is averaged per exposure number
   (0 = the first time the slot meets the barcode). An agent that recalls past trials pulls the
   right arm from the second exposure on; one without memory across trials stays at chance (1/k).
2. *Mixed schedule* (``tasks.new_task_fraction=0.5``): half the trials are fresh barcodes; mean
   trial return on recurring (exposure >= 1) vs new trials, per agent.

    python benchmarks/episodic_barcode.py --runs runs/episodic_barcode runs/rl2_barcode_nostore \\
        --mixed-runs runs/episodic_barcode_mixed runs/rl2_barcode_nostore --out docs

Writes ``OUT/episodic_barcode.json`` and ``OUT/episodic_barcode.png`` (first-pull reward against
exposure number, one line per run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memrl.evaluation import evaluate
from memrl.tasks.vec import make_sampler
from memrl.train import load_model, read_run_config


def evaluate_run(run_dir: Path, *, new_task_fraction: float | None, seed: int) -> dict:
    """Evaluate on the run's own test split (the one its training tasks were kept apart from).

    Each env slot enumerates its share of the test tasks; the number of slots is chosen so that no
    slot runs out of tasks (its enumeration would wrap around): under the recurring schedule a slot
    plays one bag (m tasks, m * r trials); under the mixed schedule it plays m * r / (1 - p) trials,
    which need about m + p * m * r / (1 - p) distinct tasks.
    """
    cfg = read_run_config(run_dir)
    tasks = (
        cfg.tasks if new_task_fraction is None else dataclasses.replace(cfg.tasks, new_task_fraction=new_task_fraction)
    )
    if tasks.schedule != "recurring":
        raise SystemExit(f"{run_dir}: trained with tasks.schedule={tasks.schedule!r}; this benchmark needs 'recurring'")
    m, p = tasks.recurring_tasks, tasks.new_task_fraction
    trials_per_slot = round(m * tasks.recurring_repeats / (1 - p))
    tasks_per_slot = m + int(np.ceil(1.2 * p * trials_per_slot))  # 20% slack for the random share of new tasks
    num_envs = max(1, tasks.num_test_tasks // tasks_per_slot)
    sampler = make_sampler(cfg.env, tasks, cfg.train.seed)
    model = load_model(run_dir, cfg)
    started = time.perf_counter()
    result = evaluate(
        model, cfg, sampler, split="test", trials=num_envs * trials_per_slot, num_envs=num_envs, seed=seed
    )
    rows = result.by_exposure
    recurring = [r for r in rows if r["exposure"] >= 1]
    new = [r for r in rows if r["exposure"] == 0]

    def pooled(selected: list[dict[str, Any]], key: str) -> tuple[float, float]:
        weights = np.array([r["trials"] for r in selected], dtype=float)
        means = np.array([r[f"{key}_mean"] for r in selected])
        errors = np.array([r[f"{key}_stderr"] for r in selected])
        total = weights.sum()
        return float((weights * means).sum() / total), float(np.sqrt(((weights * errors) ** 2).sum()) / total)

    return {
        "run": str(run_dir),
        "episodic": cfg.policy.episodic.mode,
        "new_task_fraction": tasks.new_task_fraction,
        "trials": result.trials,
        "mean_trial_return": result.mean_return,
        "stderr": result.stderr,
        "by_exposure": rows,
        "recurring_first_pull": pooled(recurring, "first_episode"),
        "new_first_pull": pooled(new, "first_episode"),
        "recurring_trial_return": pooled(recurring, "trial"),
        "new_trial_return": pooled(new, "trial"),
        "seconds": time.perf_counter() - started,
        "trained_steps": int(model.num_timesteps),
    }


def plot(results: list[dict], path: Path, chance: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for res in results:
        rows = res["by_exposure"]
        x = [r["exposure"] + 1 for r in rows]
        y = np.array([r["first_episode_mean"] for r in rows])
        err = 1.96 * np.array([r["first_episode_stderr"] for r in rows])
        label = f"{'episodic store (' + res['episodic'] + ')' if res['episodic'] != 'off' else 'RL2, no store'}"
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label)
    ax.axhline(chance, color="gray", linestyle="--", label=f"chance (1/{round(1 / chance)})")
    ax.set_xlabel("exposure number of the barcode (1 = first time seen)")
    ax.set_ylabel("reward of the first pull")
    ax.set_ylim(-0.02, 1.05)
    ax.set_title("Barcode bandit, held-out barcodes: first pull by exposure (95% CI)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="runs evaluated on their own schedule")
    parser.add_argument("--mixed-runs", nargs="*", type=Path, default=[], help="runs evaluated with 50%% new tasks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    recurring = [evaluate_run(r, new_task_fraction=None, seed=args.seed) for r in args.runs]
    mixed = [evaluate_run(r, new_task_fraction=0.5, seed=args.seed) for r in args.mixed_runs]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "episodic_barcode.json").write_text(json.dumps({"recurring": recurring, "mixed": mixed}, indent=2))
    n_arms = read_run_config(args.runs[0]).env.kwargs.get("n_arms", 10)
    plot(recurring, args.out / "episodic_barcode.png", chance=1.0 / n_arms)
    for res in recurring:
        mean, err = res["recurring_first_pull"]
        print(
            f"{res['run']} (episodic={res['episodic']}): first pull on recurring barcodes {mean:.3f} ± {err:.3f}, "
            f"on new {res['new_first_pull'][0]:.3f}; by exposure: "
            + ", ".join(f"{r['first_episode_mean']:.2f}" for r in res["by_exposure"])
            + f" ({res['trials']} trials, {res['seconds']:.0f}s)"
        )
    for res in mixed:
        print(
            f"{res['run']} (episodic={res['episodic']}), 50% new tasks: trial return recurring "
            f"{res['recurring_trial_return'][0]:.3f} ± {res['recurring_trial_return'][1]:.3f}, "
            f"new {res['new_trial_return'][0]:.3f} ± {res['new_trial_return'][1]:.3f}"
        )
    print(f"wrote {args.out / 'episodic_barcode.json'} and {args.out / 'episodic_barcode.png'}")


if __name__ == "__main__":
    main()
