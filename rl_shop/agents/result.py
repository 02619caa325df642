"""What one assistant run returns (the public contract of ``rl-shop ask --json`` and of the
evaluation), kept apart from the runtime so that a refusal can be answered without importing it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from rl_shop.agents.trace import TraceStep


class ProductOut(BaseModel):
    """One recommended product, ranked best first."""

    product_id: str
    title: str
    brand: str = ""
    price: float | None = None
    reason: str = ""
    score: float | None = None


class ClarificationTurn(BaseModel):
    """One Guider question and the shopper's answer."""

    slot: str
    question: str
    answer: str
    status: str = "value"
    parsed: dict[str, Any] = Field(default_factory=dict)


class AssistantResult(BaseModel):
    """Everything one ``run`` produced (the public contract of the evaluation)."""

    query: str
    refused: bool = False
    refusal: str | None = None
    query_type: str | None = None
    products: list[ProductOut] = Field(default_factory=list)
    answer: str = ""
    follow_up: str | None = None
    clarifications: list[ClarificationTurn] = Field(default_factory=list)
    trace: list[TraceStep] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    replans: int = 0
    reflection_score: float | None = None
    llm_fallbacks: int = 0
    # per agent: LLM calls, cache hits, fallbacks, errors, discarded answers, tokens, seconds
    llm_calls: dict[str, dict[str, float]] = Field(default_factory=dict)
    type_distribution: dict[str, float] = Field(default_factory=dict)
    intent: dict[str, Any] = Field(default_factory=dict)
    session_id: str = ""
    llm: str | None = None
