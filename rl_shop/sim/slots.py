"""The slots a Guider can ask about and the latent shopper ``Intent``.

``SLOTS`` is a contract with the RL environments: its order fixes action ids and observation
layouts, so append-only changes are the only safe ones. ``Intent`` is the hidden truth behind a
query; gold relevance, the shopper's answers and the benchmark record all derive from it, which
is why it is frozen and round-trips through JSON exactly.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rl_shop.sim.errors import ConfigError

SLOTS: tuple[str, ...] = (
    "category",
    "budget",
    "brand",
    "colour",
    "capacity",
    "size",
    "connectivity",
    "features",
    "use_case",
)
"""Ordered slot names; index i is the Guider's "ask about slot i" action."""

#: The clarification turn in which the assistant shows a shortlist for confirmation (the Clarify
#: env's ``suggest`` action) instead of asking about one slot; it is not a slot.
SUGGESTION: str = "suggest"
QUERY_TYPES: tuple[str, ...] = (
    "simple",
    "reasoning",
    "multi_constraint",
    "negation",
    "ambiguous",
    "product_qa",
    "comparison",
    "general_qa",
)
"""The eight ECCD query types of MACDF section 4.1.1."""

QueryType = Literal[
    "simple",
    "reasoning",
    "multi_constraint",
    "negation",
    "ambiguous",
    "product_qa",
    "comparison",
    "general_qa",
]

QA_FIELDS: tuple[str, ...] = ("price", "brand", "capacity", "size", "colour", "connectivity")
"""Catalog fields a product Q&A question may ask about."""


class Intent(BaseModel):
    """What a simulated shopper really wants; gold products are those satisfying it.

    Constraint fields left at their empty default (``None`` / ``()``) mean "no constraint on
    that slot". ``stated_slots`` are what the first query text says, ``hidden_slots`` what is
    relevant but unsaid (the Guider's job is to uncover them).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    query_type: QueryType
    category: str
    department: str = ""
    budget: float | None = Field(default=None, gt=0)
    preferred_brands: tuple[str, ...] = ()
    excluded_brands: tuple[str, ...] = ()
    colour: str | None = None
    min_capacity_gb: float | None = Field(default=None, gt=0)
    min_size_in: float | None = Field(default=None, ge=0)
    max_size_in: float | None = Field(default=None, gt=0)
    connectivity: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    use_case: str | None = None
    recipient: str | None = None
    use_case_categories: tuple[str, ...] = ()
    target_product_ids: tuple[str, ...] = ()
    target_names: tuple[str, ...] = ()
    qa_field: str | None = None
    qa_topic: str | None = None
    gold_answer: str | None = None
    stated_slots: tuple[str, ...] = ()
    hidden_slots: tuple[str, ...] = ()
    patience: int = Field(default=4, ge=0)
    latency_tolerance_s: float = Field(default=8.0, gt=0)
    p_dont_know: float = Field(default=0.1, ge=0, le=1)
    p_wrong: float = Field(default=0.05, ge=0, le=1)
    typo_rate: float = Field(default=0.0, ge=0, le=1)

    @field_validator("stated_slots", "hidden_slots")
    @classmethod
    def _known_slots(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in SLOTS]
        if unknown:
            raise ValueError(f"unknown slot(s) {unknown}; valid slots are {list(SLOTS)}")
        return value

    @field_validator("qa_field")
    @classmethod
    def _known_field(cls, value: str | None) -> str | None:
        if value is not None and value not in QA_FIELDS:
            raise ValueError(f"unknown qa_field {value!r}; valid fields are {list(QA_FIELDS)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Intent:
        overlap = set(self.stated_slots) & set(self.hidden_slots)
        if overlap:
            raise ValueError(f"slots {sorted(overlap)} are both stated and hidden")
        both = set(self.preferred_brands) & set(self.excluded_brands)
        if both:
            raise ValueError(f"brands {sorted(both)} are both preferred and excluded")
        if self.min_size_in is not None and self.max_size_in is not None and self.min_size_in > self.max_size_in:
            raise ValueError(f"size range is empty: min_size_in={self.min_size_in} > max_size_in={self.max_size_in}")
        return self

    # ------------------------------------------------------------------ slot view
    def has_constraint(self, slot: str) -> bool:
        """Whether the intent constrains ``slot`` (so asking about it can narrow the search)."""
        return self.slot_value(slot) is not None

    def slot_value(self, slot: str) -> object:
        """The intent's value for ``slot`` in a plain, JSON-able form; ``None`` = no constraint."""
        if slot not in SLOTS:
            raise ValueError(f"unknown slot {slot!r}; valid slots are {list(SLOTS)}")
        if slot == "category":
            return self.category or None
        if slot == "budget":
            return self.budget
        if slot == "brand":
            if not self.preferred_brands and not self.excluded_brands:
                return None
            return {"prefer": list(self.preferred_brands), "exclude": list(self.excluded_brands)}
        if slot == "colour":
            return self.colour or None
        if slot == "capacity":
            return self.min_capacity_gb
        if slot == "size":
            if self.min_size_in is None and self.max_size_in is None:
                return None
            return [self.min_size_in, self.max_size_in]
        if slot == "connectivity":
            return list(self.connectivity) or None
        if slot == "features":
            return list(self.features) or None
        # use_case
        if not self.use_case and not self.recipient:
            return None
        return {"use_case": self.use_case, "recipient": self.recipient}

    def constrained_slots(self) -> tuple[str, ...]:
        """Slots (in ``SLOTS`` order) that the intent constrains."""
        return tuple(s for s in SLOTS if self.has_constraint(s))

    def constraints(self) -> dict[str, Any]:
        """Slot -> value of every constraint, plus target products; used in error messages."""
        out: dict[str, Any] = {s: self.slot_value(s) for s in self.constrained_slots()}
        if self.target_product_ids:
            out["target_product_ids"] = list(self.target_product_ids)
        return out

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> str:
        """Compact JSON with sorted keys, so equal intents serialize to identical bytes."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes | dict[str, Any]) -> Intent:
        """Parse an intent from JSON text or a dict, with a readable error on bad input."""
        try:
            payload = json.loads(data) if isinstance(data, (str, bytes)) else data
            return cls.model_validate(payload)
        except (json.JSONDecodeError, ValidationError, TypeError) as exc:
            raise ConfigError(f"not a valid serialized Intent: {exc}") from exc
