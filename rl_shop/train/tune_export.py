"""Results of a study: best params as a Hydra experiment file, plus history/importance plots."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import optuna
import yaml
from omegaconf import OmegaConf
from optuna.trial import TrialState

log = logging.getLogger(__name__)


def _parse(value: object) -> object:
    """Categorical choices such as "[64,64]" were written as strings; restore their YAML value."""
    if isinstance(value, str):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    return value


def write_override_file(study: optuna.Study, experiment: str, out_dir: Path) -> Path | None:
    """Write `<out_dir>/<experiment>_tuned.yaml`, usable as `experiment=<experiment>_tuned` once it
    is in configs/experiment/ (see `install_override`).

    It extends the base recipe through its defaults list and sets the best trial's params, so a
    later edit of the base recipe still flows into the tuned one.
    """
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        log.warning("no completed trial in %s; no override file written", study.study_name)
        return None
    best = study.best_trial
    body = OmegaConf.create({"defaults": [experiment, "_self_"], "experiment_name": f"{experiment}_tuned"})
    for key, value in best.params.items():
        OmegaConf.update(body, key, _parse(value), force_add=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{experiment}_tuned.yaml"
    header = (
        "# @package _global_\n"
        f"# Tuned by experiments/tune.py: study {study.study_name!r}, trial {best.number}, "
        f"objective {best.value:.6g} (mean final eval return over seeds).\n"
        f"# Use: in configs/experiment/ (tune.py install_tuned=true copies it there), then\n"
        f"#      python experiments/train.py experiment={experiment}_tuned\n"
    )
    path.write_text(header + OmegaConf.to_yaml(body))
    return path


def install_override(path: Path, config_dir: Path) -> Path:
    """Copy a tuned recipe into a Hydra experiment directory (e.g. configs/experiment/), atomically.

    Only on request (`install_tuned=true`): by default tune.py leaves the tracked tree alone and
    the tuned recipe stays in the study's output directory.
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    target = config_dir / path.name
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(path.read_text())
    tmp.replace(target)
    return target


def save_plots(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Optimization history, intermediate values and (when computable) param importances."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure
    from optuna.visualization import matplotlib as ovm

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    plots = {
        "history.png": ovm.plot_optimization_history,
        "intermediate.png": ovm.plot_intermediate_values,
        "importance.png": ovm.plot_param_importances,
    }
    for name, fn in plots.items():
        try:
            ax = fn(study)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # e.g. < 2 completed trials
            log.info("skipping %s: %s", name, exc)
            continue
        fig = ax.figure if hasattr(ax, "figure") else plt.gcf()
        assert isinstance(fig, Figure), "Optuna's plots draw on a top-level figure"
        fig.savefig(out_dir / name, dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(out_dir / name)
    return written


def write_trials_table(study: optuna.Study, out_dir: Path) -> Path:
    """All trials (number, state, value, params, user attrs) as CSV, and the best as JSON."""
    out_dir.mkdir(parents=True, exist_ok=True)
    df = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs", "duration"))
    path = out_dir / "trials.csv"
    df.to_csv(path, index=False)
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if completed:
        best = study.best_trial
        (out_dir / "best.json").write_text(
            json.dumps({"number": best.number, "value": best.value, "params": best.params}, indent=2)
        )
    return path
