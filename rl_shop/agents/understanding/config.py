"""Typed view of ``configs/agents/understanding.yaml`` (the rules' lexicons and thresholds)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, Field

from rl_shop.agents.config import load_agent_config, validate_config


class BudgetConfig(BaseModel):
    max_cues: list[str]
    min_cues: list[str]
    range_joiners: list[str]
    currencies: dict[str, float]
    bare_followers: list[str]
    max_plausible: float = Field(gt=0)


class ExclusionConfig(BaseModel):
    free_not_exclusion: list[str]
    non_property: list[str]
    cues: list[str]
    not_heads: list[str]
    max_words: int = Field(ge=1)
    stop_words: list[str]


class AttributeConfig(BaseModel):
    materials: list[str]
    flavours_scents: list[str]
    flavour_cues: list[str]
    audience: dict[str, list[str]]
    units: dict[str, str]
    pack_words: dict[str, int]
    ambiguous_brands: list[str]


class ProductTypeConfig(BaseModel):
    openers: list[str]
    strong_boundaries: list[str]
    weak_boundaries: list[str]
    max_head_words: int = Field(ge=1)
    min_title_support: int = Field(ge=1)
    min_headness: float = Field(ge=0.0)
    compound_headness: float = Field(ge=0.0)
    category_name_bonus: float = Field(ge=0.0)
    generic_heads: list[str]
    never_heads: list[str]
    indefinite_heads: list[str]
    example_cues: list[str]


class QueryTypeConfig(BaseModel):
    vague_words: list[str]
    question_words: list[str]
    compare_cues: list[str]


class UnderstandingConfig(BaseModel):
    """``configs/agents/understanding.yaml``."""

    budget: BudgetConfig
    exclusion: ExclusionConfig
    attributes: AttributeConfig
    product_type: ProductTypeConfig
    query_type: QueryTypeConfig


@lru_cache(maxsize=1)
def load_understanding_config() -> UnderstandingConfig:
    """The shipped config, validated once."""
    return validate_config(UnderstandingConfig, load_agent_config("understanding"), "agents/understanding")
