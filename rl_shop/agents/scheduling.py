"""The Leader's condition-driven scheduling (MACDF Eq. 1) as a ``DAGExecutor`` trigger.

    t_k = inf{ t > t_{k-1} : ||e(t)|| > delta * exp(-alpha * t) },   e(t) = r(t) - r(t_{k-1})

``r_i(t)`` is the readiness of task i (blocked / ready-or-running / done, levels from config, as
in the Schedule env, ``envs.specs.SCHEDULE``). The condition itself is ``rl_shop.policies.features.schedule.
eq1_should_fire``, the function the env's closed-form crossing time is tested against, so the
runtime and the simulator share one definition. ``delta`` and ``alpha`` come from config, or per
scheduling event from an exported Schedule env policy that picks a trigger of the
env's action grid from the shared ``featurize(ScheduleState)`` observation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from envs.specs import SCHEDULE
from rl_shop.agents.config import defaults_from
from rl_shop.agents.executor import SchedulerView
from rl_shop.agents.types import Plan, TaskType
from rl_shop.config_files import env_config as read_env_config
from rl_shop.config_files import read_config
from rl_shop.policies.features.schedule import (
    BLOCKED,
    DONE,
    RUNNING,
    ScheduleState,
    TriggerSpec,
    build_trigger_grid,
    eq1_should_fire,
    featurize,
)
from rl_shop.policies.features.schedule import (
    action_mask as schedule_action_mask,
)

TASK_TYPE_INDEX = {TaskType.PRODUCT_SEARCH: 0, TaskType.WEB_SEARCH: 1, TaskType.TOOL_CALL: 2, TaskType.DECISION: 3}


@defaults_from("leader", "scheduling.readiness_levels")
class ReadinessLevels(BaseModel):
    blocked: float
    ready: float
    done: float


@defaults_from("leader", "scheduling")
class SchedulingConfig(BaseModel):
    """``leader.yaml: scheduling`` (defaults are the paper's fixed setting, delta = 1.0)."""

    delta: float = Field(gt=0)
    alpha: float = Field(ge=0)
    time_origin: str = Field(pattern="^(episode|event)$")
    readiness_levels: ReadinessLevels
    max_wait_s: float | None = Field(gt=0)
    policy_dir: str | None  # an exported Schedule env policy; null = fixed delta / alpha


def schedule_action_grid(env_config: Path | None = None) -> tuple[TriggerSpec, ...]:
    """The trigger grid of the Schedule env, ``envs.specs.SCHEDULE`` (its action names), read from the env's YAML."""
    data = read_config(env_config, what="env config") if env_config else read_env_config(SCHEDULE.config)
    kw = data.get("kwargs", {})
    return build_trigger_grid(
        kw.get("delta_grid", []),
        kw.get("alpha_grid", []),
        kw.get("periodic_grid_s", []),
        bool(kw.get("every_completion", True)),
    )


@dataclass
class Eq1Trigger:
    """Callable ``trigger(view) -> bool`` for :class:`rl_shop.agents.executor.DAGExecutor`.

    Stateful per run: build one per plan execution. ``events`` records every scheduling event
    (time, ||e||, threshold, trigger name) for the trace.
    """

    plan: Plan
    config: SchedulingConfig
    policy: Any | None = None
    grid: tuple[TriggerSpec, ...] = ()
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._deps = {t.task_id: list(t.depends_on) for t in self.plan.tasks}
        self._types = [TASK_TYPE_INDEX[t.type] for t in self.plan.tasks]
        self._ids = [t.task_id for t in self.plan.tasks]
        self._r_prev: list[float] | None = None
        self._t_prev = 0.0
        self._dispatched_at: dict[str, float] = {}
        self._spec = TriggerSpec("eq1", delta=self.config.delta, alpha=self.config.alpha)

    # -------------------------------------------------------------- readiness
    def _status(self, view: SchedulerView) -> tuple[list[float], list[int]]:
        lv = self.config.readiness_levels
        finished = set(view.done) | set(view.failed)
        ready_or_running = set(view.ready) | set(view.running)
        r, codes = [], []
        for tid in self._ids:
            if tid in finished:
                r.append(lv.done)
                codes.append(DONE)
            elif tid in ready_or_running or all(d in finished for d in self._deps[tid]):
                r.append(lv.ready)
                codes.append(RUNNING if tid in view.running else BLOCKED)
            else:
                r.append(lv.blocked)
                codes.append(BLOCKED)
        return r, codes

    def _choose(self, view: SchedulerView, codes: list[int]) -> TriggerSpec:
        if self.policy is None or not self.grid:
            return self._spec
        for tid in view.ready:  # they are dispatched right now
            codes[self._ids.index(tid)] = RUNNING
        ages = [
            view.elapsed_s - self._dispatched_at.get(tid, view.elapsed_s) if c == RUNNING else 0.0
            for tid, c in zip(self._ids, codes)
        ]
        state = ScheduleState(
            elapsed_s=view.elapsed_s,
            n_events=len(self.events),
            last_interval_s=view.elapsed_s - self._t_prev,
            task_types=self._types,
            status=codes,
            running_age_s=ages,
        )
        action = int(self.policy.act(featurize(state), schedule_action_mask(len(self.grid))))
        return self.grid[action]

    # -------------------------------------------------------------- Eq. 1
    def __call__(self, view: SchedulerView) -> bool:
        r_now, codes = self._status(view)
        t = view.elapsed_s
        if self._r_prev is None:  # the first event dispatches the sources at t = 0
            fire, e_norm, threshold, fired_by = True, 0.0, 0.0, "start"
        else:
            spec = self._spec
            origin_t = t if self.config.time_origin == "episode" else t - self._t_prev
            e_norm = math.sqrt(sum((a - b) ** 2 for a, b in zip(r_now, self._r_prev)))
            if spec.kind == "eq1":
                threshold = spec.delta * math.exp(-spec.alpha * origin_t)
                # MACDF Eq. 1: ||e(t)|| > delta * exp(-alpha t)
                fire = eq1_should_fire(self._r_prev, r_now, spec.delta, spec.alpha, origin_t)
            elif spec.kind == "periodic":
                threshold = spec.period_s
                fire = t - self._t_prev >= spec.period_s
            else:  # every_completion: Eq. 1 with delta -> 0
                threshold = 0.0
                fire = e_norm > 0.0
            fired_by = spec.kind if fire else ""
            if not fire and spec.kind == "eq1" and spec.alpha == 0 and not view.running:
                # Idle rule of the Schedule env: with alpha = 0 the threshold never decays, and with
                # nothing running nothing can change e(t), so Eq. 1 can never fire: fire now.
                fire, fired_by = True, "idle"
            if not fire and self.config.max_wait_s is not None and t - self._t_prev >= self.config.max_wait_s:
                fire, fired_by = True, "max_wait"
        if fire:
            next_spec = self._choose(view, list(codes))
            self.events.append(
                {
                    "t_s": round(t, 4),
                    "e_norm": round(e_norm, 4),
                    "threshold": round(threshold, 4),
                    "dispatched": list(view.ready),
                    "trigger": self._spec.name,
                    "fired_by": fired_by,
                    "next_trigger": next_spec.name,
                }
            )
            self._spec = next_spec
            for tid in view.ready:
                self._dispatched_at[tid] = t
            self._r_prev = r_now
            self._t_prev = t
        return fire


def load_schedule_policy(policy_dir: str | Path, num_threads: int = 1) -> tuple[Any, tuple[TriggerSpec, ...]]:
    """An exported Schedule env policy and the trigger grid its actions index (checked by the loader)."""
    from rl_shop.policies.loader import load_policy

    grid = schedule_action_grid()
    policy = load_policy(
        policy_dir, expect_env_id=SCHEDULE.id, expect_action_names=[g.name for g in grid], num_threads=num_threads
    )
    return policy, grid


def now() -> float:
    """Monotonic seconds (one clock for all Leader timings)."""
    return time.perf_counter()
