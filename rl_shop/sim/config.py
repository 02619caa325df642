"""Typed, validated simulator configuration loaded from ``configs/sim/*.yaml``.

Every number a researcher would sweep (type mix, noise, patience, click-model and abandonment
parameters) lives in YAML; these pydantic models give each a type, a range check and a clear
error naming the bad key, instead of a KeyError deep inside the sampler.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rl_shop.config_files import ConfigValue, defaults_from_yaml, read_config
from rl_shop.paths import CONFIG_DIR
from rl_shop.sim.errors import ConfigError
from rl_shop.sim.slots import QUERY_TYPES

SIM_CONFIG_DIR = CONFIG_DIR / "sim"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(ConfigValue):
    """A closed interval a per-intent value is drawn from uniformly."""

    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError(f"range low={self.low} is above high={self.high}")
        return self


class SamplerConfig(_Strict):
    """How intents are drawn from the catalog."""

    min_category_size: int = Field(ge=1)
    exclude_categories: tuple[str, ...]
    min_value_count: int = Field(ge=1)
    negation_min_brand_share: float = Field(ge=0, le=1)
    negation_p_budget: float = Field(ge=0, le=1)
    simple_p_brand: float = Field(ge=0, le=1)
    multi_constraint_min: int = Field(ge=1)
    multi_constraint_max: int = Field(ge=1)
    ambiguous_max_hidden_extra: int = Field(ge=0)
    reasoning_p_budget: float = Field(ge=0, le=1)
    budget_slack: Range
    size_margin_in: float = Field(ge=0)
    comparison_min_targets: int = Field(ge=2)
    comparison_max_targets: int = Field(ge=2)
    max_tries: int = Field(ge=1)
    min_gold_size: dict[str, int]
    patience: Range
    latency_tolerance_s: Range
    p_dont_know: Range
    p_wrong: Range
    typo_rate: Range
    title_words: Range


class ClickModelConfig(_Strict):
    """Position-based click model: P(click at r) = examination(r) * attractiveness(rel)."""

    examination_eta: float = Field(ge=0)
    attractiveness_relevant: float = Field(ge=0, le=1)
    attractiveness_irrelevant: float = Field(ge=0, le=1)
    max_rank: int = Field(ge=1)


class ShopperConfig(_Strict):
    """Reaction parameters of the structured shopper."""

    click: ClickModelConfig
    p_purchase: float = Field(ge=0, le=1)
    reformulate_top_k: int = Field(ge=1)
    p_reformulate: float = Field(ge=0, le=1)
    abandon_base_p: float = Field(ge=0, le=1)
    abandon_scale_s: float = Field(gt=0)
    p_dont_know_hidden_bonus: float = Field(ge=0, le=1)
    wrong_budget_factor: Range


class HistoryConfig(_Strict):
    """Behaviour-history generation around a persona."""

    n_sessions: Range
    views_per_session: Range
    p_in_category: float = Field(ge=0, le=1)
    p_noise_event: float = Field(ge=0, le=1)
    p_click_given_view: float = Field(ge=0, le=1)
    p_cart_given_click: float = Field(ge=0, le=1)
    p_purchase_given_cart: float = Field(ge=0, le=1)
    brand_preference_weight: float = Field(ge=1)
    attribute_preference_weight: float = Field(ge=1)  # per attribute slot the product meets
    price_width: float = Field(gt=0)
    session_gap_s: Range
    event_gap_s: Range


class RenderConfig(_Strict):
    """Surface variation of rendered query text (weights of phrasings come from the lexicon)."""

    p_keyword_simple: float = Field(ge=0, le=1)
    p_lowercase: float = Field(ge=0, le=1)
    max_query_chars: int = Field(ge=20)
    answer_face: Literal["mined", "templates"]  # rl_shop.sim.answer_text


@defaults_from_yaml("sim/default.yaml", what="simulator config", error=ConfigError)
class SimConfig(_Strict):
    """The whole simulator configuration."""

    mix: dict[str, float]
    render: RenderConfig
    sampler: SamplerConfig
    shopper: ShopperConfig
    history: HistoryConfig
    knowledge: dict[str, Any]
    lexicon: dict[str, Any]

    @model_validator(mode="after")
    def _valid_mix(self) -> SimConfig:
        unknown = set(self.mix) - set(QUERY_TYPES)
        if unknown:
            raise ValueError(f"mix has unknown query types {sorted(unknown)}; use {QUERY_TYPES}")
        if any(v < 0 for v in self.mix.values()) or sum(self.mix.values()) <= 0:
            raise ValueError("mix weights must be non-negative and sum to more than 0")
        if self.sampler.multi_constraint_min > self.sampler.multi_constraint_max:
            raise ValueError("sampler.multi_constraint_min is above multi_constraint_max")
        if self.sampler.comparison_min_targets > self.sampler.comparison_max_targets:
            raise ValueError("sampler.comparison_min_targets is above comparison_max_targets")
        return self

    def mix_probabilities(self) -> dict[str, float]:
        """The mix normalized to sum to 1, in ``QUERY_TYPES`` order."""
        total = sum(self.mix.values())
        return {t: self.mix.get(t, 0.0) / total for t in QUERY_TYPES}


def _read_yaml(path: Path) -> dict[str, Any]:
    # resolve=False: the lexicon's templates spell a dollar amount as "${x}", not an interpolation
    return read_config(path, what="simulator config", error=ConfigError, resolve=False)


def load_sim_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> SimConfig:
    """Load ``configs/sim/default.yaml`` (or ``path``) with its knowledge and lexicon files.

    ``knowledge_file`` / ``lexicon_file`` keys are resolved relative to the config's folder.
    ``overrides`` is merged shallowly per section, for tests and sweeps.
    """
    path = Path(path) if path is not None else SIM_CONFIG_DIR / "default.yaml"
    data = _read_yaml(path)
    return sim_config_from_dict(data, base_dir=path.parent, overrides=overrides)


def sim_config_from_dict(
    data: dict[str, Any], base_dir: Path | None = None, overrides: dict[str, Any] | None = None
) -> SimConfig:
    """Build a ``SimConfig`` from a plain dict (e.g. a Hydra node), resolving side files."""
    data = dict(data)
    base_dir = base_dir or SIM_CONFIG_DIR
    for key, target in (("knowledge_file", "knowledge"), ("lexicon_file", "lexicon")):
        name = data.pop(key, None)
        if name and target not in data:
            data[target] = _read_yaml(base_dir / name)
    for section, values in (overrides or {}).items():
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            data[section] = {**data[section], **values}
        else:
            data[section] = values
    try:
        return SimConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid simulator config: {exc}") from exc


__all__ = [
    "ClickModelConfig",
    "HistoryConfig",
    "Range",
    "RenderConfig",
    "SamplerConfig",
    "ShopperConfig",
    "SimConfig",
    "load_sim_config",
    "sim_config_from_dict",
]
