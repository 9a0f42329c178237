"""The task sampler (memrl/tasks/sampler.py), the trial wrapper (trial.py) and trial vector envs (vec.py)."""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from conftest import bandit_env_cfg
from gymnasium import spaces
from memrl.envs import BanditEnv, PointNavEnv, TabularMDPEnv

from memrl.config import ConfigError, TaskConfig
from memrl.tasks import TaskSampler, TrialWrapper, task_key
from memrl.tasks.vec import make_sampler, make_vec_env


class FiniteTasks:
    """A tiny discrete task distribution: tasks {"id": 0..n-1}, uniformly (as numpy values if asked)."""

    def __init__(self, n: int, as_numpy: bool = False) -> None:
        self.n, self.as_numpy = n, as_numpy

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[dict]:
        if self.as_numpy:  # numpy scalars and arrays, as a user's distribution may return them
            return [{"id": i, "onehot": np.eye(self.n)[i]} for i in rng.integers(self.n, size=n)]
        return [{"id": int(i)} for i in rng.integers(self.n, size=n)]


def bandit() -> BanditEnv:
    return BanditEnv(n_arms=3)


# -- sampler -------------------------------------------------------------------------------


def test_test_tasks_fixed_by_test_seed_regardless_of_seed() -> None:
    """The test split depends on test_seed only: same for every run seed, different for another test_seed."""
    a = TaskSampler(bandit(), seed=0, num_test_tasks=5, test_seed=1)
    b = TaskSampler(bandit(), seed=99, num_test_tasks=5, test_seed=1)
    c = TaskSampler(bandit(), seed=0, num_test_tasks=5, test_seed=2)
    assert a.test_tasks == b.test_tasks
    assert a.test_tasks != c.test_tasks
    assert len(a.test_tasks) == 5 and len({task_key(t) for t in a.test_tasks}) == 5


@pytest.mark.parametrize("as_numpy", [False, True], ids=["python", "numpy"])
def test_train_tasks_avoid_test_tasks_by_redrawing(as_numpy: bool) -> None:
    """On a 5-task distribution with test tasks held out, train draws cover exactly the other tasks."""
    sampler = TaskSampler(FiniteTasks(5, as_numpy), seed=0, num_test_tasks=2, test_seed=3)
    test_ids = {int(t["id"]) for t in sampler.test_tasks}
    assert 1 <= len(test_ids) <= 2
    stream = sampler.stream("train", 0, 1)
    train_tasks = [stream.next() for _ in range(200)]
    assert {int(t["id"]) for t in train_tasks} == set(range(5)) - test_ids
    assert not any(sampler.is_test_task(t) for t in train_tasks)
    assert all(sampler.is_test_task(t) for t in sampler.test_tasks)


def test_pool_schedule_also_avoids_test_tasks() -> None:
    """The training pool is drawn outside the test split too."""
    sampler = TaskSampler(FiniteTasks(4), seed=0, schedule="pool", pool_size=10, num_test_tasks=1)
    assert all(not sampler.is_test_task(t) for t in sampler.train_pool)


def test_too_small_distribution_is_a_clear_error() -> None:
    """If every task is a test task, building the sampler fails at once with a ConfigError saying what
    to lower (before any env or run directory exists)."""
    with pytest.raises(ConfigError, match="too small.*num_test_tasks"):
        TaskSampler(FiniteTasks(1), seed=0, num_test_tasks=1)
    with pytest.raises(ConfigError, match="num_test_tasks"):
        TaskSampler(FiniteTasks(1), seed=0, schedule="pool", pool_size=3, num_test_tasks=1)


def test_pool_schedule_draws_only_from_pool() -> None:
    """With schedule=pool, every train task is one of the pool_size pool tasks, and all of them appear."""
    sampler = TaskSampler(bandit(), seed=0, schedule="pool", pool_size=3, num_test_tasks=5)
    assert len(sampler.train_pool) == 3
    pool_keys = {task_key(t) for t in sampler.train_pool}
    assert len(pool_keys) == 3
    seen = set()
    for slot in range(2):
        stream = sampler.stream("train", slot, 2)
        seen |= {task_key(stream.next()) for _ in range(60)}
    assert seen == pool_keys


def test_iid_schedule_draws_fresh_tasks() -> None:
    """With schedule=iid, a continuous distribution gives a new task every trial."""
    sampler = TaskSampler(bandit(), seed=0, num_test_tasks=5)
    stream = sampler.stream("train", 0, 1)
    assert len({task_key(stream.next()) for _ in range(50)}) == 50


def test_test_streams_enumerate_test_tasks_by_slot() -> None:
    """Test slot i of n plays test tasks i, i+n, i+2n, ... and wraps around the list."""
    sampler = TaskSampler(bandit(), seed=0, num_test_tasks=7)
    tasks = sampler.test_tasks
    stream = sampler.stream("test", 1, 3)
    assert [stream.next() for _ in range(4)] == [
        tasks[1],
        tasks[4],
        tasks[0],
        tasks[3],
    ]  # 7 -> 7 % 7 = 0, 10 % 7 = 3
    slot0 = sampler.stream("test", 0, 3)
    assert [slot0.next() for _ in range(3)] == [tasks[0], tasks[3], tasks[6]]


def test_same_seed_same_stream_and_slots_differ() -> None:
    """Streams are reproducible from (seed, slot); another slot or seed gives other tasks."""

    def draws(seed: int, slot: int) -> list[dict]:
        stream = TaskSampler(bandit(), seed=seed, num_test_tasks=5).stream("train", slot, 4)
        return [stream.next() for _ in range(5)]

    assert draws(0, 1) == draws(0, 1)
    assert draws(0, 1) != draws(0, 2)
    assert draws(0, 1) != draws(1, 1)


@pytest.mark.parametrize("schedule", ["iid", "recurring"])
def test_a_copied_stream_goes_on_alone_and_shares_the_sampler(schedule: str) -> None:
    """deepcopy (gymnasium's RecordConstructorArgs makes one per trial wrapper) copies a stream's
    position but not its sampler's task lists: the copy draws what the original would have, and
    drawing from one leaves the other where it was."""
    sampler = TaskSampler(
        bandit(), seed=0, num_test_tasks=50, schedule=schedule, recurring_tasks=3, recurring_repeats=2
    )
    stream = sampler.stream("train", 1, 4)
    [stream.next() for _ in range(4)]  # somewhere inside a recurring bag
    twin = copy.deepcopy(stream)
    assert twin.sampler is sampler
    ahead = [twin.next() for _ in range(6)]
    assert [stream.next() for _ in range(6)] == ahead
    env = TrialWrapper(gym.make("memrl/Bandit-v0", n_arms=3), episodes_per_trial=1, task_stream=stream)
    assert env.task_stream is stream  # the wrapper keeps the live stream; its spec records a copy
    assert env.spec is not None and env.spec.additional_wrappers[-1].kwargs["task_stream"].sampler is sampler


def test_sampler_rejects_unknown_schedule_and_split() -> None:
    """An unknown schedule or split is a ValueError naming the choices."""
    with pytest.raises(ValueError, match="iid, pool"):
        TaskSampler(bandit(), schedule="bag")
    sampler = TaskSampler(bandit(), num_test_tasks=2)
    with pytest.raises(ValueError, match="train"):
        sampler.stream("validation", 0, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        TaskSampler(bandit(), num_test_tasks=0)


# -- trial wrapper -------------------------------------------------------------------------


def bandit_trial(probs: list[float], episodes: int = 3, **kwargs: Any) -> TrialWrapper:
    env = BanditEnv(n_arms=len(probs))
    env.set_task({"probs": probs})
    return TrialWrapper(env, episodes_per_trial=episodes, **kwargs)


def test_trial_obs_layout_and_bandit_trial_by_hand() -> None:
    """Obs is [obs, one-hot prev action, prev reward, episode_start]; a bandit trial worked by hand."""
    env = bandit_trial([0.0, 1.0, 0.0], episodes=3)
    assert env.layout == {
        "obs": slice(0, 1),
        "prev_action": slice(1, 4),
        "prev_reward": slice(4, 5),
        "episode_start": slice(5, 6),
    }
    assert env.observation_space.shape == (6,) and env.observation_space.dtype == np.float32
    obs, info = env.reset(seed=0)
    assert obs.tolist() == [0, 0, 0, 0, 0, 1]  # no previous action or reward; a trial start
    assert info["task"] == {"probs": [0.0, 1.0, 0.0]} and info["episode_index"] == 0

    obs, reward, terminated, truncated, info = env.step(1)  # pays 1; inner episode 0 ends
    assert reward == 1.0 and not terminated and not truncated
    assert obs.tolist() == [0, 0, 1, 0, 1, 1]  # prev action 1 one-hot, prev reward 1, new episode starts
    assert info["inner_terminated"] and not info["inner_truncated"] and info["episode_index"] == 0
    assert info["inner_final_observation"].tolist() == [0, 0, 1, 0, 1, 0]  # before the inner reset

    obs, reward, terminated, truncated, info = env.step(2)
    assert obs.tolist() == [0, 0, 0, 1, 0, 1] and reward == 0.0 and not terminated
    obs, reward, terminated, truncated, info = env.step(1)  # third episode: the trial ends
    assert terminated and not truncated
    assert info["episode_returns"] == [1.0, 0.0, 1.0]
    assert obs.tolist() == [0, 0, 1, 0, 1, 0]  # final obs: no inner reset after the last episode
    assert "inner_final_observation" not in info


def test_episode_start_and_prev_reward_across_multi_step_episodes() -> None:
    """episode_start is 1 exactly at the first step of each inner episode; at an inner reset
    prev_reward is the last reward of the ended episode and prev_action the one-hot last action."""
    inner = TabularMDPEnv(n_states=3, n_actions=2, horizon=3)
    env = TrialWrapper(inner, episodes_per_trial=2)
    layout = env.layout
    obs, _ = env.reset(seed=1)
    starts, rewards, actions, steps = [obs[layout["episode_start"]][0]], [], [], 0
    terminated = False
    while not terminated:
        action = steps % 2
        obs, reward, terminated, truncated, info = env.step(action)
        steps += 1
        rewards.append(reward)
        actions.append(action)
        assert not truncated
        if not terminated:
            starts.append(obs[layout["episode_start"]][0])
            assert obs[layout["prev_reward"]][0] == np.float32(reward)  # always the last reward
            assert obs[layout["prev_action"]].tolist() == np.eye(2)[action].tolist()
            # the observation part is one-hot of the state; state 0 at the start of an episode
            assert obs[layout["obs"]].sum() == 1.0
            if steps == 3:
                assert obs[layout["obs"]].tolist() == [1.0, 0.0, 0.0]
                assert info["inner_terminated"] and info["episode_index"] == 0
    assert steps == 6  # 2 episodes x horizon 3
    assert starts == [1, 0, 0, 1, 0, 0]
    assert info["episode_returns"] == pytest.approx([sum(rewards[:3]), sum(rewards[3:])])
    assert info["episode_index"] == 1


def test_inner_terminated_and_truncated_kept_apart() -> None:
    """PointNav's time limit is inner_truncated; the bandit's pull is inner_terminated."""
    nav = TrialWrapper(PointNavEnv(horizon=2), episodes_per_trial=2)
    nav.reset(seed=0)
    _, _, _, _, info = nav.step(np.zeros(2, dtype=np.float32))
    assert not info["inner_terminated"] and not info["inner_truncated"]
    _, _, terminated, truncated, info = nav.step(np.zeros(2, dtype=np.float32))
    assert info["inner_truncated"] and not info["inner_terminated"]
    assert not terminated and not truncated  # an inner episode ended, the trial goes on
    env = bandit_trial([0.5, 0.5], episodes=2)
    env.reset(seed=0)
    _, _, _, _, info = env.step(0)
    assert info["inner_terminated"] and not info["inner_truncated"]


def test_box_prev_action_is_the_flat_action() -> None:
    """A Box action is copied as is into the prev_action slot (PointNav: 2 numbers)."""
    env = TrialWrapper(PointNavEnv(horizon=5), episodes_per_trial=1)
    obs, _ = env.reset(seed=0)
    assert env.layout["prev_action"] == slice(2, 4)
    obs, reward, *_ = env.step(np.array([0.5, -0.25], dtype=np.float32))
    assert obs[2:4].tolist() == [0.5, -0.25]
    assert obs[4] == np.float32(reward)


def test_trial_ends_after_exactly_k_episodes() -> None:
    """A trial terminates after exactly episodes_per_trial inner episodes (PointNav: k * horizon steps)."""
    env = TrialWrapper(PointNavEnv(horizon=4), episodes_per_trial=3)
    env.reset(seed=0)
    for step in range(1, 13):
        _, _, terminated, truncated, info = env.step(np.ones(2, dtype=np.float32))
        assert terminated == (step == 12) and not truncated
    assert len(info["episode_returns"]) == 3
    # All three episodes take the same path from the origin, so they earn the same return.
    assert info["episode_returns"][0] == pytest.approx(info["episode_returns"][2])


def test_max_trial_steps_truncates_the_trial() -> None:
    """max_trial_steps ends the trial as truncated, with the partial episode's return listed."""
    env = TrialWrapper(PointNavEnv(horizon=5), episodes_per_trial=3, max_trial_steps=7)
    env.reset(seed=0)
    env.unwrapped.set_task({"goal": [0.0, 1.0]})
    returns = []
    for step in range(1, 8):
        _, reward, terminated, truncated, info = env.step(np.zeros(2, dtype=np.float32))  # stay at the origin
        returns.append(reward)
        assert not terminated
        assert truncated == (step == 7)
    # standing at the origin pays -1 per step: episode 1 = 5 steps, partial episode 2 = 2 steps
    assert info["episode_returns"] == pytest.approx([-5.0, -2.0])
    # A budget that runs out exactly at an inner episode end also truncates.
    env = TrialWrapper(PointNavEnv(horizon=5), episodes_per_trial=3, max_trial_steps=5)
    env.reset(seed=0)
    for _ in range(5):
        _, _, terminated, truncated, info = env.step(np.zeros(2, dtype=np.float32))
    assert truncated and not terminated and len(info["episode_returns"]) == 1


def test_options_task_forces_the_task() -> None:
    """reset(options={'task': ...}) plays that task instead of the stream's next one."""
    sampler = TaskSampler(bandit(), seed=0, num_test_tasks=3)
    env = TrialWrapper(bandit(), episodes_per_trial=2, task_stream=sampler.stream("train", 0, 1))
    forced = {"probs": [1.0, 0.0, 0.0]}
    _, info = env.reset(seed=0, options={"task": forced})
    assert info["task"] == forced and env.unwrapped.get_task() == forced and env.get_task() == forced
    _, reward, *_ = env.step(0)
    assert reward == 1.0
    _, info = env.reset()
    assert info["task"] != forced  # without options, the stream's task


def test_trial_reset_draws_tasks_from_its_stream() -> None:
    """Each trial reset takes the next task of the wrapper's stream."""
    sampler = TaskSampler(bandit(), seed=0, num_test_tasks=4)
    env = TrialWrapper(bandit(), episodes_per_trial=1, task_stream=sampler.stream("test", 0, 2))
    assert [env.reset()[1]["task"] for _ in range(3)] == [sampler.test_tasks[i] for i in (0, 2, 0)]


def test_trial_progress_clock() -> None:
    """trial_progress appends episode_index / episodes_per_trial."""
    env = bandit_trial([0.5, 0.5], episodes=4, trial_progress=True)
    # 2 arms: obs 0:1, prev_action 1:3, prev_reward 3:4, episode_start 4:5, then the clock
    assert env.layout["trial_progress"] == slice(5, 6) and env.observation_space.shape == (6,)
    obs, _ = env.reset(seed=0)
    clock = [obs[5]]
    for _ in range(3):
        obs, *_ = env.step(0)
        clock.append(obs[5])
    assert clock == pytest.approx([0.0, 0.25, 0.5, 0.75])


class DiscreteObsTaskEnv(gym.Env):
    """A 3-state env with Discrete observations (goes state 0 -> 1 -> 2, then terminates)."""

    observation_space = spaces.Discrete(3)
    action_space = spaces.Discrete(2)

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[dict]:
        return [{"bonus": float(b)} for b in rng.random(n)]

    def set_task(self, task: dict) -> None:
        self.task = task

    def get_task(self) -> dict:
        return self.task

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.state = 0
        return self.state, {}

    def step(self, action):
        self.state += 1
        return self.state, 1.0, self.state == 2, False, {}


def test_discrete_inner_observation_is_one_hot() -> None:
    """A Discrete inner observation becomes a one-hot block of the observation."""
    env = TrialWrapper(DiscreteObsTaskEnv(), episodes_per_trial=1)
    env.unwrapped.set_task({"bonus": 0.0})
    obs, _ = env.reset(seed=0)
    assert obs[env.layout["obs"]].tolist() == [1, 0, 0]
    obs, *_ = env.step(0)
    assert obs[env.layout["obs"]].tolist() == [0, 1, 0]


def test_previous_observation_is_the_state_the_last_action_was_taken_on() -> None:
    """previous_observation appends s of (s, a, r, s'): zeros at trial start, s_T-1 across an inner reset."""
    env = TrialWrapper(DiscreteObsTaskEnv(), episodes_per_trial=2, previous_observation=True)
    env.unwrapped.set_task({"bonus": 0.0})
    # obs 0:3, prev_action 3:5, prev_reward 5:6, episode_start 6:7, previous observation 7:10
    assert env.layout["previous_observation"] == slice(7, 10) and env.observation_space.shape == (10,)
    prev = env.layout["previous_observation"]
    obs, _ = env.reset(seed=0)
    seen = [(obs[env.layout["obs"]].tolist(), obs[prev].tolist())]
    for _ in range(4):  # two inner episodes of 2 steps: 0 -> 1 -> 2, reset, 0 -> 1 -> 2
        obs, *_ = env.step(1)
        seen.append((obs[env.layout["obs"]].tolist(), obs[prev].tolist()))
    assert seen == [
        ([1, 0, 0], [0, 0, 0]),  # trial start: nothing acted on yet
        ([0, 1, 0], [1, 0, 0]),
        ([1, 0, 0], [0, 1, 0]),  # inner reset: the new episode's state 0, the last action was taken in state 1
        ([0, 1, 0], [1, 0, 0]),
        ([0, 0, 1], [0, 1, 0]),  # trial end
    ]
    obs, _ = env.reset(seed=0)
    assert obs[prev].tolist() == [0, 0, 0]  # a new trial forgets the old one


class NoTaskEnv(gym.Env):
    observation_space = spaces.Box(0, 1, (1,))
    action_space = spaces.Discrete(2)

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[dict]:
        return []


def test_env_without_task_protocol_is_a_type_error_naming_missing_methods() -> None:
    """Wrapping an env without set_task/get_task raises a TypeError naming exactly what is missing."""
    with pytest.raises(TypeError, match="missing sample_tasks, set_task, get_task"):
        TrialWrapper(gym.make("CartPole-v1"), episodes_per_trial=2)
    with pytest.raises(TypeError, match=r"missing set_task, get_task\."):
        TrialWrapper(NoTaskEnv(), episodes_per_trial=2)


def test_trial_wrapper_rejects_bad_arguments() -> None:
    """episodes_per_trial < 1 and max_trial_steps < 1 are ValueErrors."""
    with pytest.raises(ValueError, match="episodes_per_trial"):
        TrialWrapper(bandit(), episodes_per_trial=0)
    with pytest.raises(ValueError, match="max_trial_steps"):
        TrialWrapper(bandit(), episodes_per_trial=1, max_trial_steps=0)


# -- vector envs ---------------------------------------------------------------------------


def test_vec_env_autoreset_is_same_step() -> None:
    """When a trial ends, the vector env returns the next trial's first obs and the final one in info."""
    cfg = bandit_env_cfg(episodes_per_trial=2, num_envs=2)
    sampler = make_sampler(cfg, TaskConfig(num_test_tasks=4), seed=0)
    env = make_vec_env(cfg, sampler, split="test", seed=0)
    obs = env.reset()
    assert obs.shape == (2, 6) and obs[:, 5].tolist() == [1, 1]
    tasks = [env.env_method("get_task", indices=[i])[0] for i in range(2)]
    assert tasks == [sampler.test_tasks[0], sampler.test_tasks[1]]
    obs, _, dones, infos = env.step(np.array([0, 1]))
    assert not dones.any() and obs[:, 5].tolist() == [1, 1]  # a new inner episode, same trial
    obs, rewards, dones, infos = env.step(np.array([2, 2]))
    assert dones.all()
    for i in range(2):
        final = infos[i]["terminal_observation"]
        assert final[1:4].tolist() == [0, 0, 1] and final[5] == 0.0  # the last step of the ended trial
        assert obs[i].tolist() == [0, 0, 0, 0, 0, 1]  # the new trial's first observation
        assert not infos[i]["TimeLimit.truncated"]
        assert infos[i]["episode"]["l"] == 2 and len(infos[i]["episode_returns"]) == 2
    # slot i of 2 now plays test task i + 2
    assert [env.env_method("get_task", indices=[i])[0] for i in range(2)] == sampler.test_tasks[2:4]


def test_inner_final_observation_is_built_only_when_asked() -> None:
    """record_inner_final_observation=False leaves it out of info (the trial-level trainer never reads it);
    MetaPPO turns it on only for per-episode advantages."""
    from memrl import MetaPPO
    from memrl.config import EnvConfig, TaskConfig
    from memrl.tasks.vec import make_sampler, make_vec_env

    cfg = EnvConfig(id="memrl/Bandit-v0", kwargs={"n_arms": 3}, episodes_per_trial=4, num_envs=2)
    sampler = make_sampler(cfg, TaskConfig(num_test_tasks=5), seed=0)
    for boundary, expected in (("trial", False), ("episode", True)):
        env = make_vec_env(cfg, sampler, seed=0)
        MetaPPO("RL2Policy", env, n_steps=4, num_minibatches=1, advantage_boundary=boundary)
        assert env.get_attr("record_inner_final_observation") == [expected, expected]
        env.reset()
        _, _, _, infos = env.step(np.zeros(2, dtype=np.int64))  # a one-pull episode ends inside the trial
        assert ("inner_final_observation" in infos[0]) is expected


class _DictObsTaskEnv(gym.Env):
    """A task env with a Dict observation space: {"pos": Box(2), "cell": Discrete(3)}."""

    def __init__(self) -> None:
        self.observation_space = spaces.Dict({"pos": spaces.Box(-1.0, 1.0, (2,)), "cell": spaces.Discrete(3)})
        self.action_space = spaces.Discrete(2)
        self._task = {"goal": 0}

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[dict]:
        return [{"goal": int(g)} for g in rng.integers(2, size=n)]

    def set_task(self, task: dict) -> None:
        self._task = dict(task)

    def get_task(self) -> dict:
        return dict(self._task)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        return {"pos": np.array([0.5, -0.5], dtype=np.float32), "cell": 2}, {}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        obs = {"pos": np.array([0.25, 0.75], dtype=np.float32), "cell": 1}
        return obs, float(int(action) == self._task["goal"]), True, False, {}


def test_dict_observations_are_flattened_in_space_order() -> None:
    """A Dict inner observation is flattened with gymnasium's flatten (keys sorted: cell one-hot, then pos)."""
    env = TrialWrapper(_DictObsTaskEnv(), episodes_per_trial=2)
    obs, _ = env.reset(seed=0, options={"task": {"goal": 1}})
    assert env.observation_space.shape == (3 + 2 + 2 + 2,)  # cell one-hot, pos, prev action, reward + start
    np.testing.assert_array_equal(obs[env.layout["obs"]], [0, 0, 1, 0.5, -0.5])
    obs, reward, terminated, _, _ = env.step(1)
    assert reward == 1.0 and not terminated
    np.testing.assert_array_equal(obs[env.layout["obs"]], [0, 0, 1, 0.5, -0.5])  # the next episode's reset obs
    np.testing.assert_array_equal(obs[env.layout["prev_action"]], [0, 1])
    assert obs[env.layout["prev_reward"]][0] == 1.0 and obs[env.layout["episode_start"]][0] == 1.0


def test_recurring_test_trials_do_not_depend_on_the_training_seed() -> None:
    """Two runs with different train seeds and the same test_seed meet the same test trials, new tasks included."""
    streams = []
    for seed in (0, 1):
        sampler = TaskSampler(
            BanditEnv(),
            seed=seed,
            schedule="recurring",
            recurring_tasks=5,
            recurring_repeats=2,
            new_task_fraction=0.5,
            num_test_tasks=50,
        )
        stream = sampler.stream("test", 0, 10)
        streams.append([task_key(stream.next()) for _ in range(30)])
    assert streams[0] == streams[1]


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        (spaces.Box(-1.0, 1.0, shape=(2, 2)), "one-dimensional Box action spaces, got shape"),
        (spaces.Discrete(3, start=1), "Discrete action spaces that start at 0"),
    ],
    ids=["box-2d", "discrete-start-1"],
)
def test_action_spaces_the_policies_cannot_act_in_are_clear_errors(space: spaces.Space, expected: str) -> None:
    """A 2-d Box crashed learn() deep inside; Discrete(n, start=1) acted with the wrong actions, silently."""
    from memrl.tasks.trial import check_action_space

    with pytest.raises(TypeError, match=expected):
        check_action_space(space)
    env = BanditEnv()
    env.action_space = space
    with pytest.raises(TypeError, match=expected):
        TrialWrapper(env, episodes_per_trial=2)
