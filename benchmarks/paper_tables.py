"""Reproduce Duan et al. 2016 (RL²), Tables 1 and 2: hand-designed baselines (and RL² runs) on memrl's test tasks.

For the bandit rows (n, k) = (10, 5), (10, 10), (100, 5), (100, 10) and the tabular-MDP rows n = 10, 25,
every baseline of ``memrl.baselines`` is tuned on training tasks and scored on the first ``--trials``
test tasks (the tasks ``memrl eval`` uses), next to the published value. Writes ``docs/paper_tables.json``
(one row per setting and agent: table, setting, agent, published, mean, stderr, and more) and rewrites the
text between ``<!-- paper-tables:begin -->`` and ``<!-- paper-tables:end -->`` in ``docs/results.md``
(nothing else in that file). Without ``--baselines-only`` it adds the RL² runs found in
``runs/*/eval.json`` and their gap to the Bayes-optimal policy for n = 10.

    python benchmarks/paper_tables.py --baselines-only --trials 1000
    python benchmarks/paper_tables.py --trials 1000
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from memrl.baselines.bayes_optimal import bayes_optimal_tables
from memrl.baselines.protocol import BaselineResult, evaluate_baselines
from memrl.config import EnvConfig, TaskConfig
from memrl.evaluation import mean_stderr

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- paper-tables:begin -->", "<!-- paper-tables:end -->"
SECTION = "## Paper tables (issue 3)"

BANDIT_COLUMNS = ["random", "gittins", "thompson", "optimistic_thompson", "ucb1", "epsilon_greedy", "greedy"]
MDP_COLUMNS = ["random", "psrl", "beb", "ucrl2", "epsilon_greedy", "greedy"]
MDP_TRUE_PRIOR = ["psrl_true_prior", "greedy_true_prior", "myopic_true_prior"]  # no published counterpart
# Duan et al. 2016, Table 1 (Random, Gittins, TS, OTS, UCB1, eps-Greedy, Greedy, RL²) and Table 2
# (Random, PSRL, BEB, UCRL2, eps-Greedy, Greedy, RL²), as transcribed in lucaslingle/pytorch_rl2's README.
PUBLISHED_BANDIT = {
    (10, 5): [5.0, 6.6, 5.7, 6.5, 6.7, 6.6, 6.6, 6.7],
    (10, 10): [5.0, 6.6, 5.5, 6.2, 6.7, 6.6, 6.6, 6.7],
    (100, 5): [49.9, 78.3, 74.7, 77.9, 78.0, 75.4, 74.8, 78.7],
    (100, 10): [49.9, 82.8, 76.7, 81.4, 82.4, 77.4, 77.1, 83.5],
}
PUBLISHED_MDP = {
    10: [100.1, 138.1, 150.2, 146.6, 132.8, 134.8, 156.2],
    25: [250.2, 408.8, 427.8, 424.1, 377.3, 368.8, 445.7],
}
LABELS = {
    "random": "Random",
    "gittins": "Gittins",
    "thompson": "TS",
    "optimistic_thompson": "OTS",
    "ucb1": "UCB1",
    "epsilon_greedy": "ε-Greedy",
    "greedy": "Greedy",
    "bayes_optimal": "Bayes-optimal",
    "psrl": "PSRL",
    "beb": "BEB",
    "ucrl2": "UCRL2",
    "psrl_true_prior": "PSRL, N(1,1) prior",
    "greedy_true_prior": "Greedy, N(1,1) prior",
    "myopic_true_prior": "Myopic, N(1,1) prior",
    "ots_mean_floor": "OTS (mean floor)",
    "beb_kolter_ng": "BEB (Kolter & Ng)",
    "rl2": "RL²",
}


def within(mean: float, stderr: float, published: float | None) -> bool | None:
    """The issue's tolerance: within max(3% of the published value, 2 standard errors)."""
    if published is None:
        return None
    return bool(abs(mean - published) <= max(0.03 * abs(published), 2 * stderr))


def baseline_command(env_id: str, agent: str, trials: int, sets: list[str]) -> str:
    flags = " ".join(f"--set {s}" for s in sets)
    return f"memrl baselines {env_id} --agents {agent} --trials {trials} {flags}".strip()


def run_setting(
    table: int, setting: str, env_cfg: EnvConfig, sets: list[str], published: dict[str, float], trials: int
) -> tuple[list[dict[str, Any]], list[BaselineResult], float]:
    started = time.perf_counter()
    results = evaluate_baselines(env_cfg, TaskConfig(), None, trials=trials, seed=0)
    seconds = time.perf_counter() - started
    rows = []
    for r in results:
        pub = published.get(r.agent)
        rows.append(
            {
                "table": table,
                "setting": setting,
                "agent": r.agent,
                "kind": "baseline",
                "published": pub,
                "mean": round(r.result.mean_return, 4),
                "stderr": round(r.result.stderr, 4),
                "ci95": [round(x, 4) for x in r.result.ci95],
                "trials": r.result.trials,
                "within_tolerance": within(r.result.mean_return, r.result.stderr, pub),
                "params": r.params,
                "seconds": round(r.seconds, 2),
                "command": baseline_command(env_cfg.id, r.agent, trials, sets),
            }
        )
        verdict = "" if pub is None else ("ok" if rows[-1]["within_tolerance"] else "MISS")
        print(
            f"table {table} {setting:>10} {r.agent:>20}: {r.result.mean_return:8.3f} ± {r.result.stderr:.3f}"
            f"  published {pub if pub is not None else '-':>6}  {verdict}  ({r.seconds:.1f}s)",
            flush=True,
        )
    return rows, results, seconds


def find_rl2_runs() -> dict[tuple[int, str], dict[str, Any]]:
    """RL² runs with a test-split eval.json, keyed by (table, setting).

    Only plain RL² (a GRU or LSTM core, no episodic store) counts; NTM/MANN runs of the same task
    are reported with their issue. Where several runs fit, the config's own run (``runs/<name>``,
    the command in docs/results.md) wins, then the one evaluated on more trials.
    """
    found: dict[tuple[int, str], dict[str, Any]] = {}
    for eval_path in sorted((REPO / "runs").glob("*/eval.json")):
        config_path = eval_path.parent / "config.yaml"
        if not config_path.is_file():
            continue
        config = yaml.safe_load(config_path.read_text()) or {}
        env = config.get("env", {})
        policy = config.get("policy") or {}
        if policy.get("core", "gru") not in ("gru", "lstm") or (policy.get("episodic") or {}).get(
            "mode", "off"
        ) not in ("off", False):
            continue
        result = json.loads(eval_path.read_text())
        if result.get("split") != "test":
            continue
        n = int(env.get("episodes_per_trial", 10))
        kwargs = env.get("kwargs") or {}
        if env.get("id") == "memrl/Bandit-v0" and not kwargs.get("context_bits"):
            key = (1, f"n={n},k={int(kwargs.get('n_arms', 5))}")
        elif env.get("id") == "memrl/TabularMDP-v0" and {
            **{"n_states": 10, "n_actions": 5, "horizon": 10},
            **kwargs,
        } == {
            "n_states": 10,
            "n_actions": 5,
            "horizon": 10,
        }:
            key = (2, f"n={n}")
        else:
            continue
        rank = (eval_path.parent.name == config.get("name"), result.get("trials", 0))
        run = {"name": eval_path.parent.name, "result": result, "seconds": None, "rank": rank}
        if key not in found or rank > found[key]["rank"]:
            found[key] = run
    return found


def rl2_rows(
    rows: list[dict[str, Any]], bayes: dict[str, BaselineResult], published: dict[tuple[int, str], float]
) -> list[dict[str, Any]]:
    extra = []
    for (table, setting), run in sorted(find_rl2_runs().items()):
        result = run["result"]
        pub = published.get((table, setting))
        extra.append(
            {
                "table": table,
                "setting": setting,
                "agent": "rl2",
                "kind": "rl2",
                "published": pub,
                "mean": round(result["mean_return"], 4),
                "stderr": round(result["stderr"], 4),
                "ci95": [round(x, 4) for x in result["ci95"]],
                "trials": result["trials"],
                "within_tolerance": within(result["mean_return"], result["stderr"], pub),
                "params": {"run": f"runs/{run['name']}"},
                "seconds": None,
                "command": f"memrl eval runs/{run['name']} --trials {result['trials']} --split test",
            }
        )
        optimal = bayes.get(setting) if table == 1 else None
        if optimal is not None and len(result.get("trial_returns", [])) == optimal.result.trials:
            # Paired on the same test tasks (trial i plays test task i in both), so the task noise cancels.
            gap = np.asarray(result["trial_returns"]) - np.asarray(optimal.result.trial_returns)
            mean, stderr = mean_stderr(gap)
            extra.append(
                {
                    "table": table,
                    "setting": setting,
                    "agent": "rl2_minus_bayes_optimal",
                    "kind": "gap",
                    "published": None,
                    "mean": round(mean, 4),
                    "stderr": round(stderr, 4),
                    "ci95": [round(mean - 1.96 * stderr, 4), round(mean + 1.96 * stderr, 4)],
                    "trials": int(gap.size),
                    "within_tolerance": None,
                    "params": {"run": f"runs/{run['name']}"},
                    "seconds": None,
                    "command": extra[-1]["command"] + "; " + rows_command(rows, setting, "bayes_optimal"),
                }
            )
    return extra


def rows_command(rows: list[dict[str, Any]], setting: str, agent: str) -> str:
    return next(r["command"] for r in rows if r["setting"] == setting and r["agent"] == agent and r["table"] == 1)


def cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "–"
    text = f"{row['mean']:.2f} ± {row['stderr']:.2f}"
    if row["published"] is not None:
        mark = "✓" if row["within_tolerance"] else "✗"
        text += f" ({row['published']:.1f}) {mark}"
    return text


def markdown(rows: list[dict[str, Any]], timings: dict[str, float], trials: int, args: argparse.Namespace) -> str:
    def get(table: int, setting: str, agent: str) -> dict[str, Any] | None:
        return next((r for r in rows if r["table"] == table and r["setting"] == setting and r["agent"] == agent), None)

    command = "python benchmarks/paper_tables.py" + (" --baselines-only" if args.baselines_only else "")
    command += f" --trials {trials}"
    lines = [
        f"Generated by `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{sum(timings.values()):.0f} s in all on this machine, Python {platform.python_version()}). "
        f"Each cell: memrl's mean total reward per trial over the first {trials} test tasks "
        "(`tasks.test_seed` 12345, the tasks `memrl eval` uses) ± one standard error, then (published value) "
        "and ✓ when within max(3% of it, 2 standard errors), else ✗. Tuned constants were chosen on "
        "training tasks only (1000 bandit / 500 MDP tasks, never a test task); the value used is in "
        "`docs/paper_tables.json` (`params`), with every row's own command and time.",
        "",
        "**Table 1, Bernoulli bandits** (n pulls, k arms, arm means ~ U[0, 1]):",
        "",
        "| n, k | " + " | ".join(LABELS[a] for a in [*BANDIT_COLUMNS, "bayes_optimal", "rl2"]) + " |",
        "|---|" + "---|" * (len(BANDIT_COLUMNS) + 2),
    ]
    for n, k in PUBLISHED_BANDIT:
        setting = f"n={n},k={k}"
        cells = [cell(get(1, setting, a)) for a in [*BANDIT_COLUMNS, "bayes_optimal", "rl2"]]
        lines.append(f"| {n}, {k} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "**Table 2, random tabular MDPs** (10 states, 5 actions, episodes of 10 steps, n episodes):",
        "",
        "| n | " + " | ".join(LABELS[a] for a in [*MDP_COLUMNS, "rl2", *MDP_TRUE_PRIOR]) + " |",
        "|---|" + "---|" * (len(MDP_COLUMNS) + 1 + len(MDP_TRUE_PRIOR)),
    ]
    for n in PUBLISHED_MDP:
        cells = [cell(get(2, f"n={n}", a)) for a in [*MDP_COLUMNS, "rl2", *MDP_TRUE_PRIOR]]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    checked = [r for r in rows if r["kind"] == "baseline" and r["within_tolerance"] is not None]
    misses = [r for r in checked if not r["within_tolerance"]]
    missed = ", ".join(f"{LABELS[r['agent']]} {r['setting']}" for r in misses)
    lines += [
        "",
        f"Baseline rows with a published value: {len(checked)}, within tolerance: {len(checked) - len(misses)}"
        + (f"; outside: {missed}." if misses else "."),
    ]
    lines += ["", *notes(get)]
    gaps = [r for r in rows if r["kind"] == "gap"]
    for gap in gaps:
        optimum = get(1, gap["setting"], "bayes_optimal")
        rl2 = get(1, gap["setting"], "rl2")
        assert optimum is not None and rl2 is not None
        lines += [
            "",
            f"**RL² vs the Bayes-optimal ceiling, {gap['setting']}**: RL² ({rl2['params']['run']}) scores "
            f"{rl2['mean']:.3f} ± {rl2['stderr']:.3f}, the Bayes-optimal policy {optimum['mean']:.3f} ± "
            f"{optimum['stderr']:.3f} on the same {gap['trials']} test tasks: gap {gap['mean']:+.3f} ± "
            f"{gap['stderr']:.3f} (paired by task, 95% CI [{gap['ci95'][0]:+.3f}, {gap['ci95'][1]:+.3f}]).",
        ]
    lines += ["", "Exact Bayes-optimal value under the prior (expected trial return, no sampling noise):"]
    lines += [f"n=10, k={k}: {bayes_optimal_tables(k, 10).value:.4f}" + (";" if k == 5 else ".") for k in (5, 10)]
    lines += [
        "",
        "Time on this machine (2 CPU cores shared with training runs; tuning included; the n=100 Gittins index "
        "table is computed once by the k=5 row and reused by the k=10 row) and commands:",
        "",
    ]
    lines += ["| table | setting | seconds (all agents) | slowest agent |", "|---|---|---|---|"]
    for setting, seconds in timings.items():
        table, name = setting.split(":")
        slowest = max(
            (r for r in rows if r["setting"] == name and str(r["table"]) == table and r["seconds"]),
            key=lambda r: r["seconds"],
        )
        lines.append(f"| {table} | {name} | {seconds:.1f} | {LABELS[slowest['agent']]} {slowest['seconds']:.1f} s |")
    lines += [
        "",
        "Every baseline number comes from one `memrl baselines` call (the same seed, tuning and test tasks; it "
        "prints the same mean): e.g. `"
        + rows_command(rows, "n=100,k=5", "gittins")
        + "`; the `command` field of each row in `docs/paper_tables.json` gives its own.",
    ]
    if any(r["kind"] == "rl2" for r in rows):
        lines += ["RL² numbers: " + "; ".join(f"`{r['command']}`" for r in rows if r["kind"] == "rl2") + "."]
    return "\n".join(lines)


def notes(get: Any) -> list[str]:
    """Where memrl's setup differs from the paper's, and why the rows outside the tolerance are."""

    def mean(table: int, setting: str, agent: str) -> str:
        row = get(table, setting, agent)
        return "–" if row is None else f"{row['mean']:.2f}"

    def param(table: int, setting: str, agent: str, name: str) -> str:
        row = get(table, setting, agent)
        return "–" if row is None else f"{row['params'].get(name, float('nan')):g}"

    return [
        "Notes (the numbers are those of the tables above):",
        "",
        "- *Published values.* Table 1 and the values the issues quote agree with the transcription of both tables in "
        "lucaslingle/pytorch_rl2's README (a public RL² re-implementation); the paper itself was not reachable "
        "from this machine, so no value was checked against the PDF. For Table 2 that transcription gives BEB "
        "150.2 (n=10) and 427.8 (n=25) and ε-Greedy 377.3 (n=25), which are the values used here (the issue's "
        "brief had 144.7, 382.2 and 378.2 from memory).",
        "- *Baseline definitions.* Where the paper is silent, memrl follows the RL² authors' public evaluation "
        "scripts (rllab's `sandbox/rocky/neural_learner`: the bandit baselines in a script of their own, the MDP "
        "baselines as Osband's TabulaRL agents), implemented anew and vectorised over trials; the grids are "
        "theirs, but the constants are tuned on training tasks, where their scripts tuned on the evaluation seeds.",
        "- *OTS* pulls the best arm of the most probable of n joint posterior draws (highest Beta density; one "
        "draw is TS, many draws approach the posterior mode, i.e. greedy), n tuned over 1..20: "
        f"{param(1, 'n=10,k=5', 'optimistic_thompson', 'samples')}, "
        f"{param(1, 'n=10,k=10', 'optimistic_thompson', 'samples')}, "
        f"{param(1, 'n=100,k=5', 'optimistic_thompson', 'samples')} and "
        f"{param(1, 'n=100,k=10', 'optimistic_thompson', 'samples')} in the four rows. The better-known optimistic "
        "rule, May et al.'s (2012) Thompson sample floored at the posterior mean (`ots_mean_floor`), explores "
        f"nearly as much as TS and misses the published values by far ({mean(1, 'n=10,k=5', 'ots_mean_floor')} "
        f"at n=10, k=5, against 6.5; {mean(1, 'n=100,k=10', 'ots_mean_floor')} at n=100, k=10, against 81.4).",
        "- *UCB1* scores arms with the greedy agent's pseudo-counts (one success in two pulls) instead of first "
        "pulling every arm once (Auer et al.): that first sweep alone holds k=10, n=10 near 5.0, so the paper's 6.7 "
        f"cannot come from it. Tuned c: {param(1, 'n=10,k=5', 'ucb1', 'c')} (n=10) and "
        f"{param(1, 'n=100,k=5', 'ucb1', 'c')} (n=100).",
        "- *MDP priors.* The tasks draw mean rewards from N(1, 1), but the paper's agents assume N(0, 1) (TabulaRL's "
        "default): PSRL and BEB with Dirichlet(1) rows; Greedy and ε-Greedy give that prior a weight of 1e-4, which "
        "makes their model the empirical one (unvisited pairs: reward 0, uniform transitions). With the task "
        f"distribution's own prior, greedy scores {mean(2, 'n=10', 'greedy_true_prior')} at n=10 (published 134.8, "
        "and close to the paper's RL², 156.2); the three last columns show those agents. *Myopic* takes the action "
        "of best posterior-mean reward in the current state, blind to transitions; it scores "
        f"{mean(2, 'n=10', 'myopic_true_prior')} (n=10) and {mean(2, 'n=25', 'myopic_true_prior')} (n=25) against "
        f"greedy's {mean(2, 'n=10', 'greedy_true_prior')} and {mean(2, 'n=25', 'greedy_true_prior')}: on these tasks "
        "planning through the transitions adds little; what the strong agents have is a table of each state-action's "
        "reward, kept across episodes.",
        "- *BEB* is TabulaRL's: the posterior-mean model planned with a reward bonus 1/(N(s, a) + 2) and a transition "
        "bonus β H/(1 + S + N(s, a)) for each step left after the current one, β = 2H² × scaling, scaling tuned over "
        "21 log-spaced values from 1e-4 to 1 "
        f"({param(2, 'n=10', 'beb', 'scaling')} at n=10, {param(2, 'n=25', 'beb', 'scaling')} at n=25). Kolter & Ng's "
        f"(2009) bonus β/(1 + N(s, a)) (`beb_kolter_ng`, β tuned: {param(2, 'n=10', 'beb_kolter_ng', 'beta')} and "
        f"{param(2, 'n=25', 'beb_kolter_ng', 'beta')}) scores {mean(2, 'n=10', 'beb_kolter_ng')} and "
        f"{mean(2, 'n=25', 'beb_kolter_ng')}, far above the published BEB: with β = 1 on the N(0, 1) prior it is "
        "greedy on the true N(1, 1) prior.",
        f"- *ε-Greedy* tunes ε over 0.1, 0.2, ..., 1 (tuned: {param(2, 'n=10', 'epsilon_greedy', 'epsilon')} at n=10, "
        f"{param(2, 'n=25', 'epsilon_greedy', 'epsilon')} at n=25): ε = 0 is the Greedy column, which is why the "
        "published ε-Greedy can sit below Greedy (132.8 vs 134.8 at n=10).",
        "- *UCRL2* uses the empirical model with Jaksch et al.'s confidence widths times a scale tuned on training "
        f"tasks ({param(2, 'n=10', 'ucrl2', 'scale')} at n=10, {param(2, 'n=25', 'ucrl2', 'scale')} at n=25), solved "
        "by extended value iteration over the episode; every MDP agent re-plans once per episode.",
        "- *Bayes-optimal* is the exact expected-reward ceiling under the task distribution (values below); on a "
        "finite test set, reward draws put any agent within a few standard errors of it either way (e.g. ε-Greedy "
        f"{mean(1, 'n=10,k=5', 'epsilon_greedy')} vs {mean(1, 'n=10,k=5', 'bayes_optimal')} at n=10, k=5); on 4000 "
        "tasks drawn from the prior no baseline exceeds it beyond noise (`tests/test_baselines.py`).",
    ]


def write_section(text: str, path: Path) -> None:
    """Replace only the text between the markers, re-reading the file right before writing."""
    current = path.read_text() if path.is_file() else "# Measured results\n"
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in current and END in current:
        pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
        updated = pattern.sub(lambda _: block, current, count=1)
    else:
        updated = current.rstrip("\n") + f"\n\n{SECTION}\n\n{block}\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(updated)
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baselines-only", action="store_true", help="leave out the RL² runs")
    parser.add_argument("--trials", type=int, default=1000, help="test tasks per row (default 1000)")
    parser.add_argument("--json", default=str(REPO / "docs" / "paper_tables.json"))
    parser.add_argument("--markdown", default=str(REPO / "docs" / "results.md"))
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    bayes: dict[str, BaselineResult] = {}
    published_rl2: dict[tuple[int, str], float] = {}
    for (n, k), values in PUBLISHED_BANDIT.items():
        setting = f"n={n},k={k}"
        env_cfg = EnvConfig(id="memrl/Bandit-v0", kwargs={"n_arms": k}, episodes_per_trial=n)
        sets = [f"env.kwargs.n_arms={k}", f"env.episodes_per_trial={n}"]
        published = dict(zip(BANDIT_COLUMNS, values, strict=False))
        published_rl2[(1, setting)] = values[-1]
        new_rows, results, seconds = run_setting(1, setting, env_cfg, sets, published, args.trials)
        rows += new_rows
        timings[f"1:{setting}"] = seconds
        for result in results:
            if result.agent == "bayes_optimal":
                bayes[setting] = result
    for n, values in PUBLISHED_MDP.items():
        setting = f"n={n}"
        env_cfg = EnvConfig(id="memrl/TabularMDP-v0", episodes_per_trial=n)
        published = dict(zip(MDP_COLUMNS, values, strict=False))
        published_rl2[(2, setting)] = values[-1]
        new_rows, _, seconds = run_setting(2, setting, env_cfg, [f"env.episodes_per_trial={n}"], published, args.trials)
        rows += new_rows
        timings[f"2:{setting}"] = seconds
    if not args.baselines_only:
        rows += rl2_rows(rows, bayes, published_rl2)

    json_path = Path(args.json)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    write_section(markdown(rows, timings, args.trials, args), Path(args.markdown))
    misses = [r for r in rows if r["kind"] == "baseline" and r["within_tolerance"] is False]
    print(f"wrote {json_path} ({len(rows)} rows) and the paper-tables section of {args.markdown}")
    print(
        f"{len(misses)} baseline rows outside the tolerance: "
        + ", ".join(f"{r['agent']} {r['setting']}" for r in misses)
    )
    print(f"total {sum(timings.values()):.1f}s")


if __name__ == "__main__":
    main()
