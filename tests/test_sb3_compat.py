"""Stable-Baselines3 compatibility: evaluate_policy and SB3 callbacks work with MetaPPO."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import bandit_env_cfg, build_model
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy

import memrl
from memrl.config import PPOConfig, TaskConfig
from memrl.tasks.vec import make_sampler, make_vec_env

ENV_CFG = bandit_env_cfg(episodes_per_trial=5, num_envs=4)


def eval_env(num_envs: int = 2):
    return make_vec_env(
        ENV_CFG, make_sampler(ENV_CFG, TaskConfig(num_test_tasks=20), seed=0), split="test", num_envs=num_envs
    )


def test_evaluate_policy_runs_whole_trials() -> None:
    """SB3's evaluate_policy drives MetaPPO.predict with its recurrent state; an episode is a 5-step trial."""
    model = build_model(ENV_CFG)
    rewards, lengths = evaluate_policy(model, eval_env(), n_eval_episodes=6, return_episode_rewards=True)
    assert len(rewards) == 6
    assert lengths == [5] * 6  # SB3's "episode" is memrl's trial of 5 one-pull episodes
    assert all(0.0 <= r <= 5.0 for r in rewards)
    mean, std = evaluate_policy(model, eval_env(), n_eval_episodes=4, deterministic=True)
    assert 0.0 <= mean <= 5.0 and std >= 0.0


def test_checkpoint_callback_saves_loadable_models(tmp_path: Path) -> None:
    """CheckpointCallback inside learn() writes checkpoints that MetaPPO.load reads."""
    model = build_model(ENV_CFG, PPOConfig(n_steps=10, num_minibatches=2, n_epochs=1))
    # save_freq counts vector steps: every 10 calls = every 40 env steps
    callback = CheckpointCallback(save_freq=10, save_path=str(tmp_path), name_prefix="bandit")
    model.learn(120, callback=callback)
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == ["bandit_120_steps.zip", "bandit_40_steps.zip", "bandit_80_steps.zip"]
    loaded = memrl.MetaPPO.load(tmp_path / "bandit_120_steps.zip", device="cpu")
    assert loaded.num_timesteps == 120


def test_eval_callback_records_evaluations(tmp_path: Path) -> None:
    """EvalCallback inside learn() evaluates periodically, logs results and saves the best model."""
    model = build_model(ENV_CFG, PPOConfig(n_steps=10, num_minibatches=2, n_epochs=1))
    callback = EvalCallback(
        eval_env(),
        n_eval_episodes=2,
        eval_freq=10,
        log_path=str(tmp_path),
        best_model_save_path=str(tmp_path),
        verbose=0,
    )
    model.learn(80, callback=callback)
    assert callback.evaluations_timesteps == [40, 80]
    assert len(callback.evaluations_results) == 2 and all(len(r) == 2 for r in callback.evaluations_results)
    assert np.all(np.asarray(callback.evaluations_length) == 5)
    logged = np.load(tmp_path / "evaluations.npz")
    assert logged["timesteps"].tolist() == [40, 80]
    best = list(tmp_path.glob("best_model*"))  # SB3 names it "best_model"; MetaPPO.save keeps the name as given
    assert len(best) == 1
    assert memrl.MetaPPO.load(best[0], device="cpu").num_timesteps in (40, 80)
