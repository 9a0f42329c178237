"""The Bayes-optimal policy of the Bernoulli bandit with Beta(1, 1) priors, by exact dynamic programming.

The belief state of a k-armed Bernoulli bandit under independent uniform priors is the list of
per-arm counts ``(s_i, f_i)``; pulling arm ``i`` pays 1 with the posterior predictive probability
``p_i = (s_i + 1) / (s_i + f_i + 2)``. With ``left`` pulls to go the optimal value is

    V(counts, 0) = 0,
    Q(counts, i, left) = p_i (1 + V(counts + success_i, left - 1)) + (1 - p_i) V(counts + failure_i, left - 1),
    V(counts, left) = max_i Q(counts, i, left).

This maximises the expected total reward of the trial under the task distribution (arm means
~ U[0, 1]), so no agent, learned or designed, can beat it in expectation: it is the ceiling that
Duan et al. (2016) lack in Table 1. Arms are exchangeable, so a state is the *sorted* multiset of
arm counts (Gittins-index style sharing of states); states are enumerated layer by layer (layer
``t`` holds the states after ``t`` pulls), each encoded as one int64 key, and the backward
induction runs on whole layers with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

MAX_STATES = 2_000_000
"""Refuse settings whose belief-state space is larger than this (memory and time)."""
_MAX_CHILD_ENTRIES = 50_000_000  # int64 entries of one layer's child array (400 MB)


@dataclass(frozen=True)
class BayesOptimalTables:
    """Per layer ``t`` (pulls made): sorted state keys ``(M_t,)`` and Q-values ``(M_t, k)`` of the
    arms in the state's sorted order; ``value`` is ``V`` at the prior (no pulls made)."""

    n_arms: int
    pulls: int
    keys: list[np.ndarray]
    q_values: list[np.ndarray]
    value: float

    @property
    def num_states(self) -> int:
        return int(sum(k.size for k in self.keys))

    def lookup(self, successes: np.ndarray, failures: np.ndarray) -> np.ndarray:
        """Q-values ``(B, k)`` of every arm for ``(B, k)`` counts that all lie in the same layer."""
        codes = pair_code(successes.astype(np.int64), failures.astype(np.int64))
        order = np.argsort(codes, axis=1, kind="stable")
        sorted_codes = np.take_along_axis(codes, order, axis=1)
        layer = int(successes[0].sum() + failures[0].sum())
        keys = self.keys[layer]
        wanted = state_key(sorted_codes, self.pulls)
        index = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
        if np.any(keys[index] != wanted):
            raise ValueError("BayesOptimalTables.lookup: counts outside the tables (wrong pulls or arms?)")
        q_sorted = self.q_values[layer][index]  # (B, k) in sorted-code order
        q = np.empty_like(q_sorted)
        np.put_along_axis(q, order, q_sorted, axis=1)
        return q


def pair_code(successes: np.ndarray, failures: np.ndarray) -> np.ndarray:
    """Integer code of an arm's counts: pairs ordered by total pulls, then failures."""
    total = successes + failures
    return total * (total + 1) // 2 + failures


def _decode(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    total = ((np.sqrt(8 * codes + 1) - 1) // 2).astype(np.int64)
    failures = codes - total * (total + 1) // 2
    return total - failures, failures


def state_key(sorted_codes: np.ndarray, pulls: int) -> np.ndarray:
    """One int64 per row of sorted arm codes (mixed radix, base = number of pair codes)."""
    base = (pulls + 1) * (pulls + 2) // 2
    key = np.zeros(sorted_codes.shape[0], dtype=np.int64)
    for column in range(sorted_codes.shape[1]):
        key = key * base + sorted_codes[:, column]
    return key


def bayes_optimal_tables(n_arms: int, pulls: int) -> BayesOptimalTables:
    """Exact DP tables for ``n_arms`` arms and ``pulls`` pulls (cached)."""
    if n_arms < 1 or pulls < 1:
        raise ValueError(f"bayes_optimal_tables: need n_arms >= 1 and pulls >= 1, got {n_arms}, {pulls}")
    base = (pulls + 1) * (pulls + 2) // 2
    if n_arms * np.log2(base) >= 62:
        raise ValueError(
            f"Bayes-optimal DP: k={n_arms} arms with n={pulls} pulls do not fit the int64 state keys; "
            "it is tractable for small settings such as n=10 with k<=10"
        )
    states = count_states(n_arms, pulls)
    if states > MAX_STATES:
        raise ValueError(
            f"Bayes-optimal DP: {states:.3g} belief states for k={n_arms}, n={pulls} (limit {MAX_STATES}); "
            "it is tractable for small settings such as n=10 with k<=10"
        )
    return _tables(n_arms, pulls)


def count_states(n_arms: int, pulls: int) -> float:
    """Number of belief states (sorted arm counts after 0..pulls pulls), without enumerating them.

    Counts multisets of ``n_arms`` arm states with total weight ``s + f <= pulls``; weight ``w`` has
    ``w + 1`` arm states. ``ways[j, t]``: multisets of ``j`` arm states of total weight ``t``.
    """
    ways = np.zeros((n_arms + 1, pulls + 1))
    ways[0, 0] = 1.0
    for weight in range(pulls + 1):
        for _ in range(weight + 1):  # each arm state of this weight, any multiplicity
            for j in range(1, n_arms + 1):
                ways[j, weight:] += ways[j - 1, : pulls + 1 - weight]
    return float(ways[n_arms].sum())


@lru_cache(maxsize=8)
def _tables(n_arms: int, pulls: int) -> BayesOptimalTables:
    layers = [np.zeros((1, n_arms), dtype=np.int64)]  # sorted codes of the states after t pulls
    total_states = 1
    for _ in range(pulls):
        if 2 * n_arms * n_arms * layers[-1].shape[0] > _MAX_CHILD_ENTRIES:
            raise ValueError(
                f"Bayes-optimal DP: the belief states of k={n_arms}, n={pulls} do not fit in memory; "
                "it is tractable for small settings such as n=10 with k<=10"
            )
        children = np.concatenate(
            [_children(layers[-1], arm, success)[0] for arm in range(n_arms) for success in (1, 0)]
        )
        unique_keys, first = np.unique(state_key(children, pulls), return_index=True)
        layers.append(children[first])
        total_states += unique_keys.size
        if total_states > MAX_STATES:
            raise ValueError(
                f"Bayes-optimal DP: more than {MAX_STATES} belief states for k={n_arms}, n={pulls}; "
                "it is tractable for small settings such as n=10 with k<=10"
            )
    keys = [state_key(layer, pulls) for layer in layers]  # each sorted: np.unique order is kept
    q_values: list[np.ndarray] = [np.empty(0)] * (pulls + 1)
    value_next = np.zeros(layers[pulls].shape[0])
    for t in range(pulls - 1, -1, -1):
        layer = layers[t]
        q = np.empty(layer.shape, dtype=np.float64)
        for arm in range(n_arms):
            win, p = _children(layer, arm, 1)
            lose, _ = _children(layer, arm, 0)
            v_win = value_next[np.searchsorted(keys[t + 1], state_key(win, pulls))]
            v_lose = value_next[np.searchsorted(keys[t + 1], state_key(lose, pulls))]
            q[:, arm] = p * (1.0 + v_win) + (1.0 - p) * v_lose
        q_values[t] = q
        value_next = q.max(axis=1)
    q_values[pulls] = np.zeros(layers[pulls].shape)
    return BayesOptimalTables(n_arms=n_arms, pulls=pulls, keys=keys, q_values=q_values, value=float(value_next[0]))


def _children(layer: np.ndarray, arm: int, success: int) -> tuple[np.ndarray, np.ndarray]:
    """The states reached by pulling the ``arm``-th (in sorted order) arm of each state, re-sorted,
    and the predictive probability of a success of that pull."""
    s, f = _decode(layer[:, arm])
    p = (s + 1) / (s + f + 2)
    child = layer.copy()
    child[:, arm] = pair_code(s + success, f + 1 - success)
    child.sort(axis=1)
    return child, p
