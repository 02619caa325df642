"""What the agents need of an LLM: the chat / stream / structured protocols and two helpers.

The LLM is an injected dependency everywhere. ``rl_shop.llm`` provides the concrete interface;
these protocols name only the methods the agents call, so tests and alternative backends need
not import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from pydantic import BaseModel


@runtime_checkable
class SupportsChat(Protocol):
    """An LLM that answers a list of chat messages with a result carrying ``.text``."""

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = ...) -> object: ...


@runtime_checkable
class SupportsStream(Protocol):
    """An LLM that streams text chunks (``str`` or objects with ``.text``)."""

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int = ...) -> Iterator[object]: ...


@runtime_checkable
class SupportsStructured(Protocol):
    """An LLM with schema-constrained output returning ``StructuredResult(value, used_fallback)``."""

    def structured(
        self, messages: list[dict[str, str]], schema: type[BaseModel], *, max_tokens: int = ...
    ) -> object: ...


def note_discarded(llm: object) -> None:
    """Count one LLM answer the calling agent did not use (``LLMMetrics.discarded``, under the
    agent's scope). The agents need only the chat / stream / structured protocols above, so an
    LLM without metrics (a bare test double) is simply not counted."""
    metrics = getattr(llm, "metrics", None)
    if metrics is not None:
        metrics.add(discarded=1)


def chunk_text(chunk: object) -> str:
    """Text of one streamed chunk, whether the backend yields ``str`` or an object with ``.text``."""
    if isinstance(chunk, str):
        return chunk
    text = getattr(chunk, "text", None)
    if text is None:
        text = getattr(chunk, "delta", "")
    return str(text or "")
