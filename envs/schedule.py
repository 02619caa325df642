"""``rl_shop/Schedule-v0``: the Leader's condition-driven scheduling of a Planner DAG (MACDF Eq. 1).

Event-driven and exact: between two task completions the state error ``e(t)`` is constant and
the threshold ``delta * exp(-alpha t)`` decays continuously, so the firing time of Eq. 1 has a
closed form on each piece and no time step ``dt`` is ever ticked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, overload

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.dag import TASK_TYPES, DagSampler, EpisodeUniforms
from envs.specs import SCHEDULE
from rl_shop.array_ops import NUMPY, SCALAR, FormulaOps, Num
from rl_shop.config_files import env_kwargs
from rl_shop.paths import CONFIG_DIR
from rl_shop.policies.features.schedule import (
    BLOCKED,
    DONE,
    FEATURE_NAMES,
    LAYOUT_VERSION,
    RUNNING,
    ScheduleState,
    TriggerSpec,
    action_mask,
    build_trigger_grid,
    featurize_fields,
)

CONFIG_PATH: Path = CONFIG_DIR / "env" / f"{SCHEDULE.config}.yaml"
_TIME_ORIGINS = ("episode", "event")
_ACTION_MODES = ("per_event", "per_episode")


def load_default_kwargs(path: Path = CONFIG_PATH) -> dict[str, Any]:
    """The ``kwargs`` block of the env config file: the single source of the defaults."""
    return env_kwargs(path)


@dataclass(frozen=True)
class ScheduleParams:
    """Validated env arguments shared by :class:`ScheduleEnv` and the batched version."""

    sampler: DagSampler
    triggers: tuple[TriggerSpec, ...]
    paper_alpha: float
    time_origin: str
    r_blocked: float
    r_ready: float
    r_done: float
    max_wait_s: float  # inf when disabled
    max_events: int
    action_mode: str
    w_latency: float
    c_event: float
    rng_block_episodes: int

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.triggers)


def parse_schedule_kwargs(**overrides: object) -> ScheduleParams:
    """Merge ``overrides`` over the YAML defaults and validate them, naming any bad value."""
    kw = load_default_kwargs()
    unknown = sorted(set(overrides) - set(kw))
    if unknown:
        raise TypeError(
            f"unknown {SCHEDULE.id} argument(s) {unknown}; known arguments: {sorted(kw)} (see {CONFIG_PATH})."
        )
    kw.update(overrides)
    triggers = build_trigger_grid(
        kw["delta_grid"], kw["alpha_grid"], kw.get("periodic_grid_s") or (), bool(kw["every_completion"])
    )
    if kw["time_origin"] not in _TIME_ORIGINS:
        raise ValueError(f"time_origin must be one of {_TIME_ORIGINS}, got {kw['time_origin']!r}.")
    if kw["action_mode"] not in _ACTION_MODES:
        raise ValueError(f"action_mode must be one of {_ACTION_MODES}, got {kw['action_mode']!r}.")
    lv = kw["readiness_levels"]
    try:
        rb, rr, rd = float(lv["blocked"]), float(lv["ready"]), float(lv["done"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"readiness_levels must map blocked/ready/done to numbers, got {lv!r}.") from exc
    if not (rb <= rr <= rd and rb < rd):
        raise ValueError(f"readiness_levels must satisfy blocked <= ready <= done and blocked < done, got {lv!r}.")
    max_wait = kw["max_wait_s"]
    max_wait = math.inf if max_wait is None else float(max_wait)
    if not max_wait > 0:
        raise ValueError(f"max_wait_s must be > 0 (or null to disable), got {kw['max_wait_s']!r}.")
    if int(kw["max_events"]) < 1:
        raise ValueError(f"max_events must be >= 1, got {kw['max_events']!r}.")
    for key in ("w_latency", "c_event"):
        if not (math.isfinite(float(kw[key])) and float(kw[key]) >= 0):
            raise ValueError(f"{key} must be a finite number >= 0, got {kw[key]!r}.")
    sampler = DagSampler(kw["templates"], kw["latency"], int(kw["max_tasks"]), kw.get("random_dag"))
    return ScheduleParams(
        sampler=sampler,
        triggers=triggers,
        paper_alpha=float(kw["paper_alpha"]),
        time_origin=kw["time_origin"],
        r_blocked=rb,
        r_ready=rr,
        r_done=rd,
        max_wait_s=max_wait,
        max_events=int(kw["max_events"]),
        action_mode=kw["action_mode"],
        w_latency=float(kw["w_latency"]),
        c_event=float(kw["c_event"]),
        rng_block_episodes=int(kw["rng_block_episodes"]),
    )


def squared_readiness_jumps(p: ScheduleParams) -> tuple[float, float]:
    """``(dd^2, da^2)``: the squared readiness change of a finishing task (ready -> done) and of a
    task whose last dependency finished (blocked -> ready), the terms of ``||e(t)||``."""
    dd = p.r_done - p.r_ready
    da = p.r_ready - p.r_blocked
    return dd * dd, da * da


class ScheduleOps(FormulaOps[Num], Protocol[Num]):
    """The ``ops`` of the Eq. 1 formulas: ``SCALAR`` (the single env) or ``NUMPY`` (the batched env)."""

    def sqrt(self, x: Num) -> Num: ...


if TYPE_CHECKING:  # the two ops objects the Eq. 1 formulas run on
    _scalar: ScheduleOps[float] = SCALAR
    _numpy: ScheduleOps[np.ndarray] = NUMPY


def state_error_norm(ops: ScheduleOps[Num], n_completed: Num, n_unblocked: Num, dd2: float, da2: float) -> Num:
    """Eq. 1's ``||e(t)||`` when ``n_completed`` tasks finished and ``n_unblocked`` became ready."""
    return ops.sqrt(n_completed * dd2 + n_unblocked * da2)


def event_reward(w_latency: float, c_event: float, interval: Num) -> Num:
    """Reward of one scheduling event: ``r_k = -(w_latency * (t_k - t_{k-1}) + c_event)`` (scalars or arrays)."""
    return -(w_latency * interval + c_event)


@overload
def eq1_crossing_time(E: float, delta: float, alpha: float, origin: float) -> float: ...
@overload
def eq1_crossing_time(E: Num, delta: Num, alpha: Num, origin: Num, ops: ScheduleOps[Num]) -> Num: ...
def eq1_crossing_time(
    E: Num,
    delta: Num,
    alpha: Num,
    origin: Num,
    ops: ScheduleOps[Num] = SCALAR,  # type: ignore[assignment]  # only the float overload omits ops
) -> Num:
    """Earliest ``t`` with ``E > delta * exp(-alpha (t - origin))`` for constant ``E`` (Eq. 1).

    Closed form ``origin + ln(delta / E) / alpha``; ``-inf`` when it already holds for every t
    (``E > delta`` with ``alpha = 0``), ``inf`` when it never holds (``E = 0``, or ``alpha = 0``
    with ``E <= delta``). The condition is strict, so the infimum is the crossing point itself.
    On Python numbers (``ops=SCALAR``, the single env) or numpy arrays (``NUMPY``, the batched env):
    the closed form is computed on safe stand-ins where it is not used, so neither divides by zero.
    """
    positive = E > 0.0
    decays = alpha != 0.0
    closed = origin + ops.log(delta / ops.where(positive, E, 1.0)) / ops.where(decays, alpha, 1.0)
    constant = ops.where(delta < E, -math.inf, math.inf)
    return ops.where(positive, ops.where(decays, closed, constant), math.inf)


def _episodes_as_lists(sampler: DagSampler, u: np.ndarray) -> list[tuple]:
    """Sample a block of episodes and convert each to the plain lists the single env runs on."""
    dag = sampler.sample(u)
    tmpl_parents = [[list(d) for d in t.parents] for t in sampler.templates]
    out = []
    for b, (types, lat, n, k) in enumerate(
        zip(dag.types.tolist(), dag.latency_s.tolist(), dag.n_tasks.tolist(), dag.template.tolist())
    ):
        if k < len(tmpl_parents):
            parents = [list(d) for d in tmpl_parents[k]]
        else:
            parents = [np.flatnonzero(dag.parents[b, i, :n]).tolist() for i in range(n)]
        out.append((types[:n], parents, lat[:n], sampler.template_names[k]))
    return out


class ScheduleEnv(gym.Env):
    """The Leader schedules a Planner DAG; each step chooses the trigger of the next scheduling event.

    ## Description
    A Planner DAG (MACDF Sec. 3.4) of atomic tasks (ProductSearch, WebSearch, ToolCall, Decision)
    with dependencies and hidden lognormal latencies is executed. Tasks are dispatched only at
    scheduling events: the Leader wakes up, reads Memory and dispatches every task whose
    dependencies are done. Event ``k`` fires by MACDF Eq. 1

        t_k = inf{ t > t_{k-1} : ||e(t)|| > delta * exp(-alpha * t) }

    with the state error ``e(t) = r(t) - r(t_{k-1})``: the change of the task readiness vector
    since the last event. Readiness ``r_i(t)`` is ``blocked`` (a dependency not done), ``ready``
    (all dependencies done: dispatchable or running) or ``done`` (levels in config, default
    0 / 0.5 / 1); ``||.||`` is the Euclidean norm. ``t`` counts from the episode start as in the
    paper (``time_origin: episode``) or from ``t_{k-1}`` (``time_origin: event``). Because
    ``||e||`` only changes at completions, each piece gives the closed form
    ``t = origin + ln(delta / ||e||) / alpha`` and the event time is exact.

    Safeguards: if Eq. 1 can never fire (``alpha = 0`` and ``||e|| <= delta`` after the last
    running task finished, i.e. nothing is running and nothing can change ``e``), the event
    fires when the last running task finishes; and an event always fires at the latest
    ``max_wait_s`` after ``t_{k-1}``.

    The baselines are trigger *rules* in the same action grid, so learned and hand-written
    schedules are compared in one env: ``eq1(delta, alpha)``, ``periodic(P s)`` (fires every P
    seconds regardless of ``e(t)``) and ``every_completion`` (fires at the next completion).

    ## Action Space
    ``Discrete(len(ACTION_NAMES))``: the trigger rule for the next interval, from the grid
    ``delta_grid x alpha_grid``, then ``periodic_grid_s``, then ``every_completion``.
    In ``action_mode: per_episode`` the first action fixes the rule for the whole episode and
    the episode is a single step.

    ## Observation Space
    ``Box(0, inf, (17,), float32)`` from ``rl_shop.policies.features.schedule.featurize``
    (``FEATURE_NAMES``: elapsed time, events so far, last interval, done fraction, running and
    remaining tasks per type, running ages, DAG size), ``LAYOUT_VERSION = "schedule-v1"``.

    ## Rewards
    Per event ``r_k = -(w_latency * (t_k - t_{k-1}) + c_event)``; the return is
    ``-(w_latency * T + c_event * K)`` with end-to-end latency ``T`` and ``K`` events.

    ## Starting State
    A DAG is sampled (template by query-type weight, or a random DAG), latencies drawn, and
    the Leader's initial event at ``t_0 = 0`` dispatches the root tasks (not counted in ``K``).

    ## Episode End
    Terminated at the first event at which every task is done (the Leader must observe the
    Decision's output to answer). Truncated after ``max_events`` events.

    ## Arguments
    Every key of ``configs/env/schedule.yaml`` ``kwargs`` (grids, ``time_origin``,
    ``readiness_levels``, ``max_wait_s``, ``max_events``, ``action_mode``, ``w_latency``,
    ``c_event``, ``latency``, ``templates``, ``random_dag``, ``max_tasks``, ...).

    ``info`` carries ``latency`` (s), ``scheduling_events``, ``action_mask``, ``fired_by``
    and ``query_type`` (template name).
    """

    metadata = {"render_modes": []}
    action_space: spaces.Discrete

    def __init__(self, **kwargs: object) -> None:
        self.params = p = parse_schedule_kwargs(**kwargs)
        self.ACTION_NAMES: tuple[str, ...] = p.action_names
        self.FEATURE_NAMES = FEATURE_NAMES
        self.LAYOUT_VERSION = LAYOUT_VERSION
        self.action_space = spaces.Discrete(len(p.triggers))
        self.observation_space = spaces.Box(0.0, np.inf, (len(FEATURE_NAMES),), np.float32)
        self._mask = action_mask(len(p.triggers))
        self._dd2, self._da2 = squared_readiness_jumps(p)
        self._uniforms: EpisodeUniforms | None = None
        self._fixed: int | None = None

    # ------------------------------------------------------------------ episode setup
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        p = self.params
        if seed is not None or self._uniforms is None:
            self._uniforms = EpisodeUniforms(self.np_random, p.sampler.n_uniforms, p.rng_block_episodes)
            self._episodes: list[tuple] = []
        if not self._episodes:
            # Sample the DAGs of a whole block of episodes at once (vectorised); the uniforms
            # are consumed in the same order as one-at-a-time, so the episodes are identical.
            self._episodes = _episodes_as_lists(p.sampler, self._uniforms.next_block())[::-1]
        self._load(*self._episodes.pop())
        return self._obs(), self._info("reset")

    def reset_to_dag(
        self,
        types: list[str],
        parents: list[list[int]],
        latency_s: list[float],
        query_type: str = "custom",
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode on a given DAG with fixed latencies (hand-built traces, runtime replay)."""
        if not types:
            raise ValueError("reset_to_dag: the DAG is empty; give at least one task.")
        if not (len(types) == len(parents) == len(latency_s)):
            raise ValueError("reset_to_dag: types, parents and latency_s need one entry per task.")
        codes = []
        for i, t in enumerate(types):
            if t not in TASK_TYPES:
                raise ValueError(f"reset_to_dag: task {i} has unknown type {t!r}; use {TASK_TYPES}.")
            codes.append(TASK_TYPES.index(t))
            if any(not 0 <= d < i for d in parents[i]):
                raise ValueError(f"reset_to_dag: task {i} may depend only on earlier tasks 0..{i - 1}.")
            if not float(latency_s[i]) > 0:
                raise ValueError(f"reset_to_dag: task {i} latency must be > 0, got {latency_s[i]}.")
        self._load(codes, [list(map(int, d)) for d in parents], [float(x) for x in latency_s], query_type)
        return self._obs(), self._info("reset")

    def _load(self, types: list[int], parents: list[list[int]], lat: list[float], qtype: str) -> None:
        self._types = types
        self._parents = parents
        self._lat = lat
        self._n = len(types)
        self._qtype = qtype
        self._status = [BLOCKED] * self._n
        self._finish = [math.inf] * self._n
        self._start = [0.0] * self._n
        self._t = 0.0
        self._events = 0
        self._last_interval = 0.0
        self._fixed = None
        self._dispatch(0.0)  # the Leader's initial event t_0 = 0 dispatches the roots

    def _dispatch(self, t: float) -> int:
        """Dispatch every blocked task whose dependencies are all done; returns how many."""
        st = self._status
        k = 0
        for i in range(self._n):
            if st[i] != BLOCKED:
                continue
            for j in self._parents[i]:
                if st[j] != DONE:
                    break
            else:
                st[i] = RUNNING
                self._start[i] = t
                self._finish[i] = t + self._lat[i]
                k += 1
        return k

    # ------------------------------------------------------------------ Eq. 1
    def next_event_time(self, trigger: TriggerSpec) -> tuple[float, str]:
        """Exact time of the next scheduling event under ``trigger`` and what fired it."""
        p = self.params
        t0 = self._t
        st = self._status
        fin = self._finish
        comps = sorted(fin[i] for i in range(self._n) if st[i] == RUNNING)
        if trigger.kind == "periodic":
            fire, why = t0 + trigger.period_s, "periodic"
        elif trigger.kind == "every_completion":
            fire, why = comps[0], "completion"
        else:
            # When does each blocked task become ready? max over its parents' finish times;
            # a parent that is itself blocked cannot finish in this interval (inf).
            unblock = []
            for i in range(self._n):
                if st[i] == BLOCKED:
                    u = -math.inf
                    for j in self._parents[i]:
                        f = fin[j] if st[j] == RUNNING else (-math.inf if st[j] == DONE else math.inf)
                        if f > u:
                            u = f
                    unblock.append(u)
            origin = 0.0 if p.time_origin == "episode" else t0
            dd2, da2 = self._dd2, self._da2
            fire, why = math.inf, "eq1"
            for j, c in enumerate(comps):
                # ||e(c)||: j+1 finished tasks, plus the blocked tasks whose parents are all done.
                n_unblocked = sum(1 for u in unblock if u <= c)
                E = state_error_norm(SCALAR, j + 1, n_unblocked, dd2, da2)
                cand = max(c, eq1_crossing_time(E, trigger.delta, trigger.alpha, origin))
                if cand < fire:
                    fire = cand
            if fire == math.inf:  # nothing running can ever make Eq. 1 fire: fire when idle
                fire, why = comps[-1], "idle"
        if t0 + p.max_wait_s < fire:
            fire, why = t0 + p.max_wait_s, "max_wait"
        return fire, why

    def _event(self, action: int) -> tuple[float, str]:
        """Advance to the next event under trigger ``action``; returns its reward and cause."""
        p = self.params
        fire, why = self.next_event_time(p.triggers[action])
        st = self._status
        for i in range(self._n):
            if st[i] == RUNNING and self._finish[i] <= fire:
                st[i] = DONE
        self._dispatch(fire)
        self._last_interval = fire - self._t
        self._t = fire
        self._events += 1
        return event_reward(p.w_latency, p.c_event, self._last_interval), why

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._uniforms is None:
            raise RuntimeError("call reset() before step()")
        a = int(action)
        if not 0 <= a < self.action_space.n:
            raise ValueError(f"action {action!r} out of range 0..{self.action_space.n - 1}.")
        p = self.params
        if p.action_mode == "per_episode":
            total = 0.0
            while True:
                r, why = self._event(a)
                total += r
                done = all(s == DONE for s in self._status)
                trunc = not done and self._events >= p.max_events
                if done or trunc:
                    return self._obs(), total, done, trunc, self._info(why)
        r, why = self._event(a)
        done = all(s == DONE for s in self._status)
        trunc = not done and self._events >= p.max_events
        return self._obs(), r, done, trunc, self._info(why)

    # ------------------------------------------------------------------ views
    def state(self) -> ScheduleState:
        """The Leader-visible state at the current event (what the runtime Leader also builds)."""
        return ScheduleState(
            elapsed_s=self._t,
            n_events=self._events,
            last_interval_s=self._last_interval,
            task_types=self._types,
            status=list(self._status),
            running_age_s=self._running_ages(),
        )

    def _running_ages(self) -> list[float]:
        """How long each running task has been running (0 for the others)."""
        t = self._t
        return [t - s if x == RUNNING else 0.0 for s, x in zip(self._start, self._status)]

    def _obs(self) -> np.ndarray:
        """``featurize(self.state())``, without building the state object."""
        return featurize_fields(
            self._t, self._events, self._last_interval, self._types, self._status, self._running_ages()
        )

    def _info(self, fired_by: str) -> dict[str, Any]:
        return {
            "latency": self._t,
            "scheduling_events": self._events,
            "action_mask": self._mask.copy(),
            "fired_by": fired_by,
            "query_type": self._qtype,
        }

    def action_masks(self) -> np.ndarray:
        """Every trigger rule is always valid; provided for MaskablePPO and the shared API."""
        return self._mask.copy()
