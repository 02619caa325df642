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
class _Run:
    """The state of one plan execution, shared by the executor's steps."""

    tasks: dict[str, Task]
    session_id: str
    sem: asyncio.Semaphore
    states: dict[str, TaskState] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    running: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    dispatch_times: list[float] = field(default_factory=list)
    t0: float = field(default_factory=time.perf_counter)
    last_event: float = 0.0  # elapsed time of the last dispatch or completion

    def ready(self) -> list[str]:
        """Pending tasks whose dependencies have all finished, highest priority first."""
        ready = [
            tid
            for tid, s in self.states.items()
            if s.status == "pending"
            and all(self.states[d].status in ("done", "failed", "skipped") for d in self.tasks[tid].depends_on)
            and tid not in self.running
        ]
        ready.sort(key=lambda tid: -self.tasks[tid].priority)
        return ready


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
        r = _Run(self._checked_tasks(plan), session_id, asyncio.Semaphore(self.max_concurrency))
        r.states = {tid: TaskState(session_id=session_id, task_id=tid) for tid in r.tasks}
        for state in r.states.values():
            self._store(state)
        while True:
            self._skip_failed_dependents(r)
            ready = r.ready()
            if ready and self._dispatch(r, ready):
                continue
            if not r.running:
                if not ready:
                    break
                await asyncio.sleep(self.poll_interval_s)  # trigger declined: wait for its threshold to decay
                continue
            await self._wait_for_completion(r, poll=bool(ready and self.trigger))
        for state in r.states.values():
            if state.status == "pending":  # only possible on a cyclic graph
                state.status, state.error = "skipped", "never became ready (dependency cycle)"
                self._store(state)
        return ExecutionReport(r.outputs, r.states, time.perf_counter() - r.t0, r.dispatch_times)

    def _checked_tasks(self, plan: Plan) -> dict[str, Task]:
        """The plan's tasks by id, after checking that each has a handler and known dependencies."""
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
        return tasks

    def _skip_failed_dependents(self, r: _Run) -> None:
        """Mark pending tasks whose dependencies failed as skipped, to a fixpoint."""
        changed = True
        while changed:
            changed = False
            for tid in [k for k, s in r.states.items() if s.status == "pending"]:
                deps = r.tasks[tid].depends_on
                bad = [d for d in deps if r.states[d].status in ("failed", "skipped")]
                if bad and not self._may_run_partial(r.tasks[tid], deps, r.states):
                    r.states[tid].status, r.states[tid].error = "skipped", f"dependencies failed: {bad}"
                    self._store(r.states[tid])
                    changed = True

    def _dispatch(self, r: _Run, ready: list[str]) -> bool:
        """Start the ready tasks if the trigger fires (or nothing has happened for ``trigger_timeout_s``)."""
        view = SchedulerView(
            elapsed_s=time.perf_counter() - r.t0,
            ready=ready,
            running=sorted(r.running),
            done=sorted(k for k, s in r.states.items() if s.status == "done"),
            failed=sorted(k for k, s in r.states.items() if s.status == "failed"),
            n_dispatches=len(r.dispatch_times),
        )
        stalled = (
            self.trigger_timeout_s is not None
            and not r.running
            and view.elapsed_s - r.last_event >= self.trigger_timeout_s
        )
        if not (self.trigger is None or self.trigger(view) or stalled):
            return False
        r.dispatch_times.append(view.elapsed_s)
        r.last_event = view.elapsed_s
        for tid in ready:
            r.states[tid].status = "running"  # reserved; _run_one re-stamps the time
            r.running[tid] = asyncio.create_task(self._run_one(r, r.tasks[tid]))
        return True

    async def _wait_for_completion(self, r: _Run, poll: bool) -> None:
        """Wait until a running task finishes (or ``poll_interval_s`` when the trigger must be asked again)."""
        done, _ = await asyncio.wait(
            list(r.running.values()),
            timeout=self.poll_interval_s if poll else None,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for tid in [k for k, fut in r.running.items() if fut in done]:
            r.running.pop(tid).result()
            r.last_event = time.perf_counter() - r.t0

    async def _run_one(self, r: _Run, task: Task) -> None:
        """Run one task's handler (coroutine, or blocking in a worker thread) and record the outcome."""
        async with r.sem:
            state = r.states[task.task_id]
            state.status, state.started_at = "running", time.time()
            self._store(state)
            inputs = {d: r.outputs[d] for d in task.depends_on if d in r.outputs}
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
                r.outputs[task.task_id] = result
                state.status = "done"
                self._store_output(task, r.session_id, result)
            state.finished_at = time.time()
            state.detail["duration_s"] = state.finished_at - state.started_at
            self._store(state)

    def _may_run_partial(self, task: Task, deps: list[str], states: dict[str, TaskState]) -> bool:
        if not (self.allow_partial_decision and task.type == TaskType.DECISION):
            return False
        if not all(states[d].status in ("done", "failed", "skipped") for d in deps):
            return True  # undecided yet
        return any(states[d].status == "done" for d in deps)

    def _store(self, state: TaskState) -> None:
        if self.memory is not None:
            self.memory.put_task_state(state)

    def _store_output(self, task: Task, session_id: str, result: object) -> None:
        if self.memory is None:
            return
        try:
            self.memory.append_output(task.type.value, session_id, result, task_id=task.task_id)
        except ValueError:  # not JSON-serialisable: keep its repr
            self.memory.append_output(task.type.value, session_id, {"repr": repr(result)[:2000]}, task_id=task.task_id)
