"""Memory cores and the RL² policy: step-by-step equals batched unroll, masked resets, state helpers."""

from __future__ import annotations

import pytest
import torch
from gymnasium import spaces

from memrl.memory import (
    GRUCore,
    GRUState,
    LSTMCore,
    LSTMState,
    build_core,
    index_state,
    map_state,
    reset_state,
)
from memrl.memory.base import clone_state, reset_segments
from memrl.policies import PolicyState, RL2Policy

T, B, IN, H = 7, 4, 3, 16

# Resets at arbitrary (t, b) inside the sequence, several at once, and none for column 3 after t=0.
STARTS = torch.zeros(T, B, dtype=torch.bool)
STARTS[0, [0, 2]] = True
STARTS[2, 1] = True
STARTS[4, [0, 1]] = True
STARTS[5, 2] = True


def make_core(kind: str, num_layers: int = 1) -> GRUCore | LSTMCore:
    torch.manual_seed(0)
    return build_core(kind, input_size=IN, hidden_size=H, num_layers=num_layers)  # type: ignore[return-value]


def random_state(core: GRUCore | LSTMCore, batch: int) -> GRUState | LSTMState:
    """A nonzero state, so that a reset that forgets to zero something shows up."""
    return map_state(lambda t: torch.randn_like(t), core.initial_state(batch))


def assert_states_close(a, b) -> None:
    def check(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        torch.testing.assert_close(x, y, atol=1e-5, rtol=0)
        return x

    map_state(check, a, b)


def step_by_step(module, x, state, starts):
    outputs = []
    for t in range(x.shape[0]):
        y, state = module(x[t : t + 1], state, starts[t : t + 1])
        outputs.append(y)
    return torch.cat(outputs), state


def reference_unroll(core, x, state, starts):
    """Column by column: run the raw torch RNN over each segment between resets, from zeros after a reset."""
    ys, finals = [], []
    for b in range(x.shape[1]):
        h = map_state(lambda s, b=b: s[b : b + 1].transpose(0, 1).contiguous(), state)  # (1, L, H) -> (L, 1, H)
        edges = [0, *[t for t in range(1, x.shape[0]) if starts[t, b]], x.shape[0]]
        col = []
        for t0, t1 in zip(edges[:-1], edges[1:], strict=True):
            if starts[t0, b]:
                h = map_state(torch.zeros_like, h)
            hx = h.h if isinstance(core, GRUCore) else (h.h, h.c)
            y, hx = core.rnn(x[t0:t1, b : b + 1], hx)
            h = GRUState(hx) if isinstance(core, GRUCore) else LSTMState(*hx)
            col.append(y)
        ys.append(torch.cat(col))
        finals.append(map_state(lambda s: s.transpose(0, 1), h))  # (L, 1, H) -> (1, L, H)
    return torch.cat(ys, dim=1), map_state(lambda *s: torch.cat(s), *finals)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_core_step_by_step_equals_batched_unroll_with_resets(kind: str, num_layers: int) -> None:
    """T single-step calls carrying state equal one (T, B) call with resets inside, to 1e-5."""
    core = make_core(kind, num_layers)
    x = torch.randn(T, B, IN)
    state = random_state(core, B)
    with torch.no_grad():
        y_batch, s_batch = core(x, state, STARTS)
        y_step, s_step = step_by_step(core, x, state, STARTS)
        y_ref, s_ref = reference_unroll(core, x, state, STARTS)
    assert y_batch.shape == (T, B, H)
    torch.testing.assert_close(y_batch, y_step, atol=1e-5, rtol=0)
    torch.testing.assert_close(y_batch, y_ref, atol=1e-5, rtol=0)
    assert_states_close(s_batch, s_step)
    assert_states_close(s_batch, s_ref)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_reset_zeroes_only_flagged_rows(kind: str) -> None:
    """starts[0] flags rows 0 and 2: they run from the initial state, the others exactly as with no reset."""
    core = make_core(kind)
    assert_reset_changes_only_flagged_rows(core, random_state(core, B), atol=1e-6)


def assert_reset_changes_only_flagged_rows(core, state, atol: float) -> None:
    """Rows 0 and 2 start a trial at step 0: they run as from the initial state, the others as with no reset."""
    x = torch.randn(T, B, core.input_size)
    starts = torch.zeros(T, B, dtype=torch.bool)
    starts[0, [0, 2]] = True
    with torch.no_grad():
        y_reset, _ = core(x, state, starts)
        y_keep, _ = core(x, state, torch.zeros(T, B, dtype=torch.bool))
        y_fresh, _ = core(x, core.initial_state(B), torch.zeros(T, B, dtype=torch.bool))
    torch.testing.assert_close(y_reset[:, [1, 3]], y_keep[:, [1, 3]], atol=0, rtol=0)
    torch.testing.assert_close(y_reset[:, [0, 2]], y_fresh[:, [0, 2]], atol=atol, rtol=0)
    # The state matters, so the reset rows really differ from the kept ones.
    assert not torch.allclose(y_reset[:, [0, 2]], y_keep[:, [0, 2]], atol=1e-3)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_core_state_shapes(kind: str) -> None:
    """States are batch-first (B, num_layers, hidden) typed NamedTuples."""
    core = make_core(kind, num_layers=2)
    state = core.initial_state(5)
    assert isinstance(state, GRUState if kind == "gru" else LSTMState)
    for leaf in state:
        assert leaf.shape == (5, 2, H)
        assert torch.count_nonzero(leaf) == 0
    _, new_state = core(torch.randn(3, 5, IN), state, torch.zeros(3, 5, dtype=torch.bool))
    assert type(new_state) is type(state)
    assert all(leaf.shape == (5, 2, H) for leaf in new_state)


def test_reset_state_index_state_map_state_on_nested_states() -> None:
    """reset_state sets only flagged rows; index_state selects rows; map_state keeps types and None leaves."""
    actor = LSTMState(torch.arange(12.0).view(3, 1, 4), -torch.arange(12.0).view(3, 1, 4))
    state = PolicyState(actor=actor, critic=None)
    initial = PolicyState(LSTMState(torch.zeros(3, 1, 4), torch.zeros(3, 1, 4)), None)

    reset = reset_state(state, initial, torch.tensor([False, True, False]))
    assert isinstance(reset, PolicyState) and isinstance(reset.actor, LSTMState) and reset.critic is None
    torch.testing.assert_close(reset.actor.h[[0, 2]], actor.h[[0, 2]])
    torch.testing.assert_close(reset.actor.c[[0, 2]], actor.c[[0, 2]])
    assert torch.count_nonzero(reset.actor.h[1]) == 0 and torch.count_nonzero(reset.actor.c[1]) == 0

    picked = index_state(state, torch.tensor([2, 0]))
    torch.testing.assert_close(picked.actor.h, actor.h[[2, 0]])
    torch.testing.assert_close(picked.actor.c, actor.c[[2, 0]])
    assert index_state(state, slice(1, 2)).actor.h.shape == (1, 1, 4)

    summed = map_state(lambda a, b: a + b, state, state)
    torch.testing.assert_close(summed.actor.c, 2 * actor.c)
    assert summed.critic is None

    cloned = clone_state(state)
    cloned.actor.h.add_(1.0)  # a clone shares no storage with the original
    torch.testing.assert_close(state.actor.h, torch.arange(12.0).view(3, 1, 4))

    with pytest.raises(TypeError, match="tensors"):
        map_state(lambda t: t, {"h": torch.zeros(1)})


def test_reset_segments_splits_at_resets_after_step_zero() -> None:
    """Segments start at every time step with a reset in any row (step 0 never splits)."""
    assert reset_segments(STARTS) == [(0, 2), (2, 4), (4, 5), (5, 7)]
    assert reset_segments(torch.zeros(6, 3, dtype=torch.bool)) == [(0, 6)]
    all_start_at_zero = torch.zeros(6, 3, dtype=torch.bool)
    all_start_at_zero[0] = True
    assert reset_segments(all_start_at_zero) == [(0, 6)]
    assert reset_segments(torch.ones(1, 2, dtype=torch.bool)) == [(0, 1)]
    every_step = torch.zeros(3, 2, dtype=torch.bool)
    every_step[1:, 1] = True
    assert reset_segments(every_step) == [(0, 1), (1, 2), (2, 3)]


def test_build_core_rejects_unknown_name() -> None:
    """An unknown core name is a ValueError listing the known ones."""
    with pytest.raises(ValueError, match="gru, lstm"):
        build_core("ntm-v9", input_size=2, hidden_size=4)


def make_policy(action_space: spaces.Space, core: str, shared_critic: bool) -> RL2Policy:
    torch.manual_seed(0)
    obs_space = spaces.Box(-1.0, 1.0, shape=(6,))
    policy = RL2Policy(
        observation_space=obs_space,
        action_space=action_space,
        core=core,
        hidden_size=H,
        embed_sizes=[8],
        layer_norm=True,
        shared_critic=shared_critic,
    )
    # Nonzero value head and action head weights, so mismatched features show up in every output.
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return policy


@pytest.mark.parametrize("core", ["gru", "lstm"])
@pytest.mark.parametrize("shared_critic", [True, False])
@pytest.mark.parametrize(
    "action_space", [spaces.Discrete(3), spaces.Box(-1.0, 1.0, shape=(2,))], ids=["discrete", "box"]
)
def test_policy_step_by_step_equals_batched_unroll(action_space: spaces.Space, shared_critic: bool, core: str) -> None:
    """RL2Policy: T single-step calls carrying state equal one batched unroll with resets, to 1e-5."""
    policy = make_policy(action_space, core, shared_critic)
    x = torch.randn(T, B, 6)
    state = map_state(torch.randn_like, policy.initial_state(B))
    assert (state.critic is None) == shared_critic
    with torch.no_grad():
        batch = policy(x, state, STARTS)
        params, values = [], []
        step_state = state
        for t in range(T):
            out = policy(x[t : t + 1], step_state, STARTS[t : t + 1])
            params.append(out.params)
            values.append(out.values)
            step_state = out.state
    expected_params = 3 if isinstance(action_space, spaces.Discrete) else 4  # logits, or mean + log_std
    assert batch.params.shape == (T, B, expected_params) and batch.values.shape == (T, B)
    torch.testing.assert_close(batch.params, torch.cat(params), atol=1e-5, rtol=0)
    torch.testing.assert_close(batch.values, torch.cat(values), atol=1e-5, rtol=0)
    assert_states_close(batch.state, step_state)


def test_policy_values_reads_state_without_reset() -> None:
    """values(obs, state) is the denormalised value of one step from ``state`` (no reset applied)."""
    policy = make_policy(spaces.Discrete(3), "gru", shared_critic=False)
    policy.value_norm.mean.fill_(2.0)
    policy.value_norm.var.fill_(9.0)  # std 3
    obs = torch.randn(B, 6)
    state = map_state(torch.randn_like, policy.initial_state(B))
    with torch.no_grad():
        raw = policy(obs.unsqueeze(0), state, torch.zeros(1, B, dtype=torch.bool)).values[0]
        fresh = policy(obs.unsqueeze(0), state, torch.ones(1, B, dtype=torch.bool)).values[0]
        torch.testing.assert_close(policy.values(obs, state), raw * 3.0 + 2.0)
    assert not torch.allclose(raw, fresh, atol=1e-4)  # the state matters, so a hidden reset would show
