"""``Understander``: one real shopping request -> :class:`QueryUnderstanding`, the stable
contract of ``rl-shop parse`` and of the evaluation on human-written text.

It combines the general readers of this package (budget, exclusions, attributes, product type,
brands) with the catalog's vocabulary, never with the simulator's phrasing: it imports nothing
from ``rl_shop.sim.render`` and shares none of its templates (``tests/test_understanding.py``
checks the import graph).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from rl_shop.agents.understanding.attributes import AttributeReader
from rl_shop.agents.understanding.budget import BudgetReader
from rl_shop.agents.understanding.clarify_gate import ClarifyGate, gate_features
from rl_shop.agents.understanding.config import UnderstandingConfig, load_understanding_config
from rl_shop.agents.understanding.exclusions import ExclusionReader
from rl_shop.agents.understanding.normalize import normalize_text
from rl_shop.agents.understanding.product_type import ProductType, ProductTypeIndex, singular
from rl_shop.agents.understanding.semantic_types import SemanticTypes
from rl_shop.agents.understanding.spelling import SpellingCorrector
from rl_shop.catalog.vocab import COLOUR_SYNONYMS

if TYPE_CHECKING:
    import pandas as pd

    from rl_shop.catalog.index import HybridIndex


class QueryUnderstanding(BaseModel):
    """What a request asks for; the JSON object ``rl-shop parse`` prints per query."""

    query: str
    query_type: str
    product_type: str | None = None
    in_catalog: bool = False
    category: str | None = None
    categories: list[str] = Field(default_factory=list)
    budget_max: float | None = None
    budget_min: float | None = None
    price_target: float | None = None
    exclusions: list[str] = Field(default_factory=list)
    excluded_brands: list[str] = Field(default_factory=list)
    brands: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    contradictions: list[str] = Field(default_factory=list)
    needs_clarification: bool = False
    clarify_probability: float = 0.0
    is_question: bool = False
    clarify_features: dict[str, float] = Field(default_factory=dict, exclude=True)  # the gate's inputs (fitting)


class Understander:
    """Reads requests against one catalog; build it once (``from_catalog``) and call :meth:`parse`."""

    def __init__(
        self,
        types: ProductTypeIndex,
        brands: dict[str, set[str]],
        cfg: UnderstandingConfig,
        gate: ClarifyGate | None = None,
        semantic: SemanticTypes | None = None,
    ) -> None:
        self.cfg = cfg
        self.types = types
        self.semantic = semantic  # None: the lexical reader alone decides the product type
        self.brand_words = brands  # brand -> words of its products' titles
        self.budget = BudgetReader(cfg.budget)
        self.exclusions = ExclusionReader(cfg.exclusion)
        self.attributes = AttributeReader(cfg.attributes)
        self.gate = gate or ClarifyGate.load()
        self.spelling = SpellingCorrector(types.raw_words, _lexicon(cfg))
        self._ambiguous = {b.lower() for b in cfg.attributes.ambiguous_brands}
        self._brand_re = (
            re.compile(
                r"(?<![\w'-])("
                + "|".join(re.escape(b) for b in sorted(brands, key=len, reverse=True))
                + r")(?![\w'-])",
                re.I,
            )
            if brands
            else None
        )
        q = cfg.query_type
        self._question = re.compile(r"^\s*(?:" + "|".join(q.question_words) + r")\b|\?\s*$", re.I)
        self._compare = re.compile(
            r"(?<![\w])(?:" + "|".join(re.escape(c) for c in q.compare_cues) + r")(?![\w])", re.I
        )
        self._vague = re.compile(r"(?<![\w])(?:" + "|".join(re.escape(v) for v in q.vague_words) + r")(?![\w])", re.I)

    @classmethod
    def from_catalog(
        cls,
        catalog: pd.DataFrame,
        cfg: UnderstandingConfig | None = None,
        min_brand_products: int = 2,
        stop_brands: tuple[str, ...] = ("generic", "unknown", "none", "other", "new", "the", "and", "for"),
        index: HybridIndex | None = None,
    ) -> Understander:
        """The reader of ``catalog``; with its search ``index`` (a ``HybridIndex``) the product type is
        also read by meaning (:class:`SemanticTypes`), without it by the catalog's words alone."""
        cfg = cfg or load_understanding_config()
        types = ProductTypeIndex.from_catalog(catalog, cfg.product_type)
        types.never_head(
            [
                *cfg.product_type.never_heads,
                *cfg.attributes.units,
                *(p for phrases in COLOUR_SYNONYMS.values() for p in phrases if " " not in p),
            ]
        )
        brand_col = catalog["brand"].astype(str).str.strip().str.lower()
        counts = brand_col.value_counts()
        stop = {s.lower() for s in stop_brands}
        keep = {
            b
            for b, n in counts.items()
            if n >= min_brand_products
            and len(b) >= 2
            and not b.isdigit()
            and b not in stop
            and b not in types.category_names
        }
        words: dict[str, set[str]] = {b: set() for b in keep}
        for brand, title in zip(brand_col, catalog["title"].astype(str)):
            if brand in words:
                words[brand].update(singular(w) for w in re.findall(r"[a-z]+", title.lower()))
        return cls(types, words, cfg, semantic=SemanticTypes.from_index(index) if index is not None else None)

    # ------------------------------------------------------------------ pieces
    def _brands(self, text: str) -> list[tuple[str, tuple[int, int]]]:
        """Catalog brands named in ``text``; an ordinary-word brand ("apple", "ram") needs to be
        capitalised or followed by a word of its own products' titles ("apple watch")."""
        if self._brand_re is None:
            return []
        out = []
        for m in self._brand_re.finditer(text):
            brand, raw = m.group(1).lower(), m.group(1)
            if re.search(r"\d\s*(?:gb|tb|mb)\s*$", text[: m.start()], re.I):
                continue  # "64GB RAM": a spec, not a brand
            if brand in self._ambiguous:
                nxt = re.match(r"\s+([a-z]+)", text[m.end() :].lower())
                capital = raw[0].isupper() and not raw.isupper()
                follows = (
                    nxt is not None
                    and singular(nxt.group(1)) in self.brand_words.get(brand, set())
                    and singular(nxt.group(1)) not in self._ambiguous
                )
                if not (capital or follows):
                    continue
            out.append((brand, m.span()))
        return out

    def _query_type(
        self, text: str, pt: ProductType, n_constraints: int, exclusions: list[str], clarify: bool, brands: list[str]
    ) -> str:
        question = bool(self._question.search(text))
        if self._compare.search(text) and (len(brands) >= 2 or " or " in text.lower() or "vs" in text.lower()):
            return "comparison"
        if clarify:
            return "ambiguous"
        if question:
            return "product_qa" if brands and pt.phrase else "general_qa"
        if exclusions:
            return "negation"
        if pt.phrase is None:
            return "reasoning"
        if n_constraints >= 2:
            return "multi_constraint"
        return "simple"

    @staticmethod
    def _contradictions(
        brands: list[str],
        excluded: list[str],
        exclusions: list[str],
        attrs: dict[str, Any],
        bmin: float | None,
        bmax: float | None,
        product_type: str | None,
    ) -> list[str]:
        out = [f"brand {b!r} is both wanted and excluded" for b in brands if b in excluded]
        if bmin is not None and bmax is not None and bmin > bmax:
            out.append(f"minimum price {bmin:g} is above the maximum {bmax:g}")
        said = {str(v).lower() for k, v in attrs.items() if isinstance(v, str)}
        out += [f"{x!r} is both asked for and excluded" for x in exclusions if x in said]
        if product_type and any(singular(x) == singular(product_type.split()[-1]) for x in exclusions):
            out.append(f"the product type {product_type!r} is itself excluded")
        return out

    def _lexical_type(self, text: str, brands: set[str]) -> ProductType:
        return self.types.read(text, skip_words={w for b in brands for w in b.split()})

    def lexical_type(self, query: str) -> tuple[str, ProductType]:
        """The cleaned text of ``query`` and the lexical reader's product type of it, exactly as
        :meth:`parse` computes them before the semantic step (``experiments/fit_type_gate.py``)."""
        text = self.clean(query)
        return text, self._lexical_type(text, {b for b, _ in self._brands(text)})

    def clean(self, query: str) -> str:
        """Unicode-normalised, spelling-corrected text: what every reader reads."""
        return self.spelling.correct(normalize_text(str(query)))

    # ------------------------------------------------------------------ parse
    def _attributes(self, text: str, brand_set: set[str], excl_phrases: list[str]) -> dict[str, Any]:
        """The attribute reader's slots, without flavour / colour words that are a brand or excluded
        ("Apple iPad", "eye cream": a brand or the product itself)."""
        attrs = self.attributes.read(text)
        for key in ("flavour_scent", "colour"):
            vals = [
                v
                for v in ([attrs[key]] if isinstance(attrs.get(key), str) else attrs.get(key, []))
                if v not in brand_set and v not in excl_phrases and v not in self.brand_words
            ]
            if vals:
                attrs[key] = vals[0] if len(vals) == 1 else vals
            else:
                attrs.pop(key, None)
        return attrs

    def parse(self, query: str) -> QueryUnderstanding:
        """Understand one request (any text; empty text gives an ambiguous, empty reading)."""
        text = self.clean(query)
        budget = self.budget.read(text)
        brand_hits = self._brands(text)
        brand_set = {b for b, _ in brand_hits}
        excl = self.exclusions.read(text, brands=frozenset(self.brand_words))
        excl_phrases = [e.phrase for e in excl]
        excluded_brands = [p for p in excl_phrases if p in self.brand_words]
        neg_spans = [e.span for e in excl]
        # wanted: a brand named at least once outside an exclusion ("Sony ... but not Sony" is both)
        wanted = list(
            dict.fromkeys(b for b, (start, _) in brand_hits if not any(a <= start < end for a, end in neg_spans))
        )
        attrs = self._attributes(text, brand_set, excl_phrases)
        if wanted:
            attrs["brand"] = wanted[0] if len(wanted) == 1 else wanted
        if budget.target is not None:
            attrs["price_target"] = budget.target
        lexical = self._lexical_type(text, brand_set)
        pt = self.semantic.refine(text, lexical) if self.semantic is not None else lexical
        if pt.vague and not pt.in_catalog:  # a vague wish names only a carried type
            pt = ProductType(None, False)
        n_constraints = (
            sum(1 for k in attrs if k not in ("quantities",)) + (budget.max is not None) + (budget.min is not None)
        )
        feats = gate_features(
            text, pt, n_constraints, bool(self._vague.search(text)), bool(self._question.search(text)), bool(wanted)
        )
        p_clarify = self.gate.probability(feats)
        clarify = p_clarify >= self.gate.threshold
        contradictions = self._contradictions(
            wanted, excluded_brands, excl_phrases, attrs, budget.min, budget.max, pt.phrase
        )
        qtype = self._query_type(text, pt, n_constraints, excl_phrases, clarify, wanted)
        return QueryUnderstanding(
            query=text,
            query_type=qtype,
            product_type=pt.phrase,
            in_catalog=pt.in_catalog,
            category=pt.category if pt.in_catalog else None,
            categories=[c for c, _ in pt.categories] if pt.in_catalog else [],
            budget_max=budget.max,
            budget_min=budget.min,
            price_target=budget.target,
            exclusions=excl_phrases,
            excluded_brands=excluded_brands,
            brands=wanted,
            attributes=attrs,
            contradictions=contradictions,
            needs_clarification=clarify,
            clarify_probability=round(p_clarify, 4),
            is_question=bool(self._question.search(text)),
            clarify_features=feats,
        )


def _lexicon(cfg: UnderstandingConfig) -> set[str]:
    """Every word of the readers' own cue lists: a typo is corrected towards these too."""
    phrases = [
        *cfg.budget.max_cues,
        *cfg.budget.min_cues,
        *cfg.exclusion.cues,
        *cfg.product_type.openers,
        *cfg.product_type.strong_boundaries,
        *cfg.product_type.weak_boundaries,
        *cfg.query_type.vague_words,
        *cfg.attributes.materials,
        *cfg.attributes.flavours_scents,
        *cfg.attributes.flavour_cues,
        *(w for ws in cfg.attributes.audience.values() for w in ws),
        *cfg.attributes.units,
        "thats",
        "whats",
    ]
    return {w for p in phrases for w in re.findall(r"[a-z]+", str(p).lower())}
