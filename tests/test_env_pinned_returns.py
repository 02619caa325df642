"""Seeded episodes of every env, pinned to values recorded BEFORE the env speed work.

The shipped policies in ``checkpoints/`` were trained on these envs, so an optimisation must not
change a single observation bit or reward. The expected values below were computed once with the
envs as they were before the throughput changes (``envs/*.py`` of that time) and pasted here; they
are not computed by the code under test. If one of them changes, the env's semantics changed:
that needs a ``LAYOUT_VERSION`` / env version bump and retrained checkpoints, not a new pin.

Actions: a seeded ``np.random.default_rng`` picks uniformly among the valid actions of
``info["action_mask"]`` (single env) or of ``action_masks()`` (batched env), so the pinned
trajectories also exercise the masks. Single-env hashes are SHA-256 of the raw float32
observations and float64 rewards in step order; batched hashes are of the values rounded to five
decimals (numpy's vectorised float32 exp / log differ in the last bit between AVX2 and AVX-512
machines), re-recorded once with the pre-session envs (commit ce40005) when that was found.
"""

from __future__ import annotations

import hashlib

import gymnasium as gym
import numpy as np
import pytest

import envs

ENV_IDS = ("rl_shop/Clarify-v0", "rl_shop/Schedule-v0", "rl_shop/Collaborate-v0")
SEEDS = (0, 7, 12345)
EPISODES = 6  # per seed: reset(seed=s), then plain reset() (replays the seeded stream)
BATCH, BATCH_STEPS, BATCH_SEED = 8, 60, 3
#: Non-default Schedule-v0 arguments: random DAGs over more than 8 tasks (multi-word bit masks),
#: time measured from the last event, and per-episode actions.
SCHEDULE_RANDOM = {
    "random_dag": {"weight": 1.0, "min_tasks": 2, "max_tasks": 11, "edge_prob": 0.4},
    "max_tasks": 11,
    "time_origin": "event",
}
SCHEDULE_PER_EPISODE = {"action_mode": "per_episode", "rng_block_episodes": 3}
VARIANTS = {"random_dag": SCHEDULE_RANDOM, "per_episode": SCHEDULE_PER_EPISODE}


def single_trace(env_id: str, seed: int, **kwargs: object) -> tuple[list[float], str]:
    """Episode returns (exact floats) and a hash of every observation / reward of the run."""
    env = gym.make(env_id, **kwargs)
    pick = np.random.default_rng(1000 + seed)
    h = hashlib.sha256()
    returns = []
    obs, info = env.reset(seed=seed)
    for _ in range(EPISODES):
        h.update(np.asarray(obs, dtype=np.float32).tobytes())
        total, done = 0.0, False
        while not done:
            valid = np.flatnonzero(info["action_mask"])
            obs, r, term, trunc, info = env.step(int(valid[pick.integers(valid.size)]))
            h.update(np.asarray(obs, dtype=np.float32).tobytes())
            h.update(np.float64(r).tobytes())
            total += r
            done = term or trunc
        returns.append(total)
        obs, info = env.reset()
    env.close()
    return returns, h.hexdigest()


def _stable(x: object) -> bytes:
    """Bytes of ``x`` rounded to 5 decimals: numpy's float32 exp / log differ in the last bit
    between SIMD paths (AVX2 vs AVX-512), which must not read as a change of the dynamics."""
    return np.round(np.asarray(x, dtype=np.float64), 5).tobytes()


def batched_trace(env_id: str, **kwargs: object) -> tuple[float, int, str]:
    """Sum of rewards, number of episode ends and a hash of obs / rewards / ends / final obs."""
    vec = envs.make_batched(env_id, BATCH, seed=BATCH_SEED, **kwargs)
    pick = np.random.default_rng(99)
    h = hashlib.sha256()
    obs, _ = vec.reset()
    h.update(_stable(obs))
    total, ends = 0.0, 0
    for _ in range(BATCH_STEPS):
        masks = np.asarray(vec.action_masks(), dtype=bool)
        u = pick.random(BATCH)
        k = (u * masks.sum(axis=1)).astype(np.int64)
        a = (np.cumsum(masks, axis=1) > k[:, None]).argmax(axis=1)
        obs, r, term, trunc, info = vec.step(a)
        ended = np.asarray(term) | np.asarray(trunc)
        for arr in (_stable(obs), _stable(r), ended.tobytes()):
            h.update(arr)
        if ended.any() and "final_obs" in info:  # SAME_STEP envs (Clarify is NEXT_STEP)
            h.update(_stable(np.asarray(info["final_obs"])[ended]))
        total += float(np.sum(r))
        ends += int(ended.sum())
    vec.close()
    return total, ends, h.hexdigest()


# Recorded with the pre-optimisation envs (see the module docstring).
# fmt: off
PINNED_SINGLE: dict[tuple[str, int], tuple[list[float], str]] = {
    ('rl_shop/Clarify-v0', 0): ([1.1014292143333144, 0.75, -0.745509516896758, 1.1900004120529255, -1.1500000000000001, 0.95], 'aa6a0aa7a2013d878a7dfda76ced4574d9fff5e7219c3b9e25074f228d424454'),
    ('rl_shop/Clarify-v0', 7): ([-1.0534328090281935, -0.9736712330551371, 0.7654409546123941, -1.1034328090281935, 1.4533197424911821, 0.9757516083543717], 'e408a05a12bc1d4d708aa5c7c723191217249ff0e0d7fe6d5054fd777a5ee250'),
    ('rl_shop/Clarify-v0', 12345): ([-1.3, 0.95, 1.3063438162856031, -0.6691529491176575, 0.95, -0.49702816818379447], '3e8d55cb4adeb181471feda4b5cd5d1b593ffe313ffd00fd9e4e8d0c0f0f0e75'),
    ('rl_shop/Schedule-v0', 0): ([-7.826328507710182, -8.266259124706227, -8.339755805030531, -9.17791615016114, -10.592070541796344, -10.050992915476066], '5df694669a9b907dab5c32e3e47d13c28cff7377f50347a0cedd963e455e3838'),
    ('rl_shop/Schedule-v0', 7): ([-9.418124427222581, -7.118188718243325, -7.688027697958603, -9.018128385028609, -5.546905841288885, -5.929635230344173], '71ac5feb03d7ab4e2472317f26269f732909b6996f6c6645a1875ec27309dbfb'),
    ('rl_shop/Schedule-v0', 12345): ([-6.8442300247439505, -4.507521528558935, -10.094523326382548, -4.400641763871261, -8.4859104172292, -7.432669326728146], '4a957bb0f24cf13b4600baf82656fd1219071442e327c2f341d8e5180c3b224c'),
    ('rl_shop/Collaborate-v0', 0): ([0.024999999999999994, 4.625, -3.225, -3.1, -1.425, 3.9], 'e16478b252174ef4c662c312cfd2842182dea9159f8a65a3a2bf33d6b42a4abf'),
    ('rl_shop/Collaborate-v0', 7): ([-1.625, -0.625, 3.575, -3.025, -1.525, -1.375], 'ac56aa79b92541ad4400b61296a3eca88ceb83e37983bdb864ad6f6defed81ee'),
    ('rl_shop/Collaborate-v0', 12345): ([-2.05, -0.925, -2.75, -3.175, -3.125, -0.925], '2fdc02bf724286084fff9e0f7b2f0c567a5899f14276c4cbd0af396538b813dd'),
}
PINNED_BATCHED: dict[str, tuple[float, int, str]] = {
    'rl_shop/Clarify-v0': (1.6773693569480816, 112, '94257f67f5d9694682291fad2c12883e4e7c029de0e367ba6ec21a4f681e1f0f'),
    'rl_shop/Schedule-v0': (-1284.4999436213059, 149, '15a0533fbd514e6f673f9fd6d2c19d91a8a4049795ff047e975b3b19cebf0cda'),
    'rl_shop/Collaborate-v0': (7.950000000000003, 97, '565047a45f6cad9a8ee8bbe9f0c468b285dfedf7803ed53be8baf661c9f54d7c'),
}
PINNED_VARIANTS: dict[str, tuple[tuple[list[float], str], tuple[float, int, str]]] = {
    "random_dag": (
        ([-10.030429074555837, -6.651287202652792, -7.124917147941272, -8.570694732240346, -16.173203731912803, -22.033055948893377], '8f4542455bcb1c814ef87a0017575d17f0c6d1d91ceace01d65c42f87af78ad9'),
        (-1213.5241418985784, 103, 'abfef1ae921bd75962aa1003e428148a878c1794b2ef9828cc503d9cba9d36b1'),
    ),
    "per_episode": (
        ([-7.526328507710182, -7.9662591247062275, -11.700000000000001, -11.710107077722185, -14.300000000000002, -10.050992915476066], '1be4ee8c44c3b69a97de58ce0c9c181f648ecf9b297004158a460de7bb940471'),
        (-4092.7177140218537, 480, '0452b1edcad2a565ecb789546f8076bc8f6a9bdffa12dd8141def6f1a9877c50'),
    ),
}
# fmt: on


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_seeded_single_episodes_are_unchanged(env_id: str, seed: int) -> None:
    returns, digest = single_trace(env_id, seed)
    want_returns, want_digest = PINNED_SINGLE[(env_id, seed)]
    assert returns == want_returns  # exact: same floats, same order of operations
    assert digest == want_digest, "an observation or reward bit changed"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_seeded_batched_run_is_unchanged(env_id: str) -> None:
    total, ends, digest = batched_trace(env_id)
    want_total, want_ends, want_digest = PINNED_BATCHED[env_id]
    assert ends == want_ends
    assert total == want_total
    assert digest == want_digest, "an observation, reward or episode end changed"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_seeded_schedule_variants_are_unchanged(variant: str) -> None:
    kwargs = VARIANTS[variant]
    (want_returns, want_digest), want_batched = PINNED_VARIANTS[variant]
    returns, digest = single_trace("rl_shop/Schedule-v0", 0, **kwargs)
    assert returns == want_returns
    assert digest == want_digest
    assert batched_trace("rl_shop/Schedule-v0", **kwargs) == want_batched


# --------------------------------------------------------------------------- fast paths
# The speed work replaced some computations by equivalent cheaper ones; these tests compare each
# fast path with the reference formulation it replaced, on inputs the pinned runs may not reach.


def test_clarify_block_draws_equal_the_scalar_counter_draws() -> None:
    from envs import clarify_rng as rng

    for key, first in ((0, 1), (2**64 - 1, 7), (123456789, 2**40)):
        block = rng.episode_block(key, first, 9, 4096, 8)
        for j, (ekey, intent, answer, volunteer) in enumerate(block):
            want_key = rng.episode_key(key, first + j)
            assert ekey == want_key
            assert intent == int(rng.unit53(rng.bits(want_key, 0)) * 4096)
            assert answer == [rng.answer_draw(rng.bits(want_key, t)) for t in range(1, 9)]
            assert volunteer == [rng.volunteer_draw(rng.bits(want_key, t)) for t in range(1, 9)]
        assert rng.episode_start(rng.mix(key), first) == (block[0][0], rng.unit53(rng.bits(block[0][0], 0)))


def test_clarify_steps_past_the_precomputed_draws_fall_back_to_scalar_draws() -> None:
    # Stepping on after an episode ended (gymnasium does not forbid it) uses t > max_rounds.
    from envs.clarify import ClarifyEnv

    env = ClarifyEnv(max_rounds=1)
    env.reset(seed=5)
    env.reset()  # episode 1: draws come from a block
    outcomes = [env.step(a)[4]["outcome"] for a in range(9)]
    assert len(outcomes) == 9  # no IndexError past the block's 1 step of draws


def test_batched_uniforms_replay_episode_uniforms() -> None:
    from gymnasium.utils import seeding

    from envs.dag import BatchedUniforms, EpisodeUniforms

    cols = np.array([0, 5, 6, 9])
    for columns in (None, cols):
        bu = BatchedUniforms([11, 12, 13], 10, 3, columns)
        singles = [EpisodeUniforms(seeding.np_random(s)[0], 10, 3) for s in (11, 12, 13)]
        rng = np.random.default_rng(0)
        for _ in range(40):  # many refills, sub-envs advancing unevenly
            idx = np.flatnonzero(rng.random(3) < 0.6)
            rows = bu.take(idx)
            for r, i in zip(rows, idx):
                want = singles[i].next()
                assert np.array_equal(r, want if columns is None else want[cols])


@pytest.mark.parametrize("kwargs", [{}, SCHEDULE_RANDOM, {"random_dag": {"weight": 0.5, "max_tasks": 8}}])
def test_schedule_bitwise_counts_equal_the_reference_counts(kwargs: dict) -> None:
    from envs.schedule_batched import ScheduleVectorEnv

    fast = ScheduleVectorEnv(32, seed=1, **kwargs)
    ref = ScheduleVectorEnv(32, seed=1, **kwargs)
    ref._word, ref._ready_table = None, None  # force the unblock-time formulation
    assert fast._word is not None
    obs_f, _ = fast.reset()
    obs_r, _ = ref.reset()
    rng = np.random.default_rng(2)
    for _ in range(60):
        a = rng.integers(fast.single_action_space.n, size=32)
        out_f, out_r = fast.step(a), ref.step(a)
        for x, y in zip(out_f[:4], out_r[:4]):
            assert np.array_equal(x, y)


def test_schedule_env_featurize_batch_equals_rowwise_featurize() -> None:
    from rl_shop.policies.features.schedule import ScheduleState, featurize, featurize_batch

    rng = np.random.default_rng(3)
    B, N = 64, 8
    types = rng.integers(-1, 4, (B, N))
    status = rng.integers(0, 3, (B, N)).astype(np.int8)
    age = rng.random((B, N)) * 5
    t, ev, last = rng.random(B) * 30, rng.integers(0, 50, B), rng.random(B)
    batch = featurize_batch(t, ev, last, types, status, age)
    for b in range(B):
        keep = types[b] >= 0
        state = ScheduleState(
            t[b], int(ev[b]), last[b], types[b][keep].tolist(), status[b][keep].tolist(), age[b][keep].tolist()
        )
        row = featurize(state)
        assert np.allclose(batch[b], row, atol=1e-6)  # the single path sums ages in another order
