"""Short seeded training runs on the three shopping envs beat a random (mask-respecting) policy.

Budgets are tiny (2-3k steps), so the bar is "clearly better than random on the same 100 eval
shoppers", not "better than the heuristic"; longer runs are what the recipes in
configs/experiment/ are for.  Schedule and Collaborate train on the batched numpy envs through
the SB3 adapter (hardware=batched), Clarify on a DummyVecEnv.
"""

from __future__ import annotations

import pytest
from omegaconf import open_dict

from rl_shop.paths import CONFIG_DIR
from rl_shop.train.config import compose_train_config, validate_config
from rl_shop.train.env_factory import make_vec_env
from rl_shop.train.errors import TrainConfigError
from rl_shop.train.runner import train

pytest.importorskip("envs")

CASES = [
    (
        "clarify",
        "dqn",
        3000,
        ["hardware.n_envs=4", "algo.kwargs.learning_starts=300", "algo.kwargs.target_update_interval=250"],
        0.3,
    ),
    ("clarify", "qlearning", 3000, ["hardware.n_envs=1"], 0.2),
    ("schedule", "maskable_ppo", 2048, ["hardware=batched", "hardware.n_envs=8", "algo.kwargs.n_steps=64"], 0.1),
    ("collaborate", "maskable_ppo", 2048, ["hardware=batched", "hardware.n_envs=8", "algo.kwargs.n_steps=64"], 0.5),
    ("collaborate", "a2c", 2048, ["hardware.n_envs=4"], 0.5),
    ("schedule", "ppo", 2048, ["hardware.n_envs=4", "algo.kwargs.n_steps=128"], 0.1),
]


@pytest.mark.slow
@pytest.mark.parametrize("env, algo, steps, extra, margin", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_short_run_beats_random(tmp_path, env, algo, steps, extra, margin):
    cfg = compose_train_config(
        [
            f"env={env}",
            f"algo={algo}",
            f"total_timesteps={steps}",
            f"eval.freq={steps // 2}",
            "eval.n_episodes=100",
            "baseline.n_episodes=100",
            f"checkpoint.freq={steps}",
            f"runs_root={tmp_path}",
            "seed=0",
            *extra,
        ]
    )
    s = train(cfg)
    assert s.num_timesteps >= steps
    assert s.random_return is not None and s.heuristic_return is not None
    assert s.final_eval_return > s.random_return + margin, (s.final_eval_return, s.random_return)
    # the env's paper quantities reach the summary (and TensorBoard) from info
    expected = {"clarify": "accuracy_at_5", "schedule": "scheduling_events", "collaborate": "purchased"}[env]
    assert expected in s.final_info


def test_batched_hardware_builds_the_adapter():
    from rl_shop.train.vec_adapter import GymnasiumVectorAdapter

    s = validate_config(compose_train_config(["env=collaborate", "hardware=batched", "hardware.n_envs=3"]))
    venv = make_vec_env(s.env, s.hardware, seed=0)
    try:
        assert isinstance(venv, GymnasiumVectorAdapter) and venv.num_envs == 3
        obs = venv.reset()
        masks = venv.env_method("action_masks")
        assert obs.shape[0] == 3 and len(masks) == 3 and all(m.any() for m in masks)
    finally:
        venv.close()


RECIPES = sorted(path.stem for path in (CONFIG_DIR / "experiment").glob("*.yaml") if path.stem != "cartpole_ppo")


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipes_compose_and_validate(recipe):
    s = validate_config(compose_train_config([f"experiment={recipe}"]))
    assert s.experiment_name == recipe
    assert s.env.id.startswith("rl_shop/")


def test_expected_reward_recipe_is_collaboration_ppo_on_the_expected_reward():
    base = validate_config(compose_train_config(["experiment=collaboration_ppo"]))
    expected = validate_config(compose_train_config(["experiment=collaboration_ppo_expected"]))
    assert base.env.kwargs["expected_reward"] is False and expected.env.kwargs["expected_reward"] is True
    assert expected.algo == base.algo and expected.total_timesteps == base.total_timesteps


GROUP_OPTIONS = [
    (group, path.stem)
    for group in ("env", "algo", "hardware", "trainer")
    for path in sorted((CONFIG_DIR / group).glob("*.yaml"))
]


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_every_group_option_composes_a_complete_config(group, option):
    """The training settings have no defaults in code: Hydra's YAML is their one home, so every
    option of every group must bring all of its keys (a missing one fails here, not mid-run)."""
    s = validate_config(compose_train_config([f"{group}={option}"]))
    assert getattr(s, group).name == option if group in ("env", "algo", "trainer") else s.hardware.n_envs >= 1


def test_a_missing_key_is_named():
    cfg = compose_train_config([])
    with open_dict(cfg):
        del cfg.hardware.start_method
    with pytest.raises(TrainConfigError, match=r"hardware\.start_method: Field required"):
        validate_config(cfg)


def test_calibrated_recipe_is_the_expected_reward_recipe_on_the_calibrated_env():
    expected = validate_config(compose_train_config(["experiment=collaboration_ppo_expected"]))
    calibrated = validate_config(compose_train_config(["experiment=collaboration_ppo_calibrated"]))
    assert calibrated.env.name == "collaborate_calibrated" and calibrated.env.kwargs["expected_reward"] is True
    assert calibrated.algo == expected.algo and calibrated.total_timesteps == expected.total_timesteps
    assert calibrated.env.kwargs["types"] != expected.env.kwargs["types"]
    assert {k: v for k, v in calibrated.env.kwargs.items() if k not in ("types", "clarity_floor")} == {
        k: v for k, v in expected.env.kwargs.items() if k not in ("types", "clarity_floor")
    }
