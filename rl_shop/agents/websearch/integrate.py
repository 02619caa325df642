"""The Integrate tier: compress the kept documents into a short summary for the Decider.

With an injected LLM the paper's "semantically extract and compress" is a chat call over the
numbered documents; without one (or when the call fails) an extractive summary picks the
sentences that share most content words with the request, weighted by each document's Eq. 4
score, and cites them as [n].
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from rl_shop.agents.config import defaults_from
from rl_shop.agents.llm_protocols import SupportsChat
from rl_shop.agents.types import ScoredDocument
from rl_shop.agents.websearch.filter import content_terms

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@defaults_from("websearch", "integration")
class IntegrationConfig(BaseModel):
    """``integration`` section of ``configs/agents/websearch.yaml``."""

    use_llm: bool
    summary_sentences: int = Field(ge=1)
    summary_max_chars: int = Field(ge=50)
    llm_max_tokens: int = Field(ge=8)


def split_sentences(text: str) -> list[str]:
    """Sentences of a text (on ., !, ? and newlines), stripped, empty ones dropped."""
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def extractive_summary(request: str, documents: list[ScoredDocument], n_sentences: int, max_chars: int) -> str:
    """Top sentences by (content-word overlap with the request) x (document score), in rank order,
    each cited by its document number [n]; empty when nothing overlaps."""
    q = content_terms(request)
    if not q or not documents:
        return ""
    scored: list[tuple[float, int, int, str]] = []
    for d_idx, sd in enumerate(documents):
        for s_idx, sentence in enumerate(split_sentences(sd.document.text)):
            overlap = len(q & content_terms(sentence)) / len(q)
            if overlap > 0:
                scored.append((overlap * sd.score, d_idx, s_idx, sentence))
    scored.sort(key=lambda x: (-x[0], x[1], x[2]))
    parts: list[str] = []
    seen: set[str] = set()
    length = 0
    for _, d_idx, _, sentence in scored:
        key = sentence.lower()
        if key in seen:
            continue
        piece = f"{sentence} [{d_idx + 1}]"
        if length + len(piece) > max_chars and parts:
            break
        parts.append(piece[:max_chars])
        seen.add(key)
        length += len(piece) + 1
        if len(parts) >= n_sentences:
            break
    return " ".join(parts)


def llm_summary(llm: SupportsChat, request: str, documents: list[ScoredDocument], cfg: IntegrationConfig) -> str:
    """LLM compression of the numbered documents; empty string when the model returns nothing."""
    numbered = "\n".join(f"[{i + 1}] {d.document.title}: {d.document.text[:600]}" for i, d in enumerate(documents))
    messages = [
        {
            "role": "system",
            "content": "Summarize only facts from the documents that help answer the shopper's "
            "request, in at most three sentences, citing documents as [n].",
        },
        {"role": "user", "content": f"Request: {request}\nDocuments:\n{numbered}"},
    ]
    result = llm.chat(messages, max_tokens=cfg.llm_max_tokens)
    text = getattr(result, "text", result)
    return str(text or "").strip()[: cfg.summary_max_chars]
