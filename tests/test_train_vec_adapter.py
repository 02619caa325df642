"""The gymnasium VectorEnv -> SB3 VecEnv adapter reproduces DummyVecEnv step for step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from stable_baselines3.common.vec_env import DummyVecEnv

from rl_shop.train.vec_adapter import GymnasiumVectorAdapter


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
def test_adapter_matches_dummy_vec_env(mode):
    n, seed = 3, 11
    ref = DummyVecEnv([lambda: gym.make("CartPole-v1") for _ in range(n)])
    ref.seed(seed)
    ada = GymnasiumVectorAdapter(
        SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(n)], autoreset_mode=mode), seed=seed
    )
    o1, o2 = ref.reset(), ada.reset()
    np.testing.assert_allclose(o1, o2)
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(300):
        a = rng.integers(0, 2, size=n)
        r1 = ref.step(a)
        r2 = ada.step(a)
        np.testing.assert_allclose(r1[0], r2[0])
        np.testing.assert_allclose(r1[1], r2[1])
        np.testing.assert_array_equal(r1[2], r2[2])
        for i in np.flatnonzero(r1[2]):
            episodes += 1
            np.testing.assert_allclose(r1[3][i]["terminal_observation"], r2[3][i]["terminal_observation"])
            assert r2[3][i]["episode"]["l"] >= 1
    assert episodes > 5  # random CartPole episodes last ~20 steps: resets were exercised


def test_episode_stats_sum_rewards():
    ada = GymnasiumVectorAdapter(
        SyncVectorEnv([lambda: gym.make("CartPole-v1")], autoreset_mode=AutoresetMode.SAME_STEP), seed=0
    )
    ada.reset()
    total, steps = 0.0, 0
    while True:
        _, r, d, info = ada.step(np.array([0]))
        total += float(r[0])
        steps += 1
        if d[0]:
            assert info[0]["episode"]["r"] == pytest.approx(total)
            assert info[0]["episode"]["l"] == steps
            break
