"""The transformer core: its cache replays exactly, trial starts and the window bound what a step sees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import bandit_env_cfg, build_model
from gymnasium import spaces
from test_memory import STARTS, assert_reset_changes_only_flagged_rows, step_by_step

import memrl
from memrl.config import ConfigError, PPOConfig, TaskConfig, load_config
from memrl.memory import TransformerCore, TransformerState, build_core, clone_state
from memrl.policies import RL2Policy
from memrl.tasks.vec import make_sampler, make_vec_env

T, B, IN, H = 7, 4, 3, 16


def make_core(context: int = 16, num_layers: int = 2) -> TransformerCore:
    torch.manual_seed(0)
    core = build_core(
        "transformer", input_size=IN, hidden_size=H, num_layers=num_layers, transformer={"heads": 4, "context": context}
    )
    assert isinstance(core, TransformerCore)
    return core


def assert_same_memory(core: TransformerCore, a: TransformerState, b: TransformerState) -> None:
    """Two states hold the same memory: the same positions, and the same outputs on any continuation.

    (Their rings may differ in slots that no step can see, such as a finished trial's steps.)
    """
    torch.testing.assert_close(a.position, b.position, atol=0, rtol=0)
    x = torch.randn(4, a.position.shape[0], core.input_size)
    no_starts = torch.zeros(4, a.position.shape[0], dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(core(x, clone_state(a), no_starts)[0], core(x, clone_state(b), no_starts)[0])


def warm_state(core: TransformerCore, steps: int = 5) -> TransformerState:
    """The state after ``steps`` random steps of one trial: a cache that matters to what follows."""
    with torch.no_grad():
        _, state = core(torch.randn(steps, B, IN), core.initial_state(B), torch.zeros(steps, B, dtype=torch.bool))
    return state


@pytest.mark.parametrize("context", [3, 16])
def test_step_by_step_equals_one_pass_with_resets(context: int) -> None:
    """T single steps carrying the cache equal one (T, B) pass with trial starts inside, to 1e-5."""
    core = make_core(context)
    state = warm_state(core)
    x = torch.randn(T, B, IN)
    with torch.no_grad():
        y_pass, s_pass = core(x, state, STARTS)
        y_step, s_step = step_by_step(core, x, state, STARTS)
    assert y_pass.shape == (T, B, H)
    torch.testing.assert_close(y_pass, y_step, atol=1e-5, rtol=0)
    assert_same_memory(core, s_pass, s_step)
    assert len(s_pass.keys) == len(s_pass.values) == 2 and s_pass.position.dtype == torch.long
    assert s_pass.keys[0].shape == s_pass.values[1].shape == (B, 4, context, H // 4)


def test_a_trial_start_hides_every_earlier_step() -> None:
    """After a start at step t0, an env's outputs equal a fresh state's on the steps from t0 on."""
    core = make_core()
    state = warm_state(core)
    x = torch.randn(T, B, IN)
    with torch.no_grad():
        y, s = core(x, state, STARTS)
        for b in range(B):
            starts_b = torch.nonzero(STARTS[:, b]).flatten().tolist()
            if not starts_b:
                continue
            t0 = starts_b[-1]
            fresh, _ = core(x[t0:, b : b + 1], core.initial_state(1), torch.zeros(T - t0, 1, dtype=torch.bool))
            torch.testing.assert_close(y[t0:, b : b + 1], fresh, atol=1e-5, rtol=0)
    assert s.position.tolist() == [3, 3, 2, 5 + T]  # steps since each env's last start
    # Without the start the earlier steps do matter (the test would pass vacuously otherwise).
    with torch.no_grad():
        kept, _ = core(x, state, torch.zeros(T, B, dtype=torch.bool))
    assert not torch.allclose(kept[4:, 0], y[4:, 0], atol=1e-3)


def test_each_step_sees_at_most_context_steps() -> None:
    """One layer, position embeddings zeroed: a step's output is a fresh pass over its last ``context`` inputs.

    (With more layers a step sees ``context`` steps of the layer below, whose outputs saw further back.)
    """
    context = 3
    core = make_core(context, num_layers=1)
    with torch.no_grad():
        core.position.weight.zero_()
        x = torch.randn(T, B, IN)
        y, _ = core(x, core.initial_state(B), torch.zeros(T, B, dtype=torch.bool))
        for t in range(T):
            first = max(0, t - context + 1)
            window, _ = core(x[first : t + 1], core.initial_state(B), torch.zeros(t + 1 - first, B, dtype=torch.bool))
            torch.testing.assert_close(y[t], window[-1], atol=1e-5, rtol=0)


def test_rollout_steps_write_in_place_and_branching_stays_correct() -> None:
    """A no-grad step writes into the ring in place; a second step from the same state still sees its memory."""
    core = make_core(context=3)
    state = warm_state(core)
    x1, x2 = torch.randn(1, B, IN), torch.randn(1, B, IN)
    no_start = torch.zeros(1, B, dtype=torch.bool)
    with torch.no_grad():
        expected_1, _ = core(x1, clone_state(state), no_start)
        expected_2, _ = core(x2, clone_state(state), no_start)
        y1, s1 = core(x1, state, no_start)
        assert s1.keys[0].data_ptr() == state.keys[0].data_ptr()  # in place: no copy of the cache
        y2, s2 = core(x2, state, no_start)  # the same state again: it works on a copy
        assert s2.keys[0].data_ptr() != state.keys[0].data_ptr()
        torch.testing.assert_close(y1, expected_1, atol=1e-6, rtol=0)
        torch.testing.assert_close(y2, expected_2, atol=1e-6, rtol=0)
        core(x1, s1, no_start)  # s1 steps on in place: state is now two steps behind its ring
        with pytest.raises(ValueError, match="stepped on more than once.*clone_state"):
            core(x2, state, no_start)


def test_an_in_place_trial_start_leaves_the_old_state_whole() -> None:
    """A no-grad step that starts a trial also writes in place, into a slot the old state does not see."""
    core = make_core(context=8)
    state = warm_state(core)
    x1, x2 = torch.randn(1, B, IN), torch.randn(1, B, IN)
    no_start, start = torch.zeros(1, B, dtype=torch.bool), torch.ones(1, B, dtype=torch.bool)
    with torch.no_grad():
        expected, _ = core(x2, clone_state(state), no_start)
        _, s1 = core(x1, state, start)
        assert s1.keys[0].data_ptr() == state.keys[0].data_ptr()  # it did write in place
        y, _ = core(x2, state, no_start)  # the old state, continued instead
    torch.testing.assert_close(y, expected, atol=1e-6, rtol=0)


def test_kept_states_are_never_written_in_place() -> None:
    """A clone, a fresh initial state and a view are stepped on a copy, so they can be used again and again."""
    core = make_core(context=4)
    x = torch.randn(3, B, IN)
    start = torch.zeros(3, B, dtype=torch.bool)
    start[0] = True

    def run(state: TransformerState) -> torch.Tensor:
        ys = []
        for t in range(3):
            y, state = core(x[t : t + 1], state, start[t : t + 1])
            ys.append(y)
        return torch.cat(ys)

    with torch.no_grad():
        fresh = core.initial_state(B)  # the SB3 pattern: every episode starts again from the same state
        saved = clone_state(warm_state(core))  # made by a parallel pass, then kept
        expected = run(clone_state(saved))
        for _ in range(3):
            torch.testing.assert_close(run(fresh), run(core.initial_state(B)), atol=0, rtol=0)
            torch.testing.assert_close(run(saved), expected, atol=1e-6, rtol=0)


def test_inference_mode_steps_work_on_copies() -> None:
    """Inference tensors keep no version counter: under torch.inference_mode the core copies, and agrees."""
    core = make_core(context=4)
    warm, x = torch.randn(5, B, IN), torch.randn(2, B, IN)
    no_start = torch.zeros(1, B, dtype=torch.bool)
    with torch.no_grad():
        _, state = core(warm, core.initial_state(B), torch.zeros(5, B, dtype=torch.bool))
        expected, _ = core(x, state, torch.zeros(2, B, dtype=torch.bool))
    with torch.inference_mode():
        _, state = core(warm, core.initial_state(B), torch.zeros(5, B, dtype=torch.bool))
        y0, state = core(x[:1], state, no_start)
        y1, _ = core(x[1:], state, no_start)
    torch.testing.assert_close(torch.cat([y0, y1]), expected, atol=1e-5, rtol=0)


def test_reset_changes_only_flagged_rows() -> None:
    core = make_core()
    assert_reset_changes_only_flagged_rows(core, warm_state(core), atol=1e-5)


def test_gradients_reach_the_input_through_the_cache() -> None:
    """A step's output depends, differentiably, on an earlier step's input of the same pass."""
    core = make_core()
    x = torch.randn(T, B, IN, requires_grad=True)
    y, _ = core(x, core.initial_state(B), torch.zeros(T, B, dtype=torch.bool))
    y[-1].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad[0].abs().sum() > 0  # the first step reaches the last one through attention


def test_bad_options_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="divide hidden_size"):
        build_core("transformer", input_size=2, hidden_size=10, transformer={"heads": 4})
    with pytest.raises(ValueError, match="context must be at least 1"):
        build_core("transformer", input_size=2, hidden_size=8, transformer={"context": 0})
    with pytest.raises(ConfigError, match=r"policy.transformer.heads \(3\) must divide policy.hidden_size \(128\)"):
        load_config("configs/rl2_bandit.yaml", ["policy.core=transformer", "policy.transformer.heads=3"])
    with pytest.raises(ConfigError, match="policy.transformer.context must be a positive integer"):
        load_config("configs/rl2_bandit.yaml", ["policy.transformer.context=0"])


def test_policy_step_by_step_equals_batched_unroll() -> None:
    torch.manual_seed(0)
    policy = RL2Policy(
        observation_space=spaces.Box(-1.0, 1.0, shape=(6,)),
        action_space=spaces.Discrete(3),
        core="transformer",
        hidden_size=H,
        num_layers=2,
        embed_sizes=[8],
        transformer={"heads": 2, "context": 4},
    )
    x = torch.randn(T, B, 6)
    state = policy.initial_state(B)
    with torch.no_grad():
        state = policy(torch.randn(3, B, 6), state, torch.zeros(3, B, dtype=torch.bool)).state
        batch = policy(x, state, STARTS)
        step_state, params = state, []
        for t in range(T):
            out = policy(x[t : t + 1], step_state, STARTS[t : t + 1])
            params.append(out.params)
            step_state = out.state
    torch.testing.assert_close(batch.params, torch.cat(params), atol=1e-5, rtol=0)
    core = policy.actor.core
    assert isinstance(core, TransformerCore)
    assert_same_memory(core, batch.state.actor, step_state.actor)


def test_trains_and_save_load_predict_gives_the_same_actions(tmp_path: Path) -> None:
    env_cfg = bandit_env_cfg(num_envs=3)
    model = build_model(
        env_cfg,
        PPOConfig(n_steps=10, num_minibatches=2, n_epochs=2),
        core="transformer",
        transformer={"heads": 2, "context": 8},
    )
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(2 * 10 * env_cfg.num_envs)
    assert model.diagnostics["first_minibatch_max_ratio_error"] < 1e-5  # replayed memory = acting memory
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters(), strict=True))
    model.save(tmp_path / "model.pt")
    loaded = memrl.MetaPPO.load(tmp_path / "model.pt", device="cpu")

    def play(agent: memrl.MetaPPO) -> np.ndarray:
        sampler = make_sampler(env_cfg, TaskConfig(num_test_tasks=20), seed=0)
        env = make_vec_env(env_cfg, sampler, split="test", seed=0)
        obs, starts, state, actions = env.reset(), np.ones(env.num_envs, dtype=bool), None, []
        torch.manual_seed(0)
        for _ in range(12):
            action, state = agent.predict(obs, state=state, episode_start=starts)
            assert isinstance(state.actor, TransformerState)
            actions.append(action)
            obs, _, starts, _ = env.step(action)
        env.close()
        return np.stack(actions)

    np.testing.assert_array_equal(play(model), play(loaded))
