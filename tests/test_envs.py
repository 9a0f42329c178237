"""Task environments (memrl.envs): Gymnasium contract, task protocol, own-generator randomness, dynamics."""

from __future__ import annotations

import json

import gymnasium as gym
import memrl.envs  # noqa: F401  (registers the memrl/ envs)
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from memrl.envs import BanditEnv, BarcodeBanditEnv, PointNavEnv, TabularMDPEnv

from memrl.tasks import TrialWrapper

MEMRL_IDS = sorted(env_id for env_id in gym.envs.registration.registry if env_id.startswith("memrl/"))
SMALL_KWARGS = {
    "memrl/Bandit-v0": {"n_arms": 3},
    "memrl/TabularMDP-v0": {"n_states": 4, "n_actions": 3, "horizon": 5},
}


def test_builtin_envs_are_registered() -> None:
    """Importing memrl registers the three built-in task envs."""
    assert {"memrl/Bandit-v0", "memrl/TabularMDP-v0", "memrl/PointNav-v0"} <= set(MEMRL_IDS)


@pytest.mark.parametrize("env_id", MEMRL_IDS)
def test_check_env_on_registered_env(env_id: str) -> None:
    """Every memrl/ env passes Gymnasium's env checker."""
    check_env(gym.make(env_id).unwrapped, skip_render_check=True)


@pytest.mark.filterwarnings("ignore:.*(infinity|different from the unwrapped).*:UserWarning")
@pytest.mark.parametrize("env_id", MEMRL_IDS)
def test_check_env_on_trial_wrapped_env(env_id: str) -> None:
    """A trial-wrapped memrl env passes Gymnasium's env checker too (spec re-creation tested below)."""
    env = TrialWrapper(gym.make(env_id, **SMALL_KWARGS.get(env_id, {})).unwrapped, episodes_per_trial=2)
    check_env(env, skip_render_check=True, skip_close_check=True)


def test_trial_wrapped_env_can_be_remade_from_its_spec() -> None:
    """env.spec.make() rebuilds a trial-wrapped env (check_env's close check does this)."""
    env = TrialWrapper(gym.make("memrl/Bandit-v0", n_arms=3), episodes_per_trial=4)
    remade = env.spec.make()
    assert isinstance(remade, TrialWrapper)
    assert remade.episodes_per_trial == 4
    assert remade.observation_space == env.observation_space


@pytest.mark.parametrize("env_id", MEMRL_IDS)
def test_task_round_trip(env_id: str) -> None:
    """sample_tasks gives JSON-serialisable tasks; set_task then get_task returns the same task."""
    env = gym.make(env_id).unwrapped
    tasks = env.sample_tasks(3, np.random.default_rng(0))
    assert len(tasks) == 3
    assert tasks[0] != tasks[1]
    for task in tasks:
        assert json.loads(json.dumps(task)) == task
        env.set_task(task)
        assert env.get_task() == task
        env.reset(seed=0)
        assert env.get_task() == task  # reset keeps the task


@pytest.mark.parametrize("env_id", MEMRL_IDS)
def test_sample_tasks_uses_only_given_generator(env_id: str) -> None:
    """Same generator seed -> same tasks, whatever global np.random does in between."""
    env = gym.make(env_id).unwrapped
    np.random.seed(1)
    first = env.sample_tasks(2, np.random.default_rng(7))
    np.random.seed(2)
    np.random.random(10)
    second = env.sample_tasks(2, np.random.default_rng(7))
    assert first == second


def rollout_rewards(env: gym.Env, seed: int, steps: int) -> list[float]:
    rewards = []
    env.reset(seed=seed)
    for t in range(steps):
        np.random.seed(t)  # scramble the global generator: an env that used it would change
        _, reward, terminated, truncated, _ = env.step(_action(env, t))
        rewards.append(reward)
        if terminated or truncated:
            env.reset()
    return rewards


def _action(env: gym.Env, t: int):
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        return t % int(space.n)
    return np.array([np.cos(t), np.sin(t)], dtype=np.float32)


@pytest.mark.parametrize("env_id", MEMRL_IDS)
def test_env_randomness_comes_from_its_own_generator(env_id: str) -> None:
    """Same reset seed -> same rewards (and same self-drawn task), even if global np.random changes."""
    np.random.seed(123)
    env_a = gym.make(env_id).unwrapped
    rewards_a = rollout_rewards(env_a, seed=5, steps=30)
    np.random.seed(999)
    env_b = gym.make(env_id).unwrapped
    rewards_b = rollout_rewards(env_b, seed=5, steps=30)
    assert env_a.get_task() == env_b.get_task()
    assert rewards_a == rewards_b
    env_c = gym.make(env_id).unwrapped
    rewards_c = rollout_rewards(env_c, seed=6, steps=30)
    assert rewards_c != rewards_a  # the seed matters, so the equality above is not vacuous


@pytest.mark.parametrize(
    ("env", "bad_tasks"),
    [
        (
            BanditEnv(n_arms=3),
            [{}, {"probs": [0.5, 0.5]}, {"probs": [0.1, 0.2, 1.5]}, {"probs": [-0.1, 0.2, 0.3]}],
        ),
        (
            TabularMDPEnv(n_states=2, n_actions=2, horizon=3),
            [
                {},
                {"transitions": [[[1, 0], [1, 0]], [[1, 0], [1, 0]]]},  # no reward_means
                {"transitions": [[[1, 0], [1, 0]]], "reward_means": [[0, 0], [0, 0]]},  # wrong shape
                {"transitions": [[[0.5, 0.2], [1, 0]], [[1, 0], [1, 0]]], "reward_means": [[0, 0], [0, 0]]},
                {"transitions": [[[1.5, -0.5], [1, 0]], [[1, 0], [1, 0]]], "reward_means": [[0, 0], [0, 0]]},
                {"transitions": "nope", "reward_means": [[0, 0], [0, 0]]},
            ],
        ),
        (PointNavEnv(), [{}, {"goal": [1.0]}, {"goal": [0.0, float("nan")]}, {"goal": [[0.0, 1.0]]}]),
        (
            BarcodeBanditEnv(n_arms=3, barcode_bits=4),
            [{}, {"barcode": [0, 1, 0], "arm": 0}, {"barcode": [0, 1, 0, 2], "arm": 0}, {"barcode": [0] * 4, "arm": 3}],
        ),
        (BanditEnv(n_arms=2, context_bits=3), [{"probs": [0.1, 0.2]}, {"probs": [0.1, 0.2], "context": [1, 0]}]),
    ],
    ids=["bandit", "mdp", "point_nav", "barcode", "bandit-context"],
)
def test_set_task_rejects_malformed_tasks(env: gym.Env, bad_tasks: list[dict]) -> None:
    """A malformed task is a ValueError, and the previous task stays in force."""
    good = env.sample_tasks(1, np.random.default_rng(0))[0]
    env.set_task(good)
    for bad in bad_tasks:
        with pytest.raises(ValueError, match="set_task"):
            env.set_task(bad)
        assert env.get_task() == good


@pytest.mark.parametrize("env_cls", [BanditEnv, TabularMDPEnv, PointNavEnv, BarcodeBanditEnv])
def test_get_task_before_any_task_is_an_error(env_cls: type) -> None:
    """get_task before set_task/reset raises a RuntimeError saying what to call."""
    with pytest.raises(RuntimeError, match="set_task"):
        env_cls().get_task()


@pytest.mark.parametrize(
    ("env_cls", "kwargs"),
    [
        (BanditEnv, {"n_arms": 1}),
        (BanditEnv, {"n_arms": 2.0}),
        (BanditEnv, {"n_arms": True}),
        (TabularMDPEnv, {"n_states": 1}),
        (TabularMDPEnv, {"horizon": 0}),
        (PointNavEnv, {"horizon": 0}),
        (PointNavEnv, {"max_step": 0.0}),
        (PointNavEnv, {"goal_radius": -1.0}),
        (BarcodeBanditEnv, {"n_arms": 1}),
        (BarcodeBanditEnv, {"barcode_bits": 0}),
        (BarcodeBanditEnv, {"reward_prob": 0.0}),
        (BanditEnv, {"context_bits": -1}),
        (TabularMDPEnv, {"context_bits": -2}),
    ],
)
def test_constructors_validate_arguments(env_cls: type, kwargs: dict) -> None:
    """Out-of-range constructor arguments are ValueErrors."""
    with pytest.raises(ValueError):
        env_cls(**kwargs)


def test_bandit_reward_frequencies_match_probabilities() -> None:
    """Each arm pays 1 with its probability: exactly for 0 and 1, within 4 standard errors otherwise."""
    probs = [0.0, 1.0, 0.5, 0.2]
    env = BanditEnv(n_arms=4)
    env.set_task({"probs": probs})
    env.reset(seed=0)
    pulls = 1000
    for arm, p in enumerate(probs):
        rewards = []
        for _ in range(pulls):
            obs, reward, terminated, truncated, _ = env.step(arm)
            assert terminated and not truncated  # one pull is one episode
            assert obs.tolist() == [0.0]
            rewards.append(reward)
        assert set(rewards) <= {0.0, 1.0}
        # standard error of the frequency: sqrt(p (1 - p) / 1000) <= 0.016; 4 of them is 0.064
        assert np.mean(rewards) == pytest.approx(p, abs=0.064)


def test_mdp_episodes_start_in_state_zero_and_last_horizon_steps() -> None:
    """Episodes start in state 0, follow the task's transitions and terminate after exactly horizon steps."""
    S, A, horizon = 4, 2, 6
    # Deterministic task: action a moves from s to (s + a + 1) % S; mean reward R[s, a] = 10 s + a.
    transitions = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            transitions[s, a, (s + a + 1) % S] = 1.0
    means = np.array([[10.0 * s + a for a in range(A)] for s in range(S)])
    env = TabularMDPEnv(n_states=S, n_actions=A, horizon=horizon)
    env.set_task({"transitions": transitions.tolist(), "reward_means": means.tolist()})
    noise = []
    for episode in range(3):
        obs, _ = env.reset(seed=episode)
        assert obs.tolist() == [1.0, 0.0, 0.0, 0.0]
        state = 0
        for t in range(horizon):
            action = (t + episode) % A
            obs, reward, terminated, truncated, _ = env.step(action)
            noise.append(reward - means[state, action])
            state = (state + action + 1) % S
            assert int(np.argmax(obs)) == state and obs.sum() == 1.0
            assert not truncated
            assert terminated == (t == horizon - 1)
    # rewards ~ N(R[s, a], 1): 18 noise draws have mean within 4 / sqrt(18) ~ 0.95 of 0 and std near 1
    assert abs(np.mean(noise)) < 0.95
    assert 0.4 < np.std(noise) < 1.8


def test_point_nav_reward_is_minus_distance_and_truncates_at_horizon() -> None:
    """PointNav moves by max_step * clip(action), pays -distance to the goal, truncates at the horizon."""
    env = PointNavEnv(horizon=3, max_step=0.1)
    env.set_task({"goal": [0.0, 1.0]})
    obs, _ = env.reset(seed=0)
    assert obs.tolist() == [0.0, 0.0]
    obs, reward, terminated, truncated, _ = env.step(np.array([1.0, 0.0], dtype=np.float32))
    # position (0.1, 0): distance to (0, 1) is sqrt(0.01 + 1)
    np.testing.assert_allclose(obs, [0.1, 0.0], atol=1e-6)
    assert reward == pytest.approx(-np.sqrt(1.01))
    assert not terminated and not truncated
    obs, reward, _, truncated, _ = env.step(np.array([-5.0, 3.0], dtype=np.float32))  # clipped to (-1, 1)
    # position (0, 0.1): distance 0.9
    np.testing.assert_allclose(obs, [0.0, 0.1], atol=1e-6)
    assert reward == pytest.approx(-0.9)
    assert not truncated
    _, reward, terminated, truncated, _ = env.step(np.array([0.0, 1.0], dtype=np.float32))
    assert reward == pytest.approx(-0.8)
    assert truncated and not terminated  # a time limit, not a terminal state


def test_point_nav_goals_lie_on_upper_half_circle() -> None:
    """Sampled goals have norm goal_radius and a nonnegative y."""
    goals = np.array([t["goal"] for t in PointNavEnv(goal_radius=2.0).sample_tasks(50, np.random.default_rng(0))])
    np.testing.assert_allclose(np.linalg.norm(goals, axis=1), 2.0)
    assert np.all(goals[:, 1] >= 0.0)


def test_barcode_pays_only_its_arm_and_shows_its_barcode() -> None:
    env = BarcodeBanditEnv(n_arms=4, barcode_bits=5)
    env.set_task({"barcode": [1, 0, 1, 1, 0], "arm": 2})
    obs, _ = env.reset(seed=0)
    assert obs.tolist() == [1, 0, 1, 1, 0]
    rewards = [env.step(a)[1] for a in range(4)]
    assert rewards == [0.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize("env_cls", [BanditEnv, TabularMDPEnv])
def test_context_bits_show_the_task_context(env_cls: type) -> None:
    """The recurring variants append the task's context bits to every observation."""
    env = env_cls(context_bits=6)
    task = env.sample_tasks(1, np.random.default_rng(3))[0]
    env.set_task(task)
    obs, _ = env.reset(seed=0)
    assert obs[-6:].tolist() == task["context"] and env.get_task()["context"] == task["context"]
    assert env.step(0)[0][-6:].tolist() == task["context"]
