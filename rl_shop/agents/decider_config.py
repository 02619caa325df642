"""``configs/agents/decider.yaml`` as typed settings: criteria, AHP judgements, scoring weights.

The YAML file is the one home of every value: ``defaults_from`` installs its values as the
models' defaults; :func:`decider_settings` merges overrides (nested dicts) over the file.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from rl_shop.agents.config import defaults_from, load_agent_config, validate_config
from rl_shop.config_files import deep_update

#: The four criteria of the paper's evaluation matrix.
CRITERIA = ("functional", "economic", "risk", "preference")


@defaults_from("decider", "hard_constraints")
class HardConstraintConfig(BaseModel):
    budget_tolerance: float = Field(ge=0.0)
    unknown_attribute: Literal["text", "keep", "exclude"]
    at_least: list[str]
    numeric_tolerance: float = Field(ge=0.0)
    relax_attributes: bool


class FunctionalConfig(BaseModel):
    query_overlap: float
    attribute_match: float
    rating: float
    retrieval_score: float


class EconomicConfig(BaseModel):
    budget_headroom_weight: float = Field(ge=0.0, le=1.0)


class RiskConfig(BaseModel):
    known_brand_min_count: int
    price_outlier_z: float
    brand_weight: float
    price_weight: float
    web_weight: float


class PreferenceConfig(BaseModel):
    preferred_brand: float
    no_preference: float
    other_brand: float
    history_bonus: float


class AdviceConfig(BaseModel):
    max_reasons: int
    llm_max_tokens: int
    close_score_gap: float


class FeedbackConfig(BaseModel):
    purchase: float
    click: float
    no_interaction: float
    replan_below: float
    store_experience_at: float


@defaults_from("decider")
class DeciderConfig(BaseModel):
    """``configs/agents/decider.yaml``."""

    criteria: list[str]
    pairwise: list[list[float]]
    max_consistency_ratio: float
    reciprocal_tolerance: float
    top_k: int = Field(ge=1)
    hard_constraints: HardConstraintConfig
    functional: FunctionalConfig
    economic: EconomicConfig
    risk: RiskConfig
    preference: PreferenceConfig
    advice: AdviceConfig
    feedback: FeedbackConfig

    @model_validator(mode="after")
    def _check(self) -> DeciderConfig:
        if sorted(self.criteria) != sorted(CRITERIA):
            raise ValueError(f"criteria must be a permutation of {list(CRITERIA)}, got {self.criteria}")
        if len(self.pairwise) != len(self.criteria) or any(len(r) != len(self.criteria) for r in self.pairwise):
            raise ValueError(f"pairwise must be a {len(self.criteria)}x{len(self.criteria)} matrix")
        return self


def decider_settings(**overrides: object) -> DeciderConfig:
    """``configs/agents/decider.yaml`` with ``overrides`` deep-merged over it, validated."""
    data = deep_update(load_agent_config("decider"), overrides)
    return validate_config(DeciderConfig, data, "agents/decider")
