"""The Filter tier of Retrieve-Filter-Integrate: MACDF Eq. 4.

    score = alpha * relevance + beta * authority + gamma * freshness      (Eq. 4)

relevance: blend of query-term coverage (share of the query's content words in the document) and
the backend score normalized by the best score of the same query, so documents from different
backends are comparable; authority: per source / domain from config; freshness: exponential
decay of the document's age with a configured half-life. Documents below the threshold are
dropped ("applies thresholds for efficiency"), and at most ``max_documents`` are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pydantic import BaseModel, Field, field_validator

from rl_shop.agents.config import defaults_from
from rl_shop.agents.text import tokens
from rl_shop.agents.types import ScoredDocument
from rl_shop.agents.websearch.backend import RetrievedDocument

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "best",
        "buy",
        "by",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "should",
        "the",
        "to",
        "vs",
        "what",
        "which",
        "who",
        "with",
        "you",
        "your",
        "do",
        "does",
        "can",
        "get",
        "good",
    ]
)


@defaults_from("websearch", "filter")
class FilterConfig(BaseModel):
    """``filter`` section of ``configs/agents/websearch.yaml`` (Eq. 4 weights and threshold)."""

    alpha: float = Field(ge=0.0)
    beta: float = Field(ge=0.0)
    gamma: float = Field(ge=0.0)
    threshold: float
    max_documents: int = Field(ge=1)
    half_life_days: float = Field(gt=0.0)
    unknown_date_freshness: float = Field(ge=0.0, le=1.0)
    relevance_coverage_weight: float = Field(ge=0.0, le=1.0)
    reference_date: date | None

    @field_validator("reference_date", mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        return None if value in (None, "", "null") else value


def content_terms(text: str) -> set[str]:
    """Lower-case content words (stopwords removed) of a text."""
    return {t for t in tokens(text) if t not in STOPWORDS}


def coverage(query: str, text: str) -> float:
    """Share of the query's content words that occur in ``text`` (plural 's' folded)."""
    q = {_fold(t) for t in content_terms(query)}
    if not q:
        return 0.0
    d = {_fold(t) for t in tokens(text)}
    return len(q & d) / len(q)


def _fold(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def freshness(published: date | None, today: date, half_life_days: float, unknown: float) -> float:
    """``0.5 ** (age_days / half_life_days)``; a future date counts as age 0, no date as ``unknown``."""
    if published is None:
        return unknown
    age = max((today - published).days, 0)
    return 0.5 ** (age / half_life_days)


def eq4_score(relevance: float, authority: float, freshness_: float, cfg: FilterConfig) -> float:
    """MACDF Eq. 4: score = alpha * relevance + beta * authority + gamma * freshness."""
    return cfg.alpha * relevance + cfg.beta * authority + cfg.gamma * freshness_


def filter_documents(
    retrieved: Iterable[RetrievedDocument], cfg: FilterConfig, today: date | None = None, request: str | None = None
) -> tuple[list[ScoredDocument], int]:
    """Score every retrieved document with Eq. 4, deduplicate by URL (best score wins), drop those
    below the threshold and keep the best ``max_documents``; returns (kept, number dropped).

    Coverage is measured against the user's ``request`` when given (relevance to what the user
    asked, not to the words a query expansion added), else against the issuing query."""
    today = today or cfg.reference_date or date.today()
    items = list(retrieved)
    best_by_query: dict[str, float] = {}
    for r in items:
        best_by_query[r.query] = max(best_by_query.get(r.query, 0.0), r.backend_score)
    by_url: dict[str, ScoredDocument] = {}
    for r in items:
        doc = r.document
        cov = coverage(request or r.query, f"{doc.title} {doc.text}")
        top = best_by_query.get(r.query, 0.0)
        norm = r.backend_score / top if top > 0 else 0.0
        w = cfg.relevance_coverage_weight
        rel = w * cov + (1 - w) * norm
        fresh = freshness(doc.published, today, cfg.half_life_days, cfg.unknown_date_freshness)
        scored = ScoredDocument(
            document=doc,
            relevance=rel,
            authority=doc.authority,
            freshness=fresh,
            score=eq4_score(rel, doc.authority, fresh, cfg),
        )
        if doc.url not in by_url or scored.score > by_url[doc.url].score:
            by_url[doc.url] = scored
    ranked = sorted(by_url.values(), key=lambda s: (-s.score, s.document.url))
    kept = [s for s in ranked if s.score >= cfg.threshold][: cfg.max_documents]
    return kept, len(ranked) - len(kept)
