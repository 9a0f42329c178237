"""NTM and MANN cores (memrl/memory/ntm.py, mann.py): addressing math against hand-worked numbers,
the memory-core contract (step-by-step = batched unroll, masked resets), gradients through memory,
a copy task that needs memory, an NTM policy through MetaPPO and checkpoints, and the CLI views."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import bandit_env_cfg, build_model
from torch import nn

import memrl
from memrl.config import PPOConfig, TaskConfig
from memrl.memory import MANNCore, MANNState, NTMCore, NTMState, build_core, map_state
from memrl.memory.mann import least_used, lrua_write_weights
from memrl.memory.ntm import (
    address,
    circular_shift,
    content_addressing,
    cosine_similarity,
    erase_add_write,
    interpolate,
    inverse_softplus,
    read,
    sharpen,
)
from memrl.tasks.vec import make_sampler, make_vec_env

REPO = Path(__file__).resolve().parents[1]
T, B, IN, H = 7, 4, 3, 16
MEMORY = {"slots": 8, "width": 5, "read_heads": 2, "shift_range": 1, "controller": "lstm", "init": "learned"}

STARTS = torch.zeros(T, B, dtype=torch.bool)
STARTS[0, [0, 2]] = True
STARTS[2, 1] = True
STARTS[4, [0, 1]] = True
STARTS[5, 2] = True


def make_core(kind: str, **memory: object) -> NTMCore | MANNCore:
    torch.manual_seed(0)
    return build_core(kind, input_size=IN, hidden_size=H, memory={**MEMORY, **memory})  # type: ignore[return-value]


def random_state(core: NTMCore | MANNCore, batch: int) -> NTMState | MANNState:
    """A state unlike the initial one everywhere (weightings stay distributions), so a reset shows."""
    torch.manual_seed(1)

    def scramble(t: torch.Tensor) -> torch.Tensor:
        return (
            torch.softmax(torch.randn_like(t), dim=-1)
            if t.dim() == 3 and t.shape[-1] == core.slots
            else t + torch.rand_like(t)
        )

    state = core.initial_state(batch)
    return type(state)(
        *[
            scramble(t) if name != "memory" else torch.randn_like(t)
            for name, t in zip(state._fields, state, strict=True)
        ]
    )


# ----------------------------------------------------------------------------------------------
# Addressing math, hand-worked
# ----------------------------------------------------------------------------------------------
def test_addressing_weights_are_distributions_under_random_inputs() -> None:
    torch.manual_seed(0)
    Bt, Hd, N, M, S = 5, 3, 11, 4, 2
    memory = torch.randn(Bt, N, M)
    previous = torch.softmax(torch.randn(Bt, Hd, N), dim=-1)
    for _ in range(20):
        weights = address(
            memory,
            previous,
            keys=torch.randn(Bt, Hd, M) * 3,
            strengths=F.softplus(torch.randn(Bt, Hd) * 5),
            gate=torch.rand(Bt, Hd),
            shift=torch.softmax(torch.randn(Bt, Hd, 2 * S + 1), dim=-1),
            gamma=1 + F.softplus(torch.randn(Bt, Hd) * 10),
        )
        assert torch.isfinite(weights).all() and (weights >= 0).all()
        torch.testing.assert_close(weights.sum(-1), torch.ones(Bt, Hd))
        previous = weights
    content = content_addressing(torch.randn(Bt, Hd, M), torch.rand(Bt, Hd) * 50, memory)
    torch.testing.assert_close(content.sum(-1), torch.ones(Bt, Hd))


def test_cosine_similarity_hand_worked() -> None:
    memory = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]])  # (1, 3, 2)
    keys = torch.tensor([[[3.0, 0.0]]])
    torch.testing.assert_close(cosine_similarity(keys, memory), torch.tensor([[[1.0, 0.0, 1 / math.sqrt(2)]]]))


def test_reading_with_a_stored_row_as_key_returns_that_row_as_beta_grows() -> None:
    torch.manual_seed(0)
    memory = torch.randn(2, 10, 6)
    keys = memory[:, [3, 7]]  # (2, 2, 6): rows 3 and 7 of each env
    errors = []
    for beta in (1.0, 10.0, 100.0, 1000.0):
        weights = content_addressing(keys, torch.full((2, 2), beta), memory)
        errors.append(float((read(weights, memory) - keys).abs().max()))
    assert errors == sorted(errors, reverse=True) and errors[0] > 0.1
    assert errors[-1] < 1e-4


def test_interpolation_hand_worked() -> None:
    content = torch.tensor([[[1.0, 0.0, 0.0]]])
    previous = torch.tensor([[[0.0, 0.5, 0.5]]])
    torch.testing.assert_close(
        interpolate(content, previous, torch.tensor([[0.25]])), torch.tensor([[[0.25, 0.375, 0.375]]])
    )


def test_circular_shift_hand_worked() -> None:
    w = torch.tensor([[[0.1, 0.2, 0.3, 0.4]]])
    up = torch.tensor([[[0.0, 0.0, 1.0]]])  # shift +1: w~(i) = w(i - 1)
    torch.testing.assert_close(circular_shift(w, up), torch.tensor([[[0.4, 0.1, 0.2, 0.3]]]))
    down = torch.tensor([[[1.0, 0.0, 0.0]]])  # shift -1: w~(i) = w(i + 1)
    torch.testing.assert_close(circular_shift(w, down), torch.tensor([[[0.2, 0.3, 0.4, 0.1]]]))
    # Half -1, half +1: w~(i) = 0.5 w(i + 1) + 0.5 w(i - 1).
    torch.testing.assert_close(
        circular_shift(w, torch.tensor([[[0.5, 0.0, 0.5]]])), torch.tensor([[[0.3, 0.2, 0.3, 0.2]]])
    )
    # Range 2 (shifts -2..2), shift +2 wraps around; range 0 leaves w unchanged.
    torch.testing.assert_close(
        circular_shift(w, torch.tensor([[[0.0, 0.0, 0.0, 0.0, 1.0]]])), torch.tensor([[[0.3, 0.4, 0.1, 0.2]]])
    )
    torch.testing.assert_close(circular_shift(w, torch.ones(1, 1, 1)), w)


def test_sharpen_hand_worked_and_stable() -> None:
    w = torch.tensor([[[0.1, 0.2, 0.3, 0.4]]])
    torch.testing.assert_close(sharpen(w, torch.tensor([[1.0]])), w, atol=1e-5, rtol=0)
    expected = torch.tensor([[[1.0, 4.0, 9.0, 16.0]]]) / 30.0  # w^2 / sum w^2
    torch.testing.assert_close(sharpen(w, torch.tensor([[2.0]])), expected, atol=1e-5, rtol=0)
    extreme = sharpen(torch.tensor([[[0.0, 1e-30, 0.4, 0.6]]]), torch.tensor([[1e4]]))
    assert torch.isfinite(extreme).all()
    torch.testing.assert_close(extreme, torch.tensor([[[0.0, 0.0, 0.0, 1.0]]]))


def test_erase_with_full_weight_and_all_ones_erase_clears_the_slot() -> None:
    torch.manual_seed(0)
    memory = torch.randn(2, 4, 3)
    weights = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    cleared = erase_add_write(memory, weights, torch.ones(2, 3), torch.zeros(2, 3))
    assert cleared[0, 1].abs().max() == 0 and cleared[1, 3].abs().max() == 0
    torch.testing.assert_close(cleared[0, [0, 2, 3]], memory[0, [0, 2, 3]])
    torch.testing.assert_close(cleared[1, :3], memory[1, :3])
    # Hand-worked: M(i) (1 - w(i) e) + w(i) a with w = 0.5, e = (1, 0, 0.5), a = (2, 2, 2).
    one = erase_add_write(
        torch.ones(1, 1, 3), torch.tensor([[0.5]]), torch.tensor([[1.0, 0.0, 0.5]]), torch.full((1, 3), 2.0)
    )
    torch.testing.assert_close(one, torch.tensor([[[1.5, 2.0, 1.75]]]))


# ----------------------------------------------------------------------------------------------
# Least-recently-used access (MANN)
# ----------------------------------------------------------------------------------------------
def test_least_used_picks_the_n_smallest_usages() -> None:
    usage = torch.tensor([[0.5, 0.1, 0.9, 0.05], [1.0, 1.0, 1.0, 1.0]])
    torch.testing.assert_close(least_used(usage, 1), torch.tensor([[0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]]))
    torch.testing.assert_close(least_used(usage, 2), torch.tensor([[0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]]))
    gate = torch.tensor([[0.25]])
    write = lrua_write_weights(gate, torch.tensor([[[1.0, 0.0, 0.0, 0.0]]]), torch.tensor([[0.0, 0.0, 0.0, 1.0]]))
    torch.testing.assert_close(write, torch.tensor([[[0.25, 0.0, 0.0, 0.75]]]))


def test_lrua_writes_go_to_the_least_used_slot() -> None:
    """With the gate closed (sigmoid(alpha) ~ 0) the key is written into the least-used slot, which is
    cleared first; every other slot is unchanged."""
    core = make_core("mann", read_heads=1)
    with torch.no_grad():
        core.heads.bias[core.width + 1] = -50.0  # alpha: write gate ~ 0, so w^w = w^lu_{t-1}
    state = random_state(core, 3)
    usage = torch.rand(3, core.slots) + 1.0
    slots = torch.tensor([5, 0, 2])
    usage[torch.arange(3), slots] = 0.01
    state = state._replace(usage=usage, least_used=least_used(usage, 1))
    x = torch.randn(1, 3, IN)
    _, after = core(x, state, torch.zeros(1, 3, dtype=torch.bool))
    torch.testing.assert_close(after.write_weights[:, 0], F.one_hot(slots, core.slots).float(), atol=1e-6, rtol=0)
    keys = core.heads(after.controller_h)[:, : core.width]
    for b in range(3):
        others = [i for i in range(core.slots) if i != slots[b]]
        torch.testing.assert_close(after.memory[b, others], state.memory[b, others])
        torch.testing.assert_close(after.memory[b, slots[b]], keys[b], atol=1e-5, rtol=0)  # old content gone
    # Usage grew at the written slot, so it is no longer the least used.
    assert not torch.equal(after.least_used, state.least_used)


def test_inverse_softplus() -> None:
    for y in (1e-3, 0.5, 1.0, 9.0, 10.0, 30.0):
        assert F.softplus(torch.tensor(inverse_softplus(y), dtype=torch.float64)).item() == pytest.approx(y, rel=1e-9)


@pytest.mark.parametrize("shift_range", [1, 2])
def test_sharp_addressing_init_starts_the_ntm_on_its_program(shift_range: int) -> None:
    """``addressing_init="sharp"``: before any training (head weights zeroed, so the heads emit
    their biases) the write head moves one slot per step, a slot at a time, and the read heads
    address by content with beta 10 and no shift."""
    core = NTMCore(
        input_size=IN, hidden_size=H, slots=8, width=5, read_heads=2, shift_range=shift_range, addressing_init="sharp"
    )
    with torch.no_grad():
        core.heads.weight.zero_()
    state = core.initial_state(B)
    no_start = torch.zeros(1, B, dtype=torch.bool)
    for t in range(1, 11):
        _, state = core(torch.randn(1, B, IN), state, no_start)
        assert state.write_weights.argmax(-1).eq(t % 8).all()  # slot 0, then +1 each step, wrapping
        assert state.write_weights.max(-1).values.min() > 0.99
        assert state.gates[:, :2].sub(torch.sigmoid(torch.tensor(3.0))).abs().max() < 1e-6  # reads: content
        assert state.gates[:, 2].sub(torch.sigmoid(torch.tensor(-3.0))).abs().max() < 1e-6  # write: location
    # With the read gate at 0.95, no shift and gamma 1.007, the read weighting is (nearly) the content one.
    bias = core.heads.bias.detach()
    assert F.softplus(bias[5]).item() == pytest.approx(10.0)  # beta of read head 0
    assert 1.0 + F.softplus(bias[core.head_size * 2 + 6]).item() == pytest.approx(10.0)  # gamma of the write head
    neutral = NTMCore(input_size=IN, hidden_size=H, slots=8, width=5, read_heads=2)
    assert neutral.heads.bias.abs().max() <= 1.0 / math.sqrt(H)  # the default: torch's init, nothing set


def test_sharp_addressing_init_starts_mann_writes_on_the_least_used_slot() -> None:
    core = MANNCore(input_size=IN, hidden_size=H, slots=8, width=5, read_heads=2, addressing_init="sharp")
    with torch.no_grad():
        core.heads.weight.zero_()
    state = core.initial_state(B)
    for _ in range(5):
        least = state.least_used
        _, state = core(torch.randn(1, B, IN), state, torch.zeros(1, B, dtype=torch.bool))
        assert torch.allclose(state.gates, torch.full_like(state.gates, float(torch.sigmoid(torch.tensor(-3.0)))))
        # Santoro et al.'s w^lu marks the R least-used slots and every head's write weighting
        # interpolates towards it: each head puts 0.95 on each of them (plus 0.05 of its previous read).
        on_least = state.write_weights.masked_select(least.bool().unsqueeze(1).expand_as(state.write_weights))
        assert on_least.numel() == B * 2 * 2 and on_least.min() >= 0.95 - 1e-6
        elsewhere = state.write_weights.masked_select(~least.bool().unsqueeze(1).expand_as(state.write_weights))
        assert elsewhere.max() <= 0.05 + 1e-6


def test_unknown_addressing_init_is_a_clear_error() -> None:
    for cls in (NTMCore, MANNCore):
        with pytest.raises(ValueError, match="addressing_init 'blunt'; choose 'neutral' or 'sharp'"):
            cls(input_size=IN, hidden_size=H, addressing_init="blunt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs shift_range >= 1"):
        NTMCore(input_size=IN, hidden_size=H, shift_range=0, addressing_init="sharp")


# ----------------------------------------------------------------------------------------------
# The memory-core contract
# ----------------------------------------------------------------------------------------------
def assert_states_close(a, b) -> None:
    def check(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        torch.testing.assert_close(x, y, atol=1e-5, rtol=0)
        return x

    map_state(check, a, b)


@pytest.mark.parametrize("controller", ["lstm", "feedforward"])
@pytest.mark.parametrize("kind", ["ntm", "mann"])
def test_step_by_step_equals_batched_unroll_with_resets(kind: str, controller: str) -> None:
    core = make_core(kind, controller=controller)
    x = torch.randn(T, B, IN)
    state = random_state(core, B)
    with torch.no_grad():
        y_all, final_all = core(x, state, STARTS)
        outputs, step_state = [], state
        for t in range(T):
            y, step_state = core(x[t : t + 1], step_state, STARTS[t : t + 1])
            outputs.append(y)
    assert y_all.shape == (T, B, core.output_size) == (T, B, H + MEMORY["read_heads"] * MEMORY["width"])
    torch.testing.assert_close(torch.cat(outputs), y_all, atol=1e-5, rtol=0)
    assert_states_close(step_state, final_all)


@pytest.mark.parametrize("kind", ["ntm", "mann"])
def test_reset_clears_only_flagged_envs(kind: str) -> None:
    """A reset before step 0 makes env 0 and 2 behave as from the initial state; 1 and 3 keep their memory."""
    core = make_core(kind)
    x = torch.randn(3, B, IN)
    state = random_state(core, B)
    starts = torch.zeros(3, B, dtype=torch.bool)
    starts[0, [0, 2]] = True
    with torch.no_grad():
        y, final = core(x, state, starts)
        y_fresh, final_fresh = core(x, core.initial_state(B), torch.zeros(3, B, dtype=torch.bool))
        y_kept, final_kept = core(x, state, torch.zeros(3, B, dtype=torch.bool))
    for b, (y_ref, final_ref) in enumerate([(y_fresh, final_fresh), (y_kept, final_kept)] * 2):
        torch.testing.assert_close(y[:, b], y_ref[:, b])
        assert_states_close(map_state(lambda t, b=b: t[b], final), map_state(lambda t, b=b: t[b], final_ref))
    assert not torch.allclose(y[:, 1], y_fresh[:, 1])  # the kept memory matters


@pytest.mark.parametrize("kind", ["ntm", "mann"])
def test_gradients_flow_to_the_controller_through_memory(kind: str) -> None:
    """A loss on the final memory only reaches the controller through the writes; a loss on the last read
    vector reaches it through memory written at earlier steps."""
    core = make_core(kind)
    x = torch.randn(T, B, IN)
    _, final = core(x, core.initial_state(B), STARTS)
    final.memory.square().sum().backward()
    for param in (core.controller.input_proj.weight, core.controller.recurrent_weight, core.memory_bias):
        assert param is not None and param.grad is not None
        assert torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0
    core.zero_grad()
    y, _ = core(x, core.initial_state(B), STARTS)
    y[-1, :, H:].sum().backward()
    grad = core.controller.input_proj.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_output_and_state_shapes() -> None:
    ntm = make_core("ntm", shift_range=2)
    state = ntm.initial_state(B)
    assert isinstance(state, NTMState)
    assert (
        state.memory.shape == (B, 8, 5)
        and state.read_weights.shape == (B, 2, 8)
        and state.write_weights.shape == (B, 8)
    )
    assert state.reads.shape == (B, 10)
    mann = make_core("mann")
    mstate = mann.initial_state(B)
    assert isinstance(mstate, MANNState) and mstate.usage.shape == (B, 8)
    torch.testing.assert_close(mstate.least_used.sum(-1), torch.full((B,), 2.0))
    with pytest.raises(ValueError, match="num_layers"):
        NTMCore(input_size=3, hidden_size=4, num_layers=2)


# ----------------------------------------------------------------------------------------------
# Learning: the copy task needs memory
# ----------------------------------------------------------------------------------------------
def test_ntm_learns_a_small_copy_task_in_under_a_minute() -> None:
    """Copy 1-5 random 4-bit vectors after a delimiter, with no input during recall.

    A memoryless model sees only zeros during recall: its best guess is 0.5 per bit, 1 bit of
    cross-entropy and a 50% bit error. The NTM must get below 2% bit error on fresh sequences.
    """
    torch.manual_seed(0)
    bits, max_len = 4, 5
    core = NTMCore(input_size=bits + 1, hidden_size=32, slots=16, width=8, read_heads=1, init="learned")
    readout = nn.Linear(core.output_size, bits)
    params = [*core.parameters(), *readout.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-2)
    generator = torch.Generator().manual_seed(0)

    def batch(length: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        data = torch.randint(0, 2, (length, size, bits), generator=generator).float()
        inputs = torch.zeros(2 * length + 1, size, bits + 1)
        inputs[:length, :, :bits] = data
        inputs[length, :, bits] = 1.0
        starts = torch.zeros(2 * length + 1, size, dtype=torch.bool)
        starts[0] = True
        y, _ = core(inputs, core.initial_state(size), starts)
        return readout(y[length + 1 :]), data

    for _ in range(1200):  # about 20 s on one core
        logits, data = batch(int(torch.randint(1, max_len + 1, (1,), generator=generator)), 16)
        loss = F.binary_cross_entropy_with_logits(logits, data)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()
    with torch.no_grad():
        wrong = total = 0
        for length in range(1, max_len + 1):
            logits, data = batch(length, 64)
            wrong += int(((logits > 0).float() != data).sum())
            total += data.numel()
    assert wrong / total < 0.02, f"bit error {wrong / total:.3f}"


# ----------------------------------------------------------------------------------------------
# Through MetaPPO, checkpoints and the CLI
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["ntm", "mann"])
def test_policy_trains_and_save_load_predict_gives_the_same_actions(kind: str, tmp_path: Path) -> None:
    env_cfg = bandit_env_cfg(num_envs=3)
    memory = {"slots": 8, "width": 4, "read_heads": 1, "init": "learned"}
    model = build_model(env_cfg, PPOConfig(n_steps=10, num_minibatches=2, n_epochs=2), core=kind, memory=memory)
    before_params = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(2 * 10 * env_cfg.num_envs)
    assert model.diagnostics["first_minibatch_max_ratio_error"] < 1e-5  # replayed memory = acting memory
    assert any(not torch.equal(a, b) for a, b in zip(before_params, model.policy.parameters(), strict=True))
    model.save(tmp_path / "model.pt")
    loaded = memrl.MetaPPO.load(tmp_path / "model.pt", device="cpu")

    def play(agent: memrl.MetaPPO, carry: bool = True) -> np.ndarray:
        sampler = make_sampler(env_cfg, TaskConfig(num_test_tasks=20), seed=0)
        env = make_vec_env(env_cfg, sampler, split="test", seed=0)
        obs, starts, state, actions = env.reset(), np.ones(env.num_envs, dtype=bool), None, []
        torch.manual_seed(0)
        for _ in range(12):
            action, state = agent.predict(obs, state=state if carry else None, episode_start=starts)
            assert isinstance(state.actor, NTMState if kind == "ntm" else MANNState)
            actions.append(action)
            obs, _, starts, _ = env.step(action)
        env.close()
        return np.stack(actions)

    np.testing.assert_array_equal(play(model), play(loaded))


@pytest.mark.parametrize("kind", ["ntm", "mann"])
def test_cli_train_then_eval_writes_memory_weighting_images(kind: str, tmp_path: Path) -> None:
    """The issue's check: a tiny `memrl train` exits 0 and `memrl eval --trials 20` logs memory images."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "memrl.cli", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300
        )

    config = str(REPO / "configs" / f"{kind}_bandit.yaml")
    small = ["--set", "train.progress_bar=false", "--set", "env.num_envs=32"]  # two rollouts of 32 x 100 steps
    trained = cli("train", config, "--set", "train.total_steps=5000", *small, "--run-dir", str(run_dir))
    assert trained.returncode == 0, trained.stderr
    evaluated = cli("eval", str(run_dir), "--trials", "20")
    assert evaluated.returncode == 0, evaluated.stderr
    images: dict[str, tuple[int, int]] = {}
    for events in run_dir.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"images": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["images"]:
            image = accumulator.Images(tag)[-1]
            images[tag] = (image.height, image.width)
    assert {"memory/read_weights", "memory/write_weights", "memory/gates"} <= set(images)
    if kind == "mann":
        assert "memory/usage" in images
    assert all(h >= 32 and w >= 100 for h, w in images.values())


@pytest.mark.parametrize("kind", ["gru", "ntm", "mann"])
def test_record_memory_views_over_one_trial(kind: str) -> None:
    """Views are (rows, steps of one trial) images in [0, 1] for NTM/MANN, and absent for a GRU."""
    from memrl.config import Config
    from memrl.evaluation import record_memory_views

    env_cfg = bandit_env_cfg(num_envs=2)
    memory = {"slots": 8, "width": 4, "read_heads": 1}
    model = build_model(env_cfg, core=kind, **({"memory": memory} if kind != "gru" else {}))
    sampler = make_sampler(env_cfg, TaskConfig(num_test_tasks=20), seed=0)
    views = record_memory_views(model, Config(env=env_cfg), sampler)
    if kind == "gru":
        assert views == {}
        return
    expected = {"read_weights", "write_weights", "gates"} | ({"usage", "least_used"} if kind == "mann" else set())
    assert set(views) == expected
    steps = env_cfg.episodes_per_trial  # one-step bandit episodes
    for name, view in views.items():
        assert view.ndim == 2 and view.shape[1] == steps, name
        assert view.min() >= 0.0 and view.max() <= 1.0 and np.isfinite(view).all(), name
    assert views["read_weights"].shape[0] == 8 and views["gates"].shape[0] == (2 if kind == "ntm" else 1)
