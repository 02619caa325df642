"""ProductSearch Agent (MACDF 3.5): hybrid retrieval with the intent's hard filters, enrichment,
optional LLM fusion re-ranking; plus the two ToolCall tools the Planner emits (product details,
spec comparison).

Hard constraints go into ``rl_shop.catalog.filters.SearchFilters`` (price bounds, brands,
excluded brands, colour, capacity, connectivity, features), which the index applies as masks
*before* truncation, so a budget or an excluded brand can never leak into the results nor starve
the top-k. What the index cannot mask (excluded features, size ranges, unknown-vocabulary
words) is post-filtered on the catalog row. Only soft filters are relaxed when nothing matches,
in the configured order, and each relaxation is reported.

Enrichment adds a spec summary and pros / cons derived from the catalog attributes (never from
the LLM). The LLM re-ranks the top ``rerank.top_n`` titles (structured output, validated as a
permutation); its ranking is fused with the retrieval ranking by weighted reciprocal rank, and
``rerank.enabled: false`` switches it off.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, Field

from rl_shop.agents.config import defaults_from, load_agent_config, validate_config
from rl_shop.agents.llm_protocols import note_discarded
from rl_shop.agents.text import tokens
from rl_shop.agents.types import Task
from rl_shop.catalog.filters import FilterError, SearchFilters
from rl_shop.catalog.schema import has_value
from rl_shop.catalog.vocab import COLOURS, CONNECTIVITY, FEATURES

if TYPE_CHECKING:
    from rl_shop.catalog.index import HybridIndex

RelaxableSlot = Literal["features", "connectivity", "colour", "size_in", "capacity_gb", "category"]
_RELAX_ORDER: tuple[RelaxableSlot, ...] = ("features", "connectivity", "colour", "size_in", "capacity_gb")


@defaults_from("product_search", "rerank")
class RerankConfig(BaseModel):
    enabled: bool
    top_n: int = Field(ge=2, le=10)
    max_tokens: int = Field(ge=4)
    rrf_k: float = Field(gt=0)
    retrieval_weight: float = Field(ge=0)
    llm_weight: float = Field(ge=0)
    title_words: int = Field(ge=3)


@defaults_from("product_search", "enrichment")
class EnrichmentConfig(BaseModel):
    spec_fields: int = Field(ge=0)
    max_pros: int = Field(ge=0)
    max_cons: int = Field(ge=0)
    expensive_quantile: float = Field(gt=0, lt=1)


@defaults_from("product_search")
class ProductSearchConfig(BaseModel):
    """``configs/agents/product_search.yaml``."""

    mode: Literal["hybrid", "bm25", "dense"]
    default_k: int = Field(ge=1)
    overfetch: int = Field(ge=1)
    relax_order: list[RelaxableSlot]
    lookup_k: int = Field(ge=1)
    rerank: RerankConfig
    enrichment: EnrichmentConfig


class Rerank(BaseModel):
    """Structured-output schema of the LLM re-ranker: option numbers, best first."""

    order: list[int] = Field(default_factory=list, max_length=10)


def _as_list(v: object) -> list[str]:
    if v is None or isinstance(v, float):
        return []
    if isinstance(v, str):
        return [v]
    return [str(x) for x in cast("Iterable[object]", v)]


def title_overlap(title: str, name: str) -> float:
    """Share of the name's tokens found in a title (how well a hit matches a named product)."""
    want = set(tokens(name))
    return len(want & set(tokens(title))) / len(want) if want else 0.0


class ProductSearchAgent:
    """Search the catalog index for one ProductSearch task; enrich; optionally LLM re-rank."""

    def __init__(
        self, index: HybridIndex, config: ProductSearchConfig | Mapping[str, Any] | None = None, llm: Any | None = None
    ) -> None:
        if config is None:
            config = load_agent_config("product_search")
        self.config = (
            config
            if isinstance(config, ProductSearchConfig)
            else validate_config(ProductSearchConfig, dict(config), "agents/product_search")
        )
        self.index = index
        self.llm = llm
        self.catalog = index.catalog
        self._row_of = {str(p): i for i, p in enumerate(self.catalog["product_id"])}
        prices = self.catalog.dropna(subset=["price"]).groupby("category")["price"]
        self._expensive = prices.quantile(self.config.enrichment.expensive_quantile).to_dict()
        self._brand_counts = self.catalog["brand"].astype(str).str.lower().value_counts().to_dict()
        self.llm_fallbacks = 0

    # -------------------------------------------------------------- rows
    def row(self, product_id: str) -> dict[str, Any]:
        """The catalog row of a product id (KeyError naming it when unknown)."""
        if product_id not in self._row_of:
            raise KeyError(f"product {product_id!r} is not in the indexed catalog")
        return self.catalog.iloc[self._row_of[product_id]].to_dict()

    # -------------------------------------------------------------- filters
    def filters_for(self, params: Mapping[str, Any], drop: Sequence[str] = ()) -> tuple[SearchFilters, dict[str, Any]]:
        """SearchFilters from a Planner task's params, and the post-filters the index cannot mask."""
        attrs = dict(params.get("attributes") or {})
        excl = dict(params.get("exclude_attributes") or {})
        post: dict[str, Any] = {}
        kw: dict[str, Any] = {}
        if params.get("max_price") is not None:
            kw["max_price"] = float(params["max_price"])
        if params.get("min_price") is not None:
            kw["min_price"] = float(params["min_price"])
        if params.get("brands"):
            kw["brands"] = [str(b).lower() for b in params["brands"]]
        if params.get("exclude_brands"):
            kw["exclude_brands"] = [str(b).lower() for b in params["exclude_brands"]]
        cats = [params["category"]] if params.get("category") else list(params.get("categories") or [])
        if cats and "category" not in drop:
            known = [c for c in cats if c in self.index._columns.category_names]
            if known:
                kw["categories"] = known
        colour = attrs.get("colour")
        if colour and "colour" not in drop:
            if str(colour).lower() in COLOURS:
                kw["colour"] = str(colour).lower()
            else:
                post["text"] = post.get("text", []) + [str(colour)]
        if attrs.get("capacity_gb") is not None and "capacity_gb" not in drop:
            kw["min_capacity_gb"] = float(attrs["capacity_gb"])
        if isinstance(attrs.get("size_in"), Mapping) and "size_in" not in drop:
            post["size_in"] = dict(attrs["size_in"])
        for key, vocab, fkey in (("connectivity", CONNECTIVITY, "connectivity"), ("features", FEATURES, "features")):
            if key in drop:
                continue
            values = [str(v).lower() for v in _as_list(attrs.get(key))]
            kw[fkey] = [v for v in values if v in vocab]
            unknown = [v for v in values if v not in vocab]
            if unknown:
                post["text"] = post.get("text", []) + unknown
        for key, value in excl.items():
            post.setdefault("exclude", {})[key] = [str(v).lower() for v in _as_list(value)]
        return SearchFilters(**kw), post

    def _passes(self, row: Mapping[str, Any], post: Mapping[str, Any]) -> bool:
        if "size_in" in post:
            size = row.get("size_in")
            lo, hi = post["size_in"].get("min"), post["size_in"].get("max")
            if not has_value(size) or (lo is not None and size < lo) or (hi is not None and size > hi):
                return False
        text = " ".join(
            [str(row.get("title", "")), str(row.get("description", "")), " ".join(_as_list(row.get("features")))]
        ).lower()
        for word in post.get("text", []):
            if word.lower() not in text:
                return False
        for key, values in post.get("exclude", {}).items():
            have = {v.lower() for v in _as_list(row.get(key))} if key in ("features", "connectivity") else set()
            if key == "colour":
                have = {str(row.get("colour") or "").lower()}
            if any(v in have or (key in ("features",) and v in text) for v in values):
                return False
        return True

    # -------------------------------------------------------------- search
    def search(self, query: str, params: Mapping[str, Any], request: str = "") -> dict[str, Any]:
        """Filtered hybrid search + enrichment (+ LLM re-rank); returns a JSON-ready dict."""
        t0 = time.perf_counter()
        k = int(params.get("k") or self.config.default_k)
        query = query or request or str(params.get("category") or "product")
        relaxed: list[str] = []
        target = params.get("target")
        products: list[dict[str, Any]] = []
        drop: list[str] = []
        hard_only = [s for s in self.config.relax_order]
        for attempt in range(len(hard_only) + 1):
            filters, post = self.filters_for(params, drop)
            try:
                hits = self.index.search(
                    query,
                    k=(self.config.lookup_k if target else k * self.config.overfetch),
                    filters=filters,
                    mode=self.config.mode,
                )
            except FilterError as exc:  # unknown vocabulary value: report, search without it
                hits, relaxed = [], relaxed + [f"filter error: {exc}"]
            rows = [(h, self.row(h.product_id)) for h in hits]
            rows = [(h, r) for h, r in rows if self._passes(r, post)]
            if target:
                rows.sort(key=lambda hr: -title_overlap(str(hr[1].get("title", "")), str(target)))
            products = [self.enrich(r, h.score, params) for h, r in rows[:k]]
            if products or attempt == len(hard_only):
                break
            drop.append(hard_only[attempt])
            relaxed.append(f"no result: relaxed the soft filter {hard_only[attempt]!r}")
        reranked = False
        if self.llm is not None and self.config.rerank.enabled and len(products) >= 2 and not target:
            products, reranked = self.rerank(request or query, products)
        return {
            "query": query,
            "products": products,
            "relaxed": relaxed,
            "reranked": reranked,
            "filters": {
                k_: (sorted(v) if isinstance(v, frozenset) else v)
                for k_, v in filters.__dict__.items()
                if v not in (None, frozenset())
            },
            "duration_s": round(time.perf_counter() - t0, 4),
        }

    # -------------------------------------------------------------- enrichment
    def enrich(self, row: Mapping[str, Any], score: float, params: Mapping[str, Any]) -> dict[str, Any]:
        """A Candidate-shaped dict with ``spec_summary``, ``pros`` and ``cons`` from the attributes."""
        ecfg = self.config.enrichment
        raw = row.get("specs")
        conn = _as_list(row.get("connectivity"))
        feats = _as_list(row.get("features"))
        price = row.get("price")
        brand = str(row.get("brand") or "").lower()
        pros, cons = self._pros_and_cons(row, price, brand, conn, feats, params.get("max_price"))
        attrs = {
            k: v
            for k, v in (
                ("colour", row.get("colour")),
                ("capacity_gb", row.get("capacity_gb")),
                ("size_in", row.get("size_in")),
                ("connectivity", conn),
            )
            if has_value(v) and v != "" and v != []
        }
        # Row-shaped (top-level colour / capacity_gb / ... / specs) so that Candidate.from_row, the
        # Decider and the output safety screen read the same attributes the index filtered on.
        return {
            "product_id": str(row["product_id"]),
            "title": str(row.get("title") or ""),
            "brand": brand,
            "price": float(price) if has_value(price) else None,
            "category": str(row.get("category") or ""),
            "description": str(row.get("description") or "")[:300],
            "features": feats,
            **{k: (float(v) if isinstance(v, float) else v) for k, v in attrs.items()},
            "specs": raw if isinstance(raw, str) else "",
            "attributes": attrs,
            "retrieval_score": float(score),
            "spec_summary": self._spec_summary(row, raw, conn),
            "pros": pros[: ecfg.max_pros],
            "cons": cons[: ecfg.max_cons],
        }

    def _spec_summary(self, row: Mapping[str, Any], raw: object, conn: list[str]) -> str:
        """Colour, capacity, size, connectivity and the first ``spec_fields`` specs, one line."""
        specs: dict[str, Any] = {}
        if isinstance(raw, str) and raw.strip():
            try:
                specs = json.loads(raw) if raw.strip().startswith("{") else {}
            except json.JSONDecodeError:
                specs = {}
        parts = []
        for key, label in (("colour", "colour"), ("capacity_gb", "capacity"), ("size_in", "size")):
            v = row.get(key)
            if has_value(v) and v != "":
                unit = " GB" if key == "capacity_gb" else " in"
                parts.append(f"{label}: {v:g}{unit}" if isinstance(v, float) else f"{label}: {v}")
        if conn:
            parts.append("connectivity: " + ", ".join(conn))
        for key, value in list(specs.items())[: self.config.enrichment.spec_fields]:
            parts.append(f"{key}: {str(value)[:40]}")
        return "; ".join(parts)

    def _pros_and_cons(
        self,
        row: Mapping[str, Any],
        price: float | None,
        brand: str,
        conn: list[str],
        feats: list[str],
        budget: float | None,
    ) -> tuple[list[str], list[str]]:
        """Pros and cons a shopper can check: features, price vs budget and category, brand, specs."""
        pros: list[str] = []
        cons: list[str] = []
        if feats:
            pros.append("features: " + ", ".join(feats[:4]))
        if has_value(price) and budget:
            pros.append(
                f"${float(price):.2f}, {1 - float(price) / float(budget):.0%} under the ${float(budget):g} budget"
            )
        if not has_value(price):
            cons.append("no price listed")
        elif float(cast(float, price)) > self._expensive.get(row.get("category"), math.inf):
            cons.append(
                f"priced in the top {1 - self.config.enrichment.expensive_quantile:.0%} of {row.get('category')}"
            )
        if brand and self._brand_counts.get(brand, 0) >= 10:
            pros.append(f"established brand ({self._brand_counts[brand]} products)")
        elif not brand:
            cons.append("unknown brand")
        if not conn and not feats:
            cons.append("few listed specifications")
        return pros, cons

    # -------------------------------------------------------------- LLM fusion re-ranking
    def rerank(self, request: str, products: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
        """Fuse the LLM's order of the top ``top_n`` with the retrieval order (weighted RRF)."""
        rc = self.config.rerank
        if self.llm is None:
            return products, False
        head, tail = products[: rc.top_n], products[rc.top_n :]
        options = "\n".join(
            f"{i + 1}. {' '.join(p['title'].split()[: rc.title_words])}"
            + (f" (${p['price']:.0f})" if p.get("price") is not None else "")
            for i, p in enumerate(head)
        )
        messages = [
            {"role": "system", "content": "Rank the products for the shopper's request, best first."},
            {"role": "user", "content": f"Request: {request}\nProducts:\n{options}"},
        ]

        def check(value: Rerank) -> list[str]:
            bad = [i for i in value.order if not 1 <= i <= len(head)]
            problems = [f"option numbers must be 1..{len(head)}, got {bad}"] if bad else []
            if len(set(value.order)) != len(value.order):
                problems.append("option numbers repeat")
            if not value.order:
                problems.append("no option ranked")
            return problems

        try:
            res = self.llm.structured(
                messages, Rerank, max_tokens=rc.max_tokens, validate=check, fallback=lambda raw: None
            )
        except Exception:  # noqa: BLE001 - a failing backend keeps the retrieval order
            self.llm_fallbacks += 1
            return products, False
        if res.used_fallback or res.value is None:  # counted in the LLM's own fallback metrics
            note_discarded(self.llm)
            return products, False
        llm_rank = {i - 1: r for r, i in enumerate(res.value.order, start=1)}
        fused = []
        for i in range(len(head)):
            s = rc.retrieval_weight / (rc.rrf_k + i + 1) + rc.llm_weight / (rc.rrf_k + llm_rank.get(i, len(head) + 1))
            fused.append((-s, i))
        order = [i for _, i in sorted(fused)]
        if order == list(range(len(head))):
            note_discarded(self.llm)  # the fused order is the retrieval order: no effect
        for i in order:
            head[i]["llm_rank"] = llm_rank.get(i)
        return [head[i] for i in order] + tail, True

    # -------------------------------------------------------------- tools
    def lookup(self, name: str, category: str | None = None) -> dict[str, Any] | None:
        """The catalog product best matching a product name (title-token overlap over hybrid hits)."""
        params: dict[str, Any] = {"target": name, "k": 1}
        if category:
            params["category"] = category
        out = self.search(name, params)
        if not out["products"] and category:
            out = self.search(name, {"target": name, "k": 1})
        if not out["products"]:
            return None
        best = out["products"][0]
        best["match_score"] = round(title_overlap(best["title"], name), 3)
        return best

    def product_details(self, task: Task, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """ToolCall ``product_details``: the target's catalog facts (price, brand, size, ...)."""
        target = str(task.params.get("target") or task.query)
        prod = None
        for out in inputs.values():  # a split plan searched the target already
            if isinstance(out, Mapping) and out.get("products"):
                prod = out["products"][0]
                break
        prod = prod or self.lookup(target, task.params.get("category"))
        if prod is None:
            return {"tool": "product_details", "target": target, "product": None, "facts": {}}
        row = self.row(prod["product_id"])
        facts = {
            "price": f"${row['price']:.2f}" if has_value(row.get("price")) else None,
            "brand": row.get("brand") or None,
            "capacity": f"{row['capacity_gb']:g} GB" if has_value(row.get("capacity_gb")) else None,
            "size": f"{row['size_in']:g} inches" if has_value(row.get("size_in")) else None,
            "colour": row.get("colour") or None,
            "connectivity": ", ".join(_as_list(row.get("connectivity"))) or None,
        }
        return {
            "tool": "product_details",
            "target": target,
            "product": prod,
            "facts": {k: v for k, v in facts.items() if v},
        }

    def compare_specs(self, task: Task, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """ToolCall ``compare_specs``: the best match of each target side by side."""
        products: list[dict[str, Any]] = []
        for out in inputs.values():
            if isinstance(out, Mapping) and out.get("products"):
                top = out["products"][0]
                if top["product_id"] not in {p["product_id"] for p in products}:
                    products.append(top)
        table: dict[str, dict[str, Any]] = {}
        for field_ in ("price", "brand", "colour", "capacity_gb", "size_in"):
            table[field_] = {
                p["product_id"]: (
                    p.get(field_) if field_ in ("price", "brand") else p.get("attributes", {}).get(field_)
                )
                for p in products
            }
        cheapest = min((p for p in products if p.get("price") is not None), key=lambda p: p["price"], default=None)
        return {
            "tool": "compare_specs",
            "products": products,
            "table": table,
            "cheapest": cheapest["product_id"] if cheapest else None,
        }


def candidates_from(outputs: Sequence[Any]) -> list[dict[str, Any]]:
    """All product dicts in executor outputs (ProductSearch results and ToolCall products), deduplicated."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for o in outputs:
        items: list[Any] = []
        if isinstance(o, Mapping):
            items = list(o.get("products") or []) + ([o["product"]] if o.get("product") else [])
        for p in items:
            if isinstance(p, Mapping) and p.get("product_id") not in seen:
                seen.add(p["product_id"])
                out.append(dict(p))
    return out
