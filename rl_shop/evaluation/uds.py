"""User Demand Satisfaction (UDS, 1-3) of MACDF section 4.1.3: an LLM judge and a deterministic rubric.

The paper's UDS is a human score on a 1-3 scale (Not / Partially / Fully Satisfied) of the whole
response (products, answer, selling points, guidance) for its *completeness*, *correctness* and
*usefulness in addressing both explicit and implicit user needs*. Two scorers follow that rubric:

* :class:`UDSJudge`: an LLM reads the written :data:`RUBRIC`, the query, what the shopper really
  wanted (the hidden intent, as an expert annotator would know it) and the response, and returns
  the three criteria and an overall level under a JSON schema. A judge output that fails
  validation is recorded as missing (``None``), never replaced by a made-up score.
* :func:`rubric_score`: a deterministic score computed from the gold intent, so that results do
  not hinge on a tiny judge. Each criterion is a number in [0, 1]:

  - correctness: Accuracy@5 over its ceiling min(|gold|, 5) / 5 (product Q&A: the answer states
    the gold answer);
  - explicit needs (completeness): mean share of the intent's constraints satisfied by the shown
    top-5 (comparison / product Q&A: share of the asked-about products shown);
  - implicit needs: the same over the slots the query left unsaid (``hidden_slots``), or the
    token recall of the gold answer for general Q&A; equal to explicit when nothing is hidden;
  - usefulness: the response has an answer of at least ``min_answer_words`` words (half) that
    names a shown product by brand or by two title words not taken from the query (the other half).

  ``s = sum_c w_c * criterion_c`` is mapped to the annotators' integer scale: 3 if
  ``s >= full``, 2 if ``s >= partial``, else 1 (weights and thresholds in configs/evaluate.yaml).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from rl_shop.config_files import defaults_from_yaml
from rl_shop.evaluation.metrics import accuracy_at_k
from rl_shop.sim.benchmark import BenchmarkItem
from rl_shop.sim.constraints import CatalogArrays, slot_mask

if TYPE_CHECKING:
    import pandas as pd

    from rl_shop.llm import LLM, Message

RUBRIC = """\
Score the assistant's response to a shopper on three criteria, each 1, 2 or 3:
- completeness: does the response cover everything the shopper asked for, stated and unstated
  (all constraints, every product asked about, the question asked)? 1 = misses most, 2 = covers
  some, 3 = covers all.
- correctness: are the recommended products and facts right (products satisfy the constraints,
  excluded brands are absent, answers to product questions are true)? 1 = mostly wrong,
  2 = partly right, 3 = right.
- usefulness: does the response help the shopper decide (relevant products first, reasons,
  guidance for explicit and implicit needs)? 1 = not useful, 2 = somewhat, 3 = very useful.
overall: 1 = Not Satisfied, 2 = Partially Satisfied, 3 = Fully Satisfied.
"""

_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "for",
        "to",
        "in",
        "on",
        "with",
        "is",
        "are",
        "be",
        "it",
        "its",
        "at",
        "by",
        "from",
        "as",
        "that",
        "this",
        "get",
        "more",
    ]
)


def tokens(text: str) -> list[str]:
    """Lower-case word / number tokens."""
    return _WORD.findall(str(text).lower())


def answer_recall(gold: str, answer: str) -> float:
    """Share of the gold answer's content tokens that appear in the answer (0 when gold is empty)."""
    want = [t for t in tokens(gold) if t not in _STOP]
    if not want:
        return 0.0
    have = set(tokens(answer))
    return sum(1 for t in want if t in have) / len(want)


@defaults_from_yaml("evaluate.yaml", "uds.rubric", what="evaluation config")
class RubricConfig(BaseModel):
    """Weights and thresholds of the deterministic rubric (``configs/evaluate.yaml`` ``uds.rubric``)."""

    model_config = ConfigDict(extra="forbid")

    k: int = Field(ge=1)
    w_correctness: float = Field(ge=0)
    w_explicit: float = Field(ge=0)
    w_implicit: float = Field(ge=0)
    w_usefulness: float = Field(ge=0)
    partial: float = Field(ge=0, le=1)
    full: float = Field(ge=0, le=1)
    min_answer_words: int = Field(ge=1)
    qa_answer_recall: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> RubricConfig:
        if self.partial > self.full:
            raise ValueError(f"uds.rubric.partial ({self.partial}) must not exceed full ({self.full})")
        if self.w_correctness + self.w_explicit + self.w_implicit + self.w_usefulness <= 0:
            raise ValueError("uds.rubric weights must not all be zero")
        return self


@dataclass(frozen=True)
class RubricScore:
    """Per-criterion scores in [0, 1], their weighted sum and the 1-3 level."""

    correctness: float
    explicit: float
    implicit: float
    usefulness: float
    score: float
    level: int


def _share_satisfied(arr: CatalogArrays, item: BenchmarkItem, slots: tuple[str, ...], ids: list[str]) -> float:
    """Mean over shown products of the share of ``slots`` constraints each satisfies."""
    slots = tuple(s for s in slots if item.intent.has_constraint(s))
    if not ids:
        return 0.0
    known = [arr.id_to_index[p] for p in ids if p in arr.id_to_index]  # an id not in the catalog satisfies nothing
    if not slots:
        return len(known) / len(ids)
    if not known:
        return 0.0
    masks = np.stack([slot_mask(arr, item.intent, s)[known] for s in slots])
    return float(masks.sum() / (len(slots) * len(ids)))


def _usefulness(
    arr: CatalogArrays,
    item: BenchmarkItem,
    answer: str,
    ids: list[str],
    min_words: int,
    titles: Mapping[str, str] | None,
) -> float:
    """Half for a real answer (>= ``min_words`` words), half more if it names a shown product.

    Naming = the product's brand, or two words of its title that are neither in the query nor in
    its category (echoing "memory card reader" back to the shopper names nothing).
    """
    words = tokens(answer)
    if len(words) < min_words:
        return 0.0
    have = set(words)
    generic = set(tokens(item.query)) | _STOP
    for pid in ids:
        if pid not in arr.id_to_index:
            continue
        i = arr.id_to_index[pid]
        brand = tokens(arr.brand[i])
        generic_p = generic | set(tokens(arr.category[i]))
        title_words = {t for t in tokens((titles or {}).get(pid, "")) if len(t) > 2 and t not in generic_p}
        if (brand and set(brand) <= have) or len(title_words & have) >= 2:
            return 1.0
    return 0.5


def rubric_score(
    item: BenchmarkItem,
    ranked_ids: list[str],
    answer: str,
    arr: CatalogArrays,
    config: RubricConfig | None = None,
    titles: Mapping[str, str] | None = None,
) -> RubricScore:
    """The deterministic UDS rubric of one response (see the module docstring).

    ``titles`` (product id -> title) lets usefulness recognize a product named by title words;
    without it only brands are recognized.
    """
    c = config or RubricConfig.model_validate({})
    k = c.k
    top = [str(p) for p in dict.fromkeys(str(p) for p in ranked_ids)][:k]
    gold = item.gold_product_ids
    ceiling = min(len(gold), k) / k
    qt = item.query_type
    intent = item.intent
    if intent.target_product_ids:
        shown = set(top)
        target_cover = sum(1 for t in intent.target_product_ids if t in shown) / len(intent.target_product_ids)
    else:
        target_cover = 0.0
    if qt == "product_qa":
        correctness = float(answer_recall(item.gold_answer or "", answer) >= c.qa_answer_recall)
    else:
        correctness = accuracy_at_k(top, gold, k) / ceiling if ceiling > 0 else 0.0
    if qt in ("product_qa", "comparison"):
        explicit = target_cover
        implicit = explicit
    else:
        explicit = _share_satisfied(arr, item, intent.constrained_slots(), top)
        hidden = tuple(s for s in intent.hidden_slots if intent.has_constraint(s))
        implicit = _share_satisfied(arr, item, hidden, top) if hidden else explicit
        if qt == "general_qa" and item.gold_answer:
            implicit = answer_recall(item.gold_answer, answer)
    usefulness = _usefulness(arr, item, answer, top, c.min_answer_words, titles)
    wsum = c.w_correctness + c.w_explicit + c.w_implicit + c.w_usefulness
    score = (
        c.w_correctness * correctness + c.w_explicit * explicit + c.w_implicit * implicit + c.w_usefulness * usefulness
    ) / wsum
    level = 3 if score >= c.full else 2 if score >= c.partial else 1
    return RubricScore(correctness, explicit, implicit, usefulness, score, level)


# --------------------------------------------------------------------------- LLM judge
class JudgeScores(BaseModel):
    """The judge's structured verdict (each 1-3)."""

    completeness: int = Field(ge=1, le=3)
    correctness: int = Field(ge=1, le=3)
    usefulness: int = Field(ge=1, le=3)
    overall: int = Field(ge=1, le=3)


@defaults_from_yaml("evaluate.yaml", "uds.judge", what="evaluation config")
class JudgeConfig(BaseModel):
    """Settings of the LLM judge (``configs/evaluate.yaml`` ``uds.judge``)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    max_tokens: int = Field(ge=8)
    max_answer_chars: int = Field(ge=20)
    title_words: int = Field(ge=1)
    k: int = Field(ge=1)
    seed: int


def describe_intent(item: BenchmarkItem) -> str:
    """The hidden intent in words, as the judge (an expert annotator) is told it."""
    it = item.intent
    parts = [f"query type: {item.query_type}", f"category: {it.category}"]
    if it.budget is not None:
        parts.append(f"budget at most ${it.budget:g}")
    if it.preferred_brands:
        parts.append("brand: " + " or ".join(it.preferred_brands))
    if it.excluded_brands:
        parts.append("NOT brand: " + " or ".join(it.excluded_brands))
    for slot in ("colour", "capacity", "size", "connectivity", "features", "use_case"):
        if it.has_constraint(slot) and slot != "brand":
            parts.append(f"{slot}: {it.slot_value(slot)}")
    if it.target_names:
        parts.append("products asked about: " + "; ".join(it.target_names))
    if item.gold_answer:
        parts.append(f"correct answer: {item.gold_answer}")
    if it.hidden_slots:
        parts.append("unstated needs: " + ", ".join(it.hidden_slots))
    return "; ".join(parts)


class UDSJudge:
    """LLM judge of UDS following :data:`RUBRIC`; returns ``None`` when its output is unusable."""

    def __init__(self, llm: LLM, catalog_rows: pd.DataFrame, config: JudgeConfig | None = None) -> None:
        self.llm = llm
        self.rows = catalog_rows  # DataFrame indexed by product_id
        self.config = config or JudgeConfig.model_validate({})

    def messages(self, item: BenchmarkItem, ranked_ids: list[str], answer: str) -> list[Message]:
        c = self.config
        lines = []
        for n, pid in enumerate(ranked_ids[: c.k], start=1):
            row = self.rows.loc[pid]
            price = row["price"]
            price_s = "?" if price != price else f"${float(price):.2f}"  # NaN check
            lines.append(f"{n}. {' '.join(str(row['title']).split()[: c.title_words])} ({row['brand']}, {price_s})")
        products = "\n".join(lines) if lines else "(no products)"
        answer = " ".join(answer.split())[: c.max_answer_chars] or "(no text)"
        user = (
            f"{RUBRIC}\nShopper's query: {item.query}\nWhat the shopper really wants: {describe_intent(item)}\n"
            f"Recommended products:\n{products}\nAssistant's text: {answer}\n\nGive the four scores as JSON."
        )
        return [
            {"role": "system", "content": "You are a strict e-commerce evaluation expert."},
            {"role": "user", "content": user},
        ]

    def score(self, item: BenchmarkItem, ranked_ids: list[str], answer: str) -> JudgeScores | None:
        res = self.llm.structured(
            self.messages(item, ranked_ids, answer),
            JudgeScores,
            max_tokens=self.config.max_tokens,
            seed=self.config.seed,
        )
        if res.used_fallback or res.value is None:
            return None
        return res.value


__all__ = [
    "JudgeConfig",
    "JudgeScores",
    "RUBRIC",
    "RubricConfig",
    "RubricScore",
    "UDSJudge",
    "answer_recall",
    "describe_intent",
    "rubric_score",
    "tokens",
]
