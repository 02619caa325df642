"""Sample shopper intents of the eight ECCD types from what a catalog really holds.

Every constraint is read off real products (an *anchor* product of the category supplies the
budget, brand, colour, capacity, size, connectivity and feature values), so each intent has a
non-empty gold set by construction; the gold set is still checked, and an intent whose gold set
is empty is resampled. Negation excludes a brand that is frequent in its category, reasoning maps
a use case through the knowledge table (``configs/sim/knowledge.yaml``) to categories and required
tokens, and consultative types name concrete products.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from rl_shop.sim.config import Range, SimConfig, load_sim_config
from rl_shop.sim.constraints import CatalogArrays, gold_mask, slot_mask
from rl_shop.sim.errors import ConfigError, ImpossibleIntentError
from rl_shop.sim.slots import QA_FIELDS, QUERY_TYPES, Intent

_T = TypeVar("_T")

ANCHOR_SLOTS: tuple[str, ...] = (
    "budget",
    "brand",
    "colour",
    "capacity",
    "size",
    "connectivity",
    "features",
)
"""Slots whose values can be read off one anchor product."""


def nice_ceil(x: float) -> float:
    """Round a price up to a value people say: 37.2 -> 40, 123 -> 150, 8.4 -> 8.5."""
    if x <= 0 or not math.isfinite(x):
        raise ValueError(f"cannot round a non-positive or non-finite price {x!r}")
    step = 10 ** math.floor(math.log10(x)) / 2
    return round(math.ceil(x / step - 1e-9) * step, 2)


_DANGLING = {"and", "or", "for", "with", "-", "&", "+", "/", "of", "the", "a", "in", "to", "by", "w/"}


def _short_title(title: str, n_words: int) -> str:
    """The first ``n_words`` of a title, without a dangling connector or punctuation at the end."""
    words = str(title).split()[: max(1, n_words)]
    while len(words) > 1 and (words[-1].lower() in _DANGLING or not any(ch.isalnum() for ch in words[-1])):
        words.pop()
    return " ".join(words).rstrip(",;:-(")


@dataclass
class _CategoryProfile:
    """What one category offers: its rows and the attribute values frequent enough to ask for."""

    name: str
    department: str
    rows: np.ndarray
    brand_counts: Counter = field(default_factory=Counter)


class IntentSampler:
    """Seeded sampler of ``Intent``s in the configured type mix."""

    def __init__(self, catalog: pd.DataFrame, config: SimConfig | None = None, seed: int = 0) -> None:
        self.catalog = catalog
        self.arr = CatalogArrays.of(catalog)
        self.config = config or load_sim_config()
        self.scfg = self.config.sampler
        self.rng = np.random.default_rng(seed)
        self._titles = [str(t) for t in catalog["title"]] if "title" in catalog else list(self.arr.ids)
        self._departments = (
            np.array([str(d) for d in catalog["department"]], dtype=object)
            if "department" in catalog
            else np.full(self.arr.n, "", dtype=object)
        )
        self.profiles = self._build_profiles()
        if not self.profiles:
            raise ConfigError(
                f"the catalog has no category with at least {self.scfg.min_category_size} "
                "products; lower sampler.min_category_size or use a larger catalog"
            )
        self.category_names = sorted(self.profiles)
        self.reasoning_rules = self._resolve_rules(self.config.knowledge.get("reasoning", []))
        self.qa_topics = self._resolve_rules(self.config.knowledge.get("general_qa", []))

    # ------------------------------------------------------------------ setup
    def _build_profiles(self) -> dict[str, _CategoryProfile]:
        profiles: dict[str, _CategoryProfile] = {}
        excluded = {c.lower() for c in self.scfg.exclude_categories}
        cats = pd.Series(self.arr.category)
        for name, rows in cats.groupby(cats).groups.items():
            rows = np.asarray(sorted(rows), dtype=int)
            if not name or len(rows) < self.scfg.min_category_size or name in excluded:
                continue
            deps = Counter(self._departments[rows].tolist())
            brands = Counter(b for b in self.arr.brand[rows].tolist() if b)
            profiles[str(name)] = _CategoryProfile(str(name), deps.most_common(1)[0][0], rows, brands)
        return profiles

    def _resolve_rules(self, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Attach to each knowledge rule the eligible catalog categories its keywords match."""
        resolved = []
        for rule in rules:
            keys = [str(k).lower() for k in rule.get("categories", [])]
            matched = [c for c in self.category_names if any(k in c for k in keys)]
            if matched:
                resolved.append({**rule, "matched": matched})
        return resolved

    # ------------------------------------------------------------------ helpers
    def _uniform(self, r: Range) -> float:
        return float(self.rng.uniform(r.low, r.high))

    def _persona(self) -> dict[str, Any]:
        s = self.scfg
        return {
            "patience": int(self.rng.integers(int(s.patience.low), int(s.patience.high) + 1)),
            "latency_tolerance_s": round(self._uniform(s.latency_tolerance_s), 2),
            "p_dont_know": round(self._uniform(s.p_dont_know), 4),
            "p_wrong": round(self._uniform(s.p_wrong), 4),
            "typo_rate": round(self._uniform(s.typo_rate), 4),
        }

    def _pick(self, seq: Sequence[_T]) -> _T:
        return seq[int(self.rng.integers(len(seq)))]

    def _pick_row(self, rows: Sequence[int] | np.ndarray) -> int:
        """A catalog row drawn uniformly from ``rows`` (the same draw as :meth:`_pick`)."""
        return int(rows[int(self.rng.integers(len(rows)))])

    def _anchor_values(self, row: int, profile: _CategoryProfile) -> dict[str, dict[str, Any]]:
        """Intent fields per slot that the anchor product at ``row`` satisfies."""
        a, s = self.arr, self.scfg
        out: dict[str, dict[str, Any]] = {}
        price = a.price[row]
        if math.isfinite(price) and price > 0:
            out["budget"] = {"budget": nice_ceil(price * self._uniform(s.budget_slack))}
        brand = a.brand[row]
        if brand and profile.brand_counts[brand] >= s.min_value_count:
            out["brand"] = {"preferred_brands": (brand,)}
        if a.colour[row]:
            out["colour"] = {"colour": a.colour[row]}
        if math.isfinite(a.capacity_gb[row]) and a.capacity_gb[row] > 0:
            out["capacity"] = {"min_capacity_gb": float(a.capacity_gb[row])}
        if math.isfinite(a.size_in[row]) and a.size_in[row] > 0:
            size = float(a.size_in[row])
            out["size"] = {
                "min_size_in": max(0.0, math.floor(size - s.size_margin_in)),
                "max_size_in": float(math.ceil(size + s.size_margin_in)),
            }
        if a.connectivity_lists[row]:
            out["connectivity"] = {"connectivity": (self._pick(a.connectivity_lists[row]),)}
        if a.feature_lists[row]:
            feats = a.feature_lists[row]
            k = 1 if len(feats) == 1 else int(self.rng.integers(1, 3))
            chosen = self.rng.choice(len(feats), size=k, replace=False)
            out["features"] = {"features": tuple(feats[i] for i in sorted(chosen))}
        return out

    def _finish(self, fields: dict[str, Any]) -> Intent | None:
        """Build the intent; ``None`` (resample) if its gold set is empty or below the minimum."""
        intent = Intent(**fields, **self._persona())
        need = max(1, self.scfg.min_gold_size.get(intent.query_type, 1))
        if int(gold_mask(self.arr, intent).sum()) < need:
            return None
        return intent

    def _base(self, query_type: str, profile: _CategoryProfile) -> dict[str, Any]:
        return {"query_type": query_type, "category": profile.name, "department": profile.department}

    # ------------------------------------------------------------------ per type
    def _simple(self) -> Intent | None:
        p = self.profiles[self._pick(self.category_names)]
        fields = self._base("simple", p)
        stated = ["category"]
        if self.rng.random() < self.scfg.simple_p_brand:
            values = self._anchor_values(self._pick_row(p.rows), p)
            if "brand" in values:
                fields.update(values["brand"])
                stated.append("brand")
        return self._finish({**fields, "stated_slots": tuple(stated)})

    def _multi_constraint(self) -> Intent | None:
        p = self.profiles[self._pick(self.category_names)]
        values = self._anchor_values(self._pick_row(p.rows), p)
        if len(values) < self.scfg.multi_constraint_min:
            return None
        hi = min(self.scfg.multi_constraint_max, len(values))
        k = int(self.rng.integers(self.scfg.multi_constraint_min, hi + 1))
        keys = list(values)
        chosen = [keys[i] for i in sorted(self.rng.choice(len(keys), size=k, replace=False))]
        fields = self._base("multi_constraint", p)
        for slot in chosen:
            fields.update(values[slot])
        return self._finish({**fields, "stated_slots": ("category", *chosen)})

    def _negation(self) -> Intent | None:
        p = self.profiles[self._pick(self.category_names)]
        n = len(p.rows)
        frequent = sorted(b for b, c in p.brand_counts.items() if c / n >= self.scfg.negation_min_brand_share and c < n)
        if not frequent:
            return None
        brand = self._pick(frequent)
        fields = {**self._base("negation", p), "excluded_brands": (brand,)}
        stated = ["category", "brand"]
        if self.rng.random() < self.scfg.negation_p_budget:
            others = p.rows[self.arr.brand[p.rows] != brand]
            values = self._anchor_values(self._pick_row(others), p)
            if "budget" in values:
                fields.update(values["budget"])
                stated.append("budget")
        return self._finish({**fields, "stated_slots": tuple(stated)})

    def _ambiguous(self) -> Intent | None:
        p = self.profiles[self._pick(self.category_names)]
        values = self._anchor_values(self._pick_row(p.rows), p)
        values.pop("brand", None)  # a vague shopper rarely has a secret brand
        k = int(self.rng.integers(0, min(self.scfg.ambiguous_max_hidden_extra, len(values)) + 1))
        keys = list(values)
        extra = [keys[i] for i in sorted(self.rng.choice(len(keys), size=k, replace=False))] if k else []
        fields = self._base("ambiguous", p)
        for slot in extra:
            fields.update(values[slot])
        return self._finish({**fields, "stated_slots": (), "hidden_slots": ("category", *extra)})

    def _token_fields(self, rule: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("connectivity", "features"):
            if rule.get(key):
                out[key] = tuple(str(t).lower() for t in rule[key])
        for key in ("min_capacity_gb", "min_size_in", "max_size_in"):
            if rule.get(key) is not None:
                out[key] = float(rule[key])
        return out

    def _relaxed(self, base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any] | None:
        """Drop knowledge-table requirements one at a time until some product satisfies them."""
        extra = dict(extra)
        tokens = [(k, t) for k in ("features", "connectivity") for t in extra.get(k, ())]
        while True:
            probe = Intent(**base, **extra)
            if gold_mask(self.arr, probe).any():
                return extra
            if tokens:
                key, tok = tokens.pop()
                extra[key] = tuple(t for t in extra[key] if t != tok)
                if not extra[key]:
                    extra.pop(key)
            elif extra:
                extra.pop(next(iter(extra)))
            else:
                return None

    def _reasoning(self) -> Intent | None:
        if not self.reasoning_rules:
            return None
        rule = self._pick(self.reasoning_rules)
        p = self.profiles[self._pick(rule["matched"])]
        base = {
            **self._base("reasoning", p),
            "use_case": str(rule["use_case"]),
            "recipient": rule.get("recipient"),
            "use_case_categories": tuple(rule["matched"]),
        }
        extra = self._relaxed(base, self._token_fields(rule))
        if extra is None:
            return None
        hidden = ["category"] + [
            s
            for s, f in (
                ("capacity", "min_capacity_gb"),
                ("size", "min_size_in"),
                ("connectivity", "connectivity"),
                ("features", "features"),
            )
            if f in extra
        ]
        fields = {**base, **extra}
        if self.rng.random() < self.scfg.reasoning_p_budget:
            ok = gold_mask(self.arr, Intent(**fields))
            rows = np.flatnonzero(ok)
            values = self._anchor_values(self._pick_row(rows), p)
            if "budget" in values:
                fields.update(values["budget"])
                hidden.append("budget")
        hidden = [s for s in ("category", "budget", "capacity", "size", "connectivity", "features") if s in hidden]
        return self._finish({**fields, "stated_slots": ("use_case",), "hidden_slots": tuple(hidden)})

    def _name(self, row: int) -> str:
        s = self.scfg.title_words
        return _short_title(self._titles[row], int(self.rng.integers(int(s.low), int(s.high) + 1)))

    def _product_qa(self) -> Intent | None:
        p = self.profiles[self._pick(self.category_names)]
        qa_field = self._pick(list(QA_FIELDS))
        a = self.arr
        known = {
            "price": np.isfinite(a.price[p.rows]),
            "brand": a.brand[p.rows] != "",
            "capacity": np.isfinite(a.capacity_gb[p.rows]),
            "size": np.isfinite(a.size_in[p.rows]),
            "colour": a.colour[p.rows] != "",
            "connectivity": np.array([bool(a.connectivity_lists[r]) for r in p.rows]),
        }[qa_field]
        rows = p.rows[known]
        if len(rows) == 0:
            return None
        row = self._pick_row(rows)
        return self._finish(
            {
                **self._base("product_qa", p),
                "target_product_ids": (str(a.ids[row]),),
                "target_names": (self._name(row),),
                "qa_field": qa_field,
                "gold_answer": self.field_answer(row, qa_field),
                "stated_slots": ("category",),
            }
        )

    def field_answer(self, row: int, qa_field: str) -> str:
        """The catalog's answer to a product question, as text (the Q&A gold answer)."""
        a = self.arr
        if qa_field == "price":
            return f"${a.price[row]:.2f}"
        if qa_field == "brand":
            return a.brand[row]
        if qa_field == "capacity":
            return f"{a.capacity_gb[row]:g} GB"
        if qa_field == "size":
            return f"{a.size_in[row]:g} inches"
        if qa_field == "colour":
            return a.colour[row]
        return ", ".join(a.connectivity_lists[row])

    def _comparison(self) -> Intent | None:
        p = self.profiles[self._pick(self.category_names)]
        k = int(self.rng.integers(self.scfg.comparison_min_targets, self.scfg.comparison_max_targets + 1))
        order = self.rng.permutation(p.rows)
        chosen: list[int] = []
        seen_brands: set[str] = set()
        for row in order:  # prefer different brands, as people compare rivals
            if self.arr.brand[row] not in seen_brands:
                chosen.append(int(row))
                seen_brands.add(self.arr.brand[row])
            if len(chosen) == k:
                break
        for row in order:
            if len(chosen) == k:
                break
            if int(row) not in chosen:
                chosen.append(int(row))
        names = tuple(self._name(r) for r in chosen)
        if len(set(names)) < len(names):
            return None
        return self._finish(
            {
                **self._base("comparison", p),
                "target_product_ids": tuple(str(self.arr.ids[r]) for r in chosen),
                "target_names": names,
                "stated_slots": ("category",),
            }
        )

    def _general_qa(self) -> Intent | None:
        n_topics = len(self.qa_topics)
        stats = self.config.knowledge.get("price_statistics")
        pick = int(self.rng.integers(n_topics + (1 if stats else 0)))
        if pick < n_topics:
            topic = self.qa_topics[pick]
            p = self.profiles[self._pick(topic["matched"])]
            base = {**self._base("general_qa", p), "qa_topic": str(topic["topic"]), "gold_answer": str(topic["answer"])}
            extra = self._token_fields(topic)
            hidden = [
                s
                for s, f in (
                    ("capacity", "min_capacity_gb"),
                    ("size", "min_size_in"),
                    ("connectivity", "connectivity"),
                    ("features", "features"),
                )
                if f in extra
            ]
            return self._finish({**base, **extra, "stated_slots": ("category",), "hidden_slots": tuple(hidden)})
        if not stats:
            return None
        p = self.profiles[self._pick(self.category_names)]
        prices = self.arr.price[p.rows]
        prices = prices[np.isfinite(prices)]
        if len(prices) < self.scfg.min_category_size // 2 or len(prices) == 0:
            return None
        q = float(np.quantile(prices, float(stats.get("quantile", 0.5))))
        if q <= 0:
            return None
        budget = nice_ceil(q)
        answer = f"about ${q:.0f}: half of the {len(prices)} {p.name} listed cost ${q:.2f} or less"
        return self._finish(
            {
                **self._base("general_qa", p),
                "qa_topic": "price_statistics",
                "gold_answer": answer,
                "budget": budget,
                "stated_slots": ("category",),
                "hidden_slots": ("budget",),
            }
        )

    # ------------------------------------------------------------------ public
    def sample_type(self) -> str:
        """Draw a query type from the configured mix."""
        probs = self.config.mix_probabilities()
        return str(self.rng.choice(list(QUERY_TYPES), p=[probs[t] for t in QUERY_TYPES]))

    def sample(self, query_type: str | None = None) -> Intent:
        """One intent of ``query_type`` (or of a type drawn from the mix), gold set non-empty."""
        query_type = query_type or self.sample_type()
        if query_type not in QUERY_TYPES:
            raise ValueError(f"unknown query type {query_type!r}; use one of {QUERY_TYPES}")
        make = getattr(self, f"_{query_type}")
        for _ in range(self.scfg.max_tries):
            intent = make()
            if intent is not None:
                return intent
        raise ImpossibleIntentError(
            {"query_type": query_type},
            message=(
                f"could not sample a {query_type!r} intent with a non-empty gold set in "
                f"{self.scfg.max_tries} tries on this catalog ({self.arr.n} products, "
                f"{len(self.profiles)} eligible categories). For reasoning / general_qa check "
                "that configs/sim/knowledge.yaml names categories the catalog has; otherwise "
                "raise sampler.max_tries or lower sampler thresholds."
            ),
        )

    def sample_many(self, n: int, query_type: str | None = None) -> list[Intent]:
        """``n`` intents (types from the mix unless ``query_type`` is given)."""
        return [self.sample(query_type) for _ in range(n)]

    def candidate_count(self, intent: Intent, slots: tuple[str, ...]) -> int:
        """Products left after applying only ``slots`` of the intent (for diagnostics)."""
        mask = np.ones(self.arr.n, dtype=bool)
        for s in slots:
            mask &= slot_mask(self.arr, intent, s)
        return int(mask.sum())
