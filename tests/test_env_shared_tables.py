"""Clarify envs on one intent pool share its derived tables, and stepping never changes them.

Each env used to build its own Python lists of the pool's per-intent values and its own
normalized entropy table; ``IntentPool.rows`` and ``IntentPool.log2_candidates_share`` build them
once per pool, so a vector env of 16 copies holds one set. Sharing is only safe while no env
writes to them, which the rollout below checks.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the envs)
from envs.specs import CLARIFY


def test_envs_on_one_pool_share_its_tables_and_leave_them_unchanged():
    first, second = (gym.make(CLARIFY.id).unwrapped for _ in range(2))
    pool = first.pool
    assert second.pool is pool
    assert first._pdk_list is second._pdk_list is pool.rows.p_dont_know
    assert first._H is second._H
    assert np.array_equal(first._H, pool.log2_candidates / pool.log2_catalog_size)

    rng = np.random.default_rng(3)
    for env in (first, second):
        _, info = env.reset(seed=int(rng.integers(1000)))
        for _ in range(500):
            action = int(rng.choice(np.flatnonzero(info["action_mask"])))
            _, _, term, trunc, info = env.step(action)
            if term or trunc:
                _, info = env.reset()

    rows = pool.rows
    assert rows.p_dont_know == pool.p_dont_know.tolist()
    assert rows.p_wrong == pool.p_wrong.tolist()
    assert rows.relevant == pool.relevant.tolist() and rows.stated == pool.stated.tolist()
    assert rows.patience == pool.patience.tolist() and rows.query_type == pool.query_type.tolist()
    assert not pool.log2_candidates_share.flags.writeable
