"""Exact finite-horizon Gittins indices of a Bernoulli arm with a Beta(1, 1) prior.

The index of an arm that has shown ``s`` successes and ``f`` failures, with ``h`` pulls left in the
trial, is the calibration value of Gittins (1979) for the undiscounted ``h``-pull problem: the
per-pull payment ``lambda`` of a known arm (the *retirement* option) at which a player with this one
unknown arm is indifferent between retiring now (``h * lambda``) and pulling it once more and then
acting optimally, where acting optimally means pulling on or retiring for the rest of the trial:

    W(s, f, h; lambda) = max(0, p - lambda + p W(s + 1, f, h - 1) + (1 - p) W(s, f + 1, h - 1)),
    p = (s + 1) / (s + f + 2),   W(., ., 0) = 0,
    index(s, f, h) = the root in lambda of   p - lambda + p W(s + 1, f, h - 1) + (1 - p) W(s, f + 1, h - 1).

Here ``W`` is the value of the arm in excess of retirement. The root is found by Newton's method on
this convex, piecewise-linear, decreasing function of ``lambda``: from a ``lambda_k`` below the root,
the stopping rule that is optimal at ``lambda_k`` collects ``R`` expected reward in ``T`` expected
pulls, and ``lambda_(k+1) = R / T`` (Gittins' reward-rate form of the index). The iterates rise and
reach the root exactly after finitely many steps (the function has finitely many pieces); the
recursion is solved by dynamic programming over the ``(s, f)`` lattice below each root, vectorised
over all roots that share a horizon. Indices grow with ``h`` and equal the posterior mean at
``h = 1`` (the last pull is myopic), which gives each Newton run its starting point.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_TOLERANCE = 1e-13
_MAX_NEWTON_STEPS = 200


def gittins_index_table(horizon: int) -> np.ndarray:
    """Indices ``G[s, f, h]`` for every ``s + f + h <= horizon`` with ``h >= 1`` (NaN elsewhere).

    ``horizon`` is the trial length ``n``: an arm pulled ``s + f`` times has at most ``n - s - f``
    pulls left. The table is computed once per horizon and cached (read-only).
    """
    if not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"gittins_index_table: horizon must be a positive integer, got {horizon!r}")
    return _table(horizon)


@lru_cache(maxsize=8)
def _table(horizon: int) -> np.ndarray:
    n = horizon
    table = np.full((n + 1, n + 1, n + 1), np.nan)
    for h in range(1, n + 1):
        s_root, f_root = _roots(n - h)  # (R,) each: every (s, f) with s + f <= n - h
        if h == 1:
            table[s_root, f_root, 1] = (s_root + 1) / (s_root + f_root + 2)
            continue
        start = table[s_root, f_root, h - 1]  # index(s, f, h - 1) <= index(s, f, h)
        table[s_root, f_root, h] = _newton(s_root, f_root, h, start)
    table.setflags(write=False)
    return table


def _roots(total: int) -> tuple[np.ndarray, np.ndarray]:
    s, f = np.meshgrid(np.arange(total + 1), np.arange(total + 1), indexing="ij")
    keep = s + f <= total
    return s[keep], f[keep]


def _newton(s_root: np.ndarray, f_root: np.ndarray, h: int, start: np.ndarray) -> np.ndarray:
    """Indices of the roots ``(s_root, f_root)`` with ``h`` pulls left, by Newton steps from ``start``."""
    lam = start.astype(np.float64).copy()
    active = np.arange(lam.size)
    for _ in range(_MAX_NEWTON_STEPS):
        reward, pulls = _continue_value(s_root[active], f_root[active], h, lam[active])
        new = reward / pulls
        moved = new > lam[active] * (1 + _TOLERANCE) + _TOLERANCE
        lam[active] = np.maximum(lam[active], new)
        active = active[moved]
        if active.size == 0:
            return lam
    raise RuntimeError(f"Gittins index: Newton's method did not converge for h={h}")  # pragma: no cover


def _continue_value(s_root: np.ndarray, f_root: np.ndarray, h: int, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected reward ``R`` and pulls ``T`` of pulling once, then stopping optimally at ``lam``.

    Backward induction over the depth ``d`` (pulls made since the root), with ``i`` successes and
    ``d - i`` failures among them; arrays are ``(roots, i)``.
    """
    excess = np.zeros((s_root.size, h + 1))  # W at depth h: no pulls left
    pulls = np.zeros((s_root.size, h + 1))
    lam_col = lam[:, None]
    for d in range(h - 1, -1, -1):
        i = np.arange(d + 1)
        s = s_root[:, None] + i  # (R, d + 1)
        f = f_root[:, None] + (d - i)
        p = (s + 1) / (s + f + 2)
        # Successor after a success: depth d + 1, i + 1 successes; after a failure: i successes.
        cont_excess = p - lam_col + p * excess[:, 1 : d + 2] + (1 - p) * excess[:, : d + 1]
        cont_pulls = 1 + p * pulls[:, 1 : d + 2] + (1 - p) * pulls[:, : d + 1]
        if d == 0:  # the root pulls at least once: this is the function whose root is the index
            return (cont_excess + lam_col * cont_pulls)[:, 0], cont_pulls[:, 0]
        go = cont_excess > 0
        excess = np.where(go, cont_excess, 0.0)
        pulls = np.where(go, cont_pulls, 0.0)
    raise AssertionError("unreachable")  # pragma: no cover
