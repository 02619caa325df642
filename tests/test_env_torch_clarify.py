"""ClarifyTorchVectorEnv (torch kernel) agrees with ClarifyVectorEnv (numpy) and the pinned run."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from envs import clarify_rng as rng  # noqa: E402
from envs.clarify_batched import ClarifyVectorEnv  # noqa: E402
from envs.clarify_torch import ClarifyTorchVectorEnv  # noqa: E402
from envs.intent_pool import synthetic_intent_pool  # noqa: E402
from rl_shop import array_ops as ao  # noqa: E402
from rl_shop.policies.features.clarify import featurize_batch  # noqa: E402

POOL = synthetic_intent_pool(40, 300, seed=5, p_dont_know=0.2, p_wrong=0.15, patience=(1, 6))
PARAMS = dict(alpha=1.3, beta=0.07, w_T=0.9, abandon_penalty=0.6, confirm_threshold=0.3, max_rounds=5)
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")


def test_int64_splitmix_equals_the_uint64_reference_bits():
    gen = np.random.default_rng(0)
    keys = gen.integers(0, 2**63, 300, dtype=np.uint64)
    eps = gen.integers(0, 1000, 300).astype(np.uint64)
    want = rng.episode_key_array(keys, eps)
    for ops, conv in ((ao.NUMPY, lambda a: a.view(np.int64)), (ao.TORCH, lambda a: torch.from_numpy(a.view(np.int64)))):
        got = ao.episode_key(ops, conv(keys), conv(eps))
        got = np.asarray(got).view(np.uint64)
        assert got.tolist() == want.tolist()
        z = rng.bits_array(want, np.arange(300, dtype=np.uint64))
        zz = conv(z)
        assert np.asarray(ao.answer_draw(ops, zz)).tolist() == rng.answer_draw_array(z).tolist()
        assert np.asarray(ao.volunteer_draw(ops, zz)).tolist() == rng.volunteer_draw_array(z).tolist()
        assert np.asarray(ao.unit53(ops, zz)).tolist() == rng.unit53_array(z).tolist()


def _run_pair(n_envs: int, seed: int, steps: int, device: str = "cpu"):
    ref = ClarifyVectorEnv(n_envs, seed=seed, intent_pool=POOL, **PARAMS)
    new = ClarifyTorchVectorEnv(n_envs, seed=seed, intent_pool=POOL, device=device, **PARAMS)
    o_ref, _ = ref.reset()
    o_new = new.reset()
    assert np.array_equal(o_ref, o_new.cpu().numpy())
    pick = np.random.default_rng(3)
    stats = {"ends": 0, "trunc": 0}
    for _ in range(steps):
        masks = ref.action_masks()
        assert np.array_equal(masks, new.action_masks().cpu().numpy())
        a = np.array(
            [int(pick.choice(np.flatnonzero(m))) if pick.random() < 0.9 else int(pick.integers(11)) for m in masks]
        )
        o1, r1, te1, tr1, i1 = ref.step(a)
        o2, r2, te2, tr2, i2 = new.step(torch.as_tensor(a, device=device))
        assert np.array_equal(o1, o2.cpu().numpy())
        assert np.array_equal(r1, r2.cpu().numpy())  # same formulas, same float64 operations
        assert np.array_equal(te1, te2.cpu().numpy()) and np.array_equal(tr1, tr2.cpu().numpy())
        np.testing.assert_array_equal(i1["accuracy_at_5"], i2["accuracy_at_5"].cpu().numpy())
        np.testing.assert_array_equal(i1["intent_gain"], i2["intent_gain"].cpu().numpy())
        stats["ends"] += int((te1 | tr1).sum())
        stats["trunc"] += int(tr1.sum())
    return stats


@pytest.mark.parametrize("n_envs, seed", [(7, 11), (33, 0)])
def test_torch_kernel_matches_numpy_step_for_step(n_envs, seed):
    stats = _run_pair(n_envs, seed, 120)
    assert stats["ends"] > 50  # many autoresets were exercised
    assert stats["trunc"] > 0


def test_torch_featurize_equals_featurize_batch():
    env = ClarifyTorchVectorEnv(50, seed=2, intent_pool=POOL, **PARAMS)
    env.reset()
    for _ in range(3):
        env.step(torch.randint(0, 11, (50,), generator=torch.Generator().manual_seed(1)))
    s = {k: v.numpy() for k, v in env._s.items()}
    log2c = POOL.log2_candidates.ravel()[s["i"] * 512 + s["revealed"]]
    want = featurize_batch(s["qt"], s["known"], s["nopref"], s["dontknow"], s["asked"], s["rounds"],
                           PARAMS["max_rounds"], log2c, POOL.log2_catalog_size)  # fmt: skip
    assert np.array_equal(env.observe().numpy(), want)


def test_torch_kernel_reproduces_the_pinned_batched_run():
    """The pinned numbers of tests/test_env_pinned_returns.py (recorded before this kernel)."""
    from tests.test_env_pinned_returns import BATCH, BATCH_SEED, BATCH_STEPS, PINNED_BATCHED, _stable

    want_total, want_ends, want_digest = PINNED_BATCHED["rl_shop/Clarify-v0"]
    env = ClarifyTorchVectorEnv(BATCH, seed=BATCH_SEED)
    pick = np.random.default_rng(99)
    h = hashlib.sha256()
    obs = env.reset()
    h.update(_stable(obs.numpy()))
    total, ends = 0.0, 0
    for _ in range(BATCH_STEPS):
        masks = env.action_masks().numpy()
        k = (pick.random(BATCH) * masks.sum(axis=1)).astype(np.int64)
        a = (np.cumsum(masks, axis=1) > k[:, None]).argmax(axis=1)
        obs, r, term, trunc, _ = env.step(torch.as_tensor(a))
        ended = (term | trunc).numpy()
        for arr in (_stable(obs.numpy()), _stable(r.numpy()), ended.tobytes()):
            h.update(arr)
        total += float(np.sum(r.numpy()))
        ends += int(ended.sum())
    assert ends == want_ends
    assert abs(total - want_total) < 1e-9
    assert h.hexdigest() == want_digest


def test_restart_without_autoreset_gives_the_same_episodes():
    """TorchRL's path (step without autoreset + restart(mask)) plays the same episode stream.

    A fixed deterministic policy of the observation makes each sub-env's episode returns a
    function of its episodes only; the NEXT_STEP env spends one dummy step per episode end, the
    restart path none, so the restart path finishes more episodes in as many steps.
    """
    n = 16
    w = torch.randn(47, 11, generator=torch.Generator().manual_seed(0))

    def policy(obs):
        return (obs @ w).argmax(dim=1)

    def episode_returns(env, autoreset):
        obs = env.reset()
        rets = [[] for _ in range(n)]
        acc = torch.zeros(n, dtype=torch.float64)
        pending = torch.zeros(n, dtype=torch.bool)
        for _ in range(80):
            if not autoreset and pending.any():
                obs = env.restart(pending)
            obs, r, te, tr, _ = env.step(policy(obs), autoreset=autoreset)
            acc = acc + r
            ended = te | tr
            for i in torch.nonzero(ended).flatten().tolist():
                rets[i].append(round(float(acc[i]), 12))
            acc = torch.where(ended, torch.zeros_like(acc), acc)
            pending = ended
        return rets

    a = episode_returns(ClarifyTorchVectorEnv(n, seed=4, intent_pool=POOL, **PARAMS), True)
    b = episode_returns(ClarifyTorchVectorEnv(n, seed=4, intent_pool=POOL, **PARAMS), False)
    assert sum(map(len, a)) > 100
    for ra, rb in zip(a, b):
        assert len(rb) >= len(ra)
        assert rb[: len(ra)] == ra


@pytest.mark.gpu
@CUDA
def test_cuda_kernel_matches_numpy():
    stats = _run_pair(64, 1, 60, device="cuda")
    assert stats["ends"] > 0
