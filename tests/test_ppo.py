"""MetaPPO (memrl/algos/ppo.py): replayed memory matches acting memory, bootstraps, determinism, API."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch
from conftest import bandit_env_cfg, build_model, point_nav_env_cfg
from stable_baselines3.common.callbacks import BaseCallback

import memrl
from memrl.config import PPOConfig
from memrl.memory import index_state, map_state

# Trials of 7 steps in rollouts of 20 split into chunks of 5: resets fall mid-chunk (t = 7, 14),
# and later rollouts start mid-trial (21 = 3 * 7, so rollout 2 begins one step into a trial).
CHUNKED = PPOConfig(n_steps=20, bptt_chunk=5, num_minibatches=2, n_epochs=2)


@pytest.mark.parametrize("core", ["gru", "lstm"])
@pytest.mark.parametrize("shared_critic", [True, False])
def test_first_minibatch_ratio_is_one_with_bptt_chunks(core: str, shared_critic: bool) -> None:
    """Before any gradient step of an update, the replayed memory gives ratio 1 and approx_kl 0."""
    model = build_model(
        bandit_env_cfg(episodes_per_trial=7, num_envs=3), CHUNKED, core=core, shared_critic=shared_critic
    )
    model.learn(3 * 20 * 3)  # 3 updates; the diagnostics are those of the last one (policy already trained)
    assert model._n_updates == 3
    assert model.diagnostics["first_minibatch_max_ratio_error"] < 1e-5
    assert model.diagnostics["first_minibatch_approx_kl"] < 1e-7


@pytest.mark.parametrize("core", ["gru", "lstm"])
def test_first_minibatch_ratio_is_one_point_nav_per_episode_advantages(core: str) -> None:
    """Same invariant on PointNav (Box actions, truncated inner episodes) with advantage_boundary=episode."""
    ppo = PPOConfig(n_steps=12, bptt_chunk=6, num_minibatches=2, n_epochs=2, advantage_boundary="episode")
    model = build_model(point_nav_env_cfg(kwargs={"horizon": 5}), ppo, core=core, shared_critic=False)
    model.learn(3 * 12 * 3)
    assert model.diagnostics["first_minibatch_max_ratio_error"] < 1e-5
    assert model.diagnostics["first_minibatch_approx_kl"] < 1e-7


class RecordInfos(BaseCallback):
    """Keeps the infos of every step, so a test can see the final observations."""

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[list[dict]] = []

    def _on_step(self) -> bool:
        self.infos.append(self.locals["infos"])
        return True


def collect(model: memrl.MetaPPO, recorder: BaseCallback | None = None) -> dict[str, Any]:
    """One rollout of a fresh model, the way learn() starts one."""
    _, callback = model._setup_learn(10**6, recorder, True, "test", False)
    model._rollout_state = model.policy.initial_state(model.env.num_envs, model.device)
    callback.on_training_start(locals(), globals())
    rollout = model.collect_rollout(callback)
    assert rollout is not None
    return rollout


def replay_states(model: memrl.MetaPPO, rollout: dict[str, Any]) -> list[Any]:
    """The policy state after each rollout step, recomputed step by step from the stored initial state."""
    state, states = rollout["chunk_states"][0], []
    with torch.no_grad():
        for t in range(rollout["observations"].shape[0]):
            out = model.policy(rollout["observations"][t : t + 1], state, rollout["starts"][t : t + 1])
            state = out.state
            states.append(state)
    return states


def test_replay_with_wrong_stored_state_breaks_the_invariant() -> None:
    """The ratio diagnostic is sensitive: replaying chunk 2 from a zero state gives ratio != 1."""
    model = build_model(bandit_env_cfg(episodes_per_trial=7, num_envs=3), CHUNKED, core="gru")
    model.learn(20 * 3)  # one update so that the policy depends on its memory
    rollout = collect(model)
    model.train_on_rollout(rollout)
    assert model.diagnostics["first_minibatch_max_ratio_error"] < 1e-5
    rollout = collect(model)
    rollout["chunk_states"][1] = map_state(torch.zeros_like, rollout["chunk_states"][1])
    model.train_on_rollout(rollout)
    assert model.diagnostics["first_minibatch_max_ratio_error"] > 1e-4


def test_rollout_starts_cuts_and_truncation_bootstrap() -> None:
    """Trial mode: starts at trial starts, cuts only at trial ends, and a truncated trial (max_trial_steps)
    bootstraps from V(final obs) read from the memory before the reset."""
    env_cfg = bandit_env_cfg(episodes_per_trial=10, max_trial_steps=4, num_envs=2)
    model = build_model(env_cfg, PPOConfig(n_steps=10, num_minibatches=1, normalize_value=False))
    recorder = RecordInfos()
    rollout = collect(model, recorder)
    expected_starts = torch.zeros(10, 2, dtype=torch.bool)
    expected_starts[[0, 4, 8]] = True  # trials of 4 steps (truncated by max_trial_steps)
    assert torch.equal(rollout["starts"], expected_starts)
    expected_cuts = torch.zeros(10, 2, dtype=torch.bool)
    expected_cuts[[3, 7]] = True
    assert torch.equal(rollout["cuts"], expected_cuts)
    states = replay_states(model, rollout)
    for t in (3, 7):
        for b in range(2):
            final_obs = torch.as_tensor(recorder.infos[t][b]["terminal_observation"]).unsqueeze(0)
            with torch.no_grad():
                expected = model.policy.values(final_obs, index_state(states[t], [b]))[0]
            assert rollout["bootstrap"][t, b].item() == pytest.approx(expected.item(), abs=1e-6)
            assert expected.abs().item() > 1e-4  # a nonzero bootstrap, so the check is not vacuous
    assert torch.count_nonzero(rollout["bootstrap"][~expected_cuts]) == 0
    # last_values: the value of the observation after the rollout, from the carried state
    with torch.no_grad():
        obs = torch.as_tensor(model._last_obs, dtype=torch.float32).unsqueeze(0)
        starts = torch.as_tensor(model._last_episode_starts, dtype=torch.bool).unsqueeze(0)
        last = model.policy(obs, states[-1], starts).values[0]
    torch.testing.assert_close(rollout["last_values"], last)


def test_episode_boundary_cuts_at_inner_episodes_and_bootstraps_truncations() -> None:
    """Episode mode on PointNav: cuts at every inner episode end; every inner episode cut by its time
    limit bootstraps from V(its final obs), the last one of the trial included."""
    env_cfg = point_nav_env_cfg(kwargs={"horizon": 4}, episodes_per_trial=3, num_envs=2)
    model = build_model(env_cfg, PPOConfig(n_steps=12, num_minibatches=1, advantage_boundary="episode"))
    recorder = RecordInfos()
    rollout = collect(model, recorder)
    expected_cuts = torch.zeros(12, 2, dtype=torch.bool)
    expected_cuts[[3, 7, 11]] = True
    assert torch.equal(rollout["cuts"], expected_cuts)
    states = replay_states(model, rollout)
    for t in (3, 7, 11):
        for b in range(2):
            # inside the trial the wrapper reports the final obs; at the trial end SB3's VecEnv does
            key = "terminal_observation" if t == 11 else "inner_final_observation"
            final_obs = torch.as_tensor(recorder.infos[t][b][key]).unsqueeze(0)
            with torch.no_grad():
                expected = model.policy.values(final_obs, index_state(states[t], [b]))[0]
            assert rollout["bootstrap"][t, b].item() == pytest.approx(expected.item(), abs=1e-6)
            assert expected.abs().item() > 1e-4  # a nonzero bootstrap, so the check is not vacuous
    # In trial mode the same env is cut only at the trial end.
    model = build_model(env_cfg, PPOConfig(n_steps=12, num_minibatches=1))
    rollout = collect(model)
    assert rollout["cuts"].nonzero()[:, 0].unique().tolist() == [11]


def test_episode_mode_does_not_bootstrap_an_episode_that_terminated_as_the_trial_budget_ran_out() -> None:
    """One-pull bandit episodes always terminate; a trial budget of 4 steps ends on such a step: value 0."""
    env_cfg = bandit_env_cfg(episodes_per_trial=10, max_trial_steps=4, num_envs=2)
    model = build_model(env_cfg, PPOConfig(n_steps=8, num_minibatches=1, advantage_boundary="episode"))
    recorder = RecordInfos()
    rollout = collect(model, recorder)
    info = recorder.infos[3][0]
    assert info["TimeLimit.truncated"] and info["inner_terminated"]  # the case under test
    assert rollout["cuts"][3].all() and torch.all(rollout["bootstrap"][3] == 0)
    model = build_model(env_cfg, PPOConfig(n_steps=8, num_minibatches=1))  # trial mode: the trial goes on
    assert torch.all(collect(model)["bootstrap"][3] != 0)


def test_a_truncation_bootstrap_reads_the_episodic_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a store, V(final obs) of a cut episode sees the store's neighbours, as acting would; not an empty recall."""
    env_cfg = point_nav_env_cfg(kwargs={"horizon": 4}, episodes_per_trial=3, num_envs=2)
    ppo = PPOConfig(n_steps=12, num_minibatches=1, advantage_boundary="episode", normalize_value=False)
    model = build_model(env_cfg, ppo, episodic={"mode": "input"})
    model.learn(48)  # the store now holds entries
    bootstrap_rows, gaps = memrl.MetaPPO._bootstrap_rows, []

    def checked(self, t, rows, final_obs, state, bootstrap) -> None:  # type: ignore[no-untyped-def]
        bootstrap_rows(self, t, rows, final_obs, state, bootstrap)
        index = torch.as_tensor(rows)
        with torch.no_grad():
            no_recall = self.policy.values(torch.as_tensor(np.stack(final_obs)), index_state(state, index))
        gaps.append(float((bootstrap[t, index] - no_recall).abs().max()))

    monkeypatch.setattr(memrl.MetaPPO, "_bootstrap_rows", checked)
    model.learn(24, reset_num_timesteps=False)
    assert gaps and max(gaps) > 1e-4


def test_value_clip_is_centred_on_the_rollout_values_under_value_normalisation() -> None:
    """Before any step the network outputs its rollout values exactly, so the value clip cannot bind."""
    losses = []
    for clip in (None, 0.2):
        model = build_model(bandit_env_cfg(), PPOConfig(n_steps=10, num_minibatches=1, n_epochs=1, clip_range_vf=clip))
        model.learn(40)  # an update: the value statistics move away from their start
        losses.append(model.train_on_rollout(collect(model))["value_loss"])
    assert losses[1] == pytest.approx(losses[0], rel=1e-6)


def test_kl_early_stop_takes_no_step_on_the_minibatch_past_the_limit() -> None:
    """With a tiny target_kl, the first minibatch (ratio 1) steps and the second, already past it, does not."""
    model = build_model(bandit_env_cfg(), PPOConfig(n_steps=10, num_minibatches=2, n_epochs=4, target_kl=1e-9))
    model.train_on_rollout(collect(model))
    steps = {int(state["step"]) for state in model.optimizer.state.values()}
    assert steps == {1}


def test_same_seed_gives_identical_parameters() -> None:
    """Two runs with the same seed end with bit-identical parameters; another seed differs."""
    env_cfg = bandit_env_cfg(episodes_per_trial=7, num_envs=3)

    def trained(seed: int) -> dict[str, torch.Tensor]:
        model = build_model(env_cfg, CHUNKED, seed=seed, core="lstm")
        model.learn(2 * 20 * 3)
        return model.policy.state_dict()

    first, second, other = trained(0), trained(0), trained(1)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_learn_counts_steps_and_reports_losses() -> None:
    """learn() stops at the first rollout boundary past total_timesteps and logs finite losses."""
    model = build_model(bandit_env_cfg(), PPOConfig(n_steps=10, num_minibatches=2, n_epochs=1))
    model.learn(50)  # rollouts of 10 x 4 = 40 steps: two rollouts
    assert model.num_timesteps == 80 and model._n_updates == 2
    rollout = collect(model)
    stats = model.train_on_rollout(rollout)
    for key in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "learning_rate"):
        assert np.isfinite(stats[key]), key
    assert stats["epochs"] == 1.0
    # the entropy of a nearly uniform policy over 3 arms is close to ln 3
    assert stats["entropy"] == pytest.approx(np.log(3), abs=0.05)


def test_linear_lr_schedule_decays() -> None:
    """lr_schedule=linear scales the learning rate by the remaining progress."""
    model = build_model(bandit_env_cfg(), PPOConfig(n_steps=10, num_minibatches=2, n_epochs=1, lr_schedule="linear"))
    model.learn(80)  # 2 updates of 40 steps: remaining progress 1 - 40/80 = 0.5, then 0
    assert model.optimizer.param_groups[0]["lr"] == pytest.approx(0.0)


@pytest.mark.parametrize(("schedule", "expected"), [("linear", [0.05, 0.0]), ("constant", [0.1, 0.1])])
def test_entropy_schedule(schedule: str, expected: list[float]) -> None:
    """ent_schedule=linear scales the entropy bonus by the remaining progress; constant keeps it."""
    cfg = PPOConfig(n_steps=10, num_minibatches=2, n_epochs=1, ent_coef=0.1, ent_schedule=schedule)  # type: ignore[arg-type]
    model = build_model(bandit_env_cfg(), cfg)
    seen: list[float] = []
    train = model.train_on_rollout

    def recording(rollout: dict) -> dict[str, float]:
        summary = train(rollout)
        seen.append(summary["ent_coef"])
        return summary

    model.train_on_rollout = recording  # type: ignore[method-assign]
    model.learn(80)  # 2 updates of 40 steps: remaining progress 0.5, then 0
    assert seen == pytest.approx(expected)


def test_meta_ppo_rejects_unknown_kwargs_listing_valid_ones() -> None:
    """An unknown keyword is a TypeError listing the PPO settings; known ones override the config."""
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['n_stepz'\].*n_steps"):
        memrl.MetaPPO("RL2Policy", None, n_stepz=10, _init_setup_model=False)
    model = memrl.MetaPPO("RL2Policy", None, config=PPOConfig(n_steps=50), gamma=0.5, _init_setup_model=False)
    assert model.config.gamma == 0.5 and model.config.n_steps == 50


@pytest.mark.parametrize("env_cfg", [bandit_env_cfg(), point_nav_env_cfg()], ids=["discrete", "box"])
def test_predict_shapes_and_action_space(env_cfg) -> None:
    """predict returns one valid action per env (or a single one for an unbatched obs) and a state."""
    model = build_model(env_cfg)
    obs = model.env.reset()
    actions, state = model.predict(obs, episode_start=np.ones(len(obs), dtype=bool))
    assert len(actions) == env_cfg.num_envs
    assert all(model.action_space.contains(np.asarray(a, dtype=model.action_space.dtype)) for a in actions)
    assert state.actor.h.shape[0] == env_cfg.num_envs
    action, single_state = model.predict(obs[0])
    assert model.action_space.contains(np.asarray(action, dtype=model.action_space.dtype))
    assert single_state.actor.h.shape[0] == 1
    with pytest.raises(ValueError, match="does not match"):
        model.predict(obs[:, :-1])


def test_box_actions_are_clipped_to_the_space() -> None:
    """Gaussian samples far outside [-1, 1] are clipped before reaching the env and in predict."""
    model = build_model(point_nav_env_cfg(), log_std_init=3.0)
    obs = model.env.reset()
    actions, _ = model.predict(obs)
    assert np.all(np.abs(actions) <= 1.0)
    assert np.any(np.abs(actions) == 1.0)  # std e^3 ~ 20: almost every sample is clipped


def assert_exact_replay_and_round_trip(model: memrl.MetaPPO, tmp_path: Any) -> memrl.MetaPPO:
    """The last update replayed the acting memory exactly, and save -> load restores every weight; the loaded model."""
    assert model.diagnostics["first_minibatch_max_ratio_error"] < 1e-5
    model.save(tmp_path / "model.pt")
    loaded = type(model).load(tmp_path / "model.pt", device="cpu")
    for name, tensor in model.policy.state_dict().items():
        assert torch.equal(tensor, loaded.policy.state_dict()[name]), name
    return loaded


def test_head_mlps_sit_between_core_and_heads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``policy.head_sizes`` puts one MLP before the action head and one before the value head; replay stays
    exact and a checkpoint restores them."""
    model = build_model(bandit_env_cfg(episodes_per_trial=7, num_envs=3), CHUNKED, head_sizes=[16, 8])
    policy = model.policy
    assert [m.out_features for m in policy.actor_mlp if isinstance(m, torch.nn.Linear)] == [16, 8]
    assert [m.out_features for m in policy.critic_mlp if isinstance(m, torch.nn.Linear)] == [16, 8]
    assert policy.value_head.in_features == 8
    model.learn(3 * 20 * 3)
    assert_exact_replay_and_round_trip(model, tmp_path)


def test_an_overflowed_gradient_is_left_out() -> None:
    """A non-finite gradient skips the optimiser step (clipping cannot rescue inf) and is counted."""
    model = build_model(bandit_env_cfg(episodes_per_trial=7, num_envs=3), CHUNKED)
    before = {name: tensor.clone() for name, tensor in model.policy.state_dict().items()}
    handle = model.policy.value_head.weight.register_hook(lambda grad: grad * float("inf"))
    model.learn(20 * 3)  # one update: every gradient step overflows
    handle.remove()
    assert model.diagnostics["skipped_steps_total"] == CHUNKED.n_epochs * CHUNKED.num_minibatches
    for name, tensor in model.policy.state_dict().items():
        assert torch.isfinite(tensor).all(), name
        if "value_norm" not in name:
            assert torch.equal(tensor, before[name]), name
    model.learn(20 * 3, reset_num_timesteps=False)  # finite again: steps are taken
    assert model.diagnostics["skipped_steps_total"] == CHUNKED.n_epochs * CHUNKED.num_minibatches


def test_auxiliary_reward_prediction(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``reward_coef > 0`` adds a head that predicts each step's reward from the actor's memory features and the
    action taken. Its loss reaches the core, falls as it trains, leaves replay exact, and a checkpoint keeps it."""
    cfg = dataclasses.replace(CHUNKED, reward_coef=1.0, learning_rate=3e-3)
    model = build_model(bandit_env_cfg(episodes_per_trial=7, num_envs=8), cfg)
    policy = model.policy
    assert policy.reward_head is not None
    assert build_model(bandit_env_cfg(episodes_per_trial=7, num_envs=8), CHUNKED).policy.reward_head is None

    # the reward loss alone sends gradient into the memory core
    obs = torch.randn(5, 2, policy.observation_space.shape[0])
    out = policy(obs, policy.initial_state(2), torch.zeros(5, 2, dtype=torch.bool))
    assert out.features is not None
    policy.predict_reward(out.features, torch.zeros(5, 2, dtype=torch.long)).sum().backward()
    core_grads = [p.grad for name, p in policy.named_parameters() if name.startswith("actor.core")]
    assert all(g is not None and torch.isfinite(g).all() for g in core_grads)
    assert any(g is not None and g.abs().sum() > 0 for g in core_grads)
    policy.zero_grad(set_to_none=True)

    summaries: list[dict[str, float]] = []
    train_on_rollout = model.train_on_rollout
    model.train_on_rollout = lambda rollout: summaries.append(train_on_rollout(rollout)) or summaries[-1]  # type: ignore[method-assign]
    model.learn(8 * 20 * 30)
    first = np.mean([s["reward_loss"] for s in summaries[:2]])
    last = np.mean([s["reward_loss"] for s in summaries[-5:]])
    # untrained, the head's guesses are off (0.13-0.43 over seeds 0-4); trained, it comes within noise of the best
    # constant guess, 1/2, or below it (half squared error 0.125 on Bernoulli(p) rewards with p ~ U[0, 1])
    assert last < min(first, 0.135)
    assert assert_exact_replay_and_round_trip(model, tmp_path).policy.reward_head is not None
    with pytest.raises(RuntimeError, match="reward_coef"):
        build_model(bandit_env_cfg(episodes_per_trial=7, num_envs=8), CHUNKED).policy.predict_reward(out.features, obs)


def test_hypernetwork_layer_computes_its_weights_from_memory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``policy.hyper_size``: the heads read ``tanh(W(m) x + b(m))``, a layer on the step's input whose weights
    come from the memory features; replay stays exact and a checkpoint restores it."""
    from memrl.policies.rl2 import _HyperLayer

    layer = _HyperLayer(memory_size=3, input_size=2, size=4, activation="tanh")
    memory, x = torch.randn(5, 3), torch.randn(5, 2)
    params = layer.hyper(memory)  # (5, (2 + 1) * 4): W as (2, 4) row-major, then b (4)
    by_hand = torch.tanh(torch.einsum("bd,bdz->bz", x, params[:, :8].reshape(5, 2, 4)) + params[:, 8:])
    torch.testing.assert_close(layer(memory, x), by_hand)
    # bias-HyperInit: with zero memory the layer is an ordinary initialised one, nonzero for a nonzero input
    zero = layer(torch.zeros(1, 3), x[:1])
    assert zero.abs().sum() > 0

    model = build_model(bandit_env_cfg(episodes_per_trial=7, num_envs=3), CHUNKED, hyper_size=8, head_sizes=[16])
    assert model.policy.actor_hyper is not None and model.policy.actor_mlp[0].in_features == 8
    model.learn(3 * 20 * 3)
    assert_exact_replay_and_round_trip(model, tmp_path)
    separate = build_model(bandit_env_cfg(episodes_per_trial=7, num_envs=3), CHUNKED, hyper_size=8, shared_critic=False)
    assert separate.policy.critic_hyper is not None
    separate.learn(3 * 20)
    assert separate.diagnostics["first_minibatch_max_ratio_error"] < 1e-5
