"""Can a memory core learn the tabular MDP's reward table? A supervised probe, no RL.

What RL² needs on the random tabular MDPs (Duan et al. 2016, Table 2) is, in each state, the mean
reward of every action as far as the trial has shown it (docs/results.md, "Tabular MDP"). This
probe asks each memory core for exactly that, with a clean target instead of PPO's noisy return:
trials of 10 episodes x 10 steps on fresh MDPs (the distribution of ``memrl/TabularMDP-v0``:
transitions ~ Dirichlet(1), mean rewards ~ N(1, 1), reward noise N(0, 1), start state 0) played
with uniformly random actions; at step t the model sees the trial wrapper's input (state, previous
action, previous reward, episode start, trial progress, previous state) and predicts, for all 5
actions of the current state, the posterior mean reward given the trial's earlier steps,
``(1 + sum of rewards) / (1 + visits)``. Every model has the policy's layout: an embedding of 128
(tanh), the core, a head MLP of 128.

Reported: the fraction of the targets' variance around the prior mean 1 that the model explains on
512 held-out trials (0: it guesses 1 everywhere; 1: it keeps the whole table), after the same
number of training trials for every core.

    python benchmarks/mdp_table_probe.py                 # last line: explained: gru X, transformer Y, ...
    python benchmarks/mdp_table_probe.py --models ntm_sharp mann_sharp --iterations 800
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from memrl.memory import build_core

STATES, ACTIONS, HORIZON, EPISODES = 10, 5, 10, 10
STEPS = HORIZON * EPISODES
INPUT = STATES + ACTIONS + 1 + 1 + 1 + STATES  # the trial wrapper's layout with trial_progress and previous_observation

# 100 slots: one per step of a trial for the NTM's write head (the MANN's 4 heads fill 4 slots a step).
EXTERNAL = {"slots": 100, "width": 32, "read_heads": 4, "controller": "feedforward"}
MODELS: dict[str, dict[str, Any]] = {
    "gru": {"core": "gru", "hidden_size": 128},
    "transformer": {
        "core": "transformer",
        "hidden_size": 64,
        "num_layers": 2,
        "transformer": {"heads": 4, "context": 100},
    },
    "ntm_neutral": {"core": "ntm", "hidden_size": 128, "memory": EXTERNAL},
    "ntm_sharp": {"core": "ntm", "hidden_size": 128, "memory": {**EXTERNAL, "addressing_init": "sharp"}},
    "mann_neutral": {"core": "mann", "hidden_size": 128, "memory": EXTERNAL},
    "mann_sharp": {"core": "mann", "hidden_size": 128, "memory": {**EXTERNAL, "addressing_init": "sharp"}},
}


def trials(batch: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``(T, B, INPUT)`` and targets ``(T, B, ACTIONS)`` of ``batch`` random-action trials."""
    transitions = rng.dirichlet(np.ones(STATES), size=(batch, STATES, ACTIONS)).cumsum(-1)
    means = rng.normal(1.0, 1.0, size=(batch, STATES, ACTIONS))
    actions = rng.integers(0, ACTIONS, size=(STEPS, batch))
    inputs = np.zeros((STEPS, batch, INPUT), np.float32)
    targets = np.zeros((STEPS, batch, ACTIONS), np.float32)
    sums, visits = np.zeros((batch, STATES, ACTIONS)), np.zeros((batch, STATES, ACTIONS))
    rows = np.arange(batch)
    state = np.zeros(batch, dtype=np.int64)
    prev_state, prev_action, prev_reward = state, state, np.zeros(batch)
    for t in range(STEPS):
        start = t % HORIZON == 0
        if start:
            state = np.zeros(batch, dtype=np.int64)
        x = inputs[t]
        x[rows, state] = 1.0
        if t > 0:  # RL² carries the previous action and reward across episode boundaries
            x[rows, STATES + prev_action] = 1.0
            x[:, STATES + ACTIONS] = prev_reward
            x[rows, STATES + ACTIONS + 3 + prev_state] = 1.0
        x[:, STATES + ACTIONS + 1] = float(start)
        x[:, STATES + ACTIONS + 2] = (t // HORIZON) / EPISODES  # the wrapper's clock: episodes done / per trial
        targets[t] = (1.0 + sums[rows, state]) / (1.0 + visits[rows, state])
        action = actions[t]
        reward = means[rows, state, action] + rng.standard_normal(batch)
        sums[rows, state, action] += reward
        visits[rows, state, action] += 1.0
        prev_state, prev_action, prev_reward = state, action, reward
        state = (rng.random((batch, 1)) < transitions[rows, state, action]).argmax(-1)
    return torch.from_numpy(inputs), torch.from_numpy(targets)


class Probe(nn.Module):
    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        spec = dict(spec)
        self.embed = nn.Sequential(nn.Linear(INPUT, 128), nn.Tanh())
        self.core = build_core(spec.pop("core"), input_size=128, **spec)
        self.head = nn.Sequential(nn.Linear(self.core.output_size, 128), nn.Tanh(), nn.Linear(128, ACTIONS))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        T, B = inputs.shape[:2]
        starts = torch.zeros(T, B, dtype=torch.bool)
        starts[0] = True
        y, _ = self.core(self.embed(inputs), self.core.initial_state(B), starts)
        return self.head(y)


def run(name: str, args: argparse.Namespace, held_out: tuple[torch.Tensor, torch.Tensor]) -> float:
    torch.manual_seed(args.seed)
    model = Probe(MODELS[name])
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    inputs, targets = held_out
    baseline = float(((targets - 1.0) ** 2).mean())  # guessing the prior mean everywhere
    started = time.perf_counter()
    explained = 0.0
    for iteration in range(1, args.iterations + 1):
        x, y = trials(args.batch, rng)
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if iteration % args.report_every == 0 or iteration == args.iterations:
            with torch.no_grad():
                explained = 1.0 - float(F.mse_loss(model(inputs), targets)) / baseline
            print(
                f"[{name}] trials {iteration * args.batch:6d}  explained {explained:.3f}  "
                f"{time.perf_counter() - started:.0f}s",
                flush=True,
            )
    return explained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--iterations", type=int, default=400, help="training batches per model")
    parser.add_argument("--batch", type=int, default=64, help="trials per batch")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--report-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    held_out = trials(512, np.random.default_rng(12345))
    results = {name: run(name, args, held_out) for name in args.models}
    print("explained: " + ", ".join(f"{name} {value:.3f}" for name, value in results.items()))


if __name__ == "__main__":
    main()
