"""Training throughput of memrl's MetaPPO against sb3-contrib's RecurrentPPO, in one run.

What is measured: env steps per second (wall clock) of ``learn`` for

* memrl's ``MetaPPO`` with ``RL2Policy`` (LSTM core),
* sb3-contrib's ``RecurrentPPO`` with ``MlpLstmPolicy``,
* the compute ceiling: the bare network work one PPO update must do at the same size, and nothing else.

Both trainers run on the same meta-bandit: ``memrl/Bandit-v0`` with 5 arms, trials of 100 one-pull
episodes, built by the same ``make_vec_env`` (so the env cost is identical; the observation is the flat
``[obs, one-hot previous action, previous reward, episode start]`` Box). Both use the same network: one
LSTM layer of 128 shared by actor and critic and linear policy and value heads, no MLP layers
(RecurrentPPO: ``shared_lstm=True, enable_critic_lstm=False, net_arch=[]``, which makes its
``mlp_extractor`` the identity; the parameter counts printed in the header are equal). Both use the
same env count, a rollout of ``n_steps=100`` (one whole trial per env), 4 epochs and 4 minibatches
(RecurrentPPO: ``batch_size = n_envs * 100 / 4``); each is measured at 16 and at 256 envs. Other
hyperparameters are each library's defaults; they do not change the amount of work.

The ceiling is a rollout of 100 single-step ``nn.LSTM`` calls (with the heads) on B envs under
``no_grad``, then 4 epochs x 4 minibatches of forward, backward and Adam step through ``nn.LSTM`` over
whole ``(100, B/4)`` sequences with linear heads. It steps no env, so no trainer can reach it:
ceiling steps/s = B * 100 / time.

Protocol: every measurement builds its model first, runs one untimed warm-up update, then times
``learn`` over a fixed number of further updates. Trainers alternate within each round (memrl,
RecurrentPPO, ceiling), over several rounds, and each one's *best* round is reported (interference
from other processes only ever slows a run down); the mean of the rounds is written to the JSON too.
All share one torch thread setting: torch's default (one intra-op thread per core) unless
``--threads`` says otherwise; that is the setting of the compute ceilings the core issue quotes
(LSTM of 128 on 2 cores: about 14,500 steps/s at 16 envs and 40,000 at 256). MetaPPO itself steps
its rollout on one thread. Run it on an idle machine: where other processes keep the cores busy,
torch's intra-op threads wait on descheduled siblings and every trainer (and the ceiling) runs many
times slower; there use ``--threads 1`` (the script warns when the load average says so).

    python benchmarks/throughput.py                  # about 1.5 minutes on 2 idle CPU cores
    python benchmarks/throughput.py --threads 1      # on a busy machine
    python benchmarks/throughput.py --quick --json throughput.json

The last line printed is ``ratio_16: X ratio_256: Y ceiling_fraction: Z``: memrl over RecurrentPPO at
16 and at 256 envs, and memrl over the ceiling at 256 envs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

import memrl
from memrl.config import Config, EnvConfig
from memrl.tasks.vec import make_sampler, make_vec_env

try:
    from sb3_contrib import RecurrentPPO
except ImportError:
    sys.exit("this benchmark needs sb3-contrib: pip install sb3-contrib (or pip install -e '.[bench]')")

N_ARMS = 5
TRIAL = 100  # pulls per trial = rollout length n_steps
HIDDEN = 128
EPOCHS = 4
MINIBATCHES = 4
SEED = 0

# envs -> (timed updates per round, rounds)
PLAN = {16: (8, 3), 256: (4, 3)}
QUICK_PLAN = {16: (3, 2), 256: (1, 2)}

Trainer = Callable[[int], None]  # runs this many PPO updates


def bandit_vec_env(num_envs: int) -> VecEnv:
    """The 5-armed meta-bandit, trials of 100 one-step episodes, as an SB3 ``DummyVecEnv``."""
    env_cfg = EnvConfig(id="memrl/Bandit-v0", kwargs={"n_arms": N_ARMS}, episodes_per_trial=TRIAL, num_envs=num_envs)
    cfg = Config(env=env_cfg)
    sampler = make_sampler(cfg.env, cfg.tasks, SEED)
    return make_vec_env(cfg.env, sampler, seed=SEED)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def memrl_model(num_envs: int) -> memrl.MetaPPO:
    return memrl.MetaPPO(
        "RL2Policy",
        bandit_vec_env(num_envs),
        n_steps=TRIAL,
        n_epochs=EPOCHS,
        num_minibatches=MINIBATCHES,
        seed=SEED,
        device="cpu",
        policy_kwargs={"core": "lstm", "hidden_size": HIDDEN},
    )


def recurrent_ppo_model(num_envs: int) -> RecurrentPPO:
    return RecurrentPPO(
        "MlpLstmPolicy",
        bandit_vec_env(num_envs),
        n_steps=TRIAL,
        batch_size=num_envs * TRIAL // MINIBATCHES,
        n_epochs=EPOCHS,
        seed=SEED,
        device="cpu",
        policy_kwargs={
            "lstm_hidden_size": HIDDEN,
            "n_lstm_layers": 1,
            "shared_lstm": True,
            "enable_critic_lstm": False,
            "net_arch": [],  # no MLP: linear action and value heads straight on the LSTM output
        },
    )


def sb3_trainer(model: memrl.MetaPPO | RecurrentPPO, num_envs: int) -> Trainer:
    """``learn`` for a number of updates, continuing the same run (no env reset between calls)."""
    started = [False]

    def train(updates: int) -> None:
        model.learn(updates * num_envs * TRIAL, reset_num_timesteps=not started[0])
        started[0] = True

    return train


class CeilingNet(nn.Module):
    """The shared LSTM with linear policy and value heads, in plain PyTorch."""

    def __init__(self, obs_dim: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(obs_dim, HIDDEN)
        self.policy_head = nn.Linear(HIDDEN, N_ARMS)
        self.value_head = nn.Linear(HIDDEN, 1)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        features, state = self.lstm(x, state)
        return self.policy_head(features), self.value_head(features).squeeze(-1), state


def ceiling_trainer(num_envs: int, obs_dim: int) -> tuple[Trainer, int]:
    """The network work of PPO updates with nothing else: no env, no buffers, no bookkeeping."""
    net = CeilingNet(obs_dim)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-4, eps=1e-5)
    observations = torch.randn(TRIAL, num_envs, obs_dim)
    actions = torch.randint(N_ARMS, (TRIAL, num_envs))
    advantages, returns = torch.randn(TRIAL, num_envs), torch.randn(TRIAL, num_envs)

    def zeros(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(1, batch, HIDDEN), torch.zeros(1, batch, HIDDEN)

    def train(updates: int) -> None:
        for _ in range(updates):
            state = zeros(num_envs)
            with torch.no_grad():
                for t in range(TRIAL):
                    _, _, state = net(observations[t : t + 1], state)
            for _epoch in range(EPOCHS):
                for batch in torch.randperm(num_envs).chunk(MINIBATCHES):
                    logits, values, _ = net(observations[:, batch], zeros(batch.numel()))
                    log_probs = logits.log_softmax(-1).gather(-1, actions[:, batch, None]).squeeze(-1)
                    loss = -(log_probs * advantages[:, batch]).mean() + (values - returns[:, batch]).pow(2).mean()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()

    return train, count_parameters(net)


def timed_sps(train: Trainer, updates: int, steps_per_update: int) -> float:
    started = time.perf_counter()
    train(updates)
    return updates * steps_per_update / (time.perf_counter() - started)


def measure(num_envs: int, updates: int, rounds: int) -> dict[str, Any]:
    """Best and mean steps/s of each trainer over ``rounds`` interleaved rounds of ``updates`` updates."""
    ours, theirs = memrl_model(num_envs), recurrent_ppo_model(num_envs)
    obs_dim = int(ours.observation_space.shape[0])  # type: ignore[index]
    ceiling, ceiling_params = ceiling_trainer(num_envs, obs_dim)
    trainers = {
        "memrl": sb3_trainer(ours, num_envs),
        "recurrent_ppo": sb3_trainer(theirs, num_envs),
        "ceiling": ceiling,
    }
    params = {
        "memrl": count_parameters(ours.policy),
        "recurrent_ppo": count_parameters(theirs.policy),
        "ceiling": ceiling_params,
    }
    for train in trainers.values():  # warm-up: one untimed update each
        train(1)
    steps_per_update = num_envs * TRIAL
    runs: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(rounds):
        for name, train in trainers.items():
            runs[name].append(timed_sps(train, updates, steps_per_update))
    return {
        "best": {name: max(sps) for name, sps in runs.items()},
        "mean": {name: statistics.fmean(sps) for name, sps in runs.items()},
        "runs": runs,
        "updates_per_round": updates,
        "rounds": rounds,
        "parameters": params,
    }


def warn_if_oversubscribed() -> None:
    """Say so when other processes already keep the cores busy: torch's threads then wait on each other."""
    cores, threads = os.cpu_count() or 1, torch.get_num_threads()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if threads > 1 and load + threads > cores + 0.5:
        print(
            f"warning: load average {load:.1f} on {cores} cores; {threads} torch threads may stall each other "
            "(try --threads 1)",
            file=sys.stderr,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer updates and rounds (a rough number, ~1 minute)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads for every trainer (default: torch's own)"
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write every number here")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    plan = QUICK_PLAN if args.quick else PLAN
    warn_if_oversubscribed()

    started = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; steps/s, best of the rounds")
    header = f"{'envs':>5} {'memrl':>9} {'RecurrentPPO':>13} {'ceiling':>9} {'memrl/RPPO':>11} {'memrl/ceiling':>14}"
    results: dict[int, dict[str, Any]] = {}
    for num_envs, (updates, rounds) in plan.items():
        result = measure(num_envs, updates, rounds)
        results[num_envs] = result
        if len(results) == 1:
            params = ", ".join(f"{name} {count:,}" for name, count in result["parameters"].items())
            print(f"parameters: {params}")
            print(header)
        best = result["best"]
        print(
            f"{num_envs:>5} {best['memrl']:>9.0f} {best['recurrent_ppo']:>13.0f} {best['ceiling']:>9.0f} "
            f"{best['memrl'] / best['recurrent_ppo']:>11.2f} {best['memrl'] / best['ceiling']:>14.2f}",
            flush=True,
        )
    elapsed = time.perf_counter() - started
    print(f"({elapsed:.0f} s in all)")

    ratio_16 = results[16]["best"]["memrl"] / results[16]["best"]["recurrent_ppo"]
    ratio_256 = results[256]["best"]["memrl"] / results[256]["best"]["recurrent_ppo"]
    ceiling_fraction = results[256]["best"]["memrl"] / results[256]["best"]["ceiling"]
    if args.json is not None:
        summary = {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "quick": args.quick,
            "seconds": elapsed,
            "steps_per_second": {str(envs): result for envs, result in results.items()},
            "ratio_16": ratio_16,
            "ratio_256": ratio_256,
            "ceiling_fraction": ceiling_fraction,
        }
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"ratio_16: {ratio_16:.2f} ratio_256: {ratio_256:.2f} ceiling_fraction: {ceiling_fraction:.2f}")


if __name__ == "__main__":
    main()
