"""Issue 13 fix: the Optuna sampler seed is derived per worker, so workers do not replay each other.

With one fixed `sampler.seed`, every parallel worker (and a restarted one) drew the same random
start-up trials. Trials here are scored by a fake trainer (no training), so only the sampler's
choices are under test. Storage: one SQLite file shared by the workers.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from rl_shop.paths import CONFIG_DIR
from rl_shop.train.search_space import load_search_space
from rl_shop.train.summary import TrainSummary
from rl_shop.train.tuning import TuneSettings, open_study, run_worker

SPACE_FILE = CONFIG_DIR / "search" / "cartpole_ppo.yaml"


def _fake_train(cfg, on_eval=None) -> TrainSummary:
    value = float(cfg.algo.kwargs.learning_rate)
    return TrainSummary(
        experiment="x",
        env_id="e",
        env_name="e",
        algo="a",
        seed=int(cfg.seed),
        run_dir="/r",
        total_timesteps=10,
        num_timesteps=10,
        final_eval_return=value,
        best_eval_return=value,
        best_step=10,
        heuristic_return=None,
        random_return=None,
        wall_time_s=0.0,
        steps_per_s=0.0,
        device="cpu",
        resumed=False,
    )


def _settings(db: Path, out: Path, **kw) -> TuneSettings:
    base = dict(
        recipe="cartpole_ppo",
        study_name="s",
        storage=f"sqlite:///{db}",
        direction="maximize",
        n_trials=3,
        max_trials=None,
        seeds_per_trial=1,
        base_seed=0,
        train_overrides=[],
        sampler={"name": "tpe", "seed": 0, "n_startup_trials": 10},
        pruner={"name": "none"},
        heartbeat_interval=None,
        grace_period=None,
        max_retry=0,
        wait_for_stale=True,
        budget_wait_s=60.0,
        worker_id=None,
        output_dir=str(out),
    )
    base.update(kw)
    return TuneSettings.from_config(base)


def _params(trial: optuna.trial.FrozenTrial) -> tuple:
    return tuple(sorted(trial.params.items()))


def _worker_process(db: str, out: str, n_trials: int) -> None:
    # The default identity (no worker_id): as two `python experiments/tune.py` processes would run.
    settings = _settings(Path(db), Path(out), n_trials=n_trials)
    run_worker(settings, load_search_space(SPACE_FILE), train_fn=_fake_train)


@pytest.mark.slow
def test_two_parallel_workers_on_one_storage_draw_different_startup_trials(tmp_path):
    db = tmp_path / "study.db"
    # Create the study first, as the first worker would. No global budget (max_trials=None): each
    # worker creates its own trials. (Claiming budgeted trials is not atomic on SQLite: two workers
    # can pop the same WAITING trial; PostgreSQL is the storage for many workers.)
    open_study(_settings(db, tmp_path / "o", n_trials=1))
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_worker_process, args=(str(db), str(tmp_path / "o"), 3)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 6, [(t.number, t.state, t.user_attrs) for t in study.trials]
    by_worker: dict[str, list[tuple]] = {}
    for t in trials:
        by_worker.setdefault(t.user_attrs["worker"], []).append(_params(t))
    assert len(by_worker) == 2, by_worker.keys()
    a, b = by_worker.values()
    assert not set(a) & set(b), f"workers drew the same start-up trials: {set(a) & set(b)}"
    # Each trial records the seed its worker's sampler used, and the two differ.
    seeds = {t.user_attrs["worker"]: t.user_attrs.get("sampler_seed") for t in trials}
    assert None not in seeds.values() and len(set(seeds.values())) == 2, seeds


@pytest.mark.slow
def test_same_seed_and_worker_id_is_reproducible_on_a_fresh_study(tmp_path):
    runs = []
    for name in ("a", "b"):
        s = _settings(tmp_path / f"{name}.db", tmp_path / name, worker_id="w0", n_trials=2)
        study = run_worker(s, load_search_space(SPACE_FILE), train_fn=_fake_train)
        runs.append([_params(t) for t in study.trials])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 2
    # another worker id (same base seed) draws other trials
    other = run_worker(
        _settings(tmp_path / "c.db", tmp_path / "c", worker_id="w1", n_trials=2),
        load_search_space(SPACE_FILE),
        train_fn=_fake_train,
    )
    assert not set(runs[0]) & {_params(t) for t in other.trials}


@pytest.mark.slow
def test_restarted_worker_does_not_replay_its_startup_trials(tmp_path):
    db = tmp_path / "study.db"
    s = _settings(db, tmp_path / "o", worker_id="w0")
    first = run_worker(s, load_search_space(SPACE_FILE), train_fn=_fake_train)
    before = [_params(t) for t in first.trials]
    again = run_worker(s, load_search_space(SPACE_FILE), train_fn=_fake_train)  # same command, restarted
    after = [_params(t) for t in again.trials[3:]]
    assert len(after) == 3
    assert not set(before) & set(after), f"restarted worker replayed {set(before) & set(after)}"
