"""Counters of LLM usage: calls, cache hits, structured-output retries and fallbacks, tokens, time.

Agents and evaluations read these to report how often the model's structured output had to be
rescued (a fallback is a quality signal, not an exception), and what the LLM cost in tokens and
seconds. Every backend instance owns one :class:`LLMMetrics`; :data:`GLOBAL` aggregates all of
them in the process.

Per-caller budget: wrap an agent's LLM use in ``with llm_scope("guider"):`` and every call made
inside is also counted under that name (calls, seconds, tokens, fallbacks, errors) in
``metrics.by_scope`` (a snapshot: ``metrics.scope_snapshot()``). Scopes follow threads and asyncio
tasks (a ``contextvars`` variable); nested scopes count under the innermost name.

``discarded`` counts calls whose answer the caller threw away (it failed the caller's own checks,
or changed nothing): the agents add it, since only the caller knows. Calls that cost time and
were discarded are the first to drop from a per-query budget.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

_SCOPE: contextvars.ContextVar[str | None] = contextvars.ContextVar("rl_shop_llm_scope", default=None)
SCOPED = ("calls", "cache_hits", "fallbacks", "errors", "discarded", "prompt_tokens", "completion_tokens", "total_s")


@contextlib.contextmanager
def llm_scope(name: str) -> Iterator[None]:
    """Count the LLM calls made inside under ``name`` too (e.g. the agent making them)."""
    token = _SCOPE.set(str(name))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def current_scope() -> str | None:
    """The innermost :func:`llm_scope` name, or None."""
    return _SCOPE.get()


def scope_delta(after: dict[str, dict[str, float]], before: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-scope counters accrued between two :meth:`LLMMetrics.scope_snapshot` calls (scopes
    without a call left out); seconds rounded to the millisecond."""
    out: dict[str, dict[str, float]] = {}
    for scope, row in after.items():
        prev = before.get(scope, {})
        diff = {k: v - prev.get(k, 0) for k, v in row.items()}
        if diff.get("calls"):
            diff["total_s"] = round(diff.get("total_s", 0.0), 3)
            out[scope] = diff
    return out


@dataclass
class LLMMetrics:
    """Thread-safe counters (the server calls one backend from several threads)."""

    calls: int = 0
    cache_hits: int = 0
    structured_calls: int = 0
    retries: int = 0
    fallbacks: int = 0
    failures: int = 0
    errors: int = 0  # calls that raised (server down, timeout, generation failure)
    discarded: int = 0  # answers the calling agent did not use (see the module docstring)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_s: float = 0.0
    by_scope: dict[str, dict[str, float]] = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: float) -> None:
        """Add to named counters, e.g. ``add(calls=1, completion_tokens=12)``."""
        scope = _SCOPE.get()
        with self._lock:
            for name, delta in deltas.items():
                if name.startswith("_") or name == "by_scope" or not hasattr(self, name):
                    raise AttributeError(f"LLMMetrics has no counter {name!r}")
                setattr(self, name, getattr(self, name) + delta)
                if scope is not None and name in SCOPED:
                    row = self.by_scope.setdefault(scope, dict.fromkeys(SCOPED, 0))
                    row[name] += delta
        if self is not GLOBAL:
            GLOBAL.add(**deltas)

    def scope_snapshot(self) -> dict[str, dict[str, float]]:
        """Per-scope counters (see :func:`llm_scope`), copied."""
        with self._lock:
            return {k: dict(v) for k, v in self.by_scope.items()}

    def snapshot(self) -> dict[str, float]:
        """A plain-dict copy of the counters."""
        with self._lock:
            return {name: getattr(self, name) for name in self.snapshot_names()}

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            for name in self.snapshot_names():
                setattr(self, name, type(getattr(self, name))())
            self.by_scope.clear()

    @classmethod
    def snapshot_names(cls) -> list[str]:
        """Names of the counters."""
        return [n for n in cls.__dataclass_fields__ if not n.startswith("_") and n != "by_scope"]


GLOBAL = LLMMetrics()
