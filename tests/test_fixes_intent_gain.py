"""Issue 13 fix: `episode/intent_gain` and `eval/intent_gain` are episode sums, not the last step's value.

Clarify's info["intent_gain"] is the entropy reduction of *that* step; the last step of a dialogue
(stop, confirmed suggestion, shopper leaving) reveals nothing, so logging the end-of-episode info
gave 0 for every episode. The quantities below are worked out by hand or by the test's own loop.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import envs  # noqa: F401  (registers rl_shop/ ids)
from rl_shop.train.callbacks import InfoMetricsCallback
from rl_shop.train.config import compose_train_config
from rl_shop.train.evaluation import run_episodes
from rl_shop.train.runner import train


class _Logger:
    def __init__(self) -> None:
        self.records: dict[str, float] = {}

    def record(self, key: str, value: float) -> None:
        self.records[key] = value


class _Model:
    num_timesteps = 0

    def __init__(self) -> None:
        self.logger = _Logger()

    def get_env(self) -> None:
        return None


def _step(cb: InfoMetricsCallback, dones: list[bool], infos: list[dict]) -> None:
    cb.update_locals({"dones": np.array(dones), "infos": infos})
    cb.on_step()


def test_callback_logs_episode_sum_of_intent_gain_and_last_value_of_counters():
    model = _Model()
    cb = InfoMetricsCallback(["intent_gain", "rounds", "accuracy_at_5"], window=10)
    cb.init_callback(model)  # type: ignore[arg-type]
    # env 0: gains 0.3, 0.2, then a stop that reveals nothing -> episode sum 0.5, 2 rounds
    # env 1: gain 0.1 then done at its 2nd step with gain 0.0 -> sum 0.1; then a new episode starts
    _step(cb, [False, False], [{"intent_gain": 0.3, "rounds": 1}, {"intent_gain": 0.1, "rounds": 1}])
    _step(
        cb, [False, True], [{"intent_gain": 0.2, "rounds": 2}, {"intent_gain": 0.0, "rounds": 1, "accuracy_at_5": 1.0}]
    )
    _step(
        cb, [True, False], [{"intent_gain": 0.0, "rounds": 2, "accuracy_at_5": 0.5}, {"intent_gain": 0.7, "rounds": 1}]
    )  # env 1's new episode, not finished
    cb.on_rollout_end()
    rec = model.logger.records
    assert rec["episode/intent_gain"] == pytest.approx((0.5 + 0.1) / 2), rec
    assert rec["episode/rounds"] == pytest.approx((2 + 1) / 2), rec  # end-of-episode counter: last value
    assert rec["episode/accuracy_at_5"] == pytest.approx((0.5 + 1.0) / 2), rec
    # env 1's second episode (0.7 so far) is counted when it ends, from a fresh sum
    _step(cb, [False, True], [{"intent_gain": 0.0, "rounds": 3}, {"intent_gain": 0.05, "rounds": 2}])
    cb.on_rollout_end()
    assert rec["episode/intent_gain"] == pytest.approx((0.5 + 0.1 + 0.75) / 3), rec


def test_run_episodes_reports_the_episode_sum_of_intent_gain():
    env = gym.make("rl_shop/Clarify-v0")
    # Ask slot 0, 1, 2, ... in turn while valid, then stop: most episodes reveal something.

    def act(obs: np.ndarray, mask: np.ndarray | None) -> int:
        assert mask is not None
        valid = np.flatnonzero(mask)
        asks = [a for a in valid if a < len(mask) - 2]  # the last two actions are suggest / stop
        return int(asks[0]) if asks else int(valid[-1])

    seed, n = 123, 12
    sums, lasts = [], []
    for k in range(n):  # the test's own replay of the same seeded episodes
        obs, info = env.reset(seed=seed + k)
        total, done = 0.0, False
        while not done:
            obs, _r, term, trunc, info = env.step(act(obs, np.asarray(info["action_mask"], bool)))
            total += float(info["intent_gain"])
            done = term or trunc
        sums.append(total)
        lasts.append(float(info["intent_gain"]))
    assert np.mean(sums) > 0.05  # the policy does learn something about the intent
    res = run_episodes(env, act, n, seed, ["intent_gain", "rounds"])
    assert res.info_means["intent_gain"] == pytest.approx(np.mean(sums))
    assert res.info_means["intent_gain"] != pytest.approx(np.mean(lasts))
    env.close()


def _ask_first_valid(obs: np.ndarray, mask: np.ndarray | None) -> int:
    """Ask the first valid slot question; suggest / stop (the last two actions) once none is left."""
    assert mask is not None
    valid = np.flatnonzero(mask)
    asks = [a for a in valid if a < len(mask) - 2]
    return int(asks[0]) if asks else int(valid[-1])


def test_eval_callback_logs_eval_intent_gain_as_episode_sum(tmp_path: Path):
    from rl_shop.train.callbacks import EvalCheckpointCallback
    from rl_shop.train.checkpointing import TrainState

    class Model(_Model):
        num_timesteps = 100

        def predict(self, obs, deterministic=True, action_masks=None):
            return np.array(_ask_first_valid(obs, action_masks)), None

        def get_env(self):
            return None

    env = gym.make("rl_shop/Clarify-v0")
    seed, n = 500, 8
    sums = []
    for k in range(n):  # the test's own replay
        obs, info = env.reset(seed=seed + k)
        total, done = 0.0, False
        while not done:
            obs, _r, term, trunc, info = env.step(_ask_first_valid(obs, np.asarray(info["action_mask"], bool)))
            total += float(info["intent_gain"])
            done = term or trunc
        sums.append(total)
    model = Model()
    model.logger.dump = lambda step: None  # type: ignore[attr-defined]
    state = TrainState(best_mean_reward=float("inf"))  # nothing beats it: no best-model saving
    cb = EvalCheckpointCallback(
        env,
        tmp_path,
        state,
        eval_freq=100,
        n_eval_episodes=n,
        eval_seed=seed,
        deterministic=True,
        masked=True,
        checkpoint_freq=1000,
        keep_last=1,
        save_replay_buffer=False,
        info_keys=["intent_gain", "rounds"],
        wall_clock_start=0.0,
    )
    cb.init_callback(model)  # type: ignore[arg-type]
    cb.evaluate()
    assert np.mean(sums) > 0.05
    assert model.logger.records["eval/intent_gain"] == pytest.approx(np.mean(sums))
    env.close()


@pytest.mark.slow
def test_tensorboard_intent_gain_is_not_zero(tmp_path: Path):
    cfg = compose_train_config(
        [
            "env=clarify",
            "algo=dqn",
            f"runs_root={tmp_path}",
            "seed=0",
            "total_timesteps=800",
            "eval.freq=400",
            "eval.n_episodes=20",
            "checkpoint.freq=800",
            "baseline.n_episodes=20",
            "baseline.random_reference=false",
            "algo.kwargs.learning_starts=200",
            "hardware.n_envs=2",
            "logging.info_window=50",
        ]
    )
    s = train(cfg)
    acc = EventAccumulator(str(Path(s.run_dir) / "tb"))
    acc.Reload()
    scalars = acc.Tags()["scalars"]

    def last(tag: str) -> float:
        assert tag in scalars, (tag, scalars)
        return acc.Scalars(tag)[-1].value

    # DQN explores (epsilon ~1) during these steps, asking questions: real gains show up.
    assert last("episode/intent_gain") > 0.05
    # The heuristic asks until confident: its mean episode gain is far from 0.
    assert last("reference/heuristic_intent_gain") > 0.05
