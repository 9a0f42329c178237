"""Strict config loading (memrl/config.py): every shipped YAML loads, errors name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from memrl.config import Config, ConfigError, apply_overrides, config_from_dict, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
BANDIT = Path(__file__).resolve().parents[1] / "configs" / "rl2_bandit.yaml"


def test_configs_folder_is_not_empty() -> None:
    """The configs/ folder ships YAML experiments (so the parametrised test below runs)."""
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path) -> None:
    """Every YAML in configs/ loads strictly, and its YAML dump loads back to the same config."""
    cfg = load_config(path)
    raw = yaml.safe_load(path.read_text())
    assert cfg.env.id == raw["env"]["id"]
    assert cfg.ppo.n_steps == raw["ppo"]["n_steps"]
    assert config_from_dict(yaml.safe_load(cfg.to_yaml())) == cfg


def test_unknown_key_names_key_section_and_valid_keys() -> None:
    """An unknown key is an error naming the key, its section and the valid keys."""
    with pytest.raises(ConfigError) as err:
        load_config(BANDIT, ["ppo.n_stepz=10"])
    message = str(err.value)
    assert "'n_stepz'" in message and "section ppo" in message
    assert "n_steps" in message and "gae_lambda" in message and "bptt_chunk" in message
    with pytest.raises(ConfigError, match="unknown key 'optimiser' in section top level; valid keys: env, eval"):
        config_from_dict({"optimiser": {}})


def test_unknown_key_in_yaml_file(tmp_path: Path) -> None:
    """Unknown keys written in the file itself are caught too."""
    path = tmp_path / "bad.yaml"
    path.write_text("env:\n  id: memrl/Bandit-v0\n  n_envs: 4\n")
    with pytest.raises(ConfigError, match="unknown key 'n_envs' in section env; valid keys:.*num_envs"):
        load_config(path)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("ppo.n_steps=ten", "ppo.n_steps: expected int, got 'ten'"),
        ("ppo.n_steps=10.5", "ppo.n_steps: expected int"),
        ("ppo.gamma=high", "ppo.gamma: expected float"),
        ("train.progress_bar=3", "train.progress_bar: expected bool"),
        ("env.num_envs=true", "env.num_envs: expected int"),
        ("policy.core=rnn", "policy.core: expected 'gru' or 'lstm'"),
        ("policy.embed_sizes=[32, big]", r"policy.embed_sizes\[1\]: expected int"),
        ("ppo.bptt_chunk=five", "ppo.bptt_chunk: expected int or null"),
        ("env.kwargs=3", "env.kwargs: expected a mapping"),
        ("ppo=3", "section ppo must be a mapping"),
    ],
)
def test_wrong_type_names_key_and_expected_type(override: str, expected: str) -> None:
    """A value of the wrong type is an error naming the key and the type to write."""
    with pytest.raises(ConfigError, match=expected):
        load_config(BANDIT, [override])


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["ppo.gamma=1.5"], r"ppo.gamma must be in \[0, 1\]"),
        (["ppo.gae_lambda=-0.1"], r"ppo.gae_lambda must be in \[0, 1\]"),
        (["env.num_envs=0"], "env.num_envs must be a positive integer"),
        (["ppo.learning_rate=0"], "ppo.learning_rate must be > 0"),
        (["ppo.ent_coef=-0.01"], "ppo.ent_coef must be >= 0"),
        (["ppo.reward_coef=-1"], "ppo.reward_coef must be >= 0"),
        (["policy.hyper_size=-8"], "policy.hyper_size must be >= 0"),
        (["env.max_trial_steps=0"], "env.max_trial_steps"),
        (["policy.embed_sizes=[32, 0]"], "policy.embed_sizes"),
        (["policy.head_sizes=[-4]"], "policy.head_sizes"),
        (["ppo.clip_range_vf=0"], "ppo.clip_range_vf"),
        (["train.device=tpu"], "train.device"),
        (["train.device=cuda:abc"], r"train.device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'cuda:abc'"),
        (["ppo.bptt_chunk=3"], "ppo.bptt_chunk=3 must be a positive divisor of ppo.n_steps=10"),
        (["ppo.bptt_chunk=0"], "ppo.bptt_chunk=0 must be a positive divisor"),
        (
            ["env.num_envs=2", "ppo.num_minibatches=4"],
            "ppo.num_minibatches=4 is more than the 2 env sequences",
        ),
        (["ppo.learning_rate=inf"], "ppo.learning_rate must be a finite number, got inf"),
        (["ppo.ent_coef=nan"], "ppo.ent_coef must be a finite number, got nan"),
        (["ppo.target_kl=.nan"], "ppo.target_kl must be a finite number"),
        (["train.seed=-1"], r"train.seed must be an integer in \[0, 2\*\*32 - 1\], got -1"),
        (["tasks.test_seed=4294967296"], "tasks.test_seed must be an integer in"),
        (["policy.core=ntm", "policy.num_layers=3"], "policy.core=ntm has a one-layer controller; set policy.num_lay"),
        (
            ["policy.core=mann", "policy.memory.read_heads=5", "policy.memory.slots=4"],
            r"policy.memory.read_heads \(5\) cannot exceed policy.memory.slots \(4\)",
        ),
        (
            ["policy.core=ntm", "policy.memory.addressing_init=sharp", "policy.memory.shift_range=0"],
            r"policy.memory.addressing_init=sharp .* needs policy.memory.shift_range >= 1 \(got 0\); set shift_range",
        ),
        (["policy.memory.addressing_init=blunt"], "policy.memory.addressing_init"),
        (["name=../elsewhere"], r"name='../elsewhere' names the run directory runs/NAME-TIME; use a non-empty name"),
        (["name=.."], "name='..'"),
    ],
)
def test_out_of_range_values_are_errors(overrides: list[str], expected: str) -> None:
    """Out-of-range values are errors naming the key and the allowed range."""
    with pytest.raises(ConfigError, match=expected):
        load_config(BANDIT, overrides)


@pytest.mark.parametrize("chunk", [20, -5])
def test_bptt_chunk_larger_than_n_steps_or_negative_names_bptt_chunk(chunk: int) -> None:
    """bptt_chunk > n_steps or < 0 is reported as a bptt_chunk error, not as a minibatch-count one."""
    with pytest.raises(ConfigError, match=f"ppo.bptt_chunk={chunk} must be a positive divisor"):
        load_config(BANDIT, [f"ppo.bptt_chunk={chunk}"])


def test_minibatch_count_counts_bptt_chunks() -> None:
    """With bptt_chunk, the sequences per rollout are num_envs * n_steps / bptt_chunk (2 * 10 / 5 = 4)."""
    cfg = load_config(BANDIT, ["env.num_envs=2", "ppo.bptt_chunk=5", "ppo.num_minibatches=4"])
    assert cfg.ppo.bptt_chunk == 5
    with pytest.raises(ConfigError, match="num_minibatches=5"):
        load_config(BANDIT, ["env.num_envs=2", "ppo.bptt_chunk=5", "ppo.num_minibatches=5"])


def test_overrides_parse_yaml_values() -> None:
    """--set values are parsed as YAML: numbers, booleans, null, lists, nested mappings."""
    cfg = load_config(
        BANDIT,
        [
            "ppo.gamma=0.9",
            "train.progress_bar=false",
            "ppo.clip_range_vf=null",
            "policy.embed_sizes=[32, 16]",
            "env.kwargs.n_arms=3",
            "name=tiny",
            "ppo.learning_rate=1",
            "env.max_trial_steps=7",
            "ppo.target_kl=0.02",
        ],
    )
    assert cfg.ppo.gamma == 0.9
    assert cfg.train.progress_bar is False
    assert cfg.ppo.clip_range_vf is None
    assert cfg.policy.embed_sizes == [32, 16]
    assert cfg.env.kwargs == {"n_arms": 3}
    assert cfg.name == "tiny"
    assert cfg.ppo.learning_rate == 1.0 and isinstance(cfg.ppo.learning_rate, float)  # ints widen to floats
    assert cfg.env.max_trial_steps == 7
    assert cfg.ppo.target_kl == 0.02


def test_scientific_notation_is_accepted_for_numbers() -> None:
    """3e-4 and 1e6 (how learning rates and budgets are usually written) load as numbers."""
    cfg = load_config(BANDIT, ["ppo.learning_rate=3e-4", "train.total_steps=1e6"])
    assert cfg.ppo.learning_rate == pytest.approx(3e-4)
    assert cfg.train.total_steps == 1_000_000


def test_malformed_override_and_missing_file_are_errors(tmp_path: Path) -> None:
    """--set without '=' and a nonexistent or non-mapping file are ConfigErrors."""
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(BANDIT, ["ppo.gamma"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("env: {id: [\n")
    with pytest.raises(ConfigError, match="not valid YAML") as error:
        load_config(broken)
    assert f'in "{broken}", line' in str(error.value)  # YAML's own position names the file


def test_a_key_given_twice_and_a_directory_are_errors(tmp_path: Path) -> None:
    """PyYAML would keep the last of two ``ppo:`` sections silently, losing the first."""
    path = tmp_path / "twice.yaml"
    path.write_text("ppo:\n  gamma: 0.5\nppo:\n  n_steps: 10\n")
    with pytest.raises(ConfigError, match="key 'ppo' appears twice"):
        load_config(path)
    with pytest.raises(ConfigError, match="is a directory; pass a YAML config file"):
        load_config(tmp_path)


def test_switching_env_id_drops_file_kwargs() -> None:
    """--set env.id=OTHER drops the file's env.kwargs (n_arms belongs to the bandit)."""
    data = yaml.safe_load(BANDIT.read_text())
    assert data["env"]["kwargs"] == {"n_arms": 5}
    switched = apply_overrides(data, ["env.id=memrl/PointNav-v0"])
    assert "kwargs" not in switched["env"]
    assert data["env"]["kwargs"] == {"n_arms": 5}  # the input is not modified
    assert load_config(BANDIT, ["env.id=memrl/PointNav-v0"]).env.kwargs == {}


def test_switching_env_id_keeps_kwargs_set_on_the_command_line() -> None:
    """With env.kwargs also set on the command line, those kwargs are used."""
    cfg = load_config(BANDIT, ["env.id=memrl/PointNav-v0", "env.kwargs={horizon: 5}"])
    assert cfg.env.id == "memrl/PointNav-v0" and cfg.env.kwargs == {"horizon": 5}
    # Setting the id to the one already in the file keeps the file's kwargs.
    assert load_config(BANDIT, ["env.id=memrl/Bandit-v0"]).env.kwargs == {"n_arms": 5}
    # Setting kwargs without switching env merges into the file's kwargs.
    assert load_config(BANDIT, ["env.kwargs.n_arms=7"]).env.kwargs == {"n_arms": 7}


def test_default_config_is_valid() -> None:
    """Config() with all defaults passes validation and round-trips through JSON-like dicts."""
    cfg = Config().validate()
    assert config_from_dict(cfg.to_dict()) == cfg


def test_bare_off_in_yaml_or_set_means_the_string_off(tmp_path: Path) -> None:
    """PyYAML reads a bare ``off`` as False; a Literal that offers 'off' takes it as 'off'."""
    path = tmp_path / "c.yaml"
    path.write_text("policy: {episodic: {mode: off}}\n")
    assert load_config(path).policy.episodic.mode == "off"
    assert load_config(path, ["policy.episodic.mode=off"]).policy.episodic.mode == "off"
    with pytest.raises(ConfigError, match="policy.core"):
        load_config(path, ["policy.core=off"])


def test_pyproject_lists_every_package() -> None:
    """A non-editable install ships every memrl package (setuptools' list is explicit)."""
    import tomllib

    listed = set(tomllib.loads(Path("pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        "memrl." + str(p.parent.relative_to("memrl")).replace("/", ".") for p in Path("memrl").glob("*/__init__.py")
    }
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
