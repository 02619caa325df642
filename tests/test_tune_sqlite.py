"""Optuna tuning on SQLite: a real 3-trial study with pruning, exact budgets, divergence handling."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.trial import TrialState

from rl_shop.paths import CONFIG_DIR
from rl_shop.train.callbacks import DivergenceError
from rl_shop.train.errors import TrainConfigError
from rl_shop.train.search_space import load_search_space, suggest, to_overrides
from rl_shop.train.summary import TrainSummary
from rl_shop.train.tune_export import write_override_file
from rl_shop.train.tuning import TuneSettings, run_worker

FAST = [
    "total_timesteps=768",
    "eval.freq=256",
    "eval.n_episodes=2",
    "baseline.enabled=false",
    "checkpoint.freq=768",
    "algo.kwargs.n_steps=64",
    "hardware.n_envs=2",
]


def _settings(tmp_path: Path, **kw) -> TuneSettings:
    base = dict(
        recipe="cartpole_ppo",
        study_name="s",
        storage=f"sqlite:///{tmp_path}/study.db",
        direction="maximize",
        n_trials=3,
        max_trials=3,
        seeds_per_trial=1,
        base_seed=0,
        train_overrides=FAST,
        sampler={"name": "random", "seed": 0},
        pruner={"name": "median"},
        heartbeat_interval=None,
        grace_period=None,
        max_retry=0,
        wait_for_stale=True,
        budget_wait_s=60.0,
        worker_id=None,
        output_dir=str(tmp_path / "out"),
    )
    base.update(kw)
    return TuneSettings.from_config(base)


def _space() -> dict:
    return load_search_space(CONFIG_DIR / "search" / "cartpole_ppo.yaml")


@pytest.mark.slow
def test_three_trial_study_with_threshold_pruning(tmp_path):
    # ThresholdPruner(lower=1e9) prunes at the first report: every trial is pruned after one eval.
    study = run_worker(_settings(tmp_path, pruner={"name": "threshold", "lower": 1e9}), _space())
    trials = study.get_trials()
    assert len(trials) == 3
    assert all(t.state == TrialState.PRUNED for t in trials)
    assert all(list(t.intermediate_values) == [256] for t in trials)


@pytest.mark.slow
def test_three_trial_study_completes_and_exports_override(tmp_path):
    s = _settings(tmp_path, pruner={"name": "none"})
    study = run_worker(s, _space())
    assert len(study.trials) == 3 and all(t.state == TrialState.COMPLETE for t in study.trials)
    # every eval was reported: 768 steps / 256 = 3 points per trial
    assert all(sorted(t.intermediate_values) == [256, 512, 768] for t in study.trials)
    best = study.best_trial
    assert best.value == max(t.value for t in study.trials)
    path = write_override_file(study, "cartpole_ppo", tmp_path / "ov")
    body = OmegaConf.load(path)
    assert list(body.defaults) == ["cartpole_ppo", "_self_"]
    assert body.algo.kwargs.learning_rate == pytest.approx(best.params["algo.kwargs.learning_rate"])
    # categorical "[64,64]" strings are restored to YAML lists
    expected_arch = [int(x) for x in best.params["algo.policy_kwargs.net_arch"].strip("[]").split(",")]
    assert list(body.algo.policy_kwargs.net_arch) == expected_arch
    # train.py accepts it: experiment=cartpole_ppo_tuned composes the recipe + the best params
    import shutil

    from rl_shop.train.config import compose_train_config

    cfg_dir = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, cfg_dir)
    shutil.copy(path, cfg_dir / "experiment" / path.name)
    cfg = compose_train_config(["experiment=cartpole_ppo_tuned"], config_dir=cfg_dir)
    assert cfg.experiment_name == "cartpole_ppo_tuned" and cfg.env.id == "CartPole-v1"
    assert cfg.algo.kwargs.learning_rate == pytest.approx(best.params["algo.kwargs.learning_rate"])
    assert cfg.algo.kwargs.n_steps == 128  # from the base recipe (FAST overrides only the trials)
    # A second worker on the same study finds the budget used up and runs nothing.
    again = run_worker(s, _space())
    assert len(again.trials) == 3


def _fake_summary(value: float) -> TrainSummary:
    return TrainSummary(
        experiment="x",
        env_id="e",
        env_name="e",
        algo="a",
        seed=0,
        run_dir="/r",
        total_timesteps=10,
        num_timesteps=10,
        final_eval_return=value,
        best_eval_return=value,
        best_step=10,
        heuristic_return=None,
        random_return=None,
        wall_time_s=1.0,
        steps_per_s=10.0,
        device="cpu",
        resumed=False,
    )


def test_divergent_and_nan_trials_are_pruned_not_crashes(tmp_path):
    calls = []

    def fake_train(cfg, on_eval=None):
        calls.append(int(cfg.seed))
        n = len(calls)
        if n == 1:
            raise DivergenceError("weights became NaN")
        if n == 2:
            on_eval(100, math.nan)  # NaN intermediate value
        if n == 3:
            return _fake_summary(math.inf)
        return _fake_summary(float(n))

    s = _settings(tmp_path, n_trials=4, max_trials=4, pruner={"name": "none"})
    study = run_worker(s, _space(), train_fn=fake_train)
    states = [t.state for t in study.trials]
    assert states == [TrialState.PRUNED] * 3 + [TrialState.COMPLETE]
    assert study.best_value == 4.0


def test_multi_seed_objective_is_the_mean(tmp_path):
    def fake_train(cfg, on_eval=None):
        on_eval(10, 1.0)
        return _fake_summary(10.0 * (int(cfg.seed) + 1))  # seeds 5, 6, 7 -> 60, 70, 80

    s = _settings(tmp_path, n_trials=1, max_trials=None, seeds_per_trial=3, base_seed=5, pruner={"name": "none"})
    study = run_worker(s, _space(), train_fn=fake_train)
    (t,) = study.trials
    assert t.value == pytest.approx(70.0)
    # seed k's step t is reported at k * total_timesteps + t (total = 768 from FAST)
    assert sorted(t.intermediate_values) == [10, 778, 1546]


def test_search_space_sampling_and_overrides():
    space = {
        "algo.kwargs.learning_rate": {"type": "log", "low": 1e-4, "high": 1e-2},
        "algo.kwargs.batch_size": {"type": "int", "low": 32, "high": 128, "step": 32},
        "algo.kwargs.gamma": {"type": "categorical", "choices": [0.9, 0.99]},
    }
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    values = suggest(trial, space)
    assert 1e-4 <= values["algo.kwargs.learning_rate"] <= 1e-2
    assert values["algo.kwargs.batch_size"] in (32, 64, 96, 128)
    assert values["algo.kwargs.gamma"] in (0.9, 0.99)
    assert to_overrides({"a.b": 3}) == ["a.b=3"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("params: {}", "non-empty"),
        ("params: {x: {type: uniform, low: 0, high: 1}}", "needs `type`"),
        ("params: {x: {type: float, low: 2, high: 1}}", "low must be < high"),
        ("params: {x: {type: log, low: 0, high: 1}}", "log scale needs low > 0"),
        ("params: {x: {type: categorical}}", "choices"),
    ],
)
def test_bad_search_space_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(TrainConfigError, match=message):
        load_search_space(path)


def test_tune_py_config_errors_exit_2(tmp_path):
    import subprocess
    import sys

    from rl_shop.paths import REPO_ROOT

    script = str(REPO_ROOT / "experiments" / "tune.py")
    cases = {
        "storage=study.db": "SQLAlchemy URL",
        "recipe=no_such_recipe": "search space",
        "pruner.name=bogus": "pruner.name='bogus' unknown",
    }
    for override, expected in cases.items():
        proc = subprocess.run(
            [
                sys.executable,
                script,
                override,
                f"output_dir={tmp_path}/o",
                f"storage=sqlite:///{tmp_path}/s.db" if "storage" not in override else override,
                f"hydra.run.dir={tmp_path}/h",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert proc.returncode == 2, (override, proc.stderr[-2000:])
        assert expected in proc.stderr, (override, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr


def test_bad_tune_settings_are_clear(tmp_path):
    with pytest.raises(TrainConfigError, match="SQLAlchemy URL"):
        _settings(tmp_path, storage="study.db")
    with pytest.raises(TrainConfigError, match="n_trials"):
        _settings(tmp_path, n_trials=-1)
    with pytest.raises(TrainConfigError, match="grace_period"):
        _settings(tmp_path, heartbeat_interval=5, grace_period=2)
