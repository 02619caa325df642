"""Asynchronous DAG executor: runs a Planner task graph, independent tasks concurrently.

Why: MACDF's Leader orchestrates the Planner's DAG so that independent sub-tasks (e.g. two
ProductSearch calls of a comparison) overlap in time; total latency is then the critical path,
not the sum. Blocking handlers run in worker threads (``asyncio.to_thread``), coroutine handlers
are awaited. Each task's state and wall time go to Memory's Task States, its output to Agent
Outputs, so a run can be inspected afterwards.

The Leader's Conditional Scheduling Policy (Eq. 1) plugs in as ``trigger``: a callable that is
asked, whenever tasks are ready, whether to dispatch them now; when it says no, the executor polls
again after ``poll_interval_s`` (the Eq. 1 threshold decays with time, so it eventually fires).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rl_shop.agents.memory import Memory
from rl_shop.agents.types import Plan, Task, TaskState, TaskType

Handler = Callable[[Task, dict[str, Any]], Any | Awaitable[Any]]


@dataclass
class SchedulerView:
    """What a scheduling trigger sees: elapsed time, ready / running / finished task ids."""

    elapsed_s: float
    ready: list[str]
    running: list[str]
    done: list[str]
    failed: list[str]
    n_dispatches: int


Trigger = Callable[[SchedulerView], bool]


@dataclass
class ExecutionReport:
    """Outputs by task id, per-task states and timings, and the total wall time."""

    outputs: dict[str, Any]
    states: dict[str, TaskState]
    wall_s: float
    dispatch_times: list[float] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        """Ids of tasks whose handler raised."""
        return [k for k, s in self.states.items() if s.status == "failed"]

    @property
    def ok(self) -> bool:
        """True when every task finished."""
        return all(s.status == "done" for s in self.states.values())


class DAGExecutor:
    """Run a :class:`Plan` with one handler per atomic task type."""

    def __init__(
        self,
        handlers: Mapping[TaskType | str, Handler],
        memory: Memory | None = None,
        max_concurrency: int = 8,
        trigger: Trigger | None = None,
        poll_interval_s: float = 0.01,
        allow_partial_decision: bool = True,
        trigger_timeout_s: float | None = 30.0,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.handlers = {TaskType(k): v for k, v in handlers.items()}
        self.memory = memory
        self.max_concurrency = max_concurrency
        self.trigger = trigger
        self.poll_interval_s = poll_interval_s
        self.allow_partial_decision = allow_partial_decision
        # Safety net against a trigger that never fires while nothing runs (a run must not hang).
        self.trigger_timeout_s = trigger_timeout_s

    def run_sync(self, plan: Plan, session_id: str) -> ExecutionReport:
        """Blocking wrapper around :meth:`run` for callers outside an event loop."""
        return asyncio.run(self.run(plan, session_id))

    async def run(self, plan: Plan, session_id: str) -> ExecutionReport:
        """Execute ``plan``; dependents of a failed task are skipped (the Decision still runs on
        partial inputs when ``allow_partial_decision`` and at least one input succeeded)."""
        missing = {t.type for t in plan.tasks} - set(self.handlers)
        if missing:
            raise ValueError(
                f"no handler for task types {sorted(m.value for m in missing)}; "
                f"register one per type in DAGExecutor(handlers=...)"
            )
        tasks = {t.task_id: t for t in plan.tasks}
        unknown = sorted({d for t in plan.tasks for d in t.depends_on if d not in tasks})
        if unknown or len(tasks) != len(plan.tasks):
            raise ValueError(
                f"plan is not executable: unknown dependencies {unknown} or duplicate task ids; "
                f"check it with rl_shop.agents.planner.validate_plan first"
            )
        states = {tid: TaskState(session_id=session_id, task_id=tid) for tid in tasks}
        for s in states.values():
            self._store(s)
        outputs: dict[str, Any] = {}
        running: dict[str, asyncio.Task[Any]] = {}
        dispatch_times: list[float] = []
        t0 = time.perf_counter()
        last_event = 0.0  # elapsed time of the last dispatch or completion
        sem = asyncio.Semaphore(self.max_concurrency)

        async def run_one(task: Task) -> None:
            async with sem:
                state = states[task.task_id]
                state.status, state.started_at = "running", time.time()
                self._store(state)
                inputs = {d: outputs[d] for d in task.depends_on if d in outputs}
                try:
                    handler = self.handlers[task.type]
                    if inspect.iscoroutinefunction(handler):
                        result = await handler(task, inputs)
                    else:
                        result = await asyncio.to_thread(handler, task, inputs)
                        if inspect.isawaitable(result):
                            result = await result
                except Exception as exc:  # noqa: BLE001 - recorded, dependents skipped
                    state.status, state.error = "failed", f"{type(exc).__name__}: {exc}"
                else:
                    outputs[task.task_id] = result
                    state.status = "done"
                    if self.memory is not None:
                        self._store_output(task, session_id, result)
                state.finished_at = time.time()
                state.detail["duration_s"] = state.finished_at - state.started_at
                self._store(state)

        while True:
            changed = True
            while changed:  # propagate failures to a fixpoint
                changed = False
                for tid in [k for k, s in states.items() if s.status == "pending"]:
                    deps = tasks[tid].depends_on
                    bad = [d for d in deps if states[d].status in ("failed", "skipped")]
                    if bad and not self._may_run_partial(tasks[tid], deps, states):
                        states[tid].status, states[tid].error = "skipped", f"dependencies failed: {bad}"
                        self._store(states[tid])
                        changed = True
            ready = [
                tid
                for tid, s in states.items()
                if s.status == "pending"
                and all(states[d].status in ("done", "failed", "skipped") for d in tasks[tid].depends_on)
                and tid not in running
            ]
            ready.sort(key=lambda tid: -tasks[tid].priority)
            if ready:
                view = SchedulerView(
                    elapsed_s=time.perf_counter() - t0,
                    ready=ready,
                    running=sorted(running),
                    done=sorted(k for k, s in states.items() if s.status == "done"),
                    failed=sorted(k for k, s in states.items() if s.status == "failed"),
                    n_dispatches=len(dispatch_times),
                )
                stalled = (
                    self.trigger_timeout_s is not None
                    and not running
                    and view.elapsed_s - last_event >= self.trigger_timeout_s
                )
                if self.trigger is None or self.trigger(view) or stalled:
                    dispatch_times.append(view.elapsed_s)
                    last_event = view.elapsed_s
                    for tid in ready:
                        states[tid].status = "running"  # reserved; run_one re-stamps the time
                        running[tid] = asyncio.create_task(run_one(tasks[tid]))
                    continue
            if not running:
                if ready:  # trigger declined and nothing is running: wait for the threshold to decay
                    await asyncio.sleep(self.poll_interval_s)
                    continue
                break
            done, _ = await asyncio.wait(
                list(running.values()),
                timeout=self.poll_interval_s if (ready and self.trigger) else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for tid in [k for k, fut in running.items() if fut in done]:
                running.pop(tid).result()
                last_event = time.perf_counter() - t0
        for state in states.values():
            if state.status == "pending":  # only possible on a cyclic graph
                state.status, state.error = "skipped", "never became ready (dependency cycle)"
                self._store(state)
        return ExecutionReport(
            outputs=outputs, states=states, wall_s=time.perf_counter() - t0, dispatch_times=dispatch_times
        )

    def _may_run_partial(self, task: Task, deps: list[str], states: dict[str, TaskState]) -> bool:
        if not (self.allow_partial_decision and task.type == TaskType.DECISION):
            return False
        if not all(states[d].status in ("done", "failed", "skipped") for d in deps):
            return True  # undecided yet
        return any(states[d].status == "done" for d in deps)

    def _store(self, state: TaskState) -> None:
        if self.memory is not None:
            self.memory.put_task_state(state)

    def _store_output(self, task: Task, session_id: str, result: Any) -> None:
        if self.memory is None:
            return
        try:
            self.memory.append_output(task.type.value, session_id, result, task_id=task.task_id)
        except ValueError:  # not JSON-serialisable: keep its repr
            self.memory.append_output(task.type.value, session_id, {"repr": repr(result)[:2000]}, task_id=task.task_id)
