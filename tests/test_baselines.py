"""Hand-designed baselines (memrl/baselines): action rules, exact DPs against independent computations,
the evaluation protocol (CI maths, tuning on training tasks only) and the ``memrl baselines`` CLI."""

from __future__ import annotations

import itertools
import json
import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from memrl.baselines import bandit as B
from memrl.baselines import mdp as M
from memrl.baselines.bayes_optimal import bayes_optimal_tables, count_states
from memrl.baselines.gittins import gittins_index_table
from memrl.baselines.protocol import Setting, evaluate_baselines, make_agent, play, tune
from memrl.cli import main
from memrl.config import EnvConfig, TaskConfig
from memrl.evaluation import mean_stderr, summarize
from memrl.tasks.protocol import task_key
from memrl.tasks.vec import make_sampler


def choices(agent: B.BanditAgent, s: list[int], f: list[int], left: int, draws: int = 4000) -> np.ndarray:
    """Fraction of ``draws`` identical trials in which ``agent`` pulls each arm of the posterior (s, f)."""
    successes = np.tile(np.asarray(s, dtype=float), (draws, 1))
    failures = np.tile(np.asarray(f, dtype=float), (draws, 1))
    actions = agent.act(successes, failures, left, np.random.default_rng(0))
    return np.bincount(actions, minlength=len(s)) / draws


# -- bandit action rules on hand-made posteriors ------------------------------------------


def test_random_and_greedy_rules() -> None:
    assert np.allclose(choices(B.RandomAgent(), [0, 0, 0, 0], [0, 0, 0, 0], 5), 0.25, atol=0.03)
    # posterior means 4/6, 1/2, 2/6: greedy takes arm 0; equal means are split evenly
    assert choices(B.GreedyAgent(), [3, 0, 1], [1, 0, 3], 5).tolist() == [1.0, 0.0, 0.0]
    assert np.allclose(choices(B.GreedyAgent(), [1, 1, 0], [1, 1, 2], 5), [0.5, 0.5, 0.0], atol=0.03)


def test_epsilon_greedy_rule() -> None:
    assert choices(B.EpsilonGreedyAgent(0.0), [3, 0], [1, 0], 5).tolist() == [1.0, 0.0]
    # epsilon = 0.3: the greedy arm 0.7 + 0.3 / 2 of the time
    assert np.allclose(choices(B.EpsilonGreedyAgent(0.3), [3, 0], [1, 0], 5), [0.85, 0.15], atol=0.02)


def test_thompson_and_mean_floor_thompson_rules() -> None:
    # arm 0: Beta(1, 1); arm 1: almost surely 0.45. TS samples arm 0 above 0.45 with probability 0.55;
    # May et al.'s optimistic sampling floors the sample at the posterior mean 0.5 > 0.45: always arm 0.
    s, f = [0, 44999], [0, 55000]
    assert np.isclose(choices(B.ThompsonAgent(), s, f, 5)[0], 0.55, atol=0.025)
    assert choices(B.MeanFloorThompsonAgent(), s, f, 5)[0] == 1.0


def test_optimistic_thompson_keeps_the_most_probable_draw() -> None:
    # arm 0: Beta(3, 1) (two successes), density 3x^2, rising to 1; arm 1: Beta(1, 1), flat.
    # One draw is Thompson sampling: arm 0 wins with P(x0 > u) = E[x0] = 3/4. Of n draws the most
    # probable one has the largest x0, the maximum of n Beta(3, 1) draws: E[max] = 3n / (3n + 1).
    s, f = [2, 0], [0, 0]
    assert np.isclose(choices(B.OptimisticThompsonAgent(samples=1), s, f, 5)[0], 0.75, atol=0.025)
    assert np.isclose(choices(B.OptimisticThompsonAgent(samples=20), s, f, 5)[0], 60 / 61, atol=0.01)
    # the density, not the value, decides: arm 0 Beta(1, 3) (mode 0) against arm 1 Beta(2, 2) (mode 1/2);
    # the most probable of many draws sits near (0, 1/2), so arm 1 wins far more often than under TS
    ts, ots = (choices(agent, [0, 1], [2, 1], 5)[1] for agent in (B.ThompsonAgent(), B.OptimisticThompsonAgent(20)))
    assert ts == pytest.approx(0.8, abs=0.03) and ots > 0.9  # TS: P(Beta(2, 2) > Beta(1, 3)) = 1 - 6 B(2, 5) = 0.8
    assert B.OptimisticThompsonAgent.grid == tuple(float(n) for n in range(1, 21))
    with pytest.raises(ValueError, match="samples"):
        B.OptimisticThompsonAgent(samples=0)


def test_ucb1_rule() -> None:
    # t = 1 + 4 pulls; arm 0: mean 4/6, n = 6; arm 1: mean 1/2, n = 2 (prior pseudo-counts).
    # c = 1: 0.667 + sqrt(2 ln 5 / 6) = 1.399 < 0.5 + sqrt(2 ln 5 / 2) = 1.769 -> arm 1; c = 0: greedy -> arm 0.
    assert choices(B.UCB1Agent(1.0), [3, 0], [1, 0], 5).tolist() == [0.0, 1.0]
    assert choices(B.UCB1Agent(0.0), [3, 0], [1, 0], 5).tolist() == [1.0, 0.0]


def test_gittins_rule_explores_early_and_is_myopic_on_the_last_pull() -> None:
    # arm 0 untried (mean 0.5), arm 1 tried 20 times, mean 12/22 = 0.545
    s, f = [0, 11], [0, 9]
    assert choices(B.GittinsAgent(), s, f, 1).tolist() == [0.0, 1.0]  # last pull: the higher mean
    assert choices(B.GittinsAgent(), s, f, 20).tolist() == [1.0, 0.0]  # 20 left: learning arm 0 pays


@cache
def naive_bayes_value(counts: tuple[tuple[int, int], ...], left: int) -> float:
    """Bayes-optimal value by plain recursion over unsorted counts (no state sharing, no tables)."""
    if left == 0:
        return 0.0
    return max(naive_bayes_q(counts, left))


def naive_bayes_q(counts: tuple[tuple[int, int], ...], left: int) -> list[float]:
    q = []
    for arm, (s, f) in enumerate(counts):
        p = (s + 1) / (s + f + 2)
        win = counts[:arm] + ((s + 1, f),) + counts[arm + 1 :]
        lose = counts[:arm] + ((s, f + 1),) + counts[arm + 1 :]
        q.append(p * (1 + naive_bayes_value(win, left - 1)) + (1 - p) * naive_bayes_value(lose, left - 1))
    return q


def test_bayes_optimal_rule_matches_plain_recursion() -> None:
    tables = bayes_optimal_tables(3, 8)
    for s, f in (([2, 0, 0], [1, 1, 0]), ([0, 1, 3], [0, 0, 1]), ([1, 0, 0], [0, 0, 3])):
        q = tables.lookup(np.array([s], dtype=float), np.array([f], dtype=float))[0]
        expected = naive_bayes_q(tuple(zip(s, f, strict=True)), 8 - sum(s) - sum(f))
        assert np.allclose(q, expected, atol=1e-12)
        best = np.flatnonzero(np.isclose(expected, max(expected)))
        assert set(np.flatnonzero(choices(B.BayesOptimalAgent(), s, f, 8 - sum(s) - sum(f), 200))) <= set(best)


# -- exact DPs against independent computations -------------------------------------------


def calibrated_index(s: int, f: int, h: int) -> float:
    """Gittins index by bisection on the retirement payment, with a direct recursion per candidate."""

    def value(lam: float) -> float:
        @cache
        def v(s_: int, f_: int, left: int) -> float:
            if left == 0:
                return 0.0
            p = (s_ + 1) / (s_ + f_ + 2)
            return max(left * lam, p * (1 + v(s_ + 1, f_, left - 1)) + (1 - p) * v(s_, f_ + 1, left - 1))

        p = (s + 1) / (s + f + 2)
        return p * (1 + v(s + 1, f, h - 1)) + (1 - p) * v(s, f + 1, h - 1) - h * lam  # pull once vs retire

    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if value(mid) > 0 else (low, mid)
    return (low + high) / 2


def test_gittins_indices_match_an_independent_calibration() -> None:
    table = gittins_index_table(10)
    for s, f, h in itertools.product(range(3), range(3), range(1, 7)):
        assert table[s, f, h] == pytest.approx(calibrated_index(s, f, h), abs=1e-9), (s, f, h)
    assert table[0, 0, 2] == pytest.approx(5 / 9)  # by hand: (1/2 + 1/2 * 2/3) / (1 + 1/2)
    assert np.all(np.diff(table[0, 0, 1:]) > 0)  # more pulls left, more worth learning


def policy_value(policy: dict, arms: int, pulls: int) -> float:
    """Expected total reward of a deterministic policy under independent U[0, 1] arm means.

    A reward sequence has probability prod_arms s! f! / (s + f + 1)!, the integral of its Bernoulli
    likelihood over the uniform prior (no posterior predictive used)."""
    total = 0.0
    for rewards in itertools.product((0, 1), repeat=pulls):
        history: tuple = ()
        counts = [[0, 0] for _ in range(arms)]
        for r in rewards:
            a = policy[history]
            counts[a][0 if r else 1] += 1
            history += ((a, r),)
        probability = math.prod(math.factorial(s) * math.factorial(f) / math.factorial(s + f + 1) for s, f in counts)
        total += probability * sum(rewards)
    return total


def all_policies(arms: int, history: tuple, left: int):  # noqa: ANN201
    if left == 0:
        yield {}
        return
    for a in range(arms):
        for after_loss in all_policies(arms, history + ((a, 0),), left - 1):
            for after_win in all_policies(arms, history + ((a, 1),), left - 1):
                yield {history: a, **after_loss, **after_win}


@pytest.mark.parametrize(("arms", "pulls", "count"), [(2, 3, 128), (3, 2, 27)])
def test_bayes_optimal_value_equals_best_of_all_policies(arms: int, pulls: int, count: int) -> None:
    policies = list(all_policies(arms, (), pulls))
    assert len(policies) == count
    best = max(policy_value(p, arms, pulls) for p in policies)
    assert bayes_optimal_tables(arms, pulls).value == pytest.approx(best, abs=1e-12)
    assert count_states(arms, pulls) == bayes_optimal_tables(arms, pulls).num_states


def test_no_bandit_baseline_beats_bayes_optimal() -> None:
    """On tasks drawn from the prior, every agent's mean is at most V* (exact) plus noise."""
    rng = np.random.default_rng(1)
    probs = rng.uniform(size=(4000, 5))
    optimum = bayes_optimal_tables(5, 10).value
    assert optimum == pytest.approx(6.65999, abs=1e-4)
    for name, cls in B.BANDIT_AGENTS.items():
        agents = [cls()] if cls.parameter is None else [cls().with_value(v) for v in cls.grid]  # every candidate
        for agent in agents:
            returns, per_pull = B.play_bandit(agent, probs, 10, np.random.default_rng(2))
            mean, stderr = mean_stderr(returns)
            assert np.allclose(per_pull.sum(axis=1), returns)
            assert mean <= optimum + 3 * stderr, (name, agent.params())
        if name == "bayes_optimal":
            assert abs(mean - optimum) <= 3 * stderr


# -- tabular MDP rules ----------------------------------------------------------------------


def test_value_iteration_by_hand() -> None:
    # one state, two actions paying 1 and 2: Q_h = r + 2 * (steps left after this one)
    q = M.value_iteration(np.array([[[1.0, 2.0]]]), np.ones((1, 1, 2, 1)), 3)
    assert q[0, :, 0].tolist() == [[5.0, 6.0], [3.0, 4.0], [1.0, 2.0]]
    # extended value iteration: radius 0 is plain value iteration; radius 2 moves all mass to the best state
    rewards = np.array([[[0.0], [1.0]]])  # state 1 pays 1
    stay = np.array([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # each state keeps to itself
    assert np.allclose(
        M.optimistic_value_iteration(rewards, stay, np.zeros((1, 2, 1)), 3), M.value_iteration(rewards, stay, 3)
    )
    optimistic = M.optimistic_value_iteration(rewards, stay, np.full((1, 2, 1), 2.0), 3)
    assert optimistic[0, 0, 0, 0] == pytest.approx(2.0)  # from state 0: jump to state 1, then two rewards


def two_action_stats() -> M.MDPStats:
    """One trial, 2 states: action 0 tried 50 times in state 0 (mean reward 0.2, back to 0); action 1 never."""
    stats = M.MDPStats.empty(1, 2, 2)
    stats.visits[0, 0, 0] = 50
    stats.reward_sum[0, 0, 0] = 10.0
    stats.transition_counts[0, 0, 0, 0] = 50
    return stats


def mdp_action(agent: M.MDPAgent, stats: M.MDPStats) -> int:
    q = agent.plan(stats, 2, np.random.default_rng(0))
    return int(agent.act(q[:, 0], np.zeros(1, dtype=np.int64), np.random.default_rng(0))[0])


def test_mdp_rules_on_hand_made_statistics() -> None:
    stats = two_action_stats()
    # zero-mean reward prior: the untried action is worth 0 < 10 / 51, so greedy exploits action 0;
    # the task's N(1, 1) prior makes it worth 1, so greedy tries it.
    assert mdp_action(M.GreedyMDPAgent(), stats) == 0
    assert mdp_action(M.GreedyMDPAgent(reward_prior_mean=1.0, prior_weight=1.0), stats) == 1
    assert mdp_action(M.KolterNgBEBAgent(beta=0.0), stats) == 0
    assert mdp_action(M.KolterNgBEBAgent(beta=2.0), stats) == 1  # bonus 2 / (1 + 0) for the untried action
    assert mdp_action(M.UCRL2Agent(scale=0.0), stats) == 0
    assert mdp_action(M.UCRL2Agent(scale=1.0), stats) == 1
    psrl = [mdp_action(M.PSRLAgent(), stats) for _ in range(1)]
    assert psrl[0] in (0, 1)
    # PSRL on a well-known action 0 (mean 0.2) and an untried one (N(0, 1) sample): tries it when it samples > 0.2
    picks = [int(M.PSRLAgent().plan(stats, 1, np.random.default_rng(seed))[0, 0, 0].argmax()) for seed in range(400)]
    assert np.mean(picks) == pytest.approx(1 - 0.579, abs=0.06)  # P(N(0, 1) > 0.2) = 0.42
    eps = M.EpsilonGreedyMDPAgent(epsilon=1.0)
    q = eps.plan(stats, 2, np.random.default_rng(0))
    acts = eps.act(np.repeat(q[:, 0], 4000, axis=0), np.zeros(4000, dtype=np.int64), np.random.default_rng(0))
    assert np.mean(acts) == pytest.approx(0.5, abs=0.03)


def test_beb_bonuses_match_a_hand_worked_plan() -> None:
    """Duan et al.'s BEB on the two-action statistics, horizon 2, scaling 0.01: beta = 2 * 2^2 * 0.01 = 0.08.

    Last step (no step left after it): Q = posterior mean + 1 / (N + 2): action 0 (N = 50, mean
    10 / 51): 10/51 + 1/52; the untried action 1: 0 + 1/2. First step: add P V_1, which is 1/2 from
    every row (each state's best last-step action is an untried one, worth 1/2), and, for the one step
    left, beta H / (1 + S + N) = 0.16 / 53 for action 0 and 0.16 / 3 for action 1.
    """
    q = M.BEBAgent(scaling=0.01).plan(two_action_stats(), 2, np.random.default_rng(0))
    last = [10 / 51 + 1 / 52, 0.5]
    np.testing.assert_allclose(q[0, 1, 0], last)
    np.testing.assert_allclose(q[0, 0, 0], [last[0] + 0.5 + 0.16 / 53, 0.5 + 0.5 + 0.16 / 3])
    assert len(M.BEBAgent.grid) == 21 and M.BEBAgent.grid[0] == pytest.approx(1e-4) and M.BEBAgent.grid[-1] == 1.0


def test_paper_epsilon_greedy_and_greedy_plan_on_the_empirical_model() -> None:
    """The paper's greedy agents give the prior a weight of 1e-4: an action tried once is worth its one
    reward, not a posterior mean shrunk towards the prior; epsilon's grid leaves 0 to the Greedy column."""
    stats = M.MDPStats.empty(1, 2, 2)
    stats.visits[0, 0, 1], stats.reward_sum[0, 0, 1], stats.transition_counts[0, 0, 1, 0] = 1, 0.8, 1
    q = M.GreedyMDPAgent().plan(stats, 1, np.random.default_rng(0))
    np.testing.assert_allclose(q[0, 0, 0], [0.0, 0.8], atol=1e-3)
    bayes = M.GreedyMDPAgent(prior_weight=1.0).plan(stats, 1, np.random.default_rng(0))
    np.testing.assert_allclose(bayes[0, 0, 0], [0.0, 0.4])  # (0 * 1 + 0.8) / (1 + 1)
    assert M.EpsilonGreedyMDPAgent.grid == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    with pytest.raises(ValueError, match="prior_weight"):
        M.GreedyMDPAgent(prior_weight=0.0)


def test_myopic_ignores_where_an_action_leads() -> None:
    """Action 0 pays 0.5 and leads to state 1 (which pays 3); action 1 pays 0.8 and stays in state 0.
    Greedy plans through the transitions and takes action 0; myopic takes the better immediate reward."""
    stats = M.MDPStats.empty(1, 2, 2)
    stats.visits[0] = 100
    stats.reward_sum[0, 0] = [50.0, 80.0]  # state 0: means 0.5, 0.8
    stats.reward_sum[0, 1] = [300.0, 300.0]  # state 1: mean 3 for both actions
    stats.transition_counts[0, 0, 0, 1] = stats.transition_counts[0, 0, 1, 0] = 100
    stats.transition_counts[0, 1, :, 1] = 100
    assert mdp_action(M.GreedyMDPAgent(), stats) == 0
    assert mdp_action(M.MyopicMDPAgent(), stats) == 1
    q = M.MyopicMDPAgent().plan(stats, 3, np.random.default_rng(0))
    assert q.shape == (1, 3, 2, 2) and np.allclose(q[0, 2], q[0, 0])


def test_mdp_play_follows_the_task_tables() -> None:
    # two states; action 1 in state 0 goes to state 1 (mean reward 3 there for every action), action 0 stays
    transitions = np.zeros((1, 2, 2, 2))
    transitions[0, 0, 0, 0] = transitions[0, 0, 1, 1] = transitions[0, 1, :, 1] = 1.0
    reward_means = np.array([[[0.0, 0.0], [3.0, 3.0]]])
    many = 2000
    returns, per_episode = M.play_mdp(
        M.RandomMDPAgent(),
        np.repeat(transitions, many, 0),
        np.repeat(reward_means, many, 0),
        episodes=2,
        horizon=3,
        rng=np.random.default_rng(0),
    )
    # random actions: reward 3 at step 2 w.p. 1/2, at step 3 w.p. 3/4 -> 3 * 1.25 per episode
    assert per_episode.shape == (many, 2)
    assert returns.mean() == pytest.approx(2 * 3.75, abs=0.15)


# -- protocol: CI maths, tuning on training tasks only ----------------------------------------


def test_confidence_interval_maths() -> None:
    result = summarize("test", np.array([1.0, 2.0, 3.0, 4.0]), np.array([[0, 1], [1, 1], [1, 2], [2, 2.0]]))
    stderr = math.sqrt(((1.5**2 + 0.5**2) * 2 / 3) / 4)  # sample std (ddof 1) / sqrt(4)
    assert result.mean_return == 2.5 and result.stderr == pytest.approx(stderr)
    assert result.ci95 == pytest.approx((2.5 - 1.96 * stderr, 2.5 + 1.96 * stderr))
    assert result.per_episode_mean == [1.0, 1.5]


def test_tuning_never_touches_test_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    env_cfg = EnvConfig(kwargs={"n_arms": 5}, episodes_per_trial=10)
    sampler = make_sampler(env_cfg, TaskConfig(), 0)
    test_keys = {task_key(task) for task in sampler.test_tasks}
    seen: list[str] = []
    import memrl.baselines.protocol as protocol

    def spy(agent, setting, tasks, rng):  # noqa: ANN001, ANN202
        seen.extend(task_key(task) for task in tasks)
        return play(agent, setting, tasks, rng)

    monkeypatch.setattr(protocol, "play", spy)
    tuned, tuning = tune(B.UCB1Agent(), Setting.from_config(env_cfg), sampler, trials=300, seed=0)
    assert tuning is not None and len(tuning.task_keys) == 300
    assert seen and not set(seen) & test_keys
    assert not set(tuning.task_keys) & test_keys
    assert tuned.params() == {"c": tuning.value} and str(tuning.value) in tuning.scores


def test_protocol_scores_the_test_tasks_in_order() -> None:
    env_cfg = EnvConfig(kwargs={"n_arms": 5}, episodes_per_trial=10)
    [result] = evaluate_baselines(env_cfg, TaskConfig(), ["greedy"], trials=300, seed=0)
    sampler = make_sampler(env_cfg, TaskConfig(), 0)
    returns, _ = play(
        make_agent("memrl/Bandit-v0", "greedy"),
        Setting.from_config(env_cfg),
        sampler.test_tasks[:300],
        np.random.default_rng(0),
    )
    assert result.result.trial_returns == returns.tolist()
    assert result.result.ci95 == pytest.approx(
        (
            result.result.mean_return - 1.96 * result.result.stderr,
            result.result.mean_return + 1.96 * result.result.stderr,
        )
    )
    assert sum(result.result.per_episode_mean) == pytest.approx(result.result.mean_return)


# -- the CLI --------------------------------------------------------------------------------


def test_cli_writes_json_and_png(tmp_path: Path) -> None:
    assert main(["baselines", "memrl/Bandit-v0", "--trials", "200", "--out", str(tmp_path / "bandit")]) == 0
    report = json.loads((tmp_path / "bandit" / "baselines.json").read_text())
    assert [a["agent"] for a in report["agents"]] == list(B.BANDIT_AGENTS)
    assert all(a["result"]["trials"] == 200 and len(a["result"]["per_episode_mean"]) == 10 for a in report["agents"])
    assert (tmp_path / "bandit" / "baselines.png").stat().st_size > 10_000
    args = ["baselines", "memrl/TabularMDP-v0", "--agents", "greedy,ucrl2", "--trials", "40", "--tune-trials", "40"]
    assert main([*args, "--set", "env.episodes_per_trial=3", "--out", str(tmp_path / "mdp")]) == 0
    report = json.loads((tmp_path / "mdp" / "baselines.json").read_text())
    assert [a["agent"] for a in report["agents"]] == ["greedy", "ucrl2"]
    assert report["agents"][1]["tuning"]["parameter"] == "scale"
    assert (tmp_path / "mdp" / "baselines.png").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["memrl/Bandit-v0", "--agents", "gittins,foo"],
            "unknown baseline 'foo' for memrl/Bandit-v0; valid agents: random",
        ),
        (
            ["memrl/PointNav-v0"],
            "has no hand-designed baselines; baselines exist for memrl/Bandit-v0, memrl/TabularMDP-v0",
        ),
        (["memrl/Bandit-v0", "--trials", "1001"], "the test split holds 1000 tasks"),
        (["memrl/Bandit-v0", "--agents", "bayes_optimal", "--set", "env.episodes_per_trial=100"], "intractable"),
        (["memrl/Bandit-v0", "--set", "env.kwargs.n_arms=1"], "n_arms"),
        (["memrl/Bandit-v0", "--set", "env.bogus=1"], "unknown key 'bogus'"),
        (["memrl/Bandit-v0", "--set", "env.id=memrl/TabularMDP-v0"], "takes the env as its argument (memrl/Bandit-v0)"),
        (["memrl/Bandit-v0", "--agents", "ucb1,greedy,ucb1"], "--agents names ucb1 more than once"),
    ],
)
def test_cli_bad_input_exits_2_with_a_clear_message(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["baselines", *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("memrl baselines: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "baselines.json").exists()


def test_cli_out_that_is_a_file_is_refused_before_the_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    assert main(["baselines", "memrl/Bandit-v0", "--out", str(tmp_path / "file" / "sub")]) == 2
    err = capsys.readouterr()
    assert err.err.count("\n") == 1 and "is a file; pass a directory" in err.err and "random" not in err.out


class FixedAction(M.MDPAgent):
    """Always action ``a`` (a plan whose Q-values single it out)."""

    name, label = "fixed", "Fixed"

    def __init__(self, action: int) -> None:
        self.action = action

    def plan(self, stats: M.MDPStats, horizon: int, rng: np.random.Generator) -> np.ndarray:
        q = np.zeros((stats.visits.shape[0], horizon, *stats.visits.shape[1:]))
        q[..., self.action] = 1.0
        return q


def test_simulators_draw_like_the_envs() -> None:
    """The vectorised play loops and the Gymnasium envs give the same returns on the same test task."""
    import gymnasium as gym

    mdp_cfg = EnvConfig(id="memrl/TabularMDP-v0", episodes_per_trial=1)
    task = make_sampler(mdp_cfg, TaskConfig(num_test_tasks=1), 0).test_tasks[0]
    env = gym.make("memrl/TabularMDP-v0").unwrapped
    env.set_task(task)  # type: ignore[attr-defined]
    env.reset(seed=0)
    episodes = 3000
    env_returns = []
    for _ in range(episodes):
        env.reset()
        env_returns.append(sum(env.step(2)[1] for _ in range(10)))
    sim, _ = M.play_mdp(
        FixedAction(2),
        np.repeat(np.array([task["transitions"]]), episodes, 0),
        np.repeat(np.array([task["reward_means"]]), episodes, 0),
        episodes=1,
        horizon=10,
        rng=np.random.default_rng(0),
    )
    (env_mean, env_se), (sim_mean, sim_se) = mean_stderr(np.array(env_returns)), mean_stderr(sim)
    assert abs(env_mean - sim_mean) < 4 * math.hypot(env_se, sim_se)

    bandit = gym.make("memrl/Bandit-v0").unwrapped
    bandit.set_task({"probs": [0.2, 0.7, 0.4, 0.9, 0.1]})  # type: ignore[attr-defined]
    bandit.reset(seed=0)
    env_pulls = np.array([bandit.step(1)[1] for _ in range(4000)])

    class ArmOne(B.BanditAgent):
        name, label = "arm_one", "Arm 1"

        def act(self, successes: np.ndarray, failures: np.ndarray, left: int, rng: np.random.Generator) -> np.ndarray:
            return np.ones(successes.shape[0], dtype=np.int64)

    sim, _ = B.play_bandit(ArmOne(), np.array([[0.2, 0.7, 0.4, 0.9, 0.1]] * 400), 10, np.random.default_rng(0))
    (env_mean, env_se), (sim_mean, sim_se) = mean_stderr(env_pulls), mean_stderr(sim / 10)
    assert abs(env_mean - sim_mean) < 4 * math.hypot(env_se, sim_se) and abs(sim_mean - 0.7) < 0.03


def test_clustered_stderr_counts_correlated_trials_once() -> None:
    """Trials of one cluster that repeat one value carry one value's information: the cluster-robust
    stderr is that of the cluster means (ddof=1), where the naive one is sqrt(repeats) times smaller."""
    rng = np.random.default_rng(0)
    means = rng.normal(size=20)
    values, clusters = np.repeat(means, 5), np.repeat(np.arange(20), 5)
    mean, clustered = mean_stderr(values, clusters)
    _, naive = mean_stderr(values)
    assert mean == pytest.approx(means.mean())
    assert clustered == pytest.approx(means.std(ddof=1) / np.sqrt(20), rel=1e-9)
    assert clustered > 2 * naive
    assert mean_stderr(values, np.arange(100)) == mean_stderr(values)  # one trial per cluster: the usual one
