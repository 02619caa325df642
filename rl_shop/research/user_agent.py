"""User Agent: infer a shopping intent from a behaviour history and write a research query.

Why a history and not the intent: the paper's User Agent sees only what a shop logs (views,
clicks, carts, purchases). Our simulator knows the latent persona behind the log, so the
inference is scored against it (:func:`score_intent`), which the paper could not do.

Constrained decoding keeps the 135M model honest about the menu: the category and brands are
JSON-schema enums of what the history actually contains, the budget a bounded number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel, Field

from rl_shop.config_files import defaults_from_yaml
from rl_shop.research.history_profile import KIND_WEIGHT, Favoured, avoided_brands, favoured_attributes
from rl_shop.research.trajectory import InferredIntent

if TYPE_CHECKING:
    from rl_shop.llm import LLM, Message
    from rl_shop.sim.slots import Intent


@defaults_from_yaml("research/user_agent.yaml", what="research config")
class UserAgentConfig(BaseModel):
    """``configs/research/user_agent.yaml``."""

    model_config = {"extra": "forbid"}

    max_events: int = Field(ge=1)  # events shown to the model (strongest first)
    max_title_chars: int = Field(ge=10)
    max_tokens: int = Field(ge=16)
    max_query_chars: int = Field(ge=20, le=128)  # xgrammar fails on regex repeats > 128
    max_brands: int = Field(ge=0)
    budget_options: int = Field(ge=1)  # price quantiles offered as budgets
    category_min_share: float = Field(ge=0.0, le=1.0)  # a category's share of the history to be offered
    temperature: float = Field(ge=0.0)
    read_favoured: bool  # read the brands, colour, features and connectivity the history favours
    favoured_min_share: float = Field(ge=0.0, le=1.0)
    favoured_min_gain: float = Field(ge=0.0, le=1.0)
    favoured_min_products: int = Field(ge=1)
    avoided_max_chance: float = Field(ge=0.0, le=1.0)  # 0: no brand is read as avoided

    def favoured(self, events: list[Any], catalog: pd.DataFrame, category: str) -> Favoured:
        """What ``events`` favour within ``category`` (nothing when ``read_favoured`` is off)."""
        if not self.read_favoured:
            return Favoured()
        return favoured_attributes(
            events,
            catalog,
            category,
            min_share=self.favoured_min_share,
            min_gain=self.favoured_min_gain,
            min_products=self.favoured_min_products,
        )

    def avoided(self, events: list[Any], catalog: pd.DataFrame, category: str) -> tuple[str, ...]:
        """The brands of ``category`` that ``events`` avoid (:func:`~rl_shop.research.history_profile.avoided_brands`)."""
        return avoided_brands(events, catalog, category, max_chance=self.avoided_max_chance)


SYSTEM = (
    "You are a shopper's assistant. From the shopper's recent activity, infer what they want to buy "
    "and write the research request they would ask an expert, in their own words."
)


def history_lines(events: list[Any], catalog: pd.DataFrame, cfg: UserAgentConfig) -> list[str]:
    """The strongest events (purchase > cart > click > view, then recency) as readable lines."""
    rows = {str(pid): i for i, pid in enumerate(catalog["product_id"].astype(str))}
    evs = [e if isinstance(e, dict) else e.to_dict() for e in events]
    order = sorted(range(len(evs)), key=lambda i: (-KIND_WEIGHT.get(evs[i]["kind"], 0.0), -evs[i]["t"]))
    keep = sorted(order[: cfg.max_events])
    lines = []
    for i in keep:
        e = evs[i]
        r = catalog.iloc[rows[e["product_id"]]]
        price = f"${float(r['price']):.2f}" if not math.isnan(float(r["price"])) else "price unknown"
        lines.append(
            f"- {e['kind']}: {str(r['title'])[: cfg.max_title_chars]} ({r['brand'] or 'no brand'}, "
            f"{r['category']}, {price})"
        )
    return lines


def budget_options(prices: list[float], n: int) -> list[float]:
    """Candidate budgets: ``n`` price quantiles of the top category's events, rounded up to a sayable value."""
    from rl_shop.sim.sampler import nice_ceil

    known = sorted(p for p in prices if p > 0)
    if not known:
        return []
    qs = [known[min(len(known) - 1, round(i * (len(known) - 1) / max(1, n - 1)))] for i in range(n)]
    return sorted({nice_ceil(q * 1.1) for q in qs})


def _menu(
    events: list[Any], catalog: pd.DataFrame, category_min_share: float
) -> tuple[list[str], list[str], list[float]]:
    """Categories (those with >= ``category_min_share`` of the kind-weighted events, the strongest
    always), brands and the strongest category's prices, each by decreasing weight.

    Why the share floor: a history also holds stray views of unrelated products, and a 135M model
    offered every category it touched sometimes picks one of those (docs/research.md).
    """
    rows = {str(pid): i for i, pid in enumerate(catalog["product_id"].astype(str))}
    # summed event weights (floats, so plain dicts rather than Counters, whose counts are ints)
    cats: dict[str, float] = {}
    brands: dict[str, float] = {}
    prices: dict[str, list[float]] = {}
    for e in events:
        e = e if isinstance(e, dict) else e.to_dict()
        r = catalog.iloc[rows[e["product_id"]]]
        w = KIND_WEIGHT.get(e["kind"], 1.0)
        cat = str(r["category"])
        cats[cat] = cats.get(cat, 0.0) + w
        if r["brand"]:
            brand = str(r["brand"])
            brands[brand] = brands.get(brand, 0.0) + w
        if not math.isnan(float(r["price"])):
            prices.setdefault(str(r["category"]), []).append(float(r["price"]))
    ordered = _by_weight(cats)
    total = sum(cats.values())
    offered = [c for c in ordered if c == ordered[0] or cats[c] >= category_min_share * total]
    return offered, _by_weight(brands)[:12], prices.get(ordered[0], [])


def _by_weight(weights: dict[str, float]) -> list[str]:
    """Keys by decreasing weight, ties in insertion order (as ``Counter.most_common``)."""
    return [k for k, _ in sorted(weights.items(), key=lambda kv: kv[1], reverse=True)]


def intent_schema(
    categories: list[str], brands: list[str], budgets: list[float], cfg: UserAgentConfig
) -> dict[str, Any]:
    """JSON schema of the User Agent's answer: enums of what the history shows.

    The budget is an enum of price quantiles seen in the strongest category (plus null): a 135M
    model asked for a free number mostly writes the schema's minimum.
    """
    brand_list: dict[str, Any] = (
        {"type": "array", "items": {"enum": brands}, "maxItems": cfg.max_brands}
        if brands
        else {"type": "array", "maxItems": 0}
    )
    return {
        "type": "object",
        "properties": {
            "category": {"enum": categories},
            "budget": {"enum": [*budgets, None]},
            "brands": brand_list,
            # plain words only: no JSON-ish keys, braces or quotes (the tiny model echoes the schema)
            "query": {"type": "string", "pattern": f"^[A-Za-z0-9 $.,'?!&-]{{10,{cfg.max_query_chars}}}$"},
        },
        "required": ["category", "budget", "brands", "query"],
        "additionalProperties": False,
    }


def template_query(category: str, budget: float | None, brands: list[str], wants: Sequence[str] = ()) -> str:
    """The deterministic request used when the model's query does not name the category."""
    q = f"I want to research the best {category}"
    if wants:
        q += f" ({', '.join(wants)})"
    if brands:
        q += f", ideally from {' or '.join(brands)}"
    if budget:
        q += f", for under ${budget:.0f}"
    return q + ". Which products should I buy and why?"


def _activity_prompt(lines: list[str], category: str, favoured: Favoured) -> str:
    favours = f"\nMost of their {category} activity is on: {', '.join(favoured.words())}." if favoured.words() else ""
    return (
        "Recent activity (strongest signals):\n"
        + "\n".join(lines)
        + favours
        + "\nInfer the product category, budget (a number or null), favourite brands, and write the research request."
    )


class UserAgent:
    """History -> :class:`InferredIntent` (category, budget, brands, favoured attributes, avoided brands, query)."""

    def __init__(self, llm: LLM, catalog: pd.DataFrame, config: UserAgentConfig | None = None) -> None:
        self.llm = llm
        self.catalog = catalog
        self.config = config or UserAgentConfig.model_validate({})

    def infer(self, events: list[Any], seed: int = 0) -> InferredIntent:
        """One structured LLM call; a query that ignores the chosen category is replaced by the template.
        The favoured attributes are read from the history itself (:mod:`~rl_shop.research.history_profile`)."""
        if not events:
            raise ValueError("the behaviour history is empty; generate_history() produced no events")
        cfg = self.config
        categories, brands, prices = _menu(events, self.catalog, cfg.category_min_share)
        schema = intent_schema(categories, brands, budget_options(prices, cfg.budget_options), cfg)
        top = cfg.favoured(events, self.catalog, categories[0])
        msgs: list[Message] = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": _activity_prompt(history_lines(events, self.catalog, cfg), categories[0], top)},
        ]

        def names_category(value: Mapping[str, Any]) -> str | None:
            if value["category"].lower() not in value["query"].lower():
                return f"the query must name the category {value['category']!r}"
            if len(value["query"].split()) < 4:
                return "the query must be a sentence of at least 4 words"
            return None

        res = self.llm.structured(
            msgs, schema, max_tokens=cfg.max_tokens, temperature=cfg.temperature, seed=seed, validate=names_category
        )
        if res.value is not None and not res.used_fallback:
            value, query = dict(res.value), " ".join(res.value["query"].split())
        else:  # the model's answer failed validation twice: keep the fields that parse, template the query
            from rl_shop.llm.structured import as_schema, default_fallback

            value = default_fallback(as_schema(schema), res.raw)[0] or {"budget": None, "brands": []}
            value["category"] = value.get("category") or categories[0]
            query = None
        cat = value["category"]
        fav = top if cat == categories[0] else cfg.favoured(events, self.catalog, cat)
        budget, brs = value.get("budget"), list(value.get("brands") or [])
        chosen = {b.lower() for b in (*brs, *fav.brands)}
        avoided = [b for b in cfg.avoided(events, self.catalog, cat) if b.lower() not in chosen]
        return InferredIntent(
            category=cat,
            budget=budget,
            brands=brs,
            favoured_brands=list(fav.brands),
            colour=fav.colour,
            features=list(fav.features),
            connectivity=list(fav.connectivity),
            avoided_brands=avoided,
            query=query or template_query(cat, budget, brs, fav.words()),
            used_fallback=query is None,
        )


def score_intent(inferred: InferredIntent, persona: Intent | dict[str, Any]) -> dict[str, float]:
    """Agreement of the inferred intent with the latent persona, each in [0, 1].

    category: exact match; brand: Jaccard of inferred vs preferred brands (1 when both empty);
    budget: 1 - |b - B| / B clipped at 0 (1 when neither has one, 0 when only one has).
    """
    p = persona if isinstance(persona, dict) else persona.model_dump(mode="json")
    cat = float(inferred.category == p["category"])
    want = {b.lower() for b in p.get("preferred_brands") or ()}
    got = {b.lower() for b in inferred.brands}
    brand = 1.0 if not want and not got else len(want & got) / len(want | got)
    B, b = p.get("budget"), inferred.budget
    if B is None and b is None:
        budget = 1.0
    elif B is None or b is None:
        budget = 0.0
    else:
        budget = max(0.0, 1.0 - abs(float(b) - float(B)) / float(B))
    return {
        "category": cat,
        "brand": round(brand, 4),
        "budget": round(budget, 4),
        "mean": round((cat + brand + budget) / 3, 4),
    }
