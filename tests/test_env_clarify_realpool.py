"""The intent pool built from the shipped catalog with the real simulator (rl_shop.sim).

Checks the pool's tables against the simulator's own code paths (``IntentSampler``'s
``candidate_count`` and ``gold_mask``), which the pool builder does not call for these numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.clarify import ClarifyEnv
from envs.intent_pool import build_intent_pool, load_or_build_intent_pool, pool_cache_path
from rl_shop.paths import DATA_DIR
from rl_shop.policies.features.clarify import mask_to_slots

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def catalog():
    if not (DATA_DIR / "catalog.parquet").is_file():
        pytest.skip("data/catalog.parquet is not built yet (experiments/build_catalog.py)")
    from rl_shop.catalog import load_catalog

    return load_catalog()


def test_real_pool_tables_match_the_simulator(catalog):
    from rl_shop.sim.config import load_sim_config
    from rl_shop.sim.constraints import gold_mask
    from rl_shop.sim.sampler import IntentSampler

    size, seed = 24, 123
    pool = build_intent_pool(catalog, size, seed)
    # Same seed, same config: the sampler replays the intents the pool was built from.
    sampler = IntentSampler(catalog, load_sim_config(), seed=seed)
    gen = np.random.default_rng(0)
    for i in range(size):
        intent = sampler.sample()
        assert set(mask_to_slots(int(pool.relevant[i]))) == set(intent.constrained_slots())
        assert pool.n_hits[i, 511] == int(gold_mask(catalog, intent).sum())
        for mask in gen.integers(0, 512, 4).tolist() + [int(pool.stated[i])]:
            slots = mask_to_slots(mask)
            assert pool.n_candidates[i, mask] == sampler.candidate_count(intent, slots), (i, slots)
    assert (pool.patience >= 0).all() and pool.catalog_size == len(catalog)
    assert (pool.n_hits[np.arange(size), pool.relevant] >= 1).all()  # sampler guarantees gold


def test_default_env_runs_on_a_small_cached_pool(catalog, tmp_path, monkeypatch):
    monkeypatch.setenv("RL_SHOP_CACHE", str(tmp_path))
    pool = load_or_build_intent_pool(16, 7, catalog=catalog)
    assert pool_cache_path(catalog, 16, 7, None).is_file()
    again = load_or_build_intent_pool(16, 7, catalog=catalog)
    assert again is pool  # memoized
    env = ClarifyEnv(intent_pool=pool)
    obs, info = env.reset(seed=0)
    total, done = 0.0, False
    while not done:
        obs, r, te, tr, info = env.step(int(np.flatnonzero(info["action_mask"])[0]))
        total += r
        done = te or tr
    assert np.isfinite(total) and 0.0 <= info["accuracy_at_5"] <= 1.0


def test_heuristic_beats_random_on_a_real_pool(catalog):
    from rl_shop.policies.evaluate import RandomPolicy, evaluate_policy
    from rl_shop.policies.heuristics.clarify import AskUntilConfident, ClarifyPriors

    pool = build_intent_pool(catalog, 96, 11)
    env = ClarifyEnv(intent_pool=pool)
    heur = AskUntilConfident(
        0.5, pool.log2_catalog_size, ClarifyPriors.from_pool(pool), max_leave_risk=0.1, max_rounds=env.params.max_rounds
    )
    h = evaluate_policy(env, heur, n_episodes=500, seed=1)
    r = evaluate_policy(env, RandomPolicy(11, seed=1), n_episodes=500, seed=1)
    assert h.mean_return > r.mean_return + 3 * (h.stderr_return + r.stderr_return)
