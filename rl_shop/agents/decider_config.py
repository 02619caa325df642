"""``configs/agents/decider.yaml`` as typed settings: criteria, AHP judgements, scoring weights."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

#: The four criteria of the paper's evaluation matrix.
CRITERIA = ("functional", "economic", "risk", "preference")


class HardConstraintConfig(BaseModel):
    budget_tolerance: float = Field(default=0.0, ge=0.0)
    unknown_attribute: Literal["text", "keep", "exclude"] = "text"
    at_least: list[str] = Field(default_factory=lambda: ["capacity_gb"])
    numeric_tolerance: float = Field(default=0.05, ge=0.0)
    relax_attributes: bool = True


class FunctionalConfig(BaseModel):
    query_overlap: float = 0.5
    attribute_match: float = 0.3
    rating: float = 0.2
    retrieval_score: float = 0.2


class EconomicConfig(BaseModel):
    budget_headroom_weight: float = Field(default=0.5, ge=0.0, le=1.0)


class RiskConfig(BaseModel):
    known_brand_min_count: int = 3
    price_outlier_z: float = 2.5
    brand_weight: float = 0.5
    price_weight: float = 0.3
    web_weight: float = 0.2


class PreferenceConfig(BaseModel):
    preferred_brand: float = 1.0
    no_preference: float = 0.5
    other_brand: float = 0.2
    history_bonus: float = 0.3


class AdviceConfig(BaseModel):
    max_reasons: int = 3
    llm_max_tokens: int = 160
    close_score_gap: float = 0.05


class FeedbackConfig(BaseModel):
    purchase: float = 1.0
    click: float = 0.5
    no_interaction: float = 0.0
    replan_below: float = 0.5
    store_experience_at: float = 1.0


class DeciderConfig(BaseModel):
    """``configs/agents/decider.yaml``."""

    criteria: list[str] = Field(default_factory=lambda: list(CRITERIA))
    pairwise: list[list[float]]
    max_consistency_ratio: float = 0.1
    reciprocal_tolerance: float = 0.02
    top_k: int = Field(default=3, ge=1)
    hard_constraints: HardConstraintConfig = HardConstraintConfig()
    functional: FunctionalConfig = FunctionalConfig()
    economic: EconomicConfig = EconomicConfig()
    risk: RiskConfig = RiskConfig()
    preference: PreferenceConfig = PreferenceConfig()
    advice: AdviceConfig = AdviceConfig()
    feedback: FeedbackConfig = FeedbackConfig()

    @model_validator(mode="after")
    def _check(self) -> DeciderConfig:
        if sorted(self.criteria) != sorted(CRITERIA):
            raise ValueError(f"criteria must be a permutation of {list(CRITERIA)}, got {self.criteria}")
        if len(self.pairwise) != len(self.criteria) or any(len(r) != len(self.criteria) for r in self.pairwise):
            raise ValueError(f"pairwise must be a {len(self.criteria)}x{len(self.criteria)} matrix")
        return self
