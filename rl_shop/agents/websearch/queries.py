"""The Retrieve tier's query generation: expand the user's request into a few search queries.

The paper "uses the LLM to generate and expand search queries based on the current context". With
an injected LLM this asks for a short structured list; without one (or when the model's output is
unusable) it expands the request with configured templates per task purpose. Both paths keep the
user's own request first so a weak model cannot drift the search off topic.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from rl_shop.agents.config import defaults_from
from rl_shop.agents.llm_protocols import SupportsStructured
from rl_shop.agents.text import tokens, unique
from rl_shop.agents.types import IntentSpec


@defaults_from("websearch", "query_generation")
class QueryGenerationConfig(BaseModel):
    """``query_generation`` section of ``configs/agents/websearch.yaml``."""

    use_llm: bool
    max_queries: int = Field(ge=1)
    templates: dict[str, list[str]]


class QueryList(BaseModel):
    """Structured-output schema for LLM query expansion."""

    queries: list[str] = Field(default_factory=list, max_length=8)


def _norm(q: str) -> str:
    return " ".join(tokens(q))


def expand_queries(
    request: str, cfg: QueryGenerationConfig, purpose: str = "default", intent: IntentSpec | None = None
) -> list[str]:
    """Deterministic expansion: fill the purpose's templates with the request and category."""
    category = (intent.category if intent and intent.category else "") or request
    templates = cfg.templates.get(purpose) or cfg.templates.get("default") or ["{q}"]
    out = []
    for t in templates:
        q = " ".join(t.format(q=request, c=category).split())
        if q:
            out.append(q)
    seen: set[str] = set()
    queries = []
    for q in out:
        key = _norm(q)
        if key and key not in seen:
            seen.add(key)
            queries.append(q)
    return queries[: cfg.max_queries]


def generate_queries(
    request: str,
    cfg: QueryGenerationConfig,
    purpose: str = "default",
    intent: IntentSpec | None = None,
    llm: SupportsStructured | None = None,
) -> list[str]:
    """Search queries for ``request``: LLM expansion when enabled and usable, else templates."""
    if not request.strip():
        raise ValueError("WebSearch needs a non-empty request to generate queries from")
    if llm is not None and cfg.use_llm:
        messages = [
            {
                "role": "system",
                "content": f"Write up to {cfg.max_queries} short web search queries that would find "
                'information to answer the shopper\'s request. Return JSON {"queries": [...]}.',
            },
            {
                "role": "user",
                "content": request
                if intent is None
                else f"{request}\nContext: {intent.model_dump_json(exclude_defaults=True)}",
            },
        ]
        try:
            result = llm.structured(messages, QueryList)
            value = getattr(result, "value", result)
        except Exception:  # noqa: BLE001 - fall back to the deterministic path
            value = None
        if isinstance(value, QueryList):
            cleaned = [" ".join(q.split())[:200] for q in value.queries if q and q.strip()]
            cleaned = [q for q in cleaned if tokens(q)]
            if cleaned:
                merged = unique([request] + cleaned)
                keys: set[str] = set()
                queries = []
                for q in merged:
                    if _norm(q) not in keys:
                        keys.add(_norm(q))
                        queries.append(q)
                return queries[: cfg.max_queries]
    return expand_queries(request, cfg, purpose, intent)
