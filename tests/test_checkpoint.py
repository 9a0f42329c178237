"""Checkpoints (memrl/checkpoint.py, MetaPPO.save/load): same actions after load, safe format, atomic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import bandit_env_cfg, build_model, point_nav_env_cfg

import memrl
from memrl.checkpoint import FORMAT, CheckpointError, load_checkpoint, save_checkpoint
from memrl.config import PPOConfig, TaskConfig
from memrl.tasks.vec import make_sampler, make_vec_env


def trained(env_cfg, **policy_kwargs) -> memrl.MetaPPO:
    model = build_model(env_cfg, PPOConfig(n_steps=10, num_minibatches=2, n_epochs=2), **policy_kwargs)
    model.learn(2 * 10 * env_cfg.num_envs)
    return model


def play(model: memrl.MetaPPO, env_cfg, *, deterministic: bool, steps: int, carry: bool = True) -> np.ndarray:
    """Actions over ``steps`` steps on fresh test-split envs, carrying the memory state."""
    sampler = make_sampler(env_cfg, TaskConfig(num_test_tasks=20), seed=0)
    env = make_vec_env(env_cfg, sampler, split="test", seed=0)
    obs, starts, state, actions = env.reset(), np.ones(env.num_envs, dtype=bool), None, []
    torch.manual_seed(0)
    for _ in range(steps):
        action, state = model.predict(
            obs, state=state if carry else None, episode_start=starts, deterministic=deterministic
        )
        actions.append(action)
        obs, _, starts, _ = env.step(action)
    env.close()
    return np.stack(actions)


def test_save_load_same_deterministic_actions_while_carrying_state(tmp_path: Path) -> None:
    """PointNav (Box): after save -> load, greedy actions over a whole trial are identical."""
    env_cfg = point_nav_env_cfg(kwargs={"horizon": 4}, episodes_per_trial=3, num_envs=2)
    model = trained(env_cfg)
    model.save(tmp_path / "model.pt")
    loaded = memrl.MetaPPO.load(tmp_path / "model.pt", device="cpu")
    before = play(model, env_cfg, deterministic=True, steps=14)  # a trial of 12 steps and the next one's start
    after = play(loaded, env_cfg, deterministic=True, steps=14)
    np.testing.assert_array_equal(before, after)
    # The comparison is sensitive to state: without carrying it the actions change.
    assert not np.allclose(before, play(model, env_cfg, deterministic=True, steps=14, carry=False), atol=1e-6)


def test_save_load_same_stochastic_actions_with_same_torch_seed(tmp_path: Path) -> None:
    """Bandit (Discrete): with torch.manual_seed reset before each run, sampled actions are identical."""
    env_cfg = bandit_env_cfg(num_envs=3)
    model = trained(env_cfg)
    model.save(tmp_path / "model.pt")
    loaded = memrl.MetaPPO.load(tmp_path / "model.pt", device="cpu")
    before = play(model, env_cfg, deterministic=False, steps=15)
    after = play(loaded, env_cfg, deterministic=False, steps=15)
    np.testing.assert_array_equal(before, after)
    assert len(np.unique(before)) > 1  # a stochastic policy over 3 arms: not one action repeated


def test_load_restores_counters_optimizer_and_value_norm(tmp_path: Path) -> None:
    """num_timesteps, update count, optimiser moments and value-normalisation statistics survive a reload."""
    env_cfg = bandit_env_cfg()
    model = trained(env_cfg, core="lstm", shared_critic=False)
    model.save(tmp_path / "model.pt")
    loaded = memrl.MetaPPO.load(tmp_path / "model.pt", device="cpu")
    assert loaded.num_timesteps == model.num_timesteps == 80
    assert loaded._n_updates == model._n_updates == 2
    assert loaded.config == model.config
    assert loaded.observation_space == model.observation_space and loaded.action_space == model.action_space
    for key, value in model.policy.state_dict().items():
        assert torch.equal(value, loaded.policy.state_dict()[key]), key
    assert model.policy.value_norm.count.item() > 1  # statistics were updated, so the check means something
    original, restored = model.optimizer.state_dict()["state"], loaded.optimizer.state_dict()["state"]
    assert original.keys() == restored.keys() and original
    for index in original:
        assert torch.equal(original[index]["exp_avg"], restored[index]["exp_avg"])


def test_checkpoint_loads_with_weights_only(tmp_path: Path) -> None:
    """The checkpoint holds only tensors and plain data: torch.load(weights_only=True) reads it."""
    model = trained(bandit_env_cfg())
    model.save(tmp_path / "model.pt")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert payload["format"] == FORMAT
    assert {"policy_state", "optimizer_state", "num_timesteps", "ppo_config", "torch_rng"} <= payload.keys()
    assert isinstance(payload["ppo_config"], str)  # configs are JSON text, not pickled objects


class Pickled:
    pass


def test_corrupt_or_foreign_files_raise_checkpoint_error(tmp_path: Path) -> None:
    """Garbage, a torn file, a foreign torch file, a pickled object or a missing file: CheckpointError."""
    model = trained(bandit_env_cfg())
    good = tmp_path / "good.pt"
    model.save(good)
    cases = {
        "garbage.pt": b"this is not a checkpoint",
        "torn.pt": good.read_bytes()[: good.stat().st_size // 2],
        "empty.pt": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    torch.save({"format": FORMAT, "obj": Pickled()}, tmp_path / "pickled.pt")
    for name in [*cases, "foreign.pt", "pickled.pt", "missing.pt"]:
        with pytest.raises(CheckpointError) as raised:
            memrl.MetaPPO.load(tmp_path / name, device="cpu")
        assert "weights_only" not in str(raised.value)  # not torch's advice to unpickle code
    for name, expected in [("torn.pt", "is damaged or not a memrl checkpoint"), ("empty.pt", "is empty")]:
        with pytest.raises(CheckpointError, match=f"{expected}.*restore it from a backup or train again"):
            memrl.MetaPPO.load(tmp_path / name, device="cpu")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path)  # a folder without checkpoint.pt


def test_checkpoint_with_missing_entries_raises_checkpoint_error(tmp_path: Path) -> None:
    """A memrl-format file missing the weights is a CheckpointError, not a KeyError."""
    model = trained(bandit_env_cfg())
    payload = model.checkpoint_payload()
    del payload["policy_state"]
    save_checkpoint(payload, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError):
        memrl.MetaPPO.load(tmp_path / "partial.pt", device="cpu")


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_failed_save_leaves_old_checkpoint_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure) -> None:
    """A save that fails mid-write leaves the previous checkpoint byte-identical and no temporary file."""
    model = trained(bandit_env_cfg())
    path = tmp_path / "checkpoint.pt"
    model.save(path)
    old_bytes = path.read_bytes()
    model.learn(40, reset_num_timesteps=False)  # new weights, so a completed save would change the file

    def torn_save(obj, handle, *args, **kwargs):
        handle.write(b"half a checkpoint")
        raise failure

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(type(failure)):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    memrl.MetaPPO.load(path, device="cpu")  # still loadable
    model.save(path)
    assert path.read_bytes() != old_bytes and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_load_with_env_continues_training(tmp_path: Path) -> None:
    """MetaPPO.load(path, env=vec_env) gives a model that keeps training from the saved step count."""
    env_cfg = bandit_env_cfg()
    model = trained(env_cfg)
    model.save(tmp_path / "model.pt")
    env = make_vec_env(env_cfg, make_sampler(env_cfg, TaskConfig(num_test_tasks=20), seed=0), seed=1)
    loaded = memrl.MetaPPO.load(tmp_path / "model.pt", env=env, device="cpu")
    assert loaded.get_env() is env
    loaded.learn(40, reset_num_timesteps=False)
    assert loaded.num_timesteps == 80 + 40 and loaded._n_updates == 3


def test_load_with_mismatched_env_is_a_config_error(tmp_path: Path) -> None:
    """Attaching an env whose spaces differ from the model's (4 arms instead of 3) is a ConfigError."""
    model = trained(bandit_env_cfg())
    model.save(tmp_path / "model.pt")
    other = bandit_env_cfg(kwargs={"n_arms": 4})
    env = make_vec_env(other, make_sampler(other, TaskConfig(num_test_tasks=20), seed=0))
    with pytest.raises(memrl.ConfigError, match="do not match"):
        memrl.MetaPPO.load(tmp_path / "model.pt", env=env, device="cpu")


def test_train_writes_periodic_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """train.checkpoint_every saves during training at each multiple of it, then once at the end."""
    from memrl.config import Config, PolicyConfig, TrainConfig
    from memrl.train import train

    cfg = Config(
        env=bandit_env_cfg(),
        tasks=TaskConfig(num_test_tasks=20),
        policy=PolicyConfig(hidden_size=16),
        ppo=PPOConfig(n_steps=10, num_minibatches=2, n_epochs=1),
        train=TrainConfig(total_steps=200, checkpoint_every=80, progress_bar=False, device="cpu"),
    ).validate()
    saved_at: list[int] = []
    original_save = memrl.MetaPPO.save

    def spy(self, path, *args, **kwargs):
        saved_at.append(self.num_timesteps)
        original_save(self, path, *args, **kwargs)

    monkeypatch.setattr(memrl.MetaPPO, "save", spy)
    model = train(cfg, tmp_path / "run")
    # 4 envs: 4 steps per vector step, checked after each; rollouts of 40 steps up to 200
    assert saved_at == [80, 160, 200]
    assert model.num_timesteps == 200
    assert memrl.MetaPPO.load(tmp_path / "run", device="cpu").num_timesteps == 200  # a run dir loads too
