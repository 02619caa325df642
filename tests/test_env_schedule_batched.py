"""ScheduleVectorEnv agrees step for step with ScheduleEnv on the same seeds (autoreset included)."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from envs.schedule import ScheduleEnv
from envs.schedule_batched import ScheduleVectorEnv

RANDOM_DAGS = {
    "random_dag": {"weight": 1.0, "min_tasks": 2, "max_tasks": 11, "edge_prob": 0.4},
    "max_tasks": 11,  # > 8 exercises the multi-word bit masks
    "time_origin": "event",
}


def _compare(kwargs: dict, n_steps: int, B: int = 5, seed: int = 40) -> int:
    vec = ScheduleVectorEnv(B, seed=seed, **kwargs)
    obs, _ = vec.reset()
    singles = [ScheduleEnv(**kwargs) for _ in range(B)]
    first = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(singles)])
    np.testing.assert_allclose(obs, first, atol=1e-6)
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(n_steps):
        a = rng.integers(vec.single_action_space.n, size=B)
        obs, rew, term, trunc, info = vec.step(a)
        for i, env in enumerate(singles):
            o, r, t, tr, inf = env.step(int(a[i]))
            assert (bool(term[i]), bool(trunc[i])) == (t, tr)
            assert rew[i] == pytest.approx(r, abs=1e-9)
            if t or tr:
                episodes += 1
                assert info["_final_obs"][i]
                np.testing.assert_allclose(info["final_obs"][i], o, atol=1e-6)
                assert info["final_info"]["latency"][i] == pytest.approx(inf["latency"])
                assert info["final_info"]["scheduling_events"][i] == inf["scheduling_events"]
                o, inf = env.reset()
            np.testing.assert_allclose(obs[i], o, atol=1e-6)
            assert info["latency"][i] == pytest.approx(inf["latency"])
    return episodes


def test_batched_equals_single_default_templates():
    assert _compare({}, 150) > 50


def test_batched_equals_single_random_dags_event_origin():
    assert _compare(RANDOM_DAGS, 120) > 20


def test_batched_equals_single_per_episode_mode_and_small_blocks():
    # rng_block_episodes=3 forces many block refills inside the run
    assert _compare({"action_mode": "per_episode", "rng_block_episodes": 3}, 40) == 5 * 40


def test_batched_equals_single_with_truncation():
    assert _compare({"max_events": 2}, 30) > 20  # most episodes truncate after 2 events


def test_make_batched_dispatch_and_bad_args():
    vec = envs.make_batched("rl_shop/Schedule-v0", 4, seed=0)
    assert isinstance(vec, ScheduleVectorEnv)
    obs, info = vec.reset()
    assert obs.shape == (4, len(vec.FEATURE_NAMES)) and info["action_mask"].shape == (4, 16)
    assert vec.action_masks().all()
    with pytest.raises(ValueError, match="expected 4 actions"):
        vec.step(np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="actions must be in"):
        vec.step(np.full(4, 99))
    with pytest.raises(ValueError, match="delta"):
        ScheduleVectorEnv(2, delta_grid=[-1.0])
