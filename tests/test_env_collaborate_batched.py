"""CollaborateVectorEnv agrees step for step with CollaborateEnv (valid and invalid actions, autoreset)."""

from __future__ import annotations

import numpy as np
import pytest

import envs
from envs.collaborate import CollaborateEnv
from envs.collaborate_batched import CollaborateVectorEnv

OUTCOMES = ("clicked", "purchased", "reformulations", "abandoned", "latency", "rounds", "steps")


def _compare(kwargs: dict, n_steps: int, B: int = 6, seed: int = 3) -> int:
    vec = CollaborateVectorEnv(B, seed=seed, **kwargs)
    obs, vinfo = vec.reset()
    singles = [CollaborateEnv(**kwargs) for _ in range(B)]
    first = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(singles)])
    np.testing.assert_allclose(obs, first, atol=1e-6)
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(n_steps):
        mask = vinfo["action_mask"]
        # mostly valid actions, some invalid ones to exercise the penalty / forced-decide paths
        a = np.array([
            rng.choice(np.flatnonzero(mask[i])) if rng.random() < 0.85 else rng.integers(5)
            for i in range(B)
        ])  # fmt: skip
        obs, rew, term, trunc, vinfo = vec.step(a)
        for i, env in enumerate(singles):
            o, r, t, tr, info = env.step(int(a[i]))
            assert (bool(term[i]), bool(trunc[i])) == (t, tr)
            assert rew[i] == pytest.approx(r, abs=1e-9)
            if t:
                episodes += 1
                np.testing.assert_allclose(vinfo["final_obs"][i], o, atol=1e-6)
                for k in OUTCOMES:
                    assert float(vinfo["final_info"][k][i]) == pytest.approx(float(info[k])), k
                o, info = env.reset()
            np.testing.assert_allclose(obs[i], o, atol=1e-6)
            np.testing.assert_array_equal(vinfo["action_mask"][i], info["action_mask"])
    return episodes


def test_batched_equals_single_default():
    assert _compare({}, 120) > 60


def test_batched_equals_single_short_episodes_small_blocks():
    assert _compare({"max_steps": 4, "max_clarify": 3, "rng_block_episodes": 2}, 80) > 50


def test_make_batched_dispatch_and_bad_args():
    vec = envs.make_batched("rl_shop/Collaborate-v0", 3, seed=1)
    assert isinstance(vec, CollaborateVectorEnv)
    obs, info = vec.reset()
    assert obs.shape == (3, len(vec.FEATURE_NAMES))
    np.testing.assert_array_equal(vec.action_masks(), np.tile([1, 1, 1, 0, 0], (3, 1)).astype(bool))
    with pytest.raises(ValueError, match="actions must be in"):
        vec.step(np.array([0, 1, 9]))
    with pytest.raises(ValueError, match="gamma"):
        CollaborateVectorEnv(2, gamma=-0.1)


@pytest.fixture()
def impatient_sim(tmp_path):
    """A sim config whose shoppers tolerate exactly one clarification question."""
    import yaml

    from rl_shop.sim.config import SIM_CONFIG_DIR

    data = yaml.safe_load((SIM_CONFIG_DIR / "default.yaml").read_text())
    data["sampler"]["patience"] = {"low": 1, "high": 1}
    for key in ("knowledge_file", "lexicon_file"):
        data[key] = str(SIM_CONFIG_DIR / data[key])
    path = tmp_path / "impatient.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_shopper_quits_past_patience_and_batched_agrees(impatient_sim):
    env = CollaborateEnv(sim_config=impatient_sim, max_clarify=3)
    env.reset(seed=0)
    _, r1, term, _, info = env.step(0)  # first question: answered
    assert not term and info["rounds"] == 1
    _, r2, term, _, info = env.step(0)  # second question: past patience, the shopper leaves
    assert term and info["abandoned"] == 1
    assert r2 == pytest.approx(r1 - env.params.w_abandon)  # same clarify cost plus the penalty
    assert _compare({"sim_config": impatient_sim, "max_clarify": 3}, 60) > 30


def test_batched_equals_single_with_expected_reward():
    assert _compare({"expected_reward": True}, 120) > 60


def test_batched_equals_single_with_seen_clarity(seen_clarity_types):
    assert _compare({"types": seen_clarity_types}, 120) > 60
