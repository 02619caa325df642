"""Data types and errors shared by every LLM backend.

Kept free of torch / transformers / openai imports so that agents and tests can type against the
interface without paying for a model import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypedDict, TypeVar

T = TypeVar("T")


class Message(TypedDict):
    """One chat message in the OpenAI shape (``role`` in system / user / assistant)."""

    role: Literal["system", "user", "assistant"]
    content: str


VALID_ROLES = ("system", "user", "assistant")


class LLMError(RuntimeError):
    """Base class of every error the LLM layer raises on purpose."""


class LLMConfigError(LLMError, ValueError):
    """The LLM configuration is malformed (unknown backend, missing field, wrong type)."""


class ModelLoadError(LLMError):
    """A model file or directory is missing, corrupt, or cannot be loaded offline."""


class LLMUnavailableError(LLMError):
    """A remote LLM server cannot be reached, timed out, or refused the request."""


class InvalidMessagesError(LLMError, ValueError):
    """The ``messages`` argument does not have the OpenAI chat shape."""


@dataclass(frozen=True)
class ChatResult:
    """A finished completion with the figures the evaluation needs (latency, tokens)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    ttft_s: float
    total_s: float
    cached: bool
    backend: str
    model: str
    finish_reason: str = "stop"

    @property
    def tokens_per_s(self) -> float:
        """Decode throughput; 0 when nothing was generated or the answer came from the cache."""
        if self.cached or self.completion_tokens == 0 or self.total_s <= 0:
            return 0.0
        return self.completion_tokens / self.total_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (used by the response cache)."""
        return {
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "ttft_s": self.ttft_s,
            "total_s": self.total_s,
            "cached": self.cached,
            "backend": self.backend,
            "model": self.model,
            "finish_reason": self.finish_reason,
        }


@dataclass
class StructuredResult(Generic[T]):
    """Outcome of :meth:`LLM.structured`.

    ``value`` is a validated instance (pydantic model, or a dict for a raw JSON-schema), or
    ``None`` when neither the model nor the fallback produced a valid value; ``errors`` says why
    each attempt failed. ``used_fallback`` is True when ``value`` came from the fallback parser.
    """

    value: T | None
    raw: str
    attempts: int
    used_fallback: bool
    errors: list[str] = field(default_factory=list)
    cached: bool = False
    chat: ChatResult | None = None

    @property
    def ok(self) -> bool:
        """True when a valid value is available."""
        return self.value is not None

    def unwrap(self) -> T:
        """The value, or a clear error listing why there is none."""
        if self.value is None:
            raise LLMError(
                "structured output failed after "
                f"{self.attempts} attempt(s) and the fallback: " + "; ".join(self.errors[-3:])
            )
        return self.value
