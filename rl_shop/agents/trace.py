"""Agent-step trace of one assistant run: who did what, when, for how long (thread-safe).

The executor runs handlers in worker threads, so steps are appended under a lock. Times are
seconds since the run started, on ``time.perf_counter``; time spent waiting for the shopper's
answers is recorded separately so that latency figures (TTFT, total) can exclude it. A step is
also an LLM scope (``rl_shop.llm.metrics.llm_scope``): every LLM call made inside it is counted
under the step's agent, which gives the per-agent LLM call budget of a run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, Field

from rl_shop.llm.metrics import llm_scope


class TraceStep(BaseModel):
    """One agent action of a run."""

    agent: str
    action: str
    start_s: float
    duration_s: float
    detail: dict[str, Any] = Field(default_factory=dict)


class Tracer:
    """Collects :class:`TraceStep` records and per-agent time; optional live printer for ``--trace``."""

    def __init__(self, printer: Any | None = None) -> None:
        self.t0 = time.perf_counter()
        self.steps: list[TraceStep] = []
        self.user_wait_s = 0.0
        self.first_token_s: float | None = None
        self.first_output_s: float | None = None
        self._lock = threading.Lock()
        self._printer = printer

    def now(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.t0

    def system_now(self) -> float:
        """Seconds since the start minus time spent waiting for the shopper."""
        return self.now() - self.user_wait_s

    @contextmanager
    def step(self, agent: str, action: str, **detail: object) -> Iterator[dict[str, Any]]:
        """Time a block; the yielded dict is the step's ``detail`` (add to it inside the block).
        LLM calls inside are counted under ``agent`` (see the module docstring)."""
        start = self.now()
        info: dict[str, Any] = dict(detail)
        try:
            with llm_scope(agent):
                yield info
        except Exception as exc:
            info["error"] = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.add(agent, action, start, self.now() - start, info)

    def add(self, agent: str, action: str, start_s: float, duration_s: float, detail: dict[str, Any]) -> None:
        step = TraceStep(
            agent=agent,
            action=action,
            start_s=round(start_s, 4),
            duration_s=round(duration_s, 4),
            detail=_jsonable(detail),
        )
        with self._lock:
            self.steps.append(step)
        if self._printer is not None:
            self._printer(step)

    def mark_token(self) -> None:
        """Record the first streamed answer token (TTFT excludes the shopper's answer time)."""
        if self.first_token_s is None:
            self.first_token_s = self.system_now()
        self.mark_output()

    def mark_output(self) -> None:
        """Record the first text shown to the shopper (a clarifying question or the answer)."""
        if self.first_output_s is None:
            self.first_output_s = self.system_now()

    def agent_seconds(self) -> dict[str, float]:
        """Total step time per agent (``agent:<Name>``); concurrent steps each count their own time.

        Steps marked ``container`` (the DAG execution, which encloses other agents' steps) are left
        out so that no second is counted twice."""
        out: dict[str, float] = {}
        with self._lock:
            for s in self.steps:
                if s.detail.get("container"):
                    continue
                key = f"agent:{s.agent}"
                out[key] = round(out.get(key, 0.0) + s.duration_s, 4)
        return out


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, BaseModel):
        return _jsonable(value.model_dump(mode="json"))
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return str(value)
