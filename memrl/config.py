"""Typed, validated experiment configuration.

A config is a tree of dataclasses (:class:`Config` holds ``env``, ``tasks``, ``policy``, ``ppo``,
``train`` and ``eval`` sections). YAML files and ``--set section.key=value`` overrides load
strictly: an unknown key is an error naming the key, its section and the valid keys; a value of
the wrong type or out of range is an error saying what to write instead.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml


class ConfigError(ValueError):
    """A configuration problem, with a message that says what to write instead."""


@dataclass
class EnvConfig:
    """Which task environment to meta-train on, and how trials and env vectors are built."""

    id: str = "memrl/Bandit-v0"
    """Gymnasium id; ``pkg.module:EnvId-v0`` imports ``pkg.module`` (which registers it) first."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for this env's constructor; they belong to ``id`` and are dropped when
    ``--set env.id=...`` switches to another env."""
    episodes_per_trial: int = 10
    """Inner episodes per trial; memory is kept across them and reset at the next trial."""
    max_trial_steps: int | None = None
    """Optional step budget per trial; a trial that reaches it is truncated (and bootstrapped)."""
    trial_progress: bool = False
    """Append ``episode_index / episodes_per_trial`` to the observation (a clock, no task information)."""
    previous_observation: bool = False
    """Append the inner observation the previous action was taken on, so each input holds a whole
    transition ``(s, a, r, s')`` (zeros at a trial's first step)."""
    num_envs: int = 16
    """Environments stepped in parallel (vector width)."""
    vectorization: Literal["dummy", "subproc"] = "dummy"
    """``dummy`` steps envs in this process; ``subproc`` uses one process per env (heavy envs)."""


@dataclass
class TaskConfig:
    """The episodic task sampler: schedules and the held-out test split."""

    schedule: Literal["iid", "pool", "recurring"] = "iid"
    """``iid``: a fresh task every trial; ``pool``: uniform draws from a fixed pool; ``recurring``: bags of
    ``recurring_tasks`` tasks, each played ``recurring_repeats`` times in shuffled order (Ritter et al. 2018)."""
    pool_size: int = 100
    """Number of training tasks in the ``pool`` schedule."""
    recurring_tasks: int = 10
    """``recurring``: distinct tasks per bag (m)."""
    recurring_repeats: int = 10
    """``recurring``: trials of each task per bag (r); a bag lasts m * r trials, then new tasks are drawn."""
    new_task_fraction: float = 0.0
    """``recurring``: probability that a trial is a fresh task seen once (0.5: half the trials are new)."""
    num_test_tasks: int = 1000
    """Size of the held-out test split (disjoint from training tasks)."""
    test_seed: int = 12345
    """Seed of the test split; shared by every run so scores are comparable."""


@dataclass
class MemoryConfig:
    """External memory of the ``ntm`` and ``mann`` cores (ignored by the other cores).

    ``policy.hidden_size`` is the controller's width for these cores.
    """

    slots: int = 32
    """Memory rows N per environment."""
    width: int = 16
    """Width M of each memory row."""
    read_heads: int = 1
    """Read heads R; their read vectors of step t-1 feed the controller at step t."""
    shift_range: int = 1
    """NTM circular shifts allowed in each direction (1: shifts -1, 0, +1)."""
    controller: Literal["lstm", "feedforward"] = "lstm"
    """Controller network."""
    init: Literal["constant", "learned"] = "constant"
    """Initial memory: a small constant, or a learned bias shared by all envs."""
    usage_decay: float = 0.95
    """MANN usage decay gamma (least-recently-used access)."""
    addressing_init: Literal["neutral", "sharp"] = "neutral"
    """Initial biases of the heads' addressing outputs. ``neutral``: torch's default (near zero,
    so weightings start spread over the slots). ``sharp``: reads start by content with key
    strength 10; the NTM's read heads start with gate 0.95, no shift and sharpening 1, its write
    head with gate 0.05, shift +1 and sharpening 10 (one new slot per step; needs shift_range >= 1);
    the MANN's writes start on the least-used slots (sigmoid(alpha) = 0.05). Spread writes blur
    every row into the same average, which content reads cannot tell apart; see docs/results.md
    ("RL² with memory cores")."""


@dataclass
class TransformerConfig:
    """The ``transformer`` core (ignored by the others): ``policy.hidden_size`` is its width and
    ``policy.num_layers`` its blocks."""

    heads: int = 4
    """Attention heads; they must divide ``policy.hidden_size``."""
    context: int = 128
    """Steps each step attends to, itself included, never across a trial start."""
    ff_mult: int = 2
    """Width of each block's MLP over ``policy.hidden_size``."""


@dataclass
class EpisodicConfig:
    """Episodic recall across trials (Ritter et al. 2018): a store of (context key, core state) pairs."""

    mode: Literal["off", "input", "reinstate"] = "off"
    """``reinstate``: the epLSTM adds the recalled cell state through a learned gate (needs ``policy.core: lstm``);
    ``input``: the recalled value is an extra input of any core; ``off``: no store."""
    key_size: int = 32
    """Width of the learned context key."""
    neighbors: int = 4
    """k nearest entries read per lookup (inverse-distance kernel)."""
    capacity: int = 2000
    """Entries per store; a full store evicts its least recently used entry."""
    scope: Literal["env", "shared"] = "env"
    """One store per env slot, or one store shared by all slots."""
    clear: Literal["never", "trial", "eval"] = "never"
    """``never``: keep entries (evaluation starts from the training store); ``trial``: empty an env's store at
    each trial start; ``eval``: keep during training, start every evaluation run empty."""
    write_at: Literal["episode", "trial"] = "episode"
    """Write (key, state) at the end of every inner episode, or only at trial ends."""
    key_source: Literal["obs", "input"] = "obs"
    """Key from the env observation only (the context), or from the whole RL² input (with action, reward)."""
    kernel_delta: float = 1e-3
    """delta of the kernel 1 / (distance^2 + delta)."""


@dataclass
class PolicyConfig:
    """The RL² actor-critic."""

    core: Literal["gru", "lstm", "ntm", "mann", "transformer"] = "gru"
    """Memory core: recurrent (``gru``, ``lstm``), memory-augmented (``ntm``, ``mann``; see ``policy.memory``) or
    attention over the trial's steps (``transformer``; see ``policy.transformer``)."""
    hidden_size: int = 128
    """Width of the memory core (the controller's width for ``ntm`` and ``mann``)."""
    num_layers: int = 1
    """Stacked recurrent layers (transformer blocks for ``transformer``)."""
    embed_sizes: list[int] = field(default_factory=list)
    """Sizes of the MLP that embeds the input before the core (empty: feed the input directly)."""
    head_sizes: list[int] = field(default_factory=list)
    """Sizes of the MLPs between the core and the action and value heads, one MLP each (empty: linear heads)."""
    hyper_size: int = 0
    """Width of a hypernetwork layer (0: none): a layer on the step's input whose weights and bias are computed
    from the memory core's output, ``z = act(W(m) x + b(m))``, feeding the heads in place of ``m``; the
    recurrent hypernetwork of Beck et al. (2023), with their bias-HyperInit."""
    layer_norm: bool = False
    """Layer-normalise the core's output."""
    shared_critic: bool = True
    """Critic shares the actor's core (True) or has a core of its own (False)."""
    activation: Literal["tanh", "relu", "elu", "gelu"] = "tanh"
    """Activation of the embedding and head MLPs and of the hypernetwork layer."""
    log_std_init: float = 0.0
    """Initial log standard deviation of Gaussian (Box) actions."""
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    """External memory of the ``ntm`` and ``mann`` cores."""
    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    """Attention options of the ``transformer`` core."""
    episodic: EpisodicConfig = field(default_factory=EpisodicConfig)
    """Episodic store that outlives trials."""


@dataclass
class PPOConfig:
    """The PPO meta-trainer (whole-trial BPTT)."""

    learning_rate: float = 3e-4
    """Initial learning rate."""
    lr_schedule: Literal["constant", "linear"] = "constant"
    """``linear`` decays the learning rate to 0 over ``train.total_steps``."""
    n_steps: int = 100
    """Steps per env per rollout; a multiple of the trial length gives whole-trial BPTT."""
    n_epochs: int = 4
    """Passes over each rollout."""
    num_minibatches: int = 4
    """Minibatches per epoch; each holds whole env sequences replayed from their stored state (their sizes
    differ by at most one where it does not divide the sequences)."""
    bptt_chunk: int | None = None
    """Truncated BPTT length (must divide ``n_steps``); None replays the whole rollout."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    advantage_boundary: Literal["trial", "episode"] = "trial"
    """``trial``: GAE over the whole trial (RL² objective); ``episode``: cut at inner episodes."""
    clip_range: float = 0.2
    """PPO ratio clip."""
    clip_range_vf: float | None = None
    """Value clip (None: unclipped value loss)."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient."""
    ent_schedule: Literal["constant", "linear"] = "constant"
    """``linear`` decays the entropy bonus to 0 over ``train.total_steps`` (a near-deterministic final
    policy, where the optimum is one)."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    reward_coef: float = 0.0
    """Weight of an auxiliary loss (0: off): a head predicts each step's reward from the actor's memory
    and the action taken, so the memory is trained to keep what the task pays (as in the reward
    decoders of VariBAD, Zintgraf et al. 2020; UNREAL's auxiliary tasks, Jaderberg et al. 2017). The
    policy's actions do not use the head."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    normalize_advantage: bool = True
    """Normalise advantages per minibatch."""
    normalize_value: bool = True
    """Predict values in units of running return statistics."""
    target_kl: float | None = None
    """Stop the epochs early once approx_kl exceeds 1.5 x this (None: never)."""
    optimizer: Literal["adam", "adamw"] = "adam"
    """Optimiser."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    weight_decay: float = 0.0
    """Weight decay (decoupled, with ``adamw``)."""


@dataclass
class TrainConfig:
    """The training run."""

    total_steps: int = 1_000_000
    """Environment steps to train for."""
    seed: int = 0
    """Seed of the run (torch, env and training task streams)."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu`` or ``cuda``."""
    torch_threads: int | None = 1
    """Torch intra-op CPU threads (None: torch's default). One is as fast for these network sizes on an
    idle machine and avoids stalls of many times when other processes keep the cores busy."""
    checkpoint_every: int = 0
    """Write a checkpoint every this many steps (0: only at the end)."""
    progress_bar: bool = True
    """Show a progress bar."""


@dataclass
class EvalConfig:
    """``memrl eval`` defaults."""

    trials: int = 1000
    """Trials to evaluate (each a different task)."""
    split: Literal["train", "test"] = "test"
    """Task split to evaluate on."""
    deterministic: bool = False
    """Greedy actions instead of sampling (meta-RL agents usually need their stochasticity)."""
    num_envs: int = 100
    """Envs stepped in parallel during evaluation."""


@dataclass
class Config:
    """A whole experiment."""

    name: str = "run"
    """Name used for the default run directory."""
    env: EnvConfig = field(default_factory=EnvConfig)
    tasks: TaskConfig = field(default_factory=TaskConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> Config:
        _check_ranges(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# -- range checks -------------------------------------------------------------------------

_POSITIVE_INT = {
    "env.episodes_per_trial",
    "env.num_envs",
    "tasks.pool_size",
    "tasks.recurring_tasks",
    "tasks.recurring_repeats",
    "tasks.num_test_tasks",
    "policy.hidden_size",
    "policy.num_layers",
    "ppo.n_steps",
    "ppo.n_epochs",
    "ppo.num_minibatches",
    "train.total_steps",
    "eval.trials",
    "eval.num_envs",
}
_UNIT_INTERVAL = {"ppo.gamma", "ppo.gae_lambda", "tasks.new_task_fraction"}
_POSITIVE_FLOAT = {"ppo.learning_rate", "ppo.clip_range", "ppo.max_grad_norm", "ppo.adam_eps"}
_NON_NEGATIVE = {
    "ppo.ent_coef",
    "ppo.vf_coef",
    "ppo.reward_coef",
    "ppo.weight_decay",
    "train.checkpoint_every",
    "policy.hyper_size",
}


_SEEDS = ("train.seed", "tasks.test_seed")
MAX_SEED = 2**32 - 1  # numpy's and Gymnasium's seed range


def _floats(node: Any, prefix: str) -> list[tuple[str, float]]:
    """Every float value under a config (section), with its dotted key."""
    found = []
    for f in dataclasses.fields(node):
        value, key = getattr(node, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            found += _floats(value, f"{key}.")
        elif isinstance(value, float):
            found.append((key, value))
    return found


def _check_ranges(cfg: Config) -> None:
    def value(key: str) -> Any:
        section, name = key.split(".")
        return getattr(getattr(cfg, section), name)

    if not cfg.name or cfg.name in (".", "..") or any(sep in cfg.name for sep in ("/", "\\")):
        raise ConfigError(
            f"name={cfg.name!r} names the run directory runs/NAME-TIME; use a non-empty name without '/' or '\\'"
        )
    for key, number in _floats(cfg, ""):
        if not math.isfinite(number):
            raise ConfigError(f"{key} must be a finite number, got {number!r}")
    for key in _SEEDS:
        if not 0 <= value(key) <= MAX_SEED:
            raise ConfigError(f"{key} must be an integer in [0, 2**32 - 1], got {value(key)!r}")
    for key in _POSITIVE_INT:
        if value(key) < 1:
            raise ConfigError(f"{key} must be a positive integer, got {value(key)!r}")
    for key in _UNIT_INTERVAL:
        if not 0.0 <= value(key) <= 1.0:
            raise ConfigError(f"{key} must be in [0, 1], got {value(key)!r}")
    for key in _POSITIVE_FLOAT:
        if not value(key) > 0.0:
            raise ConfigError(f"{key} must be > 0, got {value(key)!r}")
    for key in _NON_NEGATIVE:
        if value(key) < 0:
            raise ConfigError(f"{key} must be >= 0, got {value(key)!r}")
    memory = cfg.policy.memory
    for name in ("slots", "width", "read_heads"):
        if getattr(memory, name) < 1:
            raise ConfigError(f"policy.memory.{name} must be a positive integer, got {getattr(memory, name)!r}")
    if not 0 <= memory.shift_range < memory.slots:
        raise ConfigError(f"policy.memory.shift_range must be in [0, policy.memory.slots), got {memory.shift_range!r}")
    if not 0.0 <= memory.usage_decay <= 1.0:
        raise ConfigError(f"policy.memory.usage_decay must be in [0, 1], got {memory.usage_decay!r}")
    if cfg.policy.core in ("ntm", "mann"):
        if cfg.policy.num_layers != 1:
            raise ConfigError(
                f"policy.core={cfg.policy.core} has a one-layer controller; set policy.num_layers=1 "
                f"(got {cfg.policy.num_layers}) and widen it with policy.hidden_size"
            )
        if cfg.policy.core == "ntm" and memory.addressing_init == "sharp" and memory.shift_range == 0:
            raise ConfigError(
                "policy.memory.addressing_init=sharp starts the NTM's write head moving one slot per step, which "
                "needs policy.memory.shift_range >= 1 (got 0); set shift_range: 1 or addressing_init: neutral"
            )
        if memory.read_heads > memory.slots:
            raise ConfigError(
                f"policy.memory.read_heads ({memory.read_heads}) cannot exceed policy.memory.slots ({memory.slots})"
            )
    transformer = cfg.policy.transformer
    for name in ("heads", "context", "ff_mult"):
        if getattr(transformer, name) < 1:
            raise ConfigError(
                f"policy.transformer.{name} must be a positive integer, got {getattr(transformer, name)!r}"
            )
    if cfg.policy.core == "transformer" and cfg.policy.hidden_size % transformer.heads:
        raise ConfigError(
            f"policy.transformer.heads ({transformer.heads}) must divide policy.hidden_size "
            f"({cfg.policy.hidden_size}); pick a head count that divides the width, e.g. "
            "policy.transformer.heads=4 with policy.hidden_size=128"
        )
    episodic = cfg.policy.episodic
    for name in ("key_size", "neighbors", "capacity"):
        if getattr(episodic, name) < 1:
            raise ConfigError(f"policy.episodic.{name} must be a positive integer, got {getattr(episodic, name)!r}")
    if not episodic.kernel_delta > 0:
        raise ConfigError(f"policy.episodic.kernel_delta must be > 0, got {episodic.kernel_delta!r}")
    if episodic.mode == "reinstate" and cfg.policy.core != "lstm":
        raise ConfigError(
            f"policy.episodic.mode=reinstate is the epLSTM and needs policy.core=lstm (got {cfg.policy.core!r}); "
            "use policy.episodic.mode=input with other cores"
        )
    if episodic.mode == "reinstate" and cfg.policy.num_layers != 1:
        raise ConfigError("policy.episodic.mode=reinstate (the epLSTM) has one layer; set policy.num_layers=1")
    if cfg.env.max_trial_steps is not None and cfg.env.max_trial_steps < 1:
        raise ConfigError(f"env.max_trial_steps must be a positive integer or null, got {cfg.env.max_trial_steps}")
    for key in ("policy.embed_sizes", "policy.head_sizes"):
        if any(size < 1 for size in value(key)):
            raise ConfigError(f"{key} must list positive layer sizes, got {value(key)!r}")
    ppo, env = cfg.ppo, cfg.env
    if ppo.bptt_chunk is not None and (ppo.bptt_chunk < 1 or ppo.n_steps % ppo.bptt_chunk):
        raise ConfigError(f"ppo.bptt_chunk={ppo.bptt_chunk} must be a positive divisor of ppo.n_steps={ppo.n_steps}")
    sequences = env.num_envs * (ppo.n_steps // (ppo.bptt_chunk or ppo.n_steps))
    if ppo.num_minibatches > sequences:
        raise ConfigError(
            f"ppo.num_minibatches={ppo.num_minibatches} is more than the {sequences} env sequences per rollout; "
            "lower it or raise env.num_envs"
        )
    if ppo.clip_range_vf is not None and ppo.clip_range_vf <= 0:
        raise ConfigError("ppo.clip_range_vf must be > 0 or null")
    if ppo.target_kl is not None and ppo.target_kl <= 0:
        raise ConfigError("ppo.target_kl must be > 0 or null")
    if cfg.train.torch_threads is not None and cfg.train.torch_threads < 1:
        raise ConfigError("train.torch_threads must be a positive integer or null")
    if cfg.train.device not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", cfg.train.device):
        raise ConfigError(f"train.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {cfg.train.device!r}")


# -- strict loading -----------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if origin is list:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _number(value: Any) -> int | float | None:
    """``value`` as a number; PyYAML reads ``1e6`` and ``3e-4`` as strings, so parse those too."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widen to floats)."""
    origin = get_origin(tp)
    if origin is Literal:
        if isinstance(value, bool):  # YAML 1.1 reads a bare off/on (no/yes) as a boolean
            value = {False: "off", True: "on"}[value] if {"off", "on"} & set(get_args(tp)) else value
        if value in get_args(tp) and not isinstance(value, bool):
            return value
    elif origin in (Union, types.UnionType):
        for option in get_args(tp):
            try:
                return _coerce(value, option, key)
            except ConfigError:
                continue
    elif tp is type(None):
        if value is None:
            return None
    elif origin is list:
        if isinstance(value, (list, tuple)):
            return [_coerce(v, get_args(tp)[0], f"{key}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            return dict(value)
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        number = _number(value)
        if isinstance(number, int) or (isinstance(number, float) and number.is_integer()):
            return int(number)
    elif tp is float:
        number = _number(value)
        if number is not None:
            return float(number)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - only the types above appear in the config
        raise TypeError(f"unsupported config annotation {tp}")
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def _build(cls: type, data: Any, section: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"section {section or 'top level'} must be a mapping, got {data!r}")
    hints = get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        full = f"{section}.{key}" if section else str(key)
        if key not in fields:
            raise ConfigError(
                f"unknown key {key!r} in section {section or 'top level'}; valid keys: {', '.join(sorted(fields))}"
            )
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, full)  # type: ignore[arg-type]
        else:
            kwargs[key] = _coerce(value, tp, full)
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> Config:
    cfg: Config = _build(Config, data, "")
    return cfg.validate()


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Load a YAML config and apply ``section.key=value`` overrides (values parsed as YAML)."""
    path = Path(path)
    return config_from_dict(apply_overrides(read_yaml(path), overrides or []))


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping; keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> dict[str, Any]:
    """A config file's data: a mapping of sections; every problem a :class:`ConfigError` naming the file."""
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; pass a YAML config file such as configs/rl2_bandit.yaml")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; pass a YAML file such as configs/rl2_bandit.yaml")
    try:
        with path.open(encoding="utf-8") as stream:  # a stream, so that YAML's messages name the file
            data = yaml.load(stream, Loader=_StrictLoader) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (env:, ppo:, ...)")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides to raw config data.

    Switching ``env.id`` drops the file's ``env.kwargs`` (they belong to the old env, e.g. the
    bandit's ``n_arms``) unless ``env.kwargs...`` is also set on the command line.
    """
    data = json.loads(json.dumps(data))  # deep copy of plain data
    parsed: list[tuple[list[str], Any]] = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects section.key=value, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        parsed.append((key.strip().split("."), value))
    env_section = data.setdefault("env", {}) if isinstance(data.get("env", {}), dict) else {}
    old_id = env_section.get("id", EnvConfig.id)
    new_ids = [v for path, v in parsed if path == ["env", "id"]]
    sets_kwargs = any(path[:2] == ["env", "kwargs"] for path, _ in parsed)
    if new_ids and new_ids[-1] != old_id and env_section.get("kwargs"):
        dropped = env_section.pop("kwargs")
        if not sets_kwargs:
            print(f"note: env.id changed to {new_ids[-1]!r}; dropping env.kwargs {dropped} of {old_id!r}")
    for path, value in parsed:
        node: Any = data
        for part in path[:-1]:
            if not isinstance(node, dict):
                break
            node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {'.'.join(path)}: {'.'.join(path[:-1])} is not a section")
        node[path[-1]] = value
    return data


__all__ = [
    "Config",
    "ConfigError",
    "EnvConfig",
    "EpisodicConfig",
    "EvalConfig",
    "MemoryConfig",
    "PPOConfig",
    "PolicyConfig",
    "TaskConfig",
    "TrainConfig",
    "TransformerConfig",
    "apply_overrides",
    "config_from_dict",
    "load_config",
    "read_yaml",
]
