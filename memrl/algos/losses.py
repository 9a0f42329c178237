"""The small, pure pieces of PPO maths, written once and mask-free.

All tensors are time-major ``(T, B)``.
"""

from __future__ import annotations

import torch


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    last_values: torch.Tensor,
    cuts: torch.Tensor,
    bootstrap_values: torch.Tensor,
    *,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) with explicit cut points.

    ``cuts[t]`` says the sequence ends after step ``t`` (a trial end, or an episode end in
    per-episode mode). There the next state's value is ``bootstrap_values[t]``: 0 after a
    termination, ``V(final observation)`` after a truncation. Elsewhere it is ``values[t + 1]``,
    and ``last_values`` after the last step of the rollout.

        delta_t = r_t + gamma * V_next(t) - V(s_t)
        A_t     = delta_t + gamma * lambda * (1 - cut_t) * A_{t+1}

    Returns ``(advantages, returns)`` with ``returns = advantages + values``.
    """
    T = rewards.shape[0]
    next_values = torch.cat([values[1:], last_values.unsqueeze(0)], dim=0)
    next_values = torch.where(cuts, bootstrap_values, next_values)
    deltas = rewards + gamma * next_values - values
    carry = gamma * gae_lambda * (~cuts).to(rewards.dtype)
    advantages = torch.empty_like(rewards)
    last_gae_lambda = torch.zeros_like(last_values)
    for t in range(T - 1, -1, -1):
        last_gae_lambda = deltas[t] + carry[t] * last_gae_lambda
        advantages[t] = last_gae_lambda
    return advantages, advantages + values


def ppo_clip_loss(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, clip_range: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate objective (Schulman et al. 2017), returned as a loss to minimise.

    Also returns the diagnostics PPO implementations log: ``approx_kl`` (the low-variance
    estimator ``E[(r - 1) - log r]``), ``clip_fraction`` and the ratio itself.
    """
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()
    unclipped = advantages * ratio
    clipped = advantages * ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    loss = -torch.min(unclipped, clipped).mean()
    with torch.no_grad():
        stats = {
            "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
            "clip_fraction": ((ratio - 1.0).abs() > clip_range).float().mean(),
            "ratio": ratio.detach(),
        }
    return loss, stats


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, targets: torch.Tensor, clip_range_vf: float | None
) -> torch.Tensor:
    """Squared error to the targets; with ``clip_range_vf`` the PPO2 clipped value loss."""
    if clip_range_vf is None:
        return 0.5 * (values - targets).pow(2).mean()
    clipped = old_values + (values - old_values).clamp(-clip_range_vf, clip_range_vf)
    return 0.5 * torch.max((values - targets).pow(2), (clipped - targets).pow(2)).mean()


def explained_variance(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """1 - Var[targets - predictions] / Var[targets]; nan when the targets are constant."""
    target_var = targets.var()
    if target_var.item() == 0.0:
        return float("nan")
    return float(1.0 - (targets - predictions).var() / target_var)


def normalize(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return (x - x.mean()) / (x.std() + eps)
