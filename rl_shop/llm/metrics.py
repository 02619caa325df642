"""Counters of LLM usage: calls, cache hits, structured-output retries and fallbacks, tokens, time.

Agents and evaluations read these to report how often the model's structured output had to be
rescued (a fallback is a quality signal, not an exception), and what the LLM cost in tokens and
seconds. Every backend instance owns one :class:`LLMMetrics`; :data:`GLOBAL` aggregates all of
them in the process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class LLMMetrics:
    """Thread-safe counters (the server calls one backend from several threads)."""

    calls: int = 0
    cache_hits: int = 0
    structured_calls: int = 0
    retries: int = 0
    fallbacks: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: float) -> None:
        """Add to named counters, e.g. ``add(calls=1, completion_tokens=12)``."""
        with self._lock:
            for name, delta in deltas.items():
                if name.startswith("_") or not hasattr(self, name):
                    raise AttributeError(f"LLMMetrics has no counter {name!r}")
                setattr(self, name, getattr(self, name) + delta)
        if self is not GLOBAL:
            GLOBAL.add(**deltas)

    def snapshot(self) -> dict[str, float]:
        """A plain-dict copy of the counters."""
        with self._lock:
            return {name: getattr(self, name) for name in self.snapshot_names()}

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            for name in self.snapshot_names():
                setattr(self, name, type(getattr(self, name))())

    @classmethod
    def snapshot_names(cls) -> list[str]:
        """Names of the counters."""
        return [n for n in cls.__dataclass_fields__ if not n.startswith("_")]


GLOBAL = LLMMetrics()
