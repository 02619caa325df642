"""Hyperparameter search with Optuna, driven natively (no Hydra sweeper plugin).

A *worker* opens (or creates) one study in an RDB storage (SQLite by default, any SQLAlchemy URL,
PostgreSQL for many machines) and runs trials until its own `n_trials` or the study's global
budget is used up.  Each trial composes the train config (`experiment=<recipe>` + sampled
overrides) and trains `seeds_per_trial` seeds; the objective is their mean final eval return.

Exactness across workers: when a global budget `max_trials` is set, the worker that *creates*
the study enqueues exactly that many WAITING trials; workers only ever pop queued trials (an
atomic WAITING -> RUNNING update in the database) and never create new ones, so the study holds
exactly `max_trials` trials however many workers race.  A killed worker's trial stops sending
heartbeats; after `grace_period` any worker marks it FAIL and RetryHeartbeatStaleTrialCallback
re-queues a copy, which a live worker runs, so no budgeted trial is lost.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import logging
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.exceptions import DuplicatedStudyError
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from rl_shop.train.callbacks import DivergenceError
from rl_shop.train.config import compose_train_config
from rl_shop.train.errors import TrainConfigError
from rl_shop.train.runner import train
from rl_shop.train.search_space import suggest, to_overrides
from rl_shop.train.summary import TrainSummary

log = logging.getLogger(__name__)
# Heartbeats and the retry callback are marked experimental by Optuna; we rely on them knowingly.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

TrainFn = Callable[..., TrainSummary]
BUDGET_ATTR = "rl_shop_budget"


@dataclass
class TuneSettings:
    """The parts of configs/tune.yaml the worker needs (validated in from_config)."""

    recipe: str
    study_name: str
    storage: str
    direction: str
    n_trials: int | None
    max_trials: int | None
    seeds_per_trial: int
    base_seed: int
    train_overrides: list[str]
    sampler: dict[str, Any]
    pruner: dict[str, Any]
    heartbeat_interval: int | None
    grace_period: int | None
    max_retry: int
    output_dir: Path
    wait_for_stale: bool
    budget_wait_s: float
    worker_id: str | None

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> TuneSettings:
        """Validated settings from the composed ``configs/tune.yaml`` (the one home of every default)."""
        missing = sorted({f.name for f in dataclasses.fields(cls)} - set(cfg))
        if missing:
            raise TrainConfigError(f"tune config lacks {missing}; configs/tune.yaml sets every key")

        def need_pos(key: str, allow_none: bool = False) -> int | None:
            v = cfg.get(key)
            if v is None and allow_none:
                return None
            if not isinstance(v, int) or v <= 0:
                raise TrainConfigError(f"tune config: {key} must be a positive integer, got {v!r}")
            return v

        if cfg.get("direction") not in ("maximize", "minimize"):
            raise TrainConfigError(f"tune config: direction must be maximize|minimize, got {cfg.get('direction')!r}")
        if not isinstance(cfg.get("storage"), str) or "://" not in cfg["storage"]:
            raise TrainConfigError(
                f"tune config: storage must be an SQLAlchemy URL like sqlite:///tune.db or "
                f"postgresql://user@host/db, got {cfg.get('storage')!r}"
            )
        hb, grace = cfg.get("heartbeat_interval"), cfg.get("grace_period")
        if hb is not None and (grace is None or grace <= hb):
            raise TrainConfigError("tune config: grace_period must be set and > heartbeat_interval")
        return cls(
            recipe=str(cfg["recipe"]),
            study_name=str(cfg["study_name"]),
            storage=cfg["storage"],
            direction=cfg["direction"],
            n_trials=need_pos("n_trials", allow_none=True),
            max_trials=need_pos("max_trials", allow_none=True),
            seeds_per_trial=int(need_pos("seeds_per_trial") or 1),
            base_seed=int(cfg["base_seed"]),
            train_overrides=[str(o) for o in cfg["train_overrides"] or []],
            sampler=dict(cfg["sampler"]),
            pruner=dict(cfg["pruner"]),
            heartbeat_interval=hb,
            grace_period=grace,
            max_retry=int(cfg["max_retry"]),
            output_dir=Path(cfg["output_dir"]),
            wait_for_stale=bool(cfg["wait_for_stale"]),
            budget_wait_s=float(cfg["budget_wait_s"]),
            worker_id=None if cfg.get("worker_id") is None else str(cfg["worker_id"]),
        )


def make_sampler(spec: dict[str, Any]) -> optuna.samplers.BaseSampler:
    spec = dict(spec)
    name = spec.pop("name", "tpe")
    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
    if name not in samplers:
        raise TrainConfigError(f"sampler.name={name!r} unknown; use one of {sorted(samplers)}")
    return samplers[name](**_accepted(samplers[name], spec, "sampler"))


def worker_identity(settings: TuneSettings) -> str:
    """`worker_id` when set (reproducible), else `<hostname>:<pid>` (unique per running worker)."""
    return settings.worker_id if settings.worker_id is not None else f"{socket.gethostname()}:{os.getpid()}"


def derive_sampler_seed(base_seed: int, identity: str, n_started: int) -> int:
    """The sampler seed of one worker: a hash of (sampler.seed, worker identity, trials started).

    A fixed `sampler.seed` shared by every worker made parallel workers (and a restarted one)
    replay the same random start-up trials. Mixing in the identity separates parallel workers;
    mixing in the number of trials the study had already started when the worker joined makes a
    restarted worker (same identity) draw new points. The same seed, identity and study state
    give the same seed, so a single worker on a fresh study is reproducible.
    """
    text = f"{int(base_seed)}|{identity}|{int(n_started)}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _accepted(cls: type, spec: dict[str, Any], group: str) -> dict[str, Any]:
    """Keep the keys `cls` accepts: switching e.g. pruner.name=none must not trip on median's keys."""
    params = inspect.signature(cls).parameters
    dropped = sorted(k for k in spec if k not in params)
    if dropped:
        log.info("%s %s ignores %s", group, cls.__name__, dropped)
    return {k: v for k, v in spec.items() if k in params}


def make_pruner(spec: dict[str, Any]) -> optuna.pruners.BasePruner:
    spec = dict(spec)
    name = spec.pop("name", "median")
    pruners = {
        "median": optuna.pruners.MedianPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "threshold": optuna.pruners.ThresholdPruner,
        "none": optuna.pruners.NopPruner,
    }
    if name not in pruners:
        raise TrainConfigError(f"pruner.name={name!r} unknown; use one of {sorted(pruners)}")
    spec = _accepted(pruners[name], spec, "pruner")
    try:
        return pruners[name](**spec)
    except TypeError as exc:
        raise TrainConfigError(f"pruner {name!r} rejected its arguments {spec}: {exc}") from exc


def make_storage(settings: TuneSettings) -> RDBStorage:
    """RDB storage with heartbeats (a dead worker's trial is failed and re-queued)."""
    engine_kwargs: dict[str, Any] = {}
    url = settings.storage
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}
        db_path = url.split(":///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    else:
        engine_kwargs["pool_pre_ping"] = True
    try:
        return RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=settings.heartbeat_interval,
            grace_period=settings.grace_period,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=settings.max_retry)
            if settings.heartbeat_interval
            else None,
        )
    except Exception as exc:
        raise TrainConfigError(f"cannot open Optuna storage {url!r}: {exc}") from exc


def open_study(settings: TuneSettings) -> tuple[optuna.Study, RDBStorage]:
    """Create the study (and its trial budget) or join the existing one."""
    storage = make_storage(settings)
    kwargs = dict(
        study_name=settings.study_name,
        storage=storage,
        direction=settings.direction,
        sampler=make_sampler(settings.sampler),
        pruner=make_pruner(settings.pruner),
    )
    try:
        study = optuna.create_study(load_if_exists=False, **kwargs)  # type: ignore[arg-type]
        created = True
    except DuplicatedStudyError:
        study = optuna.create_study(load_if_exists=True, **kwargs)  # type: ignore[arg-type]
        created = False
    if settings.max_trials is not None:
        if created:
            for _ in range(settings.max_trials):
                study.enqueue_trial({})
            study.set_user_attr(BUDGET_ATTR, settings.max_trials)
        else:
            _wait_for_budget(study, settings)
    _seed_sampler_for_worker(study, settings)
    return study, storage


def _seed_sampler_for_worker(study: optuna.Study, settings: TuneSettings) -> None:
    """Replace the study's sampler by one seeded for this worker (see derive_sampler_seed)."""
    spec = dict(settings.sampler)
    base = spec.get("seed")
    if base is None:  # unseeded: Optuna draws a seed from OS entropy, already different per worker
        return
    n_started = sum(1 for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING)
    identity = worker_identity(settings)
    spec["seed"] = derive_sampler_seed(int(base), identity, n_started)
    study.sampler = make_sampler(spec)
    study._rl_shop_sampler_seed = spec["seed"]  # type: ignore[attr-defined]  # our own tag on Optuna's Study, read back with getattr in the objective (recorded on each trial)
    log.info(
        "worker %s: sampler seed %d (sampler.seed=%s, %d trials started before)",
        identity,
        spec["seed"],
        base,
        n_started,
    )


def _wait_for_budget(study: optuna.Study, settings: TuneSettings) -> None:
    deadline = time.time() + settings.budget_wait_s
    while BUDGET_ATTR not in study.user_attrs:
        if time.time() > deadline:
            raise TrainConfigError(
                f"study {settings.study_name!r} exists but has no trial budget; it was created "
                "without max_trials (or its creator died while queuing). Use a new study_name."
            )
        time.sleep(0.5)
    budget = study.user_attrs[BUDGET_ATTR]
    if budget != settings.max_trials:
        log.warning("study budget is %s (set by its creator); ignoring max_trials=%s", budget, settings.max_trials)


def _pop_queued_trial(study: optuna.Study) -> int | None:
    """Atomically claim one WAITING trial (WAITING -> RUNNING in one DB transaction)."""
    storage = study._storage
    for frozen in storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                return frozen._trial_id
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


class _Heartbeat:
    """Record a heartbeat for a running trial every `interval` seconds from a daemon thread."""

    def __init__(self, storage: RDBStorage, trial_id: int, interval: int | None) -> None:
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Heartbeat:
        if self.interval:
            self.storage.record_heartbeat(self.trial_id)
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.storage.record_heartbeat(self.trial_id)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def objective(
    trial: optuna.Trial,
    settings: TuneSettings,
    space: dict[str, dict[str, Any]],
    train_fn: TrainFn = train,
) -> float:
    """Mean final eval return over `seeds_per_trial` seeds; reports every eval for pruning.

    Seed k's evaluation at env step t is reported as step k * total_timesteps + t, so the pruner
    compares trials at the same seed and the same point of training.  A divergent run (NaN
    return or weights) prunes the trial instead of crashing the worker.
    """
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    trial.set_user_attr("worker_identity", worker_identity(settings))
    sampler_seed = getattr(trial.study, "_rl_shop_sampler_seed", None)
    if sampler_seed is not None:
        trial.set_user_attr("sampler_seed", sampler_seed)
    values = suggest(trial, space)
    finals: list[float] = []
    for k in range(settings.seeds_per_trial):
        seed = settings.base_seed + k
        overrides = [
            f"experiment={settings.recipe}",
            *settings.train_overrides,
            *to_overrides(values),
            f"seed={seed}",
            f"runs_root={settings.output_dir / 'runs' / f'trial_{trial.number}'}",
            "logging.progress_bar=false",
        ]
        cfg = compose_train_config(overrides)
        offset = k * int(cfg.total_timesteps)

        def report(step: int, mean: float, _offset: int = offset, seed: int = seed) -> None:
            if not math.isfinite(mean):
                raise optuna.TrialPruned(f"non-finite eval return at step {step}")
            trial.report(mean, _offset + step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at seed {seed}, step {step} (eval return {mean:.3f})")

        try:
            summary = train_fn(cfg, on_eval=report)
        except DivergenceError as exc:
            raise optuna.TrialPruned(f"diverged: {exc}") from exc
        if not math.isfinite(summary.final_eval_return):
            raise optuna.TrialPruned("non-finite final eval return")
        finals.append(summary.final_eval_return)
        trial.set_user_attr(f"seed_{seed}_final", summary.final_eval_return)
        trial.set_user_attr(f"seed_{seed}_run_dir", summary.run_dir)
    return float(np.mean(finals))


def run_worker(
    settings: TuneSettings,
    space: dict[str, dict[str, Any]],
    train_fn: TrainFn = train,
) -> optuna.Study:
    """Run trials until this worker's n_trials or the study's budget is used up."""
    study, storage = open_study(settings)
    done = 0
    while settings.n_trials is None or done < settings.n_trials:
        if settings.heartbeat_interval:
            optuna.storages.fail_stale_trials(study)
        if settings.max_trials is not None:
            trial_id = _pop_queued_trial(study)
            if trial_id is None:
                if settings.wait_for_stale and settings.heartbeat_interval and _others_running(study):
                    time.sleep(settings.heartbeat_interval)  # a dead worker's trial may be re-queued
                    continue
                break
        else:
            trial_id = study._storage.create_new_trial(study._study_id)
        trial = optuna.Trial(study, trial_id)
        with _Heartbeat(storage, trial_id, settings.heartbeat_interval):
            _run_one(study, trial, settings, space, train_fn)
        done += 1
    return study


def _others_running(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _run_one(
    study: optuna.Study,
    trial: optuna.Trial,
    settings: TuneSettings,
    space: dict[str, dict[str, Any]],
    train_fn: TrainFn,
) -> None:
    try:
        value = objective(trial, settings, space, train_fn)
    except optuna.TrialPruned as exc:
        log.info("trial %d pruned: %s", trial.number, exc)
        study.tell(trial, state=TrialState.PRUNED)
        return
    except TrainConfigError:
        study.tell(trial, state=TrialState.FAIL)
        raise
    except Exception as exc:  # one broken trial must not kill the whole worker
        log.exception("trial %d failed: %s", trial.number, exc)
        trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
        study.tell(trial, state=TrialState.FAIL)
        return
    study.tell(trial, value)
    log.info("trial %d: %.4f %s", trial.number, value, trial.params)
