"""The single envs' observation fast paths (``featurize_fields``) give exactly ``featurize(state)``.

The Collaborate and Schedule envs pack their observation rows from their own fields instead of
building the state object the runtime Leader featurizes; a policy must read the same float32
bits either way, and a value beyond float32's range must still become ``inf`` (numpy's
conversion), not an error. ``featurize`` itself calls ``featurize_fields``, so the rollout checks
the env's assembly of the fields; the packed bits are checked by the hand-worked row here and by
the observation hashes recorded before the change in ``test_env_pinned_returns.py``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the envs)
from envs.specs import COLLABORATE, SCHEDULE
from rl_shop.policies.features import collaborate as C
from rl_shop.policies.features import schedule as S


def _rollout_matches_state(env_id: str, steps: int, seed: int) -> int:
    """Steps a seeded random valid policy; every observation must equal featurize(state())."""
    env = gym.make(env_id)
    inner = env.unwrapped
    featurize = C.featurize if env_id == COLLABORATE.id else S.featurize
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    checked = 0
    for _ in range(steps):
        expected = featurize(inner.state())
        assert obs.dtype == np.float32 and obs.flags.writeable
        assert obs.tobytes() == expected.tobytes()
        checked += 1
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        obs, _, term, trunc, info = env.step(action)
        if term or trunc:
            obs, info = env.reset()
    return checked


@pytest.mark.parametrize("env_id", [COLLABORATE.id, SCHEDULE.id])
def test_single_env_observation_is_featurize_of_its_state(env_id):
    assert _rollout_matches_state(env_id, steps=400, seed=11) == 400


def test_collaborate_row_by_hand():
    state = C.CollaborateState(
        predicted_type=2,
        type_confidence=0.7,
        steps=3,
        max_steps=12,
        elapsed_s=4.5,
        n_clarify=1,
        n_product_search=2,
        n_web_search=0,
        n_replan=1,
        relevance_hat=0.4,
        satisfaction_hat=0.6,
        clarity_hat=0.9,
        gamma=0.25,
        replan_threshold=0.6,
    )
    onehot = [0.0] * C.N_TYPES
    onehot[2] = 1.0
    score = 0.25 * 0.4 + 0.75 * 0.6  # Eq. 2 = 0.55, below the 0.6 threshold
    expected = np.asarray(
        [*onehot, 0.7, 3 / 12, 0.45, 1 / 3, 2 / 3, 0.0, 1 / 3, 0.4, 0.6, 0.9, score, 1.0], dtype=np.float32
    )
    assert C.featurize(state).tobytes() == expected.tobytes()


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_values_beyond_float32_become_inf_as_numpy_does():
    collab = C.featurize_fields(0, 0.5, 1, 10, 1e300, 0, 1, 0, 0, 0.2, 0.3, 0.4, 0.5, 0.6)
    assert collab.dtype == np.float32 and np.isinf(collab[C.FEATURE_NAMES.index("elapsed_s")])
    sched = S.featurize_fields(1e300, 3, 0.5, [0, 1], [S.RUNNING, S.DONE], [1.0, 0.0])
    assert sched.dtype == np.float32 and np.isinf(sched[S.FEATURE_NAMES.index("elapsed_s")])
    assert sched[S.FEATURE_NAMES.index("n_running")] == np.float32(1 / S.COUNT_SCALE)


@pytest.mark.parametrize("env_id", [COLLABORATE.id, SCHEDULE.id])
def test_step_before_reset_is_a_clear_error(env_id):
    inner = gym.make(env_id).unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        inner.step(0)
    if env_id == COLLABORATE.id:
        with pytest.raises(RuntimeError, match="reset"):
            inner.action_masks()
