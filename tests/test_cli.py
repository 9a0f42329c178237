"""The memrl command line (memrl/cli.py), run as a user would: in a subprocess, with a tiny budget."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import memrl
import memrl.evaluation
from memrl.checkpoint import load_checkpoint
from memrl.cli import main
from memrl.logging import read_scalars

REPO = Path(__file__).resolve().parents[1]
BANDIT = str(REPO / "configs" / "rl2_bandit.yaml")
# One torch thread: on a shared 2-core machine the default two threads made training 40x slower.
FAST = ["--set", "train.progress_bar=false", "--set", "train.torch_threads=1"]
TINY = [*FAST, "--set", "env.num_envs=4", "--set", "policy.hidden_size=16", "--set", "train.total_steps=200"]


def memrl_cli(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(extra_env or {})}
    return subprocess.run(
        [sys.executable, "-m", "memrl.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def scalars_of(event_files: list[Path], tmp: Path) -> dict[str, list[tuple[int, float]]]:
    """read_scalars restricted to some event files (copied into a folder of their own)."""
    tmp.mkdir()
    for path in event_files:
        shutil.copy(path, tmp / path.name)
    return read_scalars(tmp)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory trained for 3000 steps on the 10-pull bandit config."""
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    result = memrl_cli(
        "train",
        BANDIT,
        "--set",
        "train.total_steps=3000",
        "--set",
        "env.num_envs=8",
        *FAST,
        "--run-dir",
        str(run_dir),
    )
    assert result.returncode == 0, result.stderr
    return run_dir


def test_envs_lists_builtin_envs() -> None:
    """`memrl envs` lists the three built-in task envs."""
    result = memrl_cli("envs")
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert {"memrl/Bandit-v0", "memrl/TabularMDP-v0", "memrl/PointNav-v0"} <= set(listed)


def test_train_writes_config_checkpoint_and_tensorboard_tags(trained_run: Path) -> None:
    """A trained run dir holds config.yaml, checkpoint.pt and events with the documented tags."""
    assert (trained_run / "config.yaml").is_file() and (trained_run / "checkpoint.pt").is_file()
    assert list(trained_run.glob("events.out.tfevents.*"))
    saved = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert saved["train"]["total_steps"] == 3000 and saved["env"]["num_envs"] == 8
    scalars = read_scalars(trained_run)
    for tag in (
        "losses/policy_loss",
        "losses/approx_kl",
        "losses/clip_fraction",
        "losses/explained_variance",
        "losses/entropy",
        "perf/steps_per_second",
        "charts/trial_return",
    ):
        assert tag in scalars, tag
    meta = sorted(tag for tag in scalars if tag.startswith("meta/"))
    assert meta == [f"meta/return_episode_{i}" for i in range(10)]  # one per episode of the 10-pull trial
    # rollouts of 10 steps x 8 envs: the curve is logged at 80, 160, ..., 3040 steps
    steps = [step for step, _ in scalars["losses/policy_loss"]]
    assert steps == list(range(80, 3041, 80))
    assert all(0.0 <= value <= 10.0 for _, value in scalars["charts/trial_return"])


def test_eval_writes_json_and_plot(trained_run: Path, tmp_path: Path) -> None:
    """`memrl eval DIR --trials 20 --split test` writes eval.json (mean, 10 episode means) and eval.png."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    result = memrl_cli("eval", str(run_dir), "--trials", "20", "--split", "test")
    assert result.returncode == 0, result.stderr
    report = json.loads((run_dir / "eval.json").read_text())
    assert report["split"] == "test" and report["trials"] == 20
    assert len(report["trial_returns"]) == 20
    assert len(report["per_episode_mean"]) == 10
    assert 0.0 <= report["mean_return"] <= 10.0
    # the trial return is the sum of its episodes' returns, so the means agree
    assert report["mean_return"] == pytest.approx(sum(report["per_episode_mean"]))
    assert (run_dir / "eval.png").stat().st_size > 0


def test_resume_continues_the_same_curve(trained_run: Path, tmp_path: Path) -> None:
    """--resume DIR with a larger budget continues the TensorBoard steps past the old ones."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    old_events = sorted(run_dir.glob("events.out.tfevents.*"))
    result = memrl_cli("train", "--resume", str(run_dir), "--set", "train.total_steps=6000", *FAST)
    assert result.returncode == 0, result.stderr
    new_events = sorted(set(run_dir.glob("events.out.tfevents.*")) - set(old_events))
    assert new_events
    old = scalars_of(old_events, tmp_path / "old")
    new = scalars_of(new_events, tmp_path / "new")
    old_steps = [step for step, _ in old["losses/policy_loss"]]
    new_steps = [step for step, _ in new["losses/policy_loss"]]
    # 3040 steps were done; 2960 more in rollouts of 80: 3120, 3200, ..., 6000
    assert new_steps == list(range(old_steps[-1] + 80, 6001, 80))
    assert old["charts/updates"][-1][1] + 1 == new["charts/updates"][0][1]  # the update count continues too
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["total_steps"] == 6000


def test_user_error_exits_2_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    """In a real process: an unknown config key exits 2 with one stderr line, no traceback, no run dir."""
    run_dir = tmp_path / "run"
    result = memrl_cli("train", BANDIT, "--set", "ppo.n_stepz=5", "--run-dir", str(run_dir))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "n_stepz" in lines[0] and lines[0].startswith("memrl train: error:")
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "ppo.n_stepz=5"], "unknown key 'n_stepz' in section ppo"),
        (["--set", "env.id=nope/Nope-v0"], "env.id='nope/Nope-v0'"),
        (["--set", "env.id=no_such_module_xyz:Foo-v0"], "cannot import module 'no_such_module_xyz'"),
        (["--set", "env.kwargs.n_armz=3"], "accepts: n_arms"),
        (["--set", "env.kwargs.n_arms=1"], "n_arms must be an integer >= 2"),
        (["--set", "tasks.schedule=bag"], "tasks.schedule"),
        (["--set", "env.id=CartPole-v1"], "env.id='CartPole-v1': env 'CartPole-v1' (CartPoleEnv) does not implement"),
    ],
    ids=[
        "unknown-key",
        "unknown-env",
        "missing-module",
        "bad-kwarg-name",
        "bad-kwarg-value",
        "bad-schedule",
        "no-tasks",
    ],
)
def test_train_user_errors(args: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Config and env mistakes: exit status 2, one line naming the problem, nothing written."""
    run_dir = tmp_path / "run"
    assert main(["train", BANDIT, *args, *TINY, "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not run_dir.exists()


def test_a_user_env_whose_code_fails_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A user module that imports a missing package, or an env whose constructor raises: one line naming it."""
    (tmp_path / "needs_pkg.py").write_text("import not_installed_package_xyz\n")
    (tmp_path / "bad_ctor.py").write_text(
        "import gymnasium as gym\n"
        "class Broken(gym.Env):\n"
        "    def __init__(self):\n"
        "        raise RuntimeError('no such device')\n"
        "gym.register(id='Broken-v0', entry_point=Broken)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for env_id, expected in [
        ("needs_pkg:X-v0", "cannot import module 'needs_pkg' (No module named 'not_installed_package_xyz')"),
        ("bad_ctor:Broken-v0", "making the env raised RuntimeError: no such device; to see the traceback"),
    ]:
        assert main(["train", BANDIT, *TINY, "--set", f"env.id={env_id}", "--run-dir", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err


def test_missing_config_file_and_missing_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A nonexistent config file, resuming or evaluating a non-run: exit 2 with one line each."""
    assert main(["train", str(tmp_path / "nope.yaml"), "--run-dir", str(tmp_path / "run")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "empty")]) == 2
    assert "not a memrl run directory" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "empty")]) == 2
    assert "not a memrl run directory" in capsys.readouterr().err
    (tmp_path / "early").mkdir()
    shutil.copy(BANDIT, tmp_path / "early" / "config.yaml")  # a run killed before its first checkpoint
    assert main(["eval", str(tmp_path / "early")]) == 2
    assert f"the run in {tmp_path / 'early'} stopped before writing one; train it again" in capsys.readouterr().err
    assert main(["train"]) == 2
    assert "needs a CONFIG" in capsys.readouterr().err


def test_training_into_existing_run_dir_needs_resume(trained_run: Path, tmp_path: Path, capsys) -> None:
    """train into a dir that holds a run, without --resume: exit 2, and the run is left untouched."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    assert main(["train", BANDIT, *TINY, "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume" in err[0]
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_resume_refuses_settings_the_checkpoint_cannot_take(trained_run: Path, tmp_path: Path, capsys) -> None:
    """--resume with a changed core or learning rate is an error naming both; the run is left untouched."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    changes = ["--set", "policy.core=lstm", "--set", "ppo.learning_rate=0.0001", "--set", "train.total_steps=6000"]
    assert main(["train", "--resume", str(run_dir), *changes]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "policy.core ('gru' -> 'lstm')" in err[0] and "ppo.learning_rate" in err[0], err
    assert "total_steps" not in err[0].split("not ")[-1]  # a budget change is allowed
    assert main(["train", "--resume", str(run_dir), "--run-dir", str(tmp_path / "other")]) == 2
    assert "leave out --run-dir" in capsys.readouterr().err
    assert main(["train", "--resume", str(run_dir), *FAST, "--set", "train.total_steps=100"]) == 0  # already done
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before  # config.yaml not rewritten either


def test_an_interrupted_run_saves_a_checkpoint_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Ctrl-C during training saves what was learned and says how to go on; --resume continues from it."""
    learn = memrl.MetaPPO.learn

    def learn_then_interrupt(self: memrl.MetaPPO, *args: object, **kwargs: object) -> None:
        learn(self, 400, reset_num_timesteps=False)
        raise KeyboardInterrupt

    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(memrl.MetaPPO, "learn", learn_then_interrupt)
        assert main(["train", BANDIT, *TINY, "--set", "train.total_steps=5000", "--run-dir", str(run_dir)]) == 130
    out = capsys.readouterr().out
    assert f"saved {run_dir / 'checkpoint.pt'}; continue with: memrl train --resume {run_dir}" in out
    assert memrl.MetaPPO.load(run_dir / "checkpoint.pt").num_timesteps == 400
    assert main(["train", "--resume", str(run_dir)]) == 0
    assert memrl.MetaPPO.load(run_dir / "checkpoint.pt").num_timesteps >= 5000


def test_a_run_stopped_before_its_first_checkpoint_can_start_again(tmp_path: Path, capsys) -> None:
    """A run directory with a config but no checkpoint (killed early): --resume says how; train starts afresh."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(BANDIT, run_dir / "config.yaml")
    (run_dir / "events.out.tfevents.0.stale").write_bytes(b"")
    assert main(["train", "--resume", str(run_dir)]) == 2
    assert f"start it again with memrl train CONFIG --run-dir {run_dir}" in capsys.readouterr().err
    assert main(["train", BANDIT, *TINY, "--run-dir", str(run_dir)]) == 0
    assert "starting it afresh" in capsys.readouterr().out
    assert (run_dir / "checkpoint.pt").is_file() and not (run_dir / "events.out.tfevents.0.stale").exists()


USER_ENV = '''
"""A "which arm pays more?" task env living outside memrl, registered at import."""
import gymnasium as gym
import numpy as np
from gymnasium import spaces


class PayoutEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, n_choices: int = 2):
        self.n_choices = n_choices
        self.observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(n_choices)
        self.payout = None

    def sample_tasks(self, n, rng):
        return [{"payout": row.tolist()} for row in rng.random((n, self.n_choices))]

    def set_task(self, task):
        payout = np.asarray(task["payout"], dtype=float)
        if payout.shape != (self.n_choices,):
            raise ValueError(f"bad task {task!r}")
        self.payout = payout

    def get_task(self):
        return {"payout": self.payout.tolist()}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if self.payout is None:
            self.set_task(self.sample_tasks(1, self.np_random)[0])
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(1, dtype=np.float32), float(self.payout[int(action)]), True, False, {}


gym.register(id="Payout-v0", entry_point=PayoutEnv)
'''


def test_train_a_user_task_env_from_pythonpath(tmp_path: Path) -> None:
    """env.id=module:Env-v0 imports a user module from PYTHONPATH and trains; no bandit n_arms leaks."""
    (tmp_path / "payout_tasks.py").write_text(textwrap.dedent(USER_ENV))
    run_dir = tmp_path / "run"
    result = memrl_cli(
        "train",
        BANDIT,
        "--set",
        "env.id=payout_tasks:Payout-v0",
        "--set",
        "env.episodes_per_trial=3",
        "--set",
        "ppo.n_steps=6",
        *TINY,
        "--run-dir",
        str(run_dir),
        extra_env={"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])},
    )
    assert result.returncode == 0, result.stderr
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["env"]["id"] == "payout_tasks:Payout-v0" and saved["env"]["kwargs"] == {}
    assert (run_dir / "checkpoint.pt").is_file()
    scalars = read_scalars(run_dir)
    assert sorted(tag for tag in scalars if tag.startswith("meta/")) == [f"meta/return_episode_{i}" for i in range(3)]
    # payouts are U[0, 1], so each one-step episode returns a value in [0, 1]
    assert all(0.0 <= value <= 1.0 for _, value in scalars["meta/return_episode_0"])


def test_a_user_task_env_in_the_working_directory_needs_no_pythonpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `memrl` console script, unlike `python -m`, does not put the working directory on sys.path; main does."""
    (tmp_path / "payout_here.py").write_text(textwrap.dedent(USER_ENV).replace("Payout-v0", "PayoutHere-v0"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    args = ["--set", "env.id=payout_here:PayoutHere-v0", "--set", "env.episodes_per_trial=3", "--set", "ppo.n_steps=6"]
    assert main(["train", BANDIT, *args, *TINY, "--run-dir", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


FAULTY_ENV = '''
"""A task env that breaks its contract in the way its `fault` argument names, after `after` steps."""
import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Faulty(gym.Env):
    def __init__(self, fault="none", after=0):
        self.fault, self.after, self.steps, self.task = fault, after, 0, {"p": 0.5}
        self.observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)

    def sample_tasks(self, n, rng):
        if self.fault == "count":
            return [{"p": 0.5}]
        if self.fault == "not_dict":
            return [float(p) for p in rng.random(n)]
        if self.fault == "not_json":
            return [{"p": object()} for _ in range(n)]
        return [{"p": float(p)} for p in rng.random(n)]

    def set_task(self, task):
        self.task = task

    def get_task(self):
        return self.task

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action):
        self.steps += 1
        if self.steps > self.after:
            if self.fault == "raises":
                raise RuntimeError("sensor failure")
            if self.fault == "nan":
                return np.zeros(1, dtype=np.float32), float("nan"), True, False, {}
            if self.fault == "shape":
                return np.zeros(5, dtype=np.float32), 0.0, True, False, {}
            if self.fault == "endless":
                return np.zeros(1, dtype=np.float32), 0.0, False, False, {}
        return np.zeros(1, dtype=np.float32), float(int(action) == 0), True, False, {}


gym.register(id="Faulty-v0", entry_point=Faulty)
'''


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("count", "Faulty.sample_tasks(1000, rng) returned a list of 1 (of dict); it must return a list of exactly"),
        ("not_dict", "Faulty.sample_tasks(1000, rng) returned a list of 1000 (of float); it must return"),
        ("not_json", "sample_tasks returned a task that cannot be saved as JSON"),
        ("raises", "its first reset and step failed: RuntimeError: sensor failure (at "),
        ("nan", "env.id='faulty:Faulty-v0': env 'Faulty-v0' returned the reward nan (task {'p': "),
        ("shape", "returned an observation of shape (5,), but its observation_space is Box(0.0, 1.0, (1,)"),
    ],
)
def test_a_user_env_that_breaks_its_contract_is_one_line_before_anything_is_written(
    fault: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Tasks that are not n JSON dicts, and an env whose first step raises, returns a non-finite reward
    or an observation of the wrong shape: exit 2, one line naming the env, no run directory."""
    (tmp_path / "faulty.py").write_text(textwrap.dedent(FAULTY_ENV))
    monkeypatch.syspath_prepend(str(tmp_path))
    run_dir = tmp_path / "run"
    args = ["--set", "env.id=faulty:Faulty-v0", "--set", f"env.kwargs.fault={fault}"]
    assert main(["train", BANDIT, *TINY, *args, "--run-dir", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not run_dir.exists()


def test_an_env_failing_mid_run_keeps_what_was_learned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """An env that raises after a while: the steps trained so far are saved, and the message says how to go on;
    an env that turns to non-finite rewards is reported in one line the same way."""
    (tmp_path / "faulty.py").write_text(textwrap.dedent(FAULTY_ENV))
    monkeypatch.syspath_prepend(str(tmp_path))
    run_dir = tmp_path / "run"
    args = ["--set", "env.id=faulty:Faulty-v0", "--set", "env.kwargs.after=60", "--set", "train.total_steps=2000"]
    with pytest.raises(RuntimeError, match="sensor failure"):
        main(["train", BANDIT, *TINY, *args, "--set", "env.kwargs.fault=raises", "--run-dir", str(run_dir)])
    err = capsys.readouterr().err
    assert "training stopped after" in err and f"once fixed, continue with: memrl train --resume {run_dir}" in err
    steps = load_checkpoint(run_dir)["num_timesteps"]
    assert 0 < steps < 2000
    nan_dir = tmp_path / "nan"
    assert main(["train", BANDIT, *TINY, *args, "--set", "env.kwargs.fault=nan", "--run-dir", str(nan_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "training stopped after" in err[0] and "returned the reward nan" in err[-1], err
    assert (nan_dir / "checkpoint.pt").is_file()


def test_eval_of_an_env_whose_trials_never_end_stops_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "faulty.py").write_text(textwrap.dedent(FAULTY_ENV))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(memrl.evaluation, "STALL_STEPS", 30)
    run_dir = tmp_path / "run"
    args = ["--set", "env.id=faulty:Faulty-v0", "--set", "env.kwargs.fault=endless"]
    assert main(["train", BANDIT, *TINY, *args, "--run-dir", str(run_dir)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--trials", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no trial of faulty:Faulty-v0 ended in 30 steps" in err[0], err
    assert "env.max_trial_steps" in err[0] and not (run_dir / "eval.json").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no directory can be made")
def test_a_run_dir_that_cannot_be_made_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", BANDIT, *TINY, "--run-dir", "/proc/memrl_cannot_be_made"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/proc/memrl_cannot_be_made'; check the path and its permissions" in err[0], err


def run_main(argv: list[str]) -> int:
    """memrl.cli.main, with argparse's SystemExit turned into its exit status."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


@pytest.mark.parametrize(
    ("trials", "expected"),
    [("1001", "holds 1000 tasks"), ("0", "trials"), ("-3", "trials")],
    ids=["more-than-test-split", "zero", "negative"],
)
def test_eval_bad_trial_counts_exit_2(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture, trials: str, expected: str
) -> None:
    """eval --trials beyond the test split, 0 or negative: exit 2 with a message, no report written."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    assert run_main(["eval", str(run_dir), "--trials", trials]) == 2
    assert expected in capsys.readouterr().err
    assert not (run_dir / "eval.json").exists()


def test_eval_of_a_run_whose_config_was_damaged_or_out_is_a_file(
    trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A config.yaml edited after training (evaluated or resumed), unparsable, or --out naming a file: exit 2,
    one line, no report."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    config = run_dir / "config.yaml"
    trained = config.read_text()
    config.write_text(trained.replace("n_arms: 5", "n_arms: 3"))
    assert main(["eval", str(run_dir), "--trials", "10"]) == 2
    assert "env.kwargs.n_arms (5 in the checkpoint, 3 in config.yaml); restore" in capsys.readouterr().err
    assert "hidden_size: 128\n" in trained
    config.write_text(trained.replace("hidden_size: 128\n", "hidden_size: 32\n"))  # the model's own size
    for command in (["eval", str(run_dir), "--trials", "10"], ["train", "--resume", str(run_dir)]):
        assert main(command) == 2
        assert "policy.hidden_size (128 in the checkpoint, 32 in config.yaml)" in capsys.readouterr().err
    config.write_text("env: [\n")
    assert main(["eval", str(run_dir), "--trials", "10"]) == 2
    assert f"{config}: not valid YAML" in capsys.readouterr().err
    config.write_text(trained)
    (tmp_path / "file").write_text("")
    assert main(["eval", str(run_dir), "--trials", "10", "--out", str(tmp_path / "file")]) == 2
    assert "is a file; pass a directory" in capsys.readouterr().err
    assert not (run_dir / "eval.json").exists()
