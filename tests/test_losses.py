"""PPO maths against hand-worked numbers (memrl/algos/losses.py)."""

from __future__ import annotations

import math

import pytest
import torch

from memrl.algos.losses import compute_gae, explained_variance, normalize, ppo_clip_loss, value_loss


def col(*xs: float) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float32)


def test_gae_trial_end_and_truncation_cuts_by_hand() -> None:
    """GAE stops at a trial end (bootstrap 0), bootstraps a truncation, and uses last_values elsewhere."""
    gamma, lam = 0.5, 0.5  # gamma * lambda = 0.25
    # Column 0: a trial ends (terminated) after t=1, so t=1 bootstraps 0 and A_1 does not see A_2.
    #   next V = [V1=1, 0 (cut), V3=2, last=4]
    #   deltas = [1 + .5*1 - 1, 2 + 0 - 1, 0 + .5*2 - 2, 1 + .5*4 - 2] = [0.5, 1, -1, 1]
    #   A3 = 1;  A2 = -1 + .25*1 = -0.75;  A1 = 1 (cut);  A0 = 0.5 + .25*1 = 0.75
    # Column 1: a truncation after t=2 bootstraps from V(final obs) = 3 (a nonzero value).
    #   next V = [V1=0, V2=1, 3 (cut), last=-2]
    #   deltas = [0 + 0 - 2, 1 + .5*1 - 0, 1 + .5*3 - 1, 2 + .5*(-2) - 1] = [-2, 1.5, 1.5, 0]
    #   A3 = 0;  A2 = 1.5 (cut);  A1 = 1.5 + .25*1.5 = 1.875;  A0 = -2 + .25*1.875 = -1.53125
    rewards = torch.stack([col(1, 2, 0, 1), col(0, 1, 1, 2)], dim=1)  # (T=4, B=2)
    values = torch.stack([col(1, 1, 2, 2), col(2, 0, 1, 1)], dim=1)
    cuts = torch.tensor([[False, False], [True, False], [False, True], [False, False]])
    # Bootstrap entries where there is no cut must be ignored: fill them with garbage.
    bootstrap = torch.tensor([[99.0, 99.0], [0.0, 99.0], [99.0, 3.0], [99.0, 99.0]])
    last_values = col(4, -2)
    advantages, returns = compute_gae(rewards, values, last_values, cuts, bootstrap, gamma=gamma, gae_lambda=lam)
    expected = torch.stack([col(0.75, 1.0, -0.75, 1.0), col(-1.53125, 1.875, 1.5, 0.0)], dim=1)
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + values)


def test_gae_without_cuts_sums_discounted_rewards_to_last_value() -> None:
    """With lambda=1 and no cut, A_t = sum of discounted rewards + discounted last value - V_t."""
    rewards = col(1, 1, 1).unsqueeze(1)  # (3, 1)
    values = col(0.5, 0.0, 2.0).unsqueeze(1)
    no_cuts = torch.zeros(3, 1, dtype=torch.bool)
    # gamma = 0.9: G2 = 1 + .9*10 = 10;  G1 = 1 + .9*10 = 10;  G0 = 1 + .9*10 = 10
    #   -> A = G - V = [9.5, 10, 8]
    advantages, returns = compute_gae(rewards, values, col(10.0), no_cuts, torch.zeros(3, 1), gamma=0.9, gae_lambda=1.0)
    torch.testing.assert_close(advantages[:, 0], col(9.5, 10.0, 8.0))
    torch.testing.assert_close(returns[:, 0], col(10.0, 10.0, 10.0))


def test_gae_lambda_zero_is_one_step_td() -> None:
    """With lambda=0 each advantage is its own TD error r + gamma V' - V."""
    rewards = col(1, 0, 2).unsqueeze(1)
    values = col(1, 2, 3).unsqueeze(1)
    cuts = torch.tensor([[False], [True], [False]])
    # deltas = [1 + 1*2 - 1, 0 + 1*5 (bootstrap) - 2, 2 + 1*7 (last) - 3] = [2, 3, 6]
    advantages, _ = compute_gae(
        rewards, values, col(7.0), cuts, torch.tensor([[0.0], [5.0], [0.0]]), gamma=1.0, gae_lambda=0.0
    )
    torch.testing.assert_close(advantages[:, 0], col(2.0, 3.0, 6.0))


def test_ppo_clip_loss_at_ratio_one() -> None:
    """Equal log-probs: ratio 1, loss = -mean(advantages), approx_kl 0, nothing clipped."""
    log_prob = torch.tensor([[-1.0, -0.3], [-2.0, -0.7]])
    advantages = torch.tensor([[1.0, -2.0], [0.5, 3.0]])  # mean 0.625
    loss, stats = ppo_clip_loss(log_prob, log_prob.clone(), advantages, clip_range=0.2)
    assert loss.item() == pytest.approx(-0.625)
    assert stats["approx_kl"].item() == 0.0
    assert stats["clip_fraction"].item() == 0.0
    torch.testing.assert_close(stats["ratio"], torch.ones(2, 2))


def test_ppo_clip_loss_clipped_by_hand() -> None:
    """The pessimistic min of clipped and unclipped surrogates, with zero gradient where clipped."""
    old = torch.zeros(4)
    ratios = torch.tensor([1.5, 0.5, 0.5, 1.5])
    log_prob = ratios.log().requires_grad_(True)
    advantages = torch.tensor([1.0, -1.0, 1.0, -1.0])
    loss, stats = ppo_clip_loss(log_prob, old, advantages, clip_range=0.2)
    # terms min(r A, clip(r) A):
    #   r=1.5, A=+1: min(1.5, 1.2) = 1.2   (clipped)
    #   r=0.5, A=-1: min(-0.5, -0.8) = -0.8 (clipped)
    #   r=0.5, A=+1: min(0.5, 0.8) = 0.5   (unclipped: pessimistic)
    #   r=1.5, A=-1: min(-1.5, -1.2) = -1.5 (unclipped)
    # loss = -(1.2 - 0.8 + 0.5 - 1.5) / 4 = 0.15
    assert loss.item() == pytest.approx(0.15, abs=1e-6)
    # approx_kl = mean((r - 1) - log r) = (2 * (0.5 - ln 1.5) + 2 * (-0.5 - ln 0.5)) / 4
    expected_kl = (2 * (0.5 - math.log(1.5)) + 2 * (-0.5 - math.log(0.5))) / 4
    assert stats["approx_kl"].item() == pytest.approx(expected_kl, rel=1e-5)
    assert stats["clip_fraction"].item() == 1.0  # |r - 1| = 0.5 > 0.2 everywhere
    loss.backward()
    # d loss / d log_prob = -A r / 4 for unclipped terms, 0 for clipped ones.
    torch.testing.assert_close(log_prob.grad, torch.tensor([0.0, 0.0, -0.5 / 4, 1.5 / 4]))


def test_value_loss_unclipped_and_clipped() -> None:
    """0.5 * mean squared error, and the PPO2 max of clipped and unclipped errors."""
    values, targets, old = col(1, 2), col(0, 4), col(0, 0)
    # unclipped: 0.5 * mean(1^2, 2^2) = 1.25
    assert value_loss(values, old, targets, None).item() == pytest.approx(1.25)
    # clip 0.5: clipped values = [0.5, 0.5]; errors^2 = [0.25, 12.25]; max with [1, 4] = [1, 12.25]
    #   -> 0.5 * mean = 3.3125
    assert value_loss(values, old, targets, 0.5).item() == pytest.approx(3.3125)
    # A clip range wide enough to never bind gives the unclipped loss.
    assert value_loss(values, old, targets, 100.0).item() == pytest.approx(1.25)


def test_explained_variance_by_hand() -> None:
    """1 for perfect predictions, 0 for a constant one, 2/3 by hand, nan for constant targets."""
    targets = col(1, 2, 3)
    assert explained_variance(targets, targets) == pytest.approx(1.0)
    assert explained_variance(col(5, 5, 5), targets) == pytest.approx(0.0)
    # residuals [0, 0, 1]: unbiased var 1/3; var(targets) = 1 -> 1 - 1/3
    assert explained_variance(col(1, 2, 2), targets) == pytest.approx(2 / 3)
    assert math.isnan(explained_variance(col(1, 2, 3), col(4, 4, 4)))


def test_normalize_zero_mean_unit_std() -> None:
    """Normalised advantages have mean 0 and standard deviation 1."""
    x = normalize(torch.tensor([1.0, 2.0, 3.0, 10.0]))
    assert x.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert x.std().item() == pytest.approx(1.0, abs=1e-6)
