"""SB3 -> ONNX export: round-trip agreement with SB3 on 1,000 sampled observations, refusals, CLI.

Models are trained for a few hundred steps only: agreement between the exported network and
the original does not depend on how good the policy is, only on the weights being reproduced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from rl_shop.paths import REPO_ROOT
from rl_shop.policies.export import PolicyExportError, detect_algo, export_model, load_sb3_model, sample_action_masks
from rl_shop.policies.loader import PolicyCardMismatch, RuntimeLayout, load_policy, register_layout, unregister_layout

CARTPOLE = RuntimeLayout(
    "CartPole-v1", "tests.cartpole_layout", "cartpole-1", ("x", "x_dot", "theta", "theta_dot"), ("left", "right")
)
TOY_ID = "rl_shop_test/MaskedToy-v0"
TOY = RuntimeLayout(
    TOY_ID, "tests.toy_masked_layout", "toy-masked-1", tuple(f"f{i}" for i in range(5)), ("a0", "a1", "a2", "a3")
)


class MaskedToyEnv(gym.Env):
    """Five features in [-1, 1], four actions of which a random subset is valid each step.

    Reward 1 for picking the valid action with the largest of the first four features: enough
    structure for PPO to move its logits away from uniform within a few hundred steps.
    """

    def __init__(self) -> None:
        self.observation_space = spaces.Box(-1.0, 1.0, (5,), np.float32)
        self.action_space = spaces.Discrete(4)
        self._t = 0
        self._obs = np.zeros(5, np.float32)
        self._mask = np.ones(4, bool)

    def _draw(self) -> None:
        self._obs = self.np_random.uniform(-1, 1, 5).astype(np.float32)
        self._mask = self.np_random.random(4) < 0.6
        self._mask[self.np_random.integers(4)] = True

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._draw()
        return self._obs, {}

    def step(self, action: int):
        best = int(np.argmax(np.where(self._mask, self._obs[:4], -np.inf)))
        reward = float(action == best)
        self._t += 1
        self._draw()
        return self._obs, reward, False, self._t >= 16, {}

    def action_masks(self) -> np.ndarray:
        return self._mask.copy()


@pytest.fixture(autouse=True)
def _layouts():
    register_layout("CartPole-v1", CARTPOLE, replace=True)
    register_layout(TOY_ID, TOY, replace=True)
    yield
    unregister_layout("CartPole-v1")
    unregister_layout(TOY_ID)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny DQN / PPO / A2C on CartPole and MaskablePPO on the masked toy env, saved as SB3 zips."""
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import A2C, DQN, PPO

    root = tmp_path_factory.mktemp("sb3")
    paths: dict[str, Path] = {}
    env = gym.make("CartPole-v1")
    for cls, kwargs in (
        (DQN, {"learning_starts": 50, "train_freq": 4, "policy_kwargs": {"net_arch": [16, 16]}}),
        (PPO, {"n_steps": 64, "batch_size": 32, "n_epochs": 2, "policy_kwargs": {"net_arch": [16, 16]}}),
        (A2C, {"n_steps": 8, "policy_kwargs": {"net_arch": [16]}}),
    ):
        model = cls("MlpPolicy", env, seed=0, device="cpu", **kwargs)
        model.learn(256)
        paths[cls.__name__] = root / f"{cls.__name__}.zip"
        model.save(paths[cls.__name__])
    masked = MaskablePPO(
        "MlpPolicy",
        MaskedToyEnv(),
        seed=0,
        device="cpu",
        n_steps=128,
        batch_size=32,
        n_epochs=4,
        policy_kwargs={"net_arch": [16, 16]},
    )
    masked.learn(512)
    paths["MaskablePPO"] = root / "MaskablePPO.zip"
    masked.save(paths["MaskablePPO"])
    return paths


def _sampled_obs(space: spaces.Box, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low = np.where(np.isfinite(space.low), space.low, -3.0)
    high = np.where(np.isfinite(space.high), space.high, 3.0)
    return rng.uniform(low, high, size=(n, *space.shape)).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["DQN", "PPO", "A2C"])
def test_round_trip_agrees_with_sb3(trained: dict[str, Path], tmp_path: Path, algo: str) -> None:
    model, detected = load_sb3_model(trained[algo])
    assert detected == algo  # detected from the zip, not told
    result = export_model(model, tmp_path, env_id="CartPole-v1", algo=algo, n_verify=200)
    policy = load_policy(tmp_path, expect_env_id="CartPole-v1")

    obs = _sampled_obs(model.observation_space, 1000, seed=123)  # independent of the exporter's sampler
    sb3_actions, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(policy.act_batch(obs), sb3_actions)
    assert [policy.act(o) for o in obs[:20]] == list(sb3_actions[:20])

    import torch

    with torch.no_grad():
        if algo == "DQN":
            expected = model.policy.q_net(torch.as_tensor(obs)).numpy()
            np.testing.assert_allclose(policy.q_values_batch(obs), expected, atol=1e-5)
        else:
            dist = model.policy.get_distribution(torch.as_tensor(obs))
            expected = dist.distribution.probs.numpy()
            np.testing.assert_allclose(policy.action_probabilities_batch(obs), expected, atol=1e-5)
    card = result.card
    assert card.training.algo == algo and card.action_space.names == ["left", "right"]
    assert card.onnx.output_kind == ("q_values" if algo == "DQN" else "logits")
    assert card.verification is not None and card.verification.action_agreement == 1.0


@pytest.mark.slow
def test_maskable_ppo_round_trip_with_masks(trained: dict[str, Path], tmp_path: Path) -> None:
    model, detected = load_sb3_model(trained["MaskablePPO"])
    assert detected == "MaskablePPO"
    export_model(model, tmp_path, env_id=TOY_ID, algo="maskable_ppo", n_verify=200)
    policy = load_policy(tmp_path)
    obs = _sampled_obs(model.observation_space, 1000, seed=7)
    masks = sample_action_masks(4, 1000, seed=8)
    sb3_actions, _ = model.predict(obs, deterministic=True, action_masks=masks)
    ours = policy.act_batch(obs, masks)
    np.testing.assert_array_equal(ours, sb3_actions)
    assert masks[np.arange(1000), ours].all()  # never an invalid action
    probs = policy.action_probabilities_batch(obs, masks)
    assert np.all(probs[~masks] == 0.0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    # Masking must matter: without masks some chosen actions would be invalid.
    assert not masks[np.arange(1000), policy.act_batch(obs)].all()


@pytest.mark.slow
def test_vecnormalize_is_baked_into_the_graph(tmp_path: Path) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from rl_shop.policies.export import load_vecnormalize

    venv = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]), norm_obs=True, norm_reward=False, clip_obs=2.0)
    venv.seed(0)
    model = PPO(
        "MlpPolicy", venv, seed=0, n_steps=128, batch_size=64, n_epochs=1, device="cpu", policy_kwargs={"net_arch": [8]}
    )
    model.learn(256)
    venv.save(tmp_path / "vecnormalize.pkl")
    stats = load_vecnormalize(tmp_path / "vecnormalize.pkl")
    assert stats is not None and stats.clip_obs == 2.0
    np.testing.assert_allclose(stats.mean, venv.obs_rms.mean)

    result = export_model(model, tmp_path / "out", env_id="CartPole-v1", algo="PPO", normalization=stats, n_verify=200)
    assert result.card.normalization is not None and result.card.normalization.applied_in == "graph"
    policy = load_policy(tmp_path / "out")
    raw = _sampled_obs(model.observation_space, 1000, seed=3) * 3.0  # big enough that clipping at 2 happens
    expected, _ = model.predict(venv.normalize_obs(raw), deterministic=True)
    np.testing.assert_array_equal(policy.act_batch(raw), expected)
    # And normalisation is really in the graph: feeding raw obs to the un-normalised net differs somewhere.
    unnormalised, _ = model.predict(raw, deterministic=True)
    assert (unnormalised != expected).any()


def test_detect_algo_rejects_non_sb3_zip(tmp_path: Path) -> None:
    bogus = tmp_path / "model.zip"
    bogus.write_bytes(b"PK not really a zip")
    with pytest.raises(PolicyExportError, match="not a stable-baselines3 model zip"):
        detect_algo(bogus)
    with pytest.raises(PolicyExportError, match="model file not found"):
        load_sb3_model(tmp_path / "missing.zip")
    with pytest.raises(PolicyExportError, match="no neural network"):
        load_sb3_model(bogus, algo="qlearning")


@pytest.mark.slow
def test_export_refuses_layout_and_action_mismatch(trained: dict[str, Path], tmp_path: Path) -> None:
    model, _ = load_sb3_model(trained["PPO"])
    five = RuntimeLayout("CartPole-v1", "x", "v9", ("a", "b", "c", "d", "e"), ("left", "right"))
    with pytest.raises(PolicyExportError, match="observes 4 values .* has 5 features"):
        export_model(model, tmp_path, env_id="CartPole-v1", algo="PPO", layout=five)
    with pytest.raises(PolicyExportError, match="2 actions but CartPole-v1 names 3"):
        export_model(model, tmp_path, env_id="CartPole-v1", algo="PPO", action_names=["l", "r", "x"])
    assert not (tmp_path / "policy_card.json").exists()


@pytest.mark.slow
def test_exported_policy_refused_after_featurizer_change(trained: dict[str, Path], tmp_path: Path) -> None:
    model, _ = load_sb3_model(trained["DQN"])
    export_model(model, tmp_path, env_id="CartPole-v1", algo="DQN", n_verify=50, run_dir=tmp_path / "fake_run")
    bumped = RuntimeLayout("CartPole-v1", CARTPOLE.module, "cartpole-2", CARTPOLE.feature_names, CARTPOLE.action_names)
    register_layout("CartPole-v1", bumped, replace=True)
    with pytest.raises(PolicyCardMismatch, match="'cartpole-1', running 'cartpole-2'") as info:
        load_policy(tmp_path)
    assert "python experiments/export.py run_dir=" in str(info.value)


@pytest.mark.slow
def test_cli_exports_a_run_directory(trained: dict[str, Path], tmp_path: Path) -> None:
    """experiments/export.py on a run dir laid out like rl_shop.train's (best/model.zip, summary.json)."""
    run = tmp_path / "runs" / "cartpole_dqn" / "20260101-000000-s0"
    (run / "best").mkdir(parents=True)
    (run / "best" / "model.zip").write_bytes(trained["DQN"].read_bytes())
    (run / "checkpoints" / "step_256").mkdir(parents=True)
    (run / "checkpoints" / "step_256" / "model.zip").write_bytes(trained["PPO"].read_bytes())
    (run / "config.yaml").write_text(
        "env: {name: gym, id: CartPole-v1, kwargs: {}}\nalgo: {name: dqn, algorithm: dqn}\nseed: 0\n"
    )
    (run / "summary.json").write_text(json.dumps({"best_mean_reward": 9.5}))
    layout_dir = tmp_path / "layout"
    layout_dir.mkdir()
    (layout_dir / "cartpole_cli_layout.py").write_text(
        "LAYOUT_VERSION = 'cp-cli-1'\nFEATURE_NAMES = ('x', 'x_dot', 'theta', 'theta_dot')\nACTION_NAMES = ('left', 'right')\n"
    )
    out = tmp_path / "guider"
    env = {**os.environ, "PYTHONPATH": str(layout_dir), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        str(REPO_ROOT / "experiments" / "export.py"),
        f"run_dir={run}",
        f"out={out}",
        "featurizer=cartpole_cli_layout",
        "evaluation.n_episodes=2",
        "verify.n_samples=100",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    card = json.loads((out / "policy_card.json").read_text())
    assert card["training"]["algo"] == "DQN"  # best/model.zip, not the PPO step checkpoint
    assert card["training"]["checkpoint"].endswith("best/model.zip")
    assert card["featurizer"]["layout_version"] == "cp-cli-1"
    assert card["evaluation"]["metrics"]["run_summary"] == {"best_mean_reward": 9.5}
    assert card["evaluation"]["metrics"]["exported_policy"]["n_episodes"] == 2
    assert f"run_dir={run}" in card["export_command"]

    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert again.returncode == 2 and "overwrite=true" in again.stderr
    missing = subprocess.run(cmd[:2], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert missing.returncode == 2 and "run_dir" in missing.stderr and "out" in missing.stderr


def test_registry_resolves_the_project_featurizers() -> None:
    """Importing ``envs`` maps the project's env ids to their featurizer modules and current constants."""
    import envs  # noqa: F401  (registers the specs' featurizers with the loader)
    from rl_shop.policies.loader import runtime_layout

    for env_id, module_name in (
        ("rl_shop/Clarify-v0", "rl_shop.policies.features.clarify"),
        ("rl_shop/Schedule-v0", "rl_shop.policies.features.schedule"),
        ("rl_shop/Collaborate-v0", "rl_shop.policies.features.collaborate"),
    ):
        module = pytest.importorskip(module_name)
        layout = runtime_layout(env_id)
        assert layout.module == module_name
        assert layout.layout_version == module.LAYOUT_VERSION
        assert layout.feature_names == tuple(module.FEATURE_NAMES)


@pytest.mark.slow
def test_export_real_schedule_env(tmp_path: Path) -> None:
    """MaskablePPO on rl_shop/Schedule-v0: its action names come from the env's config-built grid."""
    pytest.importorskip("envs.schedule")
    from sb3_contrib import MaskablePPO

    import envs  # noqa: F401  (registers rl_shop/ ids)

    env = gym.make("rl_shop/Schedule-v0")
    names = list(env.get_wrapper_attr("ACTION_NAMES"))
    model = MaskablePPO(
        "MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu", policy_kwargs={"net_arch": [16]}
    )
    model.learn(64)
    result = export_model(
        model, tmp_path, env_id="rl_shop/Schedule-v0", algo="MaskablePPO", action_names=names, n_verify=300
    )
    assert result.card.featurizer.module == "rl_shop.policies.features.schedule"
    policy = load_policy(tmp_path, expect_env_id="rl_shop/Schedule-v0", expect_action_names=names)
    obs, info = env.reset(seed=5)
    mask = np.asarray(info["action_mask"], dtype=bool) if "action_mask" in info else None
    expected, _ = model.predict(obs, deterministic=True, action_masks=mask)
    assert policy.act(obs, mask) == int(expected)
    with pytest.raises(PolicyCardMismatch, match="action names"):
        load_policy(tmp_path, expect_action_names=list(reversed(names)))
