"""Optuna hyperparameter search over a training recipe (one worker per process/machine).

    python experiments/tune.py recipe=guider_dqn
    python experiments/tune.py recipe=guider_dqn n_trials=5 storage=postgresql://u@host/db  # on each machine
    python experiments/tune.py recipe=guider_dqn install_tuned=true   # + copy into configs/experiment/
    python experiments/train.py experiment=guider_dqn_tuned    # train with the best params

Search space: configs/search/<recipe>.yaml.  Results: <output_dir>/trials.csv, best.json,
history / importance plots and <recipe>_tuned.yaml; `install_tuned=true` also copies the latter
into <override_dir> (default configs/experiment/), where train.py finds it.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from rl_shop.paths import CONFIG_DIR  # noqa: E402
from rl_shop.train.config import explain_hydra_error, preflight  # noqa: E402
from rl_shop.train.errors import TrainConfigError  # noqa: E402

log = logging.getLogger("tune")


@hydra.main(config_path=str(CONFIG_DIR), config_name="tune", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """Run this worker's share of the study, then export best params and plots."""
    from rl_shop.train.search_space import load_search_space
    from rl_shop.train.tune_export import install_override, save_plots, write_override_file, write_trials_table
    from rl_shop.train.tuning import TuneSettings, run_worker

    try:
        data = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(data, dict)
        settings = TuneSettings.from_config(data)
        space_path = Path(cfg.search_space) if cfg.search_space else CONFIG_DIR / "search" / f"{settings.recipe}.yaml"
        space = load_search_space(space_path)
        study = run_worker(settings, space)
    except TrainConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    write_trials_table(study, settings.output_dir)
    if cfg.plots:
        save_plots(study, settings.output_dir)
    # The tuned recipe stays with the study's results; it enters a configs tree only when asked.
    path = write_override_file(study, settings.recipe, settings.output_dir)
    installed = None
    if path is not None and cfg.install_tuned:
        override_dir = Path(cfg.override_dir) if cfg.override_dir else CONFIG_DIR / "experiment"
        installed = install_override(path, override_dir)
    from collections import Counter

    states = Counter(t.state.name for t in study.trials)
    best = study.best_value if path else None
    where = (
        f"installed as {installed}"
        if installed
        else "not installed (install_tuned=true copies it into configs/experiment)"
    )
    print(
        f"study {settings.study_name}: trials by state {dict(states)}; best {best}; tuned recipe {path}, {where}",
        flush=True,
    )
    return best


def cli() -> None:
    try:
        preflight(sys.argv[1:], config_name="tune", validate=False)
        main()
    except TrainConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:
        if type(exc).__module__.startswith(("hydra", "omegaconf")):
            print(f"error: {explain_hydra_error(exc, sys.argv[1:])}", file=sys.stderr)
            sys.exit(2)
        raise


if __name__ == "__main__":
    cli()
