"""Collaborate-v0's ``expected_reward`` option: the answer pays the expectation of the shopper's
sampled reaction. Checked against Monte Carlo draws of the sampled model itself, and for keeping
the episodes (observations, reported outcomes) of the sampled env."""

from __future__ import annotations

import numpy as np
import pytest

from envs import collaborate_formulas as F
from envs.collaborate import CollaborateEnv, parse_collaborate_kwargs
from envs.collaborate_kernel import CollaborateTables
from rl_shop.array_ops import NUMPY
from rl_shop.policies.heuristics.collaborate import AlwaysFullPipeline

OUTCOMES = ("clicked", "purchased", "reformulations", "abandoned", "latency", "rounds", "steps")


def _sampled_mean(T: CollaborateTables, q: float, p_ab: float, n: int, seed: int) -> tuple[float, float]:
    """Mean and standard error of the sampled reaction reward (click_and_buy / reformulates)."""
    rng = np.random.default_rng(seed)
    K = T.max_rank
    u_rel, u_click, u_buy = (rng.random((n, K)) for _ in range(3))
    rel, click, bought = F.click_and_buy(NUMPY, u_rel, u_click, u_buy, q, T.ea_rel, T.ea_irr, T.p_purchase)
    buy = bought.any(1)
    reform = F.reformulates(buy, rel[:, : T.reformulate_top_k].sum(1), rng.random(n), T.p_reformulate)
    base = -T.decide_cost
    reacted = F.reaction_reward(base, T.w_click, T.w_purchase, T.w_reformulation, click.sum(1), buy, reform)
    reward = np.where(rng.random(n) < p_ab, base - T.w_abandon, reacted)
    return float(reward.mean()), float(reward.std(ddof=1) / np.sqrt(n))


@pytest.mark.parametrize("q, p_ab", [(0.05, 0.0), (0.5, 0.2), (0.95, 0.6)])
def test_expectation_matches_monte_carlo_of_the_sampled_reaction(q, p_ab):
    T = CollaborateTables.build(parse_collaborate_kwargs())
    weights = (T.w_click, T.w_purchase, T.w_reformulation, T.w_abandon)
    expected = F.expected_reaction_reward(
        NUMPY, -T.decide_cost, p_ab, np.array([q]), T.ea_rel, T.ea_irr, T.p_purchase, T.reformulate_top_k,
        T.p_reformulate, weights,
    )[0]  # fmt: skip
    mean, se = _sampled_mean(T, q, p_ab, 400_000, seed=int(q * 100))
    assert abs(expected - mean) < 4 * se + 1e-9, (expected, mean, se)


def test_expected_reward_keeps_the_episode_and_cuts_the_variance():
    sampled, expected = CollaborateEnv(), CollaborateEnv(expected_reward=True)
    policy = AlwaysFullPipeline()
    diffs, r_sampled, r_expected = [], [], []
    for ep in range(3000):
        o1, i1 = sampled.reset(seed=11 if ep == 0 else None)
        o2, i2 = expected.reset(seed=11 if ep == 0 else None)
        total1 = total2 = 0.0
        done = False
        while not done:
            np.testing.assert_array_equal(o1, o2)
            a = policy.act(o1, i1["action_mask"])
            o1, r1, t1, _, i1 = sampled.step(a)
            o2, r2, t2, _, i2 = expected.step(a)
            total1, total2, done = total1 + r1, total2 + r2, t1
            assert t1 == t2
        assert all(i1[k] == i2[k] for k in OUTCOMES)  # the same sampled reaction is reported
        r_sampled.append(total1)
        r_expected.append(total2)
        diffs.append(total1 - total2)
    d = np.array(diffs)
    assert abs(d.mean()) < 4 * d.std(ddof=1) / np.sqrt(d.size)  # same mean, paired
    assert np.var(r_expected) < 0.5 * np.var(r_sampled)


def test_expected_reward_must_be_a_boolean():
    with pytest.raises(ValueError, match="expected_reward must be true or false"):
        CollaborateEnv(expected_reward="yes")


def test_torch_kernel_agrees_with_numpy_on_expected_reward():
    torch = pytest.importorskip("torch")
    from envs.collaborate_batched import CollaborateVectorEnv
    from envs.collaborate_torch import CollaborateTorchVectorEnv

    ref = CollaborateVectorEnv(16, seed=2, expected_reward=True)
    new = CollaborateTorchVectorEnv(16, seed=2, uniforms="numpy", expected_reward=True)
    _, info = ref.reset()
    new.reset()
    pick = np.random.default_rng(1)
    ends = 0
    for _ in range(60):
        a = np.array([int(pick.choice(np.flatnonzero(m))) for m in info["action_mask"]])
        _, r1, t1, _, info = ref.step(a)
        _, r2, t2, _, _ = new.step(torch.as_tensor(a))
        assert np.array_equal(t1, t2.numpy())
        np.testing.assert_allclose(r1, r2.numpy(), rtol=1e-9, atol=1e-12)
        ends += int(t1.sum())
    assert ends > 20
