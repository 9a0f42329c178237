"""MetaPPO: PPO meta-trainer with whole-trial backpropagation through time.

One training iteration reads top to bottom in :meth:`MetaPPO.learn`:

    collect a rollout (n_steps per env, memory carried, trial starts reset it)
      -> bootstrap (value after the rollout, V(final obs) at truncations)
      -> advantages (GAE over the trial, or cut at inner episodes)
      -> epochs x minibatches of whole env sequences replayed from their stored initial state
      -> log

Minibatches are sets of env columns (or of fixed-length chunks when ``bptt_chunk`` is set), each
replayed through the memory core from the state stored when the rollout (or chunk) began, as in
CleanRL's LSTM PPO: no padding, no masks beyond the reset mask. Layout is time-major ``(T, B, ...)``.

The class subclasses Stable-Baselines3's ``BaseAlgorithm`` so SB3 callbacks, ``evaluate_policy``
and the ``learn``/``predict``/``save``/``load`` API work; the hot path is memrl's own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.vec_env import VecEnv

from memrl import logging as tags
from memrl.algos.losses import compute_gae, explained_variance, normalize, ppo_clip_loss, value_loss
from memrl.algos.optim import clipped_step
from memrl.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from memrl.config import ConfigError, PPOConfig
from memrl.memory import clone_state, index_state, map_state
from memrl.memory.episodic import EpisodicMemory, EpisodicStore, Recall
from memrl.policies import PolicyState, RL2Policy
from memrl.tasks.trial import check_action_space

SelfMetaPPO = TypeVar("SelfMetaPPO", bound="MetaPPO")


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "low": space.low.tolist(),
            "high": space.high.tolist(),
            "shape": list(space.shape),
            "dtype": str(space.dtype),
        }
    raise TypeError(f"cannot serialise space {space}")


def space_from_json(data: dict[str, Any]) -> spaces.Space:
    if data["type"] == "Discrete":
        return spaces.Discrete(data["n"], start=data.get("start", 0))
    low = np.asarray(data["low"], dtype=data["dtype"])
    high = np.asarray(data["high"], dtype=data["dtype"])
    return spaces.Box(low=low, high=high, shape=tuple(data["shape"]), dtype=data["dtype"])


class TrialStats:
    """Accumulates finished-trial returns, overall and per inner-episode index, between logs."""

    def __init__(self) -> None:
        self.clear()

    def add(self, info: dict[str, Any]) -> None:
        episode = info.get("episode")
        if episode is not None:
            self.returns.append(float(episode["r"]))
            self.lengths.append(int(episode["l"]))
        for index, ret in enumerate(info.get("episode_returns", ())):
            self.per_episode.setdefault(index, []).append(float(ret))
        if info.get("episode_returns"):
            split = self.first_recurring if info.get("task_exposure", 0) > 0 else self.first_new
            split.append(float(info["episode_returns"][0]))

    def clear(self) -> None:
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.per_episode: dict[int, list[float]] = {}
        self.first_new: list[float] = []  # first-episode returns of tasks new to the slot
        self.first_recurring: list[float] = []  # ... and of tasks it has played before


class MetaPPO(BaseAlgorithm):
    """PPO for recurrent meta-RL policies (RL², Duan et al. 2016), SB3-compatible.

    Objective: the clipped surrogate of Schulman et al. (2017) on advantages estimated over whole
    trials, with the policy's memory replayed from the state it had when the rollout began, so
    the first minibatch of each update sees a probability ratio of exactly 1.

    ``MetaPPO("RL2Policy", vec_env, n_steps=100, learning_rate=2e-4, policy_kwargs={...})``:
    keyword arguments other than those of the constructor are fields of :class:`PPOConfig`.
    """

    policy_aliases: ClassVar[dict[str, type]] = {"RL2Policy": RL2Policy}
    policy: RL2Policy  # type: ignore[assignment]

    def __init__(
        self,
        policy: str | type[RL2Policy] = "RL2Policy",
        env: gym.Env | VecEnv | str | None = None,
        *,
        config: PPOConfig | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        seed: int | None = None,
        device: torch.device | str = "auto",
        verbose: int = 0,
        _init_setup_model: bool = True,
        **ppo_kwargs: Any,
    ) -> None:
        valid = {f.name for f in dataclasses.fields(PPOConfig)}
        unknown = sorted(set(ppo_kwargs) - valid)
        if unknown:
            raise TypeError(f"MetaPPO got unknown argument(s) {unknown}; PPO settings are: {', '.join(sorted(valid))}")
        self.config = dataclasses.replace(config or PPOConfig(), **ppo_kwargs)
        super().__init__(
            policy=policy,  # type: ignore[arg-type]
            env=env,
            learning_rate=self.config.learning_rate,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            device=device,
            support_multi_env=True,
            seed=seed,
            supported_action_spaces=(spaces.Discrete, spaces.Box),
        )
        self.run_config: Any = None  # the full memrl Config when trained from the CLI (saved in checkpoints)
        self.saved_run_config: dict[str, Any] | None = None  # the run config a loaded checkpoint was trained with
        self.diagnostics: dict[str, float] = {}
        self._rollout_state: PolicyState | None = None
        if _init_setup_model:
            self._setup_model()

    # ------------------------------------------------------------------------------------
    # Construction
    # ------------------------------------------------------------------------------------
    def _setup_model(self) -> None:
        cfg = self.config
        self.set_random_seed(self.seed)
        if not isinstance(self.observation_space, spaces.Box) or len(self.observation_space.shape) != 1:
            raise ValueError(
                f"MetaPPO needs a flat Box observation space (wrap the env in memrl's TrialWrapper), "
                f"got {self.observation_space}"
            )
        try:
            check_action_space(self.action_space)
        except TypeError as err:
            raise ValueError(f"MetaPPO: {err}") from None
        episodic = self.policy_kwargs.get("episodic") or {}
        if episodic.get("mode", "off") != "off" and "episodic_layout" not in self.policy_kwargs:
            self.policy_kwargs["episodic_layout"] = self._trial_layout()
        if cfg.reward_coef > 0:
            self.policy_kwargs["reward_head"] = True
        self.policy = self.policy_class(  # type: ignore[assignment]
            observation_space=self.observation_space, action_space=self.action_space, **self.policy_kwargs
        ).to(self.device)
        self.episodic_store: EpisodicStore | None = None  # the training store (outlives trials; checkpointed)
        self._episodic_memory: EpisodicMemory | None = None
        self._inference_memory: EpisodicMemory | None = None
        params = self.policy.parameters()
        if cfg.optimizer == "adamw":
            self.optimizer: torch.optim.Optimizer = torch.optim.AdamW(
                params, lr=cfg.learning_rate, eps=cfg.adam_eps, weight_decay=cfg.weight_decay
            )
        else:
            self.optimizer = torch.optim.Adam(
                params, lr=cfg.learning_rate, eps=cfg.adam_eps, weight_decay=cfg.weight_decay
            )
        self._discrete = isinstance(self.action_space, spaces.Discrete)
        self._trial_stats = TrialStats()
        self._configure_env()

    def _trial_layout(self) -> dict[str, list[int]]:
        """Where the trial wrapper puts the env observation and the episode-start flag in the flat input."""
        if self.env is None:
            raise ValueError("an episodic policy needs the env (its trial layout) when it is first built")
        try:
            layout = self.env.get_attr("layout")[0]
        except AttributeError:
            raise ConfigError("policy.episodic needs memrl's TrialWrapper envs (their observation layout)") from None
        return {name: [piece.start, piece.stop] for name, piece in layout.items()}

    def _new_store(self, num_envs: int) -> EpisodicStore:
        cfg = self.policy.episodic
        return EpisodicStore(
            num_stores=num_envs if cfg.get("scope", "env") == "env" else 1,
            shared=cfg.get("scope", "env") == "shared",
            capacity=int(cfg.get("capacity", 2000)),
            key_size=int(cfg.get("key_size", 32)),
            value_size=self.policy.recall_size,
            neighbors=int(cfg.get("neighbors", 4)),
            device=self.device,
        )

    def _memory_for(self, store: EpisodicStore, num_envs: int) -> EpisodicMemory:
        cfg = self.policy.episodic
        return EpisodicMemory(
            store,
            num_envs=num_envs,
            episode_start_index=self.policy.episodic_layout["episode_start"][0],
            write_at=cfg.get("write_at", "episode"),
            clear=cfg.get("clear", "never"),
        )

    def _training_memory(self) -> EpisodicMemory:
        """The training store's driver for the current env vector (the store is created, or resized, to fit it)."""
        assert self.env is not None
        n = self.env.num_envs
        if self.episodic_store is None:
            self.episodic_store = self._new_store(n)
        elif not self.episodic_store.shared and self.episodic_store.num_stores != n:
            self.episodic_store = self.episodic_store.resized(n)
        if self._episodic_memory is None or self._episodic_memory.store is not self.episodic_store:
            self._episodic_memory = self._memory_for(self.episodic_store, n)
            self._episodic_memory.task_ids.copy_(self._current_task_ids())
        return self._episodic_memory

    def _current_task_ids(self) -> torch.Tensor:
        assert self.env is not None
        infos = getattr(self.env, "reset_infos", None) or [{}] * self.env.num_envs
        return torch.as_tensor([int(info.get("task_id", 0)) for info in infos], dtype=torch.long, device=self.device)

    def _configure_env(self) -> None:
        """Trial envs build each inner episode's final observation only for per-episode advantages."""
        if self.env is None:
            return
        with contextlib.suppress(AttributeError):  # not memrl trial envs: nothing to configure
            self.env.env_method(
                "set_wrapper_attr", "record_inner_final_observation", self.config.advantage_boundary == "episode"
            )

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "optimizer"], []

    # ------------------------------------------------------------------------------------
    # Training loop
    # ------------------------------------------------------------------------------------
    def learn(
        self: SelfMetaPPO,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "MetaPPO",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMetaPPO:
        """Train for ``total_timesteps`` environment steps (SB3 semantics)."""
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        assert self.env is not None
        if reset_num_timesteps or self._rollout_state is None:
            self._rollout_state = self.policy.initial_state(self.env.num_envs, self.device)
            self._episodic_memory = None  # the envs were reset: re-read their tasks
        self._log_hyperparameters()
        callback.on_training_start(locals(), globals())
        while self.num_timesteps < total_timesteps:
            started = time.perf_counter()
            rollout = self.collect_rollout(callback)
            if rollout is None:
                break
            collected = time.perf_counter()
            self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
            update_stats = self.train_on_rollout(rollout)
            self._n_updates += 1
            if self._n_updates % log_interval == 0:
                self._log_update(update_stats, rollout["steps"], collected - started, time.perf_counter() - collected)
        callback.on_training_end()
        return self

    def collect_rollout(self, callback: BaseCallback) -> dict[str, Any] | None:
        """Step the vector env ``n_steps`` times with the current policy; None if a callback stopped.

        Runs with one intra-op CPU thread: single-step inference on a few hundred envs is far below
        the size where threads pay, and on a busy machine waiting for a descheduled worker thread
        made each step several times slower. The update, with its large sequence batches, keeps
        torch's thread setting.
        """
        threads = torch.get_num_threads()
        if self.device.type == "cpu" and threads > 1:
            torch.set_num_threads(1)
        try:
            return self._collect_rollout(callback)
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    def _collect_rollout(self, callback: BaseCallback) -> dict[str, Any] | None:
        cfg, env, policy, device = self.config, self.env, self.policy, self.device
        assert env is not None and self._last_obs is not None and self._rollout_state is not None
        T, B = cfg.n_steps, env.num_envs
        chunk = cfg.bptt_chunk or T
        obs_dim = self.observation_space.shape[0]  # type: ignore[index]
        action_shape = () if self._discrete else self.action_space.shape
        # Env-side arrays stay numpy until the rollout ends (a torch view per step, no copies).
        observations = np.zeros((T, B, obs_dim), dtype=np.float32)
        rewards = np.zeros((T, B), dtype=np.float32)
        starts = np.zeros((T, B), dtype=bool)
        actions = torch.zeros(T, B, *action_shape, device=device)  # type: ignore[misc]
        log_probs = torch.zeros(T, B, device=device)
        values = torch.zeros(T, B, device=device)
        cuts = torch.zeros(T, B, dtype=torch.bool, device=device)
        bootstrap = torch.zeros(T, B, device=device)  # value of the next state where a sequence is cut
        chunk_states = []
        per_episode = cfg.advantage_boundary == "episode"
        state = self._rollout_state
        memory = self._training_memory() if policy.episodic_on else None
        recalls: list[Recall] = []  # each step's neighbours, replayed in the update
        policy.train(False)
        callback.on_rollout_start()
        for t in range(T):
            if t % chunk == 0:
                chunk_states.append(clone_state(state))
            observations[t], starts[t] = self._last_obs, self._last_episode_starts
            obs = torch.from_numpy(observations[t : t + 1]).to(device)  # (1, B, D)
            start = torch.from_numpy(starts[t : t + 1]).to(device)  # (1, B)
            with torch.no_grad():
                recall = None if memory is None else memory.step(obs[0], start[0], policy.episodic_query(obs[0]))
                out = policy(obs, state, start, recall)
                if memory is not None:
                    assert recall is not None and out.query is not None and out.memory_value is not None
                    recalls.append(recall)
                    memory.remember(out.query[0], out.memory_value, getattr(out.state.actor, "gate", None))
                params = out.params[0]
                action = policy.action_head.sample(params)
                log_probs[t] = policy.action_head.log_prob(params, action)
            state = out.state
            actions[t], values[t] = action, out.values[0]
            new_obs, reward, dones, infos = env.step(self._to_env_action(action))
            self.num_timesteps += B
            rewards[t] = reward
            if memory is not None and dones.any():  # the next step belongs to a new trial (a new task)
                reset_infos = getattr(env, "reset_infos", None) or [{}] * B
                for i in np.flatnonzero(dones):
                    memory.task_ids[i] = int(reset_infos[i].get("task_id", 0))
            if dones.any():
                self._on_trial_ends(t, dones, infos, state, cuts, bootstrap, per_episode)
            if per_episode:
                self._on_inner_episode_ends(t, infos, state, cuts, bootstrap)
            # Keep env, observation and memory in step, also when a callback stops training here.
            self._last_obs, self._last_episode_starts = new_obs, dones  # type: ignore[assignment]
            self._rollout_state = state
            callback.update_locals(locals())
            if not callback.on_step():
                return None
        with torch.no_grad():
            obs = torch.as_tensor(self._last_obs, dtype=torch.float32, device=device)
            start = torch.as_tensor(self._last_episode_starts, dtype=torch.bool, device=device)
            last_recall = None
            if memory is not None:  # a look without side effects: the next rollout writes and looks again
                last_recall = Recall(*(x.unsqueeze(0) for x in memory.store.lookup(policy.episodic_query(obs), False)))
            last_values = policy(obs.unsqueeze(0), state, start.unsqueeze(0), last_recall).values[0]
        if memory is not None:
            self.diagnostics.update(memory.pop_stats())
        callback.update_locals(locals())
        callback.on_rollout_end()
        return {
            "observations": torch.from_numpy(observations).to(device),
            "actions": actions,
            "log_probs": log_probs,
            "values": values,
            "rewards": torch.from_numpy(rewards).to(device),
            "starts": torch.from_numpy(starts).to(device),
            "cuts": cuts,
            "bootstrap": bootstrap,
            "last_values": last_values,
            "chunk_states": chunk_states,
            "recall": Recall(*(torch.cat(parts) for parts in zip(*recalls, strict=True))) if recalls else None,
            "steps": T * B,
        }

    def _to_env_action(self, action: torch.Tensor) -> np.ndarray:
        """Sampled actions as the env takes them; Gaussian samples are clipped to the Box (the raw sample is kept)."""
        env_action = action.cpu().numpy()
        if self._discrete:
            return env_action
        return np.clip(env_action, self.action_space.low, self.action_space.high)  # type: ignore[attr-defined]

    def _on_trial_ends(
        self,
        t: int,
        dones: np.ndarray,
        infos: Sequence[dict],
        state: PolicyState,
        cuts: torch.Tensor,
        bootstrap: torch.Tensor,
        per_episode: bool,
    ) -> None:
        """Record finished trials; a trial cut by a time limit bootstraps from V(final obs)."""
        truncated_rows, final_obs = [], []
        for i in np.flatnonzero(dones):
            info = infos[int(i)]
            self._trial_stats.add(info)
            cuts[t, i] = True
            # A trial cut by its step budget bootstraps (in per-episode mode, unless its last inner
            # episode terminated on that step: its value is 0); so does, in per-episode mode, a last
            # inner episode cut by a time limit (the same rule as for the trial's earlier episodes).
            inner_terminated = info.get("inner_terminated", False)
            inner_time_limit = info.get("inner_truncated", False) and not inner_terminated
            budget_cut = info.get("TimeLimit.truncated", False) and not (per_episode and inner_terminated)
            if budget_cut or (per_episode and inner_time_limit):
                truncated_rows.append(int(i))
                final_obs.append(info["terminal_observation"])
        if truncated_rows:
            self._bootstrap_rows(t, truncated_rows, final_obs, state, bootstrap)

    def _on_inner_episode_ends(
        self, t: int, infos: Sequence[dict], state: PolicyState, cuts: torch.Tensor, bootstrap: torch.Tensor
    ) -> None:
        """Per-episode advantages: cut at inner episode ends (0 after termination, V(final obs) after truncation)."""
        truncated_rows, final_obs = [], []
        for i, info in enumerate(infos):
            if "inner_final_observation" in info:
                cuts[t, i] = True
                if info["inner_truncated"] and not info["inner_terminated"]:
                    truncated_rows.append(i)
                    final_obs.append(info["inner_final_observation"])
        if truncated_rows:
            self._bootstrap_rows(t, truncated_rows, final_obs, state, bootstrap)

    def _bootstrap_rows(
        self, t: int, rows: list[int], final_obs: list[np.ndarray], state: PolicyState, bootstrap: torch.Tensor
    ) -> None:
        """Value of each row's final observation, read from its memory *before* any reset (and, with an
        episodic store, from the store's neighbours of that observation, looked up without side effects)."""
        index = torch.as_tensor(rows, device=self.device)
        obs = torch.as_tensor(np.stack(final_obs), dtype=torch.float32, device=self.device)
        with torch.no_grad():
            recall = None
            if self._episodic_memory is not None:  # a store takes every env's query: the others are ignored
                queries = torch.zeros(self.n_envs, obs.shape[-1], device=self.device)
                queries[index] = obs
                found = self._episodic_memory.store.lookup(self.policy.episodic_query(queries), False)
                recall = Recall(*(x[index].unsqueeze(0) for x in found))
            bootstrap[t, index] = self.policy.values(obs, index_state(state, index), recall)

    def train_on_rollout(self, rollout: dict[str, Any]) -> dict[str, float]:
        """Advantages, then epochs x minibatches of PPO on whole replayed sequences."""
        cfg, policy = self.config, self.policy

        def scheduled(value: float, schedule: str) -> float:  # linear: decays to 0 over total_timesteps
            return value * (self._current_progress_remaining if schedule == "linear" else 1.0)

        lr, ent_coef = scheduled(cfg.learning_rate, cfg.lr_schedule), scheduled(cfg.ent_coef, cfg.ent_schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        norm = policy.value_norm  # identity statistics unless normalize_value updates them
        values, last_values = norm.denormalize(rollout["values"]), norm.denormalize(rollout["last_values"])
        advantages, returns = compute_gae(
            rollout["rewards"],
            values,
            last_values,
            rollout["cuts"],
            rollout["bootstrap"],
            gamma=cfg.gamma,
            gae_lambda=cfg.gae_lambda,
        )
        if cfg.normalize_value:
            norm.update(returns)
        targets, old_values = norm.normalize(returns), rollout["values"]  # the clip is around what the net said

        # Cut the (T, B) rollout into sequences of length L: (T, B, ...) -> (L, T/L * B, ...).
        T, B = rollout["rewards"].shape
        L = cfg.bptt_chunk or T
        n_chunks = T // L

        def to_sequences(x: torch.Tensor) -> torch.Tensor:
            x = x.reshape(n_chunks, L, B, *x.shape[2:]).transpose(0, 1)  # (T, B, ...) -> (L, C, B, ...)
            return x.reshape(L, n_chunks * B, *x.shape[3:])  # (L, C, B, ...) -> (L, C*B, ...)

        obs, actions = to_sequences(rollout["observations"]), to_sequences(rollout["actions"])
        rewards_seq = to_sequences(rollout["rewards"]) if cfg.reward_coef > 0 else None  # the auxiliary loss's targets
        starts, old_log_probs = to_sequences(rollout["starts"]), to_sequences(rollout["log_probs"])
        advantages_seq, targets_seq, old_values_seq = map(to_sequences, (advantages, targets, old_values))
        init_states = map_state(lambda *xs: torch.cat(xs, dim=0), *rollout["chunk_states"])  # (C*B, ...)
        recall_seq = None if rollout.get("recall") is None else Recall(*map(to_sequences, rollout["recall"]))

        policy.train(True)
        num_sequences = n_chunks * B
        skipped_steps = 0  # gradient steps left out because the gradient was not finite
        keys = ["policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction"]
        stats: dict[str, list[float]] = {k: [] for k in keys + (["reward_loss"] if cfg.reward_coef > 0 else [])}
        epochs_done = 0
        stop = False
        for _epoch in range(cfg.n_epochs):
            order = torch.randperm(num_sequences, device=self.device)
            for batch in order.tensor_split(cfg.num_minibatches):  # exactly that many, sizes within one
                batch_recall = None if recall_seq is None else Recall(*(x[:, batch] for x in recall_seq))
                out = policy(obs[:, batch], index_state(init_states, batch), starts[:, batch], batch_recall)
                log_prob = policy.action_head.log_prob(out.params, actions[:, batch])
                entropy = policy.action_head.entropy(out.params).mean()
                batch_advantages = advantages_seq[:, batch]
                if cfg.normalize_advantage:
                    batch_advantages = normalize(batch_advantages)
                pg_loss, pg_stats = ppo_clip_loss(log_prob, old_log_probs[:, batch], batch_advantages, cfg.clip_range)
                v_loss = value_loss(out.values, old_values_seq[:, batch], targets_seq[:, batch], cfg.clip_range_vf)
                loss = pg_loss + cfg.vf_coef * v_loss - ent_coef * entropy
                if cfg.reward_coef > 0:
                    assert out.features is not None and rewards_seq is not None
                    predicted = policy.predict_reward(out.features, actions[:, batch])
                    r_loss = 0.5 * (predicted - rewards_seq[:, batch]).pow(2).mean()
                    loss = loss + cfg.reward_coef * r_loss
                    stats["reward_loss"].append(float(r_loss.detach()))
                if epochs_done == 0 and not stats["approx_kl"]:
                    # Invariant: before any gradient step the replayed memory equals the acting memory.
                    self.diagnostics["first_minibatch_max_ratio_error"] = float((pg_stats["ratio"] - 1).abs().max())
                    self.diagnostics["first_minibatch_approx_kl"] = float(pg_stats["approx_kl"])
                for key, value in (
                    ("policy_loss", pg_loss),
                    ("value_loss", v_loss),
                    ("entropy", entropy),
                    ("approx_kl", pg_stats["approx_kl"]),
                    ("clip_fraction", pg_stats["clip_fraction"]),
                ):
                    stats[key].append(float(value.detach()) if isinstance(value, torch.Tensor) else float(value))
                if cfg.target_kl is not None and stats["approx_kl"][-1] > 1.5 * cfg.target_kl:
                    stop = True  # this minibatch is already too far from the rollout policy: no step (as SB3)
                    break
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if not clipped_step(self.optimizer, policy.parameters(), cfg.max_grad_norm):
                    skipped_steps += 1  # the gradient overflowed: the step is left out
            epochs_done += 1
            if stop:
                break
        policy.train(False)
        summary = {key: float(np.mean(vals)) for key, vals in stats.items()}
        summary["explained_variance"] = explained_variance(values.flatten(), returns.flatten())
        summary["learning_rate"] = lr
        summary["ent_coef"] = ent_coef
        summary["epochs"] = float(epochs_done)
        summary["skipped_steps"] = float(skipped_steps)
        self.diagnostics["skipped_steps_total"] = self.diagnostics.get("skipped_steps_total", 0.0) + skipped_steps
        return summary

    # ------------------------------------------------------------------------------------
    # Logging
    # ------------------------------------------------------------------------------------
    def _log_hyperparameters(self) -> None:
        lines = ["| section | key | value |", "|---|---|---|"]
        lines += [f"| ppo | {k} | {v} |" for k, v in dataclasses.asdict(self.config).items()]
        lines += [f"| policy | {k} | {v} |" for k, v in self.policy_kwargs.items()]
        if self.run_config is not None:
            for section in ("env", "tasks", "train"):
                lines += [
                    f"| {section} | {k} | {v} |"
                    for k, v in dataclasses.asdict(getattr(self.run_config, section)).items()
                ]
        self.logger.record(tags.TEXT_HYPERPARAMETERS, "\n".join(lines), exclude=("stdout", "log", "json", "csv"))
        self.logger.record(
            tags.TEXT_ADVANTAGE_BOUNDARY,
            f"advantages: GAE with boundary '{self.config.advantage_boundary}' "
            f"(gamma={self.config.gamma}, lambda={self.config.gae_lambda})",
            exclude=("stdout", "log", "json", "csv"),
        )

    def _episode_tag_width(self) -> int:
        """Digits of the largest episode index, so ``meta/`` tags sort and stay stable across updates."""
        try:
            episodes = max(self.env.get_attr("episodes_per_trial"))  # type: ignore[union-attr]
        except AttributeError:  # not a TrialWrapper env: fall back to what has been seen
            episodes = max(self._trial_stats.per_episode, default=0) + 1
        return len(str(max(int(episodes) - 1, 0)))

    def _log_update(self, update: dict[str, float], steps: int, rollout_seconds: float, update_seconds: float) -> None:
        record = self.logger.record
        trials = self._trial_stats
        if trials.returns:
            record(tags.TRIAL_RETURN, float(np.mean(trials.returns)))
            record(tags.TRIAL_LENGTH, float(np.mean(trials.lengths)))
            record(tags.TRIALS, len(trials.returns))
        width = self._episode_tag_width()
        for index, returns in sorted(trials.per_episode.items()):
            record(tags.meta_episode_return(index, width), float(np.mean(returns)))
        if trials.first_recurring:  # only schedules where tasks come back
            record(tags.FIRST_EPISODE_RECURRING, float(np.mean(trials.first_recurring)))
            if trials.first_new:
                record(tags.FIRST_EPISODE_NEW, float(np.mean(trials.first_new)))
        trials.clear()
        if self.policy.episodic_on:
            for tag, key in (
                (tags.STORE_SIZE, "episodic_store_size"),
                (tags.STORE_HIT_RATE, "episodic_hit_rate"),
                (tags.REINSTATEMENT_GATE, "episodic_gate"),
            ):
                if not np.isnan(self.diagnostics.get(key, float("nan"))):
                    record(tag, self.diagnostics[key])
        for key in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "explained_variance"):
            record(f"losses/{key}", update[key])
        if "reward_loss" in update:
            record("losses/reward_loss", update["reward_loss"])
        record(tags.LEARNING_RATE, update["learning_rate"])
        record(tags.ENT_COEF, update["ent_coef"])
        record(tags.EPOCHS, update["epochs"])
        record(tags.SKIPPED_STEPS, update["skipped_steps"])
        record(tags.SPS, steps / max(rollout_seconds + update_seconds, 1e-9))
        record(tags.ROLLOUT_SECONDS, rollout_seconds)
        record(tags.UPDATE_SECONDS, update_seconds)
        record(tags.UPDATES, self._n_updates)
        self.logger.dump(step=self.num_timesteps)

    # ------------------------------------------------------------------------------------
    # Acting
    # ------------------------------------------------------------------------------------
    def predict(  # type: ignore[override]
        self,
        observation: np.ndarray,
        state: PolicyState | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, PolicyState]:
        """Actions for a batch of observations, carrying the memory ``state`` (SB3 recurrent API).

        ``episode_start[i]`` (an outer episode = a trial) resets env ``i``'s memory first. With
        ``state=None`` a fresh initial state is used. A single unbatched observation is accepted.

        With an episodic store, ``state=None`` also starts an inference store for this run: empty when
        ``policy.episodic.clear`` is ``eval``, otherwise a copy of the training store (so evaluation
        never writes into the store that training goes on with).
        """
        obs = np.asarray(observation, dtype=np.float32)
        single = obs.ndim == 1
        if single:
            obs = obs[None]
        expected = self.observation_space.shape
        if obs.shape[1:] != expected:
            raise ValueError(f"predict: observation of shape {obs.shape[1:]} does not match the policy's {expected}")
        batch = obs.shape[0]
        state_given = state is not None  # state=None starts a new run (and, with a store, a new inference store)
        if state is None:
            state = self.policy.initial_state(batch, self.device)
        starts = (
            np.zeros(batch, dtype=bool)
            if episode_start is None
            else np.asarray(episode_start, dtype=bool).reshape(batch)
        )
        obs_t = torch.as_tensor(obs, device=self.device)
        starts_t = torch.as_tensor(starts, device=self.device)
        with torch.no_grad():
            recall = None
            if self.policy.episodic_on:
                memory = self._inference_memory
                if state_given is False or memory is None or memory.num_envs != batch:
                    memory = self._inference_memory = self._memory_for(self._inference_store(batch), batch)
                recall = memory.step(obs_t, starts_t, self.policy.episodic_query(obs_t))
            out = self.policy(obs_t.unsqueeze(0), state, starts_t.unsqueeze(0), recall)
            if recall is not None:
                assert self._inference_memory is not None and out.query is not None and out.memory_value is not None
                self._inference_memory.remember(out.query[0], out.memory_value)
            action = self.policy.action_head.sample(out.params[0], deterministic=deterministic)
        actions = self._to_env_action(action)
        return (actions[0] if single else actions), out.state

    def _inference_store(self, batch: int) -> EpisodicStore:
        if self.policy.episodic.get("clear") == "eval" or self.episodic_store is None:
            return self._new_store(batch)
        return self.episodic_store.resized(batch)

    # ------------------------------------------------------------------------------------
    # Persistence
    # ------------------------------------------------------------------------------------
    def checkpoint_payload(self) -> dict[str, Any]:
        """Everything needed to resume: weights, optimiser, counters, RNG states, configs (JSON)."""
        payload: dict[str, Any] = {
            "ppo_config": json.dumps(dataclasses.asdict(self.config)),
            "policy_kwargs": json.dumps(self.policy_kwargs),
            "observation_space": json.dumps(space_to_json(self.observation_space)),
            "action_space": json.dumps(space_to_json(self.action_space)),
            "policy_state": self.policy.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "num_timesteps": int(self.num_timesteps),
            "n_updates": int(self._n_updates),
            "torch_rng": torch.get_rng_state(),
        }
        if self.run_config is not None:
            payload["run_config"] = self.run_config.to_json()
        if self.episodic_store is not None:
            payload["episodic_store"] = self.episodic_store.state_dict()
        return payload

    def save(self, path: str | Path, exclude: Any = None, include: Any = None) -> None:  # type: ignore[override]
        """Write a checkpoint atomically (``exclude``/``include`` are accepted for SB3 compatibility)."""
        save_checkpoint(self.checkpoint_payload(), path)

    @classmethod
    def load(  # type: ignore[override]
        cls: type[SelfMetaPPO],
        path: str | Path,
        env: VecEnv | gym.Env | None = None,
        device: torch.device | str = "auto",
        **kwargs: Any,
    ) -> SelfMetaPPO:
        """Rebuild a model from a checkpoint written by :meth:`save` (no unpickling)."""
        payload = load_checkpoint(path)
        try:
            ppo = PPOConfig(**json.loads(payload["ppo_config"]))
            policy_kwargs = json.loads(payload["policy_kwargs"])
            observation_space = space_from_json(json.loads(payload["observation_space"]))
            action_space = space_from_json(json.loads(payload["action_space"]))
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{path}: checkpoint is missing or has malformed configuration: {err}") from None
        model = cls(
            "RL2Policy", env=None, config=ppo, policy_kwargs=policy_kwargs, device=device, _init_setup_model=False
        )
        model.observation_space, model.action_space = observation_space, action_space
        model._setup_model()
        try:
            model.policy.load_state_dict(payload["policy_state"])
            model.optimizer.load_state_dict(payload["optimizer_state"])
            model.num_timesteps = int(payload["num_timesteps"])
            model._n_updates = int(payload["n_updates"])
            torch.set_rng_state(payload["torch_rng"])
            if "episodic_store" in payload:
                model.episodic_store = EpisodicStore.from_state_dict(payload["episodic_store"], model.device)
            if "run_config" in payload:
                model.saved_run_config = json.loads(payload["run_config"])
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise CheckpointError(f"{path}: checkpoint does not match the model it describes: {err}") from None
        if env is not None:
            model.set_env(env)
        return model

    def check_spaces(self, env: gym.Env | VecEnv) -> None:
        """A ConfigError unless ``env`` has the observation and action spaces the model was built for."""
        if env.observation_space != self.observation_space or env.action_space != self.action_space:
            raise ConfigError(
                f"env spaces ({env.observation_space}, {env.action_space}) do not match the model's "
                f"({self.observation_space}, {self.action_space}); use the env config the model was trained with"
            )

    def set_env(self, env: gym.Env | VecEnv, force_reset: bool = True) -> None:
        self.check_spaces(env)
        self.n_envs = env.num_envs if isinstance(env, VecEnv) else 1  # memory state is rebuilt for any width
        super().set_env(env, force_reset=force_reset)
        self._rollout_state = None
        self._episodic_memory = None  # pending writes belong to the old env; the store itself carries on
        self._configure_env()
