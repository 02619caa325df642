"""Asynchronous DAG executor: concurrency, dependency order, failures, trigger, Memory records."""

from __future__ import annotations

import asyncio
import time

import pytest

from rl_shop.agents.executor import DAGExecutor, SchedulerView
from rl_shop.agents.memory import Memory
from rl_shop.agents.types import Plan, Task, TaskType

PS, WS, DE = TaskType.PRODUCT_SEARCH, TaskType.WEB_SEARCH, TaskType.DECISION


def _plan() -> Plan:
    return Plan(
        tasks=[
            Task(task_id="a", type=PS, query="a"),
            Task(task_id="b", type=WS, query="b"),
            Task(task_id="d", type=DE, depends_on=["a", "b"]),
        ]
    )


def test_independent_blocking_tasks_overlap_and_dependencies_respected():
    log: list[tuple[str, str, float]] = []

    def slow(task: Task, inputs: dict) -> str:
        log.append((task.task_id, "start", time.perf_counter()))
        time.sleep(0.2)
        log.append((task.task_id, "end", time.perf_counter()))
        return task.task_id.upper()

    def decide(task: Task, inputs: dict) -> dict:
        log.append((task.task_id, "start", time.perf_counter()))
        return dict(sorted(inputs.items()))

    mem = Memory()
    ex = DAGExecutor({PS: slow, WS: slow, DE: decide}, memory=mem)
    report = ex.run_sync(_plan(), "s1")
    assert report.ok
    assert report.outputs["d"] == {"a": "A", "b": "B"}
    assert 0.18 <= report.wall_s < 0.35, report.wall_s  # ~0.2 s, not 0.4 s
    end_a = [t for i, k, t in log if i == "a" and k == "end"][0]
    end_b = [t for i, k, t in log if i == "b" and k == "end"][0]
    start_d = [t for i, k, t in log if i == "d" and k == "start"][0]
    assert start_d >= max(end_a, end_b)
    states = {s.task_id: s for s in mem.get_task_states("s1")}
    assert all(s.status == "done" for s in states.values())
    assert states["a"].detail["duration_s"] == pytest.approx(0.2, abs=0.08)
    assert [o["task_id"] for o in mem.outputs("s1")][-1] == "d"


def test_coroutine_handlers_run_concurrently():
    async def slow(task: Task, inputs: dict) -> int:
        await asyncio.sleep(0.2)
        return 1

    async def decide(task: Task, inputs: dict) -> int:
        return sum(inputs.values())

    report = DAGExecutor({PS: slow, WS: slow, DE: decide}).run_sync(_plan(), "s")
    assert report.outputs["d"] == 2
    assert report.wall_s < 0.35


def test_chain_is_sequential():
    plan = Plan(
        tasks=[
            Task(task_id="a", type=PS),
            Task(task_id="b", type=PS, depends_on=["a"]),
            Task(task_id="d", type=DE, depends_on=["b"]),
        ]
    )

    def slow(task, inputs):
        time.sleep(0.1)
        return list(inputs)

    report = DAGExecutor({PS: slow, DE: lambda t, i: i}).run_sync(plan, "s")
    assert report.outputs["b"] == ["a"]
    assert report.wall_s >= 0.19


def test_failure_skips_dependents_but_decision_runs_on_partial_inputs():
    plan = Plan(
        tasks=[
            Task(task_id="a", type=PS),
            Task(task_id="a2", type=PS, depends_on=["a"]),
            Task(task_id="b", type=WS),
            Task(task_id="d", type=DE, depends_on=["a2", "b"]),
        ]
    )

    def fail(task, inputs):
        if task.task_id == "a":
            raise RuntimeError("search API down")
        return "ok"

    mem = Memory()
    report = DAGExecutor({PS: fail, WS: lambda t, i: "web", DE: lambda t, i: sorted(i)}, memory=mem).run_sync(plan, "s")
    assert report.states["a"].status == "failed" and "search API down" in report.states["a"].error
    assert report.states["a2"].status == "skipped"
    assert report.outputs["d"] == ["b"]
    assert report.failed == ["a"]
    strict = DAGExecutor({PS: fail, WS: lambda t, i: "web", DE: lambda t, i: 1}, allow_partial_decision=False).run_sync(
        plan, "s2"
    )
    assert strict.states["d"].status == "skipped"


def test_trigger_delays_dispatch_until_it_fires():
    seen: list[SchedulerView] = []

    def trigger(view: SchedulerView) -> bool:
        seen.append(view)
        return view.elapsed_s >= 0.1  # a stand-in for the Leader's Eq. 1 condition

    report = DAGExecutor(
        {PS: lambda t, i: 1, WS: lambda t, i: 2, DE: lambda t, i: 3}, trigger=trigger, poll_interval_s=0.01
    ).run_sync(_plan(), "s")
    assert report.ok
    assert report.dispatch_times[0] >= 0.1
    assert sorted(seen[0].ready) == ["a", "b"]


def test_missing_handler_is_a_clear_error():
    with pytest.raises(ValueError, match="no handler for task types \\['Decision'\\]"):
        DAGExecutor({PS: lambda t, i: 1, WS: lambda t, i: 1}).run_sync(_plan(), "s")


def test_trigger_that_never_fires_cannot_hang_the_run():
    report = DAGExecutor(
        {PS: lambda t, i: 1, WS: lambda t, i: 2, DE: lambda t, i: 3},
        trigger=lambda view: False,
        poll_interval_s=0.01,
        trigger_timeout_s=0.05,
    ).run_sync(_plan(), "s")
    assert report.ok
    assert report.dispatch_times[0] >= 0.05


def test_unexecutable_plans():
    bad = Plan(tasks=[Task(task_id="a", type=PS, depends_on=["ghost"]), Task(task_id="d", type=DE, depends_on=["a"])])
    with pytest.raises(ValueError, match="unknown dependencies \\['ghost'\\]"):
        DAGExecutor({PS: lambda t, i: 1, DE: lambda t, i: 1}).run_sync(bad, "s")
    cyclic = Plan(
        tasks=[
            Task(task_id="a", type=PS, depends_on=["b"]),
            Task(task_id="b", type=PS, depends_on=["a"]),
            Task(task_id="c", type=PS),
        ]
    )
    report = DAGExecutor({PS: lambda t, i: 1}).run_sync(cyclic, "s")
    assert report.states["c"].status == "done"
    assert report.states["a"].status == "skipped" and "cycle" in report.states["a"].error
