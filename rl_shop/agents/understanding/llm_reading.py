"""The LLM's reading of a shopping request, and the checks that decide which of it to use.

The rule reader (:class:`~rl_shop.agents.understanding.Understander`) is in charge; a language model
may add a product type, a catalog category, a budget or exclusions that the text supports. This
module is the contract between the two: the JSON schema the model decodes under (short on purpose:
every field costs decoding time on the embedded model), the prompt (the same text at fine-tuning
and at inference), the training target read from hand labels, and the grounding checks.
A value is *grounded* when the request supports it: the budget's number is written in it, each
exclusion's words are in it, the product type's head noun is in it, the category is one the
catalog has.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from rl_shop.agents.understanding.product_type import singular

_Phrase = Annotated[str, StringConstraints(max_length=48)]  # the longest catalog category has 45
_WORD = re.compile(r"[a-z0-9]+")

SYSTEM_PROMPT = (
    "You read a shopping request. Answer with the product type as the shopper names it (a short noun "
    "phrase), the store category that sells it (null when the store does not carry it), the maximum budget "
    "in USD (null when none is given) and the things the shopper wants to avoid ([] when none)."
)


class LLMReading(BaseModel):
    """What the model is asked for (field order = decoding order: the type first survives a cut)."""

    product_type: _Phrase | None = None
    category: _Phrase | None = None
    budget_max: float | None = Field(default=None, ge=0)
    exclusions: list[_Phrase] = Field(default_factory=list, max_length=3)


def reading_messages(text: str) -> list[dict[str, str]]:
    """The prompt of the reading call (fine-tuning data uses exactly this)."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": f"Request: {text}"}]


def target_reading(labels: dict[str, Any]) -> LLMReading:
    """The answer a hand-labelled request should get (``docs/labelling_guide.md`` fields)."""
    cats = labels.get("catalog_categories") or []
    return LLMReading(
        product_type=labels.get("product_type") or None,
        category=cats[0] if labels.get("in_catalog") and cats else None,
        budget_max=labels.get("budget_max"),
        exclusions=list(labels.get("exclusions") or [])[:3],
    )


def _words(text: str) -> list[str]:
    return [singular(w) for w in _WORD.findall(text.lower())]


def _budget_written(value: float, text: str) -> bool:
    plain = text.replace(",", "")
    forms = {f"{value:g}", f"{value:.2f}"}  # 40 / 40.00, 39.99
    return any(re.search(r"(?<![\d.])" + re.escape(f) + r"(?![\d])", plain) for f in forms)


def check_reading(reading: LLMReading, text: str, categories: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """``(accepted values, rejection notes)``: only values the request supports survive."""
    words = _words(text)
    joined = " ".join(words)
    accepted: dict[str, Any] = {}
    notes: list[str] = []
    if reading.product_type:
        head = _words(reading.product_type)[-1:] or [""]
        if head[0] and any(head[0] in w for w in words):  # "watch band" in "smartwatch bands"
            accepted["product_type"] = reading.product_type.strip().lower()
        else:
            notes.append(f"product type {reading.product_type!r}: its head noun is not in the request")
    if reading.category:
        cat = reading.category.strip().lower()
        if cat in {str(c).strip().lower() for c in categories}:
            accepted["category"] = cat
        else:
            notes.append(f"category {reading.category!r} is not a catalog category")
    if reading.budget_max is not None:
        if _budget_written(reading.budget_max, text):
            accepted["budget_max"] = float(reading.budget_max)
        else:
            notes.append(f"budget {reading.budget_max:g} is not written in the request")
    kept = []
    for ex in reading.exclusions:
        ex_words = _words(ex)
        if ex_words and " ".join(ex_words) in joined:
            kept.append(ex.strip().lower())
        elif ex.strip():
            notes.append(f"exclusion {ex!r} is not in the request")
    if kept:
        accepted["exclusions"] = kept
    return accepted, notes


def fill_gaps(fields: dict[str, Any], accepted: dict[str, Any]) -> dict[str, Any]:
    """The rule reader's ``fields`` (budget_max, exclusions, category, in_catalog) with the slots it
    left empty filled from the LLM's grounded values: a rule value is never overwritten, an LLM
    exclusion is added only when the rules have nothing like it, and a catalog category is taken
    only when the rules found the type carried but no category (an "uncarried" verdict stands)."""
    out = dict(fields)
    if out.get("budget_max") is None and accepted.get("budget_max") is not None:
        out["budget_max"] = accepted["budget_max"]
    have = [set(_words(e)) for e in out.get("exclusions") or []]
    extra = [e for e in accepted.get("exclusions", []) if not any(set(_words(e)) & h for h in have)]
    out["exclusions"] = list(out.get("exclusions") or []) + extra
    if out.get("in_catalog") and not out.get("category") and accepted.get("category"):
        out["category"] = accepted["category"]
    return out


__all__ = ["LLMReading", "SYSTEM_PROMPT", "check_reading", "fill_gaps", "reading_messages", "target_reading"]
