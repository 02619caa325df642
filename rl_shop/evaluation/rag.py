"""The RAG baseline of MACDF (section 4.1.2): retrieved candidates in a prompt, the LLM re-ranks and justifies.

"This system injects retrieved candidate products and their metadata into a prompt ... The LLM's
task here is to re-rank the product results and generate justification text for
recommendations." Here: the hybrid index retrieves ``n_candidates`` products for the raw query,
each is listed with its number, title, brand, price and category, and the LLM answers under a JSON
schema (constrained decoding where the backend supports it) with the numbers of its picks in order
and a short justification. It is streamed, so time to first token is real.

Picks are validated against the candidate numbers (unknown / repeated numbers are dropped); the
shown list is the valid picks followed by the remaining candidates in retrieval order, so the
display always has ``k`` slots. An output that is not valid JSON of the schema keeps the retrieval
order, has no justification, and counts as an LLM fallback: nothing is invented in its place.
"""

from __future__ import annotations

import json
import math
import time
from typing import TYPE_CHECKING, Any, SupportsFloat, cast

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rl_shop.config_files import defaults_from_yaml
from rl_shop.evaluation.retrieval_baseline import SearchIndex, result_ids
from rl_shop.evaluation.systems import SystemOutput
from rl_shop.sim.benchmark import BenchmarkItem
from rl_shop.sim.shopper import Shopper

if TYPE_CHECKING:
    from rl_shop.llm import LLM, Message

SYSTEM_PROMPT = (
    "You are a shopping assistant. The user asked for something and a search engine returned the "
    "numbered candidate products below. Re-rank them: list the numbers of the best matches first, "
    "respecting every requirement of the user (budget, brands to avoid, features), and explain "
    "briefly why they fit."
)


@defaults_from_yaml("evaluate.yaml", "rag", what="evaluation config")
class RAGSettings(BaseModel):
    """Knobs of the RAG baseline (``configs/evaluate.yaml`` ``rag:``)."""

    model_config = ConfigDict(extra="forbid")

    n_candidates: int = Field(ge=1, le=50)
    k: int = Field(ge=1)
    max_picks: int = Field(ge=1)
    title_words: int = Field(ge=1)
    max_tokens: int = Field(ge=8)
    min_justification_chars: int = Field(ge=0)
    max_justification_chars: int = Field(ge=10)
    temperature: float = Field(ge=0)
    seed: int


def rerank_schema(n_candidates: int, k: int, max_chars: int, min_chars: int = 0) -> dict[str, Any]:
    """JSON schema of the LLM's answer: up to ``k`` candidate numbers (best first) and a justification.

    ``min_chars`` keeps a constrained decoder from closing the justification at once ("...").
    """
    return {
        "type": "object",
        "properties": {
            "ranking": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": n_candidates},
                "minItems": 1,
                "maxItems": min(k, n_candidates),
            },
            "justification": {"type": "string", "minLength": min(min_chars, max_chars), "maxLength": max_chars},
        },
        "required": ["ranking", "justification"],
        "additionalProperties": False,
    }


class _Answer(BaseModel):
    ranking: list[int]
    justification: str = ""


def parse_answer(text: str, n_candidates: int) -> tuple[list[int] | None, str, list[str]]:
    """``(picks as 0-based candidate positions, justification, problems)``; picks None when unusable."""
    problems: list[str] = []
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None, "", ["no JSON object in the output"]
    try:
        ans = _Answer.model_validate(json.loads(text[start : end + 1]))
    except (json.JSONDecodeError, ValidationError) as exc:
        return None, "", [f"invalid JSON answer: {str(exc)[:200]}"]
    picks: list[int] = []
    for num in ans.ranking:
        if not 1 <= num <= n_candidates:
            problems.append(f"candidate number {num} out of range 1..{n_candidates}")
        elif num - 1 in picks:
            problems.append(f"candidate number {num} repeated")
        else:
            picks.append(num - 1)
    return picks, ans.justification.strip(), problems


def merge_ranking(candidates: list[str], picks: list[int], k: int) -> list[str]:
    """The LLM's valid picks first, then the other candidates in retrieval order, cut to ``k``."""
    chosen = [candidates[i] for i in picks]
    rest = [c for c in candidates if c not in set(chosen)]
    return (chosen + rest)[:k]


def _price(value: object) -> str:
    return (
        "price unknown"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"${float(cast(SupportsFloat, value)):.2f}"
    )


class RAGSystem:
    """Retrieve, list the candidates in the prompt, let the LLM re-rank and justify (streamed)."""

    def __init__(
        self,
        llm: LLM,
        index: SearchIndex,
        catalog: pd.DataFrame,
        settings: RAGSettings | None = None,
        name: str = "rag",
    ) -> None:
        self.llm, self.index, self.name = llm, index, name
        self.settings = settings or RAGSettings.model_validate({})  # every default from evaluate.yaml
        self._rows = catalog.set_index("product_id", drop=False)

    def candidate_lines(self, ids: list[str]) -> list[str]:
        """One prompt line per candidate: ``[n] title | brand | price | category``."""
        s = self.settings
        lines = []
        for n, pid in enumerate(ids, start=1):
            row = self._rows.loc[pid]
            title = " ".join(str(row["title"]).split()[: s.title_words])
            lines.append(
                f"[{n}] {title} | brand: {row['brand'] or 'unknown'} | {_price(row['price'])} | {row['category']}"
            )
        return lines

    def messages(self, query: str, ids: list[str]) -> list[Message]:
        user = (
            f"User request: {query}\n\nCandidates:\n"
            + "\n".join(self.candidate_lines(ids))
            + f'\n\nAnswer with JSON: {{"ranking": [up to {min(self.settings.k, self.settings.max_picks)} numbers, best first], '
            '"justification": "<why they fit, naming the products>"}'
        )
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]

    def run(self, item: BenchmarkItem, shopper: Shopper) -> SystemOutput:
        s = self.settings
        start = time.perf_counter()
        candidates = result_ids(self.index.search(item.query, k=s.n_candidates))
        if not candidates:
            elapsed = time.perf_counter() - start
            return SystemOutput([], ttft_s=elapsed, total_s=elapsed, error="retrieval returned no candidates")
        schema = rerank_schema(
            len(candidates), min(s.k, s.max_picks), s.max_justification_chars, s.min_justification_chars
        )
        stream = self.llm.stream(
            self.messages(item.query, candidates),
            max_tokens=s.max_tokens,
            temperature=s.temperature,
            seed=s.seed,
            json_schema=schema,
        )
        ttft: float | None = None
        parts: list[str] = []
        for chunk in stream:
            if ttft is None and chunk:
                ttft = time.perf_counter() - start
            parts.append(chunk)
        total = time.perf_counter() - start
        text = stream.result.text if stream.result is not None else "".join(parts)
        picks, justification, problems = parse_answer(text, len(candidates))
        fallback = picks is None or not picks
        ranked = merge_ranking(candidates, picks or [], s.k)
        by_id = {pid: n for n, pid in enumerate(candidates)}
        products = [
            self._record(pid, justification if (not fallback and by_id[pid] in (picks or [])[:1]) else "")
            for pid in ranked
        ]
        return SystemOutput(
            ranked_ids=ranked,
            answer=justification if not fallback else "",
            ttft_s=ttft if ttft is not None else total,
            total_s=total,
            products=products,
            llm_fallbacks=int(fallback),
            extra={
                "candidates": candidates,
                "llm_picks": [candidates[i] for i in (picks or [])],
                "problems": problems,
                "raw": text[:500],
            },
        )

    def _record(self, pid: str, reason: str) -> dict[str, Any]:
        row = self._rows.loc[pid]
        price = row["price"]
        return {
            "product_id": pid,
            "title": str(row["title"]),
            "brand": str(row["brand"]),
            "price": None if pd.isna(price) else float(price),
            "reason": reason,
        }


__all__ = ["RAGSettings", "RAGSystem", "SYSTEM_PROMPT", "merge_ranking", "parse_answer", "rerank_schema"]
