"""CollaborateTorchVectorEnv (torch kernel) agrees with CollaborateVectorEnv (numpy) and the pinned run."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from envs.collaborate_batched import CollaborateVectorEnv  # noqa: E402
from envs.collaborate_torch import CollaborateTorchVectorEnv  # noqa: E402

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")
OUTCOMES = ("clicked", "purchased", "reformulations", "abandoned", "latency", "rounds", "steps")


def _random_actions(pick, masks):
    return np.array(
        [int(pick.choice(np.flatnonzero(m))) if pick.random() < 0.85 else int(pick.integers(5)) for m in masks]
    )


def _run_pair(n_envs: int, seed: int, steps: int, device: str = "cpu", **kwargs) -> int:
    ref = CollaborateVectorEnv(n_envs, seed=seed, **kwargs)
    new = CollaborateTorchVectorEnv(n_envs, seed=seed, device=device, uniforms="numpy", **kwargs)
    o1, i1 = ref.reset()
    o2 = new.reset()
    assert np.array_equal(o1, o2.cpu().numpy())
    pick = np.random.default_rng(5)
    ends = 0
    for _ in range(steps):
        masks = i1["action_mask"]
        assert np.array_equal(masks, new.action_masks().cpu().numpy())
        a = _random_actions(pick, masks)
        o1, r1, t1, tr1, i1 = ref.step(a)
        o2, r2, t2, tr2, i2 = new.step(torch.as_tensor(a, device=device))
        assert np.array_equal(t1, t2.cpu().numpy()) and np.array_equal(tr1, tr2.cpu().numpy())
        assert np.array_equal(r1, r2.cpu().numpy())
        assert np.array_equal(o1, o2.cpu().numpy())
        if t1.any():
            ends += int(t1.sum())
            assert np.array_equal(i1["final_obs"][t1], i2["final_obs"].cpu().numpy()[t1])
            for k in OUTCOMES:
                assert np.array_equal(i1["final_info"][k][t1], i2["final_info"][k].cpu().numpy()[t1]), k
    return ends


@pytest.mark.parametrize("n_envs, seed", [(5, 3), (40, 0)])
def test_torch_kernel_matches_numpy_step_for_step(n_envs, seed):
    assert _run_pair(n_envs, seed, 80) > 30


def test_torch_kernel_matches_numpy_with_seen_clarity(seen_clarity_types):
    assert _run_pair(12, 1, 80, types=seen_clarity_types) > 30


def test_torch_kernel_reproduces_the_pinned_batched_run():
    """The pinned numbers of tests/test_env_pinned_returns.py (recorded before this kernel)."""
    from tests.test_env_pinned_returns import BATCH, BATCH_SEED, BATCH_STEPS, PINNED_BATCHED, _stable

    want_total, want_ends, want_digest = PINNED_BATCHED["rl_shop/Collaborate-v0"]
    env = CollaborateTorchVectorEnv(BATCH, seed=BATCH_SEED, uniforms="numpy")
    pick = np.random.default_rng(99)
    h = hashlib.sha256()
    obs = env.reset()
    h.update(_stable(obs.numpy()))
    total, ends = 0.0, 0
    for _ in range(BATCH_STEPS):
        masks = env.action_masks().numpy()
        k = (pick.random(BATCH) * masks.sum(axis=1)).astype(np.int64)
        a = (np.cumsum(masks, axis=1) > k[:, None]).argmax(axis=1)
        obs, r, term, trunc, info = env.step(torch.as_tensor(a))
        ended = (term | trunc).numpy()
        for arr in (_stable(obs.numpy()), _stable(r.numpy()), ended.tobytes()):
            h.update(arr)
        if ended.any():
            h.update(_stable(info["final_obs"].numpy()[ended]))
        total += float(np.sum(r.numpy()))
        ends += int(ended.sum())
    assert ends == want_ends
    assert abs(total - want_total) < 1e-9
    assert h.hexdigest() == want_digest


def _episode_stats(env_step, reset, n, steps, device="cpu"):
    """Mean episode return, mean length, and end-of-episode rates under a fixed stochastic policy."""
    pick = np.random.default_rng(11)
    masks = reset()
    ret = np.zeros(n)
    length = np.zeros(n)
    returns, lengths, clicked, abandoned = [], [], [], []
    for _ in range(steps):
        a = np.array([int(pick.choice(np.flatnonzero(m))) for m in masks])
        r, t, masks, fin = env_step(a)
        ret += r
        length += 1
        for i in np.flatnonzero(t):
            returns.append(ret[i])
            lengths.append(length[i])
            clicked.append(fin["clicked"][i])
            abandoned.append(fin["abandoned"][i])
        ret[t] = 0
        length[t] = 0
    return np.array(returns), np.array(lengths), np.array(clicked), np.array(abandoned)


@pytest.mark.slow
def test_device_uniforms_give_the_same_transition_statistics():
    """uniforms="torch" draws other numbers from the same distributions: episode statistics of a
    fixed random policy agree with the numpy env within sampling error (about 4 standard errors)."""
    n, steps = 128, 100
    ref = CollaborateVectorEnv(n, seed=0)
    new = CollaborateTorchVectorEnv(n, seed=12345, uniforms="torch")

    def ref_reset():
        return ref.reset()[1]["action_mask"]

    def ref_step(a):
        _, r, t, _, info = ref.step(a)
        return r, t, info["action_mask"], info.get("final_info", {})

    def new_reset():
        new.reset()
        return new.action_masks().numpy()

    def new_step(a):
        _, r, t, _, info = new.step(torch.as_tensor(a))
        fin = {k: v.numpy() for k, v in info.get("final_info", {}).items()}
        return r.numpy(), t.numpy(), info["action_mask"].numpy(), fin

    a = _episode_stats(ref_step, ref_reset, n, steps)
    b = _episode_stats(new_step, new_reset, n, steps)
    for x, y in zip(a, b):
        x, y = x.astype(float), y.astype(float)
        se = np.sqrt(x.var() / len(x) + y.var() / len(y))
        assert abs(x.mean() - y.mean()) < 4 * se + 1e-9, (x.mean(), y.mean(), se)
    assert len(a[0]) > 1000 and len(b[0]) > 1000


@pytest.mark.gpu
@CUDA
def test_cuda_kernel_matches_numpy():
    assert _run_pair(64, 1, 40, device="cuda") > 0


@pytest.mark.gpu
@CUDA
def test_cuda_device_uniforms_step():
    env = CollaborateTorchVectorEnv(4096, seed=0, device="cuda")
    assert env.uniforms == "torch"
    env.reset()
    total = torch.zeros((), dtype=torch.float64, device="cuda")
    for _ in range(50):
        a = torch.randint(0, 5, (4096,), device="cuda")
        obs, r, t, _, _ = env.step(a)
        total += r.sum()
    assert obs.is_cuda and torch.isfinite(total)
