"""AskUntilConfident and evaluate_policy on the clarification env."""

from __future__ import annotations

import numpy as np
import pytest

from envs.clarify import STOP, ClarifyEnv
from envs.intent_pool import PoolIntent, pool_from_intents, synthetic_intent_pool
from rl_shop.policies.base import Policy
from rl_shop.policies.evaluate import EvalResult, RandomPolicy, evaluate_policy
from rl_shop.policies.features.clarify import DialogueState, featurize
from rl_shop.policies.heuristics.clarify import AskUntilConfident, ClarifyPriors
from rl_shop.sim.slots import SLOTS


def test_priors_from_a_hand_pool():
    # One intent of type 0: category (stated) keeps 4 of 8, budget then halves it; brand is not
    # constrained. Asking budget first removes log2 4 - log2 2 = 1 bit, answered with p = 0.75.
    b = np.zeros(8, bool)
    b[[0, 1, 4, 5]] = True
    c = np.zeros(8, bool)
    c[:4] = True
    gold = np.zeros(8, bool)
    gold[[0, 1]] = True
    pool = pool_from_intents(
        [PoolIntent(query_type=0, slot_masks={0: c, 1: b}, gold=gold, stated=[0], p_dont_know=0.25)], 8
    )
    pri = ClarifyPriors.from_pool(pool)
    assert pri.slot_gain[0, SLOTS.index("budget")] == pytest.approx(0.75)
    assert pri.slot_gain[0, SLOTS.index("brand")] == 0.0
    assert pri.slot_gain[0, SLOTS.index("category")] == 0.0  # stated already
    assert pri.log2_gold[0] == pytest.approx(1.0)  # two gold products
    assert pri.slot_gain[3].sum() == 0.0  # no intent of type 3
    assert pri.leave_hazard.tolist() == [0, 0, 0, 0, 1, 1]  # patience 4 (the default) for all


def test_leave_hazard_stops_the_heuristic():
    # Patience 1 or 2, equally likely: after 0 rounds nobody leaves, after 1 half of those left do.
    pool = synthetic_intent_pool(400, 100, seed=0, patience=(1, 2))
    pri = ClarifyPriors.from_pool(pool)
    assert pri.hazard(0) == 0.0 and pri.hazard(3) == 1.0
    assert pri.hazard(1) == pytest.approx(0.5, abs=0.08)
    pol = AskUntilConfident(1.0, pool.log2_catalog_size, pri, max_leave_risk=0.3, max_rounds=4)

    def obs(rounds):
        return featurize(
            DialogueState.from_slots("simple", rounds=rounds, max_rounds=4, n_candidates=100, catalog_size=100)
        )

    assert pol.act(obs(0)) != STOP
    assert pol.act(obs(1)) == STOP


def test_heuristic_asks_best_slot_then_stops_when_confident():
    gain = np.zeros((8, 9))
    gain[0, SLOTS.index("brand")] = 2.0
    gain[0, SLOTS.index("budget")] = 1.0
    pol = AskUntilConfident(0.5, log2_catalog_size=10.0, priors=ClarifyPriors(gain, np.zeros(8)))
    assert isinstance(pol, Policy)

    def obs(known=(), asked=(), n_candidates=64):
        return featurize(
            DialogueState.from_slots(
                "simple", known=known, asked=asked, rounds=1, max_rounds=6, n_candidates=n_candidates, catalog_size=1024
            )
        )

    assert pol.act(obs()) == SLOTS.index("brand")
    assert pol.act(obs(asked=["brand"])) == SLOTS.index("budget")
    assert pol.act(obs(asked=["brand", "budget"])) == STOP  # nothing with positive gain left
    mask = np.ones(11, bool)
    mask[SLOTS.index("brand")] = False
    assert pol.act(obs(), mask) == SLOTS.index("budget")
    # Estimated Accuracy@5 = 2**0 / |C|: 1/2 passes 0.5, 1/4 does not.
    assert pol.act(obs(n_candidates=2)) == STOP
    assert pol.act(obs(n_candidates=4)) != STOP
    with pytest.raises(ValueError, match="threshold"):
        AskUntilConfident(0.0, 10.0)
    with pytest.raises(ValueError, match="max_leave_risk"):
        AskUntilConfident(0.5, 10.0, max_leave_risk=-0.1)
    with pytest.raises(ValueError, match="shape"):
        pol.act(np.zeros(5))


@pytest.mark.slow
def test_heuristic_beats_random_on_mean_return():
    pool = synthetic_intent_pool(200, 2000, seed=4)
    env = ClarifyEnv(intent_pool=pool)
    heur = AskUntilConfident(
        0.5, pool.log2_catalog_size, ClarifyPriors.from_pool(pool), max_leave_risk=0.1, max_rounds=env.params.max_rounds
    )
    h = evaluate_policy(env, heur, n_episodes=1000, seed=0)
    r = evaluate_policy(env, RandomPolicy(11, seed=0), n_episodes=1000, seed=0)
    assert isinstance(h, EvalResult) and h.n_episodes == 1000
    assert h.mean_return > r.mean_return + 3 * (h.stderr_return + r.stderr_return)
    assert 0.0 <= h.final_info_means["accuracy_at_5"] <= 1.0


def test_evaluate_policy_is_seeded_and_validates():
    env = ClarifyEnv(intent_pool=synthetic_intent_pool(20, 300, seed=1))
    a = evaluate_policy(env, RandomPolicy(11, seed=3), n_episodes=30, seed=9)
    b = evaluate_policy(env, RandomPolicy(11, seed=3), n_episodes=30, seed=9)
    assert np.array_equal(a.returns, b.returns)
    assert "rounds" in a.final_info_means and a.mean_length >= 1.0
    with pytest.raises(ValueError, match="n_episodes"):
        evaluate_policy(env, RandomPolicy(11), n_episodes=0, seed=0)
    with pytest.raises(TypeError, match="act"):
        evaluate_policy(env, object(), n_episodes=1, seed=0)


def test_evaluate_policy_works_on_envs_without_masks():
    import gymnasium as gym

    res = evaluate_policy(gym.make("CartPole-v1"), RandomPolicy(2, seed=0), n_episodes=3, seed=0)
    assert res.n_episodes == 3 and res.mean_length >= 8  # CartPole cannot fall in fewer steps
    assert res.mean_return == pytest.approx(res.mean_length)  # reward 1 per step
