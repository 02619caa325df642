"""A/B statistics on synthetic data: a known effect is covered, no effect is not falsely significant."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from test_eval_helpers import make_items, tiny_catalog

from rl_shop.evaluation.ab_sim import ABConfig, compare_arms, simulate_ab, simulate_session
from rl_shop.evaluation.ab_test import format_change, relative_change, welch_p_value
from rl_shop.sim.config import load_sim_config
from rl_shop.sim.constraints import CatalogArrays
from rl_shop.sim.shopper import Shopper


def test_hand_computed_relative_change():
    rc = relative_change([1, 1, 0, 0], [1, 1, 1, 0], metric="UCTR", n_boot=200)
    assert rc.mean_a == 0.5 and rc.mean_b == 0.75
    assert rc.rel_change == pytest.approx(0.5)
    assert rc.p_value == pytest.approx(stats.ttest_ind([1, 1, 1, 0], [1, 1, 0, 0], equal_var=False).pvalue)
    assert rc.n_a == 4 and rc.n_b == 4
    assert format_change(rc).startswith("+50.0%")
    assert welch_p_value(np.ones(5), np.ones(5)) == 1.0
    assert welch_p_value(np.ones(5), np.zeros(5)) == 0.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least 2 users"):
        relative_change([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="non-finite"):
        relative_change([1.0, math.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="p_method"):
        relative_change([1, 2], [1, 2], p_method="magic")  # type: ignore[arg-type]
    assert math.isnan(relative_change([0, 0], [1, 0], n_boot=100).rel_change)


def test_known_effect_is_covered_and_detected():
    true_rel, covered, significant, seeds = 0.10, 0, 0, 30
    for s in range(seeds):
        rng = np.random.default_rng(s)
        a = rng.poisson(1.0, 4000)
        b = rng.poisson(1.0 * (1 + true_rel), 4000)
        rc = relative_change(a, b, n_boot=400, seed=s)
        covered += rc.ci_low <= true_rel <= rc.ci_high
        significant += rc.significant
    # 95% intervals: expect ~28.5 of 30; fewer than 25 has probability < 0.3%
    assert covered >= 25, covered
    assert significant >= 27  # power is ~1 at this effect and size


@pytest.mark.parametrize(
    "method,reps,n,lo,hi", [("welch", 1000, 300, 0.03, 0.07), ("permutation", 200, 80, 0.01, 0.10)]
)
def test_no_effect_rejects_at_nominal_rate(method, reps, n, lo, hi):
    rejections = 0
    ci_has_zero = 0
    for s in range(reps):
        rng = np.random.default_rng(10_000 + s)
        a = rng.binomial(1, 0.2, n)
        b = rng.binomial(1, 0.2, n)
        rc = relative_change(a, b, n_boot=100, seed=s, p_method=method, n_perm=400)
        rejections += rc.significant
        ci_has_zero += rc.ci_low <= 0 <= rc.ci_high
    assert lo <= rejections / reps <= hi, rejections / reps
    assert ci_has_zero / reps >= 0.88


def test_simulated_ab_is_seeded_and_sees_better_lists():
    cat = tiny_catalog()
    arr = CatalogArrays.of(cat)
    sim = load_sim_config()
    items = make_items(cat)
    # B shows each query's gold products, A shows products of another category; same latency
    good = {it.id: {"ranked_ids": list(it.gold_product_ids), "ttft_s": 0.5, "total_s": 0.5} for it in items}
    bad = {
        it.id: {
            "ranked_ids": ["l5", "l1", "u1"] if "laptops" not in it.intent.category else ["m1", "m2"],
            "ttft_s": 0.5,
            "total_s": 0.5,
        }
        for it in items
    }
    cfg = ABConfig(n_users=600, n_boot=200, seed=3)
    a1, b1 = simulate_ab(bad, good, items, arr, sim, cfg)
    a2, b2 = simulate_ab(bad, good, items, arr, sim, cfg)
    assert np.array_equal(a1.clicks, a2.clicks) and np.array_equal(b1.orders, b2.orders)
    res = compare_arms(a1, b1, cfg)
    assert res["UCTR"].rel_change > 0.5 and res["UCTR"].significant
    assert res["ARC"].rel_change < 0 and res["ARC"].significant
    # the same users (query, arm) whatever the systems: swapping the lists swaps nothing else
    a3, b3 = simulate_ab(good, good, items, arr, sim, cfg)
    assert a3.clicks.size == a1.clicks.size and b3.clicks.size == b1.clicks.size


def test_latency_drives_abandonment():
    cat = tiny_catalog()
    item = make_items(cat)[0]  # latency tolerance 5 s
    sim = load_sim_config()
    left = sum(simulate_session(Shopper(item.intent, cat, sim, seed=s), ["h1"], 60.0, 3, 10)[3] for s in range(200))
    fast = sum(simulate_session(Shopper(item.intent, cat, sim, seed=s), ["h1"], 1.0, 3, 10)[3] for s in range(200))
    assert left > 190 and fast == 0  # base abandonment is 0 below the tolerance
