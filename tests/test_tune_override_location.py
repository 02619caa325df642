"""Issue 13 fix: experiments/tune.py writes `<recipe>_tuned.yaml` under its output directory, and copies
it into a configs directory only when asked (`install_tuned=true`), never into the tracked tree by default.

The app runs in this process (its Hydra main, as `python experiments/tune.py ...` runs it) to
save the interpreter start-up; the working directory is a temporary one, so a relative
`configs/experiment` (the old default) would show up there.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
from omegaconf import OmegaConf

from rl_shop.paths import CONFIG_DIR, REPO_ROOT

FAST = (
    'train_overrides=["total_timesteps=256","eval.freq=256","eval.n_episodes=2","baseline.enabled=false",'
    '"checkpoint.freq=256","algo.kwargs.n_steps=64","hardware.n_envs=2"]'
)


def _tune(tmp_path, monkeypatch, *extra: str) -> None:
    from hydra.core.global_hydra import GlobalHydra

    spec = importlib.util.spec_from_file_location("_tune_app", REPO_ROOT / "experiments" / "tune.py")
    app = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(app)
    argv = [
        "tune.py",
        "recipe=cartpole_ppo",
        f"storage=sqlite:///{tmp_path}/study.db",
        f"output_dir={tmp_path}/out",
        "n_trials=1",
        "max_trials=1",
        "seeds_per_trial=1",
        "plots=false",
        "pruner.name=none",
        FAST,
        f"hydra.run.dir={tmp_path}/hydra",
        *extra,
    ]
    monkeypatch.setattr(sys, "argv", argv)
    try:
        app.cli()
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.slow
def test_tuned_recipe_goes_to_the_output_dir_and_into_configs_only_when_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tracked = CONFIG_DIR / "experiment" / "cartpole_ppo_tuned.yaml"
    tracked_before = tracked.read_bytes() if tracked.exists() else None

    _tune(tmp_path, monkeypatch)
    out = capsys.readouterr().out
    written = tmp_path / "out" / "cartpole_ppo_tuned.yaml"
    assert written.is_file(), f"no tuned recipe under the output dir; stdout: {out[-1000:]}"
    body = OmegaConf.load(written)
    assert list(body.defaults) == ["cartpole_ppo", "_self_"]
    assert not (tmp_path / "configs").exists(), "the tuned recipe was written into a configs/ tree by default"
    assert (tracked.read_bytes() if tracked.exists() else None) == tracked_before

    # Asking for it copies the same file into the given configs directory (the study's budget is
    # used up, so this run trains nothing and only exports).
    _tune(tmp_path, monkeypatch, "install_tuned=true", f"override_dir={tmp_path}/installed")
    out = capsys.readouterr().out
    installed = tmp_path / "installed" / "cartpole_ppo_tuned.yaml"
    assert installed.is_file(), out[-1000:]
    assert installed.read_text() == written.read_text()
    assert (tracked.read_bytes() if tracked.exists() else None) == tracked_before
