"""The Leader's reflection (MACDF 3.2, Eq. 2) and its long-term store of failure cases.

    score = gamma * Relevance + (1 - gamma) * User_Satisfaction              (MACDF Eq. 2)

Both terms are estimated before the user reacts, from what the run produced:

* ``Relevance``: for product requests (``product_types``; general Q&A included, since its answer
  should come with products), the mean share of the clarified intent's constraints that
  each recommended product satisfies, checked against its catalog row (category, budget, brands,
  colour, capacity, size, connectivity, features), times the share of the ``top_k`` slots filled;
  for questions (product / general Q&A), whether the evidence the answer needs was found (the
  target product, web documents).
* ``User_Satisfaction``: the predicted satisfaction, the Decider's AHP-weighted score of its
  recommendations (in [0, 1]); a run with no recommendation for a product request scores 0.

Below ``threshold`` the Leader re-plans (``Planner.replan`` records the failure case with a
remedy in Memory's reflection knowledge base, which the Planner reads on every later plan).
The formula itself is ``rl_shop.policies.features.collaborate.reflection_score``, the function
the collaboration env uses, so the learned collaboration policy and the runtime agree on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from pydantic import BaseModel, Field

from rl_shop.agents.config import defaults_from
from rl_shop.agents.types import Decision, IntentSpec
from rl_shop.catalog.schema import has_value
from rl_shop.policies.features.collaborate import reflection_score

PRODUCT_TYPES = ("simple", "reasoning", "multi_constraint", "negation", "ambiguous", "comparison")


@defaults_from("leader", "reflection")
class ReflectionConfig(BaseModel):
    """``leader.yaml: reflection``."""

    gamma: float = Field(ge=0.0, le=1.0)
    threshold: float
    max_replans: int = Field(ge=0)
    top_k: int = Field(ge=1)
    remedy: dict[str, str]  # query type -> Planner remedy
    default_remedy: str
    product_types: list[str]  # relevance = recommended products


class ReflectionResult(BaseModel):
    """Eq. 2 terms, the score and whether it asks for a re-plan."""

    relevance: float
    user_satisfaction: float
    score: float
    gamma: float
    threshold: float
    replan: bool
    reason: str
    per_product: dict[str, float] = Field(default_factory=dict)


def _listish(v: object) -> list[str]:
    if v is None or isinstance(v, float):
        return []
    if isinstance(v, str):
        return [v.lower()]
    return [str(x).lower() for x in cast("Iterable[object]", v)]


def constraint_satisfaction(row: Mapping[str, Any], intent: IntentSpec) -> float | None:
    """Share of the intent's constraints a catalog row satisfies (None when it has none)."""
    checks: list[bool] = []
    if intent.category:
        checks.append(str(row.get("category", "")).lower() == intent.category.lower())
    price = row.get("price")
    if intent.budget is not None:
        checks.append(has_value(price) and float(price) <= intent.budget)
    if intent.budget_min is not None:
        checks.append(has_value(price) and float(price) >= intent.budget_min)
    brand = str(row.get("brand", "") or "").lower()
    if intent.preferred_brands:
        checks.append(brand in intent.preferred_brands)
    if intent.excluded_brands:
        checks.append(brand not in intent.excluded_brands)
    attrs = intent.required_attributes
    if "colour" in attrs:
        checks.append(str(row.get("colour", "") or "").lower() == str(attrs["colour"]).lower())
    if "capacity_gb" in attrs:
        cap = row.get("capacity_gb")
        checks.append(has_value(cap) and float(cap) >= float(attrs["capacity_gb"]))
    if "size_in" in attrs and isinstance(attrs["size_in"], Mapping):
        size = row.get("size_in")
        lo, hi = attrs["size_in"].get("min"), attrs["size_in"].get("max")
        checks.append(has_value(size) and (lo is None or float(size) >= lo) and (hi is None or float(size) <= hi))
    for key in ("connectivity", "features"):
        if key in attrs:
            have = set(_listish(row.get(key)))
            checks.append(all(v.lower() in have for v in _listish(attrs[key])))
    for key, value in intent.excluded_attributes.items():
        have = set(_listish(row.get(key))) if key in ("connectivity", "features") else set()
        checks.append(not (set(_listish(value)) & have))
    return sum(checks) / len(checks) if checks else None


class Reflector:
    """Scores a finished run by Eq. 2 and decides whether to re-plan."""

    def __init__(self, config: ReflectionConfig | Mapping[str, Any] | None = None) -> None:
        self.config = config if isinstance(config, ReflectionConfig) else ReflectionConfig.model_validate(config or {})

    def evaluate(
        self,
        intent: IntentSpec,
        decision: Decision | None,
        rows: Mapping[str, Mapping[str, Any]],
        evidence_found: bool = False,
        replans_done: int = 0,
    ) -> ReflectionResult:
        """Eq. 2 for one run; ``rows`` maps product id -> catalog row (for the relevance check)."""
        cfg = self.config
        recs = list(decision.recommendations) if decision is not None else []
        per: dict[str, float] = {}
        product_request = intent.query_type in cfg.product_types
        if product_request:
            for r in recs:
                row = rows.get(r.product_id)
                sat = constraint_satisfaction(row, intent) if row is not None else 0.0
                per[r.product_id] = 1.0 if sat is None else float(sat)
            fill = min(len(recs), cfg.top_k) / cfg.top_k
            relevance = (sum(per.values()) / len(per)) * fill if per else 0.0
        else:
            relevance = 1.0 if evidence_found else 0.0
        satisfaction = (sum(r.score for r in recs) / len(recs)) if recs else (0.0 if product_request else relevance)
        satisfaction = float(min(max(satisfaction, 0.0), 1.0))
        # MACDF Eq. 2: score = gamma * Relevance + (1 - gamma) * User_Satisfaction
        score = reflection_score(relevance, satisfaction, cfg.gamma)
        replan = score < cfg.threshold and replans_done < cfg.max_replans
        if score >= cfg.threshold:
            reason = f"score {score:.3f} >= threshold {cfg.threshold:g}"
        elif not replan:
            reason = (
                f"score {score:.3f} < threshold {cfg.threshold:g}, but the re-plan budget ({cfg.max_replans}) is spent"
            )
        else:
            reason = (
                f"score {score:.3f} < threshold {cfg.threshold:g} (relevance {relevance:.2f}, "
                f"satisfaction {satisfaction:.2f}, {len(recs)} recommendations)"
            )
        return ReflectionResult(
            relevance=relevance,
            user_satisfaction=satisfaction,
            score=score,
            gamma=cfg.gamma,
            threshold=cfg.threshold,
            replan=replan,
            reason=reason,
            per_product=per,
        )

    def remedy_for(self, query_type: str) -> str:
        """The Planner remedy recorded with a failure of this query type."""
        return self.config.remedy.get(query_type, self.config.default_remedy)


def evidence_found(outputs: Iterable[Any]) -> bool:
    """Whether a run found what a question needs: a product record or web documents."""
    for out in outputs:
        if isinstance(out, Mapping) and (out.get("product") or out.get("products")):
            return True
        docs = getattr(out, "documents", None)
        if docs:
            return True
    return False
