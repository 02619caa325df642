"""ClarifyVectorEnv agrees with ClarifyEnv step for step; make_batched dispatch; RNG parity."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs import clarify_rng as rng
from envs.clarify import ClarifyEnv
from envs.clarify_batched import ClarifyVectorEnv
from envs.intent_pool import synthetic_intent_pool

POOL = synthetic_intent_pool(40, 300, seed=5, p_dont_know=0.2, p_wrong=0.15, patience=(1, 6))
PARAMS = dict(alpha=1.3, beta=0.07, w_T=0.9, abandon_penalty=0.6, confirm_threshold=0.3, max_rounds=5)


def test_counter_rng_python_and_numpy_agree():
    gen = np.random.default_rng(0)
    keys = gen.integers(0, 2**63, 200, dtype=np.uint64)
    eps = gen.integers(0, 1000, 200).astype(np.uint64)
    steps = gen.integers(0, 50, 200)
    ek = rng.episode_key_array(keys, eps)
    assert [rng.episode_key(int(k), int(e)) for k, e in zip(keys, eps)] == ek.tolist()
    z = rng.bits_array(ek, steps.astype(np.uint64))
    zs = [rng.bits(int(k), int(s)) for k, s in zip(ek, steps)]
    assert zs == z.tolist()
    for scalar, vector in (
        (rng.unit53, rng.unit53_array),
        (rng.answer_draw, rng.answer_draw_array),
        (rng.volunteer_draw, rng.volunteer_draw_array),
    ):
        u = vector(z)
        assert [scalar(x) for x in zs] == u.tolist()
        assert (u >= 0).all() and (u < 1).all()
        assert abs(u.mean() - 0.5) < 0.1


@pytest.mark.parametrize("n_envs, seed", [(7, 11), (3, 0)])
def test_batched_matches_single_step_for_step(n_envs, seed):
    vec = ClarifyVectorEnv(n_envs, seed=seed, intent_pool=POOL, **PARAMS)
    singles = [ClarifyEnv(intent_pool=POOL, **PARAMS) for _ in range(n_envs)]
    obs, infos = vec.reset()
    pending_reset = [False] * n_envs
    for k, env in enumerate(singles):
        o, _ = env.reset(seed=seed + k)
        assert np.array_equal(o, obs[k])
    act_rng = np.random.default_rng(1)
    n_done = 0
    for _ in range(150):
        masks = vec.action_masks()
        # Mostly valid actions, sometimes an invalid (masked) question on purpose.
        actions = np.array(
            [
                int(act_rng.choice(np.flatnonzero(m))) if act_rng.random() < 0.9 else int(act_rng.integers(11))
                for m in masks
            ]
        )
        obs, rew, term, trunc, infos = vec.step(actions)
        for k, env in enumerate(singles):
            if pending_reset[k]:  # NEXT_STEP autoreset: this step only resets sub-env k
                o, info = env.reset()
                r, te, tr, gain = 0.0, False, False, 0.0
                pending_reset[k] = False
                assert np.isnan(infos["accuracy_at_5"][k]) and not infos["_accuracy_at_5"][k]
            else:
                o, r, te, tr, info = env.step(int(actions[k]))
                gain = info["intent_gain"]
                pending_reset[k] = te or tr
                if te or tr:
                    n_done += 1
                    assert infos["_accuracy_at_5"][k]
                    assert infos["accuracy_at_5"][k] == info["accuracy_at_5"]
            assert np.array_equal(o, obs[k]), k
            assert rew[k] == r and term[k] == te and trunc[k] == tr
            assert infos["intent_gain"][k] == gain
            assert np.array_equal(infos["action_mask"][k], info["action_mask"])
            assert infos["rounds"][k] == info["rounds"]
    assert n_done > 20  # the comparison covered many episode ends


def test_explicit_reset_seed_overrides_constructor_seed():
    a = ClarifyVectorEnv(4, seed=1, intent_pool=POOL)
    b = ClarifyVectorEnv(4, seed=99, intent_pool=POOL)
    oa, _ = a.reset(seed=5)
    ob, _ = b.reset(seed=5)
    assert np.array_equal(oa, ob)
    oc, _ = b.reset(seed=[5, 6, 7, 8])
    assert np.array_equal(oa, oc)


def test_make_batched_and_make_vec_dispatch():
    vec = envs.make_batched("rl_shop/Clarify-v0", num_envs=5, seed=3, intent_pool=POOL)
    assert isinstance(vec, ClarifyVectorEnv) and vec.num_envs == 5
    obs, _ = vec.reset()
    assert obs.shape == (5, 47) and vec.observation_space.contains(obs)
    assert vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    mv = gym.make_vec("rl_shop/Clarify-v0", num_envs=2, vectorization_mode="vector_entry_point", intent_pool=POOL)
    assert isinstance(mv, ClarifyVectorEnv)


def test_make_batched_bad_input_is_clear():
    with pytest.raises(gym.error.Error, match="valid ids are"):
        envs.make_batched("rl_shop/Nope-v0", num_envs=2)
    with pytest.raises(ValueError, match="num_envs"):
        envs.make_batched("rl_shop/Clarify-v0", num_envs=0)
    vec = ClarifyVectorEnv(3, seed=0, intent_pool=POOL)
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.zeros(3, int))
    vec.reset()
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.zeros(4, int))
    with pytest.raises(ValueError, match="0..10"):
        vec.step(np.array([0, 12, 1]))
    with pytest.raises(ValueError, match="3 sub-envs"):
        vec.reset(seed=[1, 2])
