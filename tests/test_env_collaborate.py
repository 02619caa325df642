"""rl_shop/Collaborate-v0: hand-worked dynamics, Eq. 2, masks, shopper reuse, errors, heuristics."""

from __future__ import annotations

import copy
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401
from envs.collaborate import CollaborateEnv, load_default_kwargs
from envs.collaborate_batched import abandon_probability_batch
from rl_shop.policies.features.collaborate import (
    CLARIFY,
    DECIDE,
    FEATURE_NAMES,
    PRODUCT_SEARCH,
    REPLAN,
    WEB_SEARCH,
    CollaborateState,
    featurize,
    reflection_score,
)
from rl_shop.policies.heuristics.collaborate import AlwaysFullPipeline, RandomValid, ReflectionReplan
from rl_shop.sim.shopper import abandon_probability

F = {n: i for i, n in enumerate(FEATURE_NAMES)}


def _noiseless(**type_overrides) -> CollaborateEnv:
    """Env with zero search / prediction noise, perfect type detection, no bad plans."""
    kw = copy.deepcopy(load_default_kwargs())
    for spec in kw["types"].values():
        spec.update(p_bad_plan=0.0, type_accuracy=1.0)
    for t, over in type_overrides.items():
        kw["types"][t].update(over)
    kw.update(search_noise_sd=0.0, predict_noise_sd=0.0)
    return CollaborateEnv(**{k: kw[k] for k in ("types", "search_noise_sd", "predict_noise_sd")})


def _with_type(qtype: str, **spec) -> dict:
    """The default ``types`` with ``spec`` added to one type's entry."""
    types = copy.deepcopy(load_default_kwargs()["types"])
    types[qtype].update(spec)
    return {"types": types}


def test_eq2_reflection_score_arithmetic():
    # 0.6 * 0.8 + 0.4 * 0.5 = 0.48 + 0.20 = 0.68
    assert reflection_score(0.8, 0.5, 0.6) == pytest.approx(0.68)
    assert reflection_score(0.8, 0.5, 1.0) == pytest.approx(0.8)
    st = CollaborateState(4, 0.9, 2, 8, 3.0, 1, 1, 0, 0, 0.8, 0.5, 0.6, 0.6, 0.7)
    row = featurize(st)
    assert row[F["reflection_score"]] == pytest.approx(0.68)
    assert row[F["below_replan_threshold"]] == 1.0  # 0.68 < 0.7
    st.replan_threshold = 0.6
    assert featurize(st)[F["below_replan_threshold"]] == 0.0
    assert row[F["type_ambiguous"]] == 1.0 and row[:8].sum() == 1.0
    assert row[F["elapsed_s"]] == pytest.approx(0.3)


def test_hand_worked_ambiguous_episode():
    # ambiguous: clarity 0.2, clarify_gain 0.5, rel_max 0.9, clarity_floor 0.3, web_need 0.
    env = _noiseless(ambiguous={"clarity": [0.2, 0.2]})
    obs, info = env.reset(seed=0, options={"query_type": "ambiguous"})
    assert info["query_type"] == "ambiguous" and obs[F["type_ambiguous"]] == 1.0
    assert obs[F["clarity_hat"]] == pytest.approx(0.2)
    # search without clarifying: 0.9 * (0.3 + 0.7 * 0.2) = 0.396
    obs, r, *_, info = env.step(PRODUCT_SEARCH)
    assert r == pytest.approx(-(0.05 * 1.5 + 0.05 * 1.0))  # c_latency * 1.5 s + c_compute * 1
    assert info["relevance"] == pytest.approx(0.396)
    assert obs[F["relevance_hat"]] == pytest.approx(0.396, abs=1e-6)
    assert obs[F["reflection_score"]] == pytest.approx(0.396, abs=1e-6)  # web_need 0: U = R
    assert obs[F["below_replan_threshold"]] == 1.0  # 0.396 < 0.5
    # clarify: c = 0.2 + 0.5 * 0.8 = 0.6; search again: 0.9 * (0.3 + 0.42) = 0.648 (R keeps max)
    env.step(CLARIFY)
    obs, *_, info = env.step(PRODUCT_SEARCH)
    assert obs[F["clarity_hat"]] == pytest.approx(0.6, abs=1e-6)
    assert info["relevance"] == pytest.approx(0.648)
    assert info["latency"] == pytest.approx(1.5 + 1.5 + 1.5) and info["rounds"] == 1


def test_seen_clarity_moves_the_estimate_and_nothing_else():
    """``clarity_seen`` / ``clarity_seen_gain``: the estimate reads its own scale (the runtime
    Leader's), while the latent clarity, and with it every outcome, is unchanged."""
    seen = {"clarity": [0.2, 0.2], "clarity_seen": [0.1, 0.1], "clarity_seen_gain": 0.25}
    env, latent = _noiseless(ambiguous=seen), _noiseless(ambiguous={"clarity": [0.2, 0.2]})
    obs, _ = env.reset(seed=0, options={"query_type": "ambiguous"})
    ref, _ = latent.reset(seed=0, options={"query_type": "ambiguous"})
    assert obs[F["clarity_hat"]] == pytest.approx(0.1) and ref[F["clarity_hat"]] == pytest.approx(0.2)
    for a in (CLARIFY, PRODUCT_SEARCH, CLARIFY, DECIDE):
        obs, r, term, _, info = env.step(a)
        ref, r_ref, term_ref, _, info_ref = latent.step(a)
        assert (r, term) == (r_ref, term_ref) and info["relevance"] == info_ref["relevance"]
        if a == CLARIFY:  # one answer: the latent 0.2 -> 0.6 -> 0.8, the seen 0.1 -> 0.325 -> 0.49375
            n = info["rounds"]
            assert obs[F["clarity_hat"]] == pytest.approx([0.325, 0.49375][n - 1], abs=1e-6)
            assert ref[F["clarity_hat"]] == pytest.approx([0.6, 0.8][n - 1], abs=1e-6)


def test_a_types_own_bad_plan_factor_replaces_the_env_wide_one():
    # ambiguous: clarity 0.2, rel_max 0.9, floor 0.3: a good plan's list is 0.396 (above); a bad one's
    # is 0.396 * bad_plan_factor: 0.5 env-wide, 0 with the type's own (nothing found until a re-plan)
    for own, expected in ((None, 0.198), (0.0, 0.0)):
        env = _noiseless(ambiguous={"clarity": [0.2, 0.2], "p_bad_plan": 1.0, "bad_plan_factor": own})
        env.reset(seed=0, options={"query_type": "ambiguous"})
        *_, info = env.step(PRODUCT_SEARCH)
        assert info["relevance"] == pytest.approx(expected)


def test_comparison_needs_two_searches_and_web_helps_general_qa():
    env = _noiseless(comparison={"clarity": [1.0, 1.0]}, general_qa={"clarity": [1.0, 1.0]})
    env.reset(seed=0, options={"query_type": "comparison"})
    *_, info = env.step(PRODUCT_SEARCH)
    assert info["relevance"] == pytest.approx(0.85 * 0.5)  # one of two required searches
    *_, info = env.step(PRODUCT_SEARCH)
    assert info["relevance"] == pytest.approx(0.85)
    env.reset(seed=0, options={"query_type": "general_qa"})
    *_, info = env.step(PRODUCT_SEARCH)
    assert info["user_satisfaction"] == pytest.approx(0.2 * 0.6)  # web_need 0.8, W = 0
    *_, info = env.step(WEB_SEARCH)
    assert info["user_satisfaction"] == pytest.approx(0.2 * 0.6 + 0.8 * 0.6)  # W = web_gain


def test_masks_follow_the_rules():
    env = CollaborateEnv(max_steps=6, max_clarify=2)
    obs, info = env.reset(seed=1)
    np.testing.assert_array_equal(info["action_mask"], [1, 1, 1, 0, 0])  # no decide/replan yet
    *_, info = env.step(CLARIFY)
    *_, info = env.step(CLARIFY)
    assert not info["action_mask"][CLARIFY]  # max_clarify reached
    *_, info = env.step(PRODUCT_SEARCH)
    assert info["action_mask"][DECIDE] and info["action_mask"][REPLAN]
    *_, info = env.step(WEB_SEARCH)  # steps = 4 = max_steps - 2: searches and decide only
    np.testing.assert_array_equal(info["action_mask"], [0, 1, 1, 0, 1])
    *_, info = env.step(WEB_SEARCH)  # steps = 5: decide only
    np.testing.assert_array_equal(info["action_mask"], [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(env.action_masks(), info["action_mask"])
    _, _, term, trunc, info = env.step(DECIDE)
    assert term and not trunc and info["steps"] == 6


def test_invalid_action_costs_and_changes_nothing():
    env = CollaborateEnv()
    obs, _ = env.reset(seed=2)
    obs2, r, term, _, info = env.step(DECIDE)  # nothing searched yet: invalid
    assert r == pytest.approx(-env.params.c_invalid) and not term
    assert info["latency"] == 0.0 and info["steps"] == 1
    np.testing.assert_array_equal(obs2[: F["step_fraction"]], obs[: F["step_fraction"]])


def test_abandonment_uses_the_sim_shopper_and_grows_with_latency():
    lat = np.array([0.0, 5.0, 10.0, 20.0, 40.0])
    tol = np.full(5, 10.0)
    ref = [abandon_probability(x, 10.0, 0.0, 5.0) for x in lat]
    np.testing.assert_allclose(abandon_probability_batch(lat, tol, 0.0, 5.0), ref, rtol=1e-12)
    assert ref[3] == pytest.approx(1 - np.exp(-2.0))  # 10 s over tolerance, scale 5 s

    def abandon_rate(decide_latency: float) -> float:
        kw = copy.deepcopy(load_default_kwargs()["actions"])
        kw["decide"]["latency_s"] = decide_latency
        env = CollaborateEnv(actions=kw)
        env.reset(seed=4)
        n = 0
        for _ in range(300):
            env.reset()
            env.step(PRODUCT_SEARCH)
            *_, info = env.step(DECIDE)
            n += info["abandoned"]
        return n / 300

    fast, slow = abandon_rate(1.0), abandon_rate(40.0)
    assert fast < 0.05 and slow > 0.9  # sim tolerance is 3-15 s, scale 5 s


def test_env_checkers_determinism_and_registry():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = CollaborateEnv()
        check_env(env)
        sb3_check_env(env)
        check_env(gymnasium.make("rl_shop/Collaborate-v0").unwrapped)

    def run(seed: int) -> list[float]:
        env = CollaborateEnv()
        obs, info = env.reset(seed=seed)
        pol = RandomValid(seed=0)
        out = []
        for _ in range(80):
            obs, r, term, trunc, info = env.step(pol.act(obs, info["action_mask"]))
            out += [r, float(obs.sum())]
            if term or trunc:
                obs, info = env.reset()
        return out

    assert run(9) == run(9) and run(9) != run(10)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"gamma": 1.5}, "gamma"),
        ({"max_steps": 1}, "max_steps"),
        ({"types": {"simple": {}}}, "8 ECCD query types"),
        ({"actions": {"clarify": {"latency_s": 1, "compute": 1}}}, "actions"),
        ({"reward": {"w_click": 1.0}}, "reward lacks"),
        ({"confidence_correct": [0.9, 0.1]}, "confidence_correct"),
        ({"nonsense": 3}, "unknown rl_shop/Collaborate-v0 argument"),
        (_with_type("simple", clarity_seen=[0.5, 0.2]), "clarity_seen must be"),
        (_with_type("simple", clarity_seen_gain=1.5), "clarity_seen_gain"),
        (_with_type("simple", clarity_sen=[0.1, 0.2]), "unknown key"),
        (_with_type("simple", bad_plan_factor=1.5), "types.simple.bad_plan_factor"),
    ],
)
def test_bad_arguments_raise_clearly(kwargs, fragment):
    with pytest.raises((ValueError, TypeError), match=fragment):
        CollaborateEnv(**kwargs)


def test_bad_reset_option_and_action():
    env = CollaborateEnv()
    with pytest.raises(ValueError, match="query_type"):
        env.reset(seed=0, options={"query_type": "shopping_spree"})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="out of range"):
        env.step(7)


def test_heuristics_beat_random():
    env = CollaborateEnv()

    def mean_return(policy, n=400) -> float:
        env.reset(seed=77)
        total = 0.0
        for _ in range(n):
            obs, info = env.reset()
            done = False
            while not done:
                obs, r, term, trunc, info = env.step(policy.act(obs, info["action_mask"]))
                total += r
                done = term or trunc
        return total / n

    rand = mean_return(RandomValid(seed=1))
    assert mean_return(AlwaysFullPipeline()) > rand + 1.0
    assert mean_return(ReflectionReplan()) > rand + 1.0
