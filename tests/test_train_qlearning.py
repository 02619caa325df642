"""Tabular Q-learning: hand-worked updates on a two-step chain, masks, save/load round trip."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv

from rl_shop.train.qlearning import QLearning


class Chain(gym.Env):
    """obs 0 -> (any action) obs 1 -> terminal.  Reward 1 for action 1 in state 1, else 0."""

    observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.s = 0
        return np.array([0.0], dtype=np.float32), {}

    def step(self, action):
        if self.s == 0:
            self.s = 1
            return np.array([1.0], dtype=np.float32), 0.0, False, False, {}
        return np.array([1.0], dtype=np.float32), float(action == 1), True, False, {}

    def action_masks(self):
        return np.array([True, self.s == 1])  # action 1 is invalid in state 0


def test_one_update_by_hand():
    env = DummyVecEnv([Chain])
    model = QLearning(
        env, learning_rate=0.5, gamma=0.9, bin_width=1.0, exploration_initial_eps=0.0, exploration_final_eps=0.0, seed=0
    )
    # Pre-set Q(s=1) so the bootstrap from s=0 is non-trivial: max Q(1, .) = 2.0
    model.q[(1,)] = np.array([0.0, 2.0])
    model.learn(total_timesteps=2)
    # step 1 in s=0: greedy among valid (only action 0); target = 0 + 0.9 * 2.0 = 1.8; Q = 0.5 * 1.8
    assert model.q[(0,)][0] == pytest.approx(0.9)
    assert model.q[(0,)][1] == 0.0  # masked action never taken
    # step 2 in s=1: greedy action 1 (Q=2.0); terminal target 1.0; Q = 2.0 + 0.5 * (1.0 - 2.0) = 1.5
    assert model.q[(1,)][1] == pytest.approx(1.5)
    assert model.num_timesteps == 2


def test_masked_exploration_never_picks_invalid_action():
    env = DummyVecEnv([Chain])
    model = QLearning(env, exploration_initial_eps=1.0, exploration_final_eps=1.0, seed=1)
    model.learn(total_timesteps=200)
    assert model.q[(0,)][1] == 0.0


def test_save_load_round_trip(tmp_path):
    env = DummyVecEnv([Chain])
    model = QLearning(env, learning_rate=0.3, seed=3)
    model.learn(total_timesteps=50)
    model.save(tmp_path / "model")
    again = QLearning.load(tmp_path / "model", env=env)
    assert again.num_timesteps == 50
    assert set(again.q) == set(model.q)
    for k in model.q:
        np.testing.assert_array_equal(again.q[k], model.q[k])
    assert again.rng.random() == model.rng.random()


def test_bad_bin_width_is_a_clear_error():
    with pytest.raises(ValueError, match="bin_width"):
        QLearning(DummyVecEnv([Chain]), bin_width=0.0)
