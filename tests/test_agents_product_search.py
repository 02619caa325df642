"""ProductSearch agent on a small real sub-catalog: hard filters checked against the catalog rows,
soft-filter relaxation, attribute-derived enrichment, LLM fusion re-ranking (scripted test double:
see tests/test_llm_scripted.py) and the product-details / compare tools.

``sub_index()`` is shared with the other tests/test_agents_*.py files of the runtime.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
import pytest
from test_llm_scripted import ScriptedLLM

from rl_shop.agents.product_search import ProductSearchAgent, title_overlap
from rl_shop.agents.types import Task, TaskType
from rl_shop.paths import DATA_DIR

pytestmark = [
    pytest.mark.slow,  # builds (first run) or loads a small index
    pytest.mark.skipif(not (DATA_DIR / "catalog.parquet").is_file(), reason="catalog not built"),
]

CATEGORIES = (
    "headphones",
    "bluetooth headsets",
    "mice",
    "memory card readers",
    "corded telephones",
    "usb flash drives",
    "external hard drives",
    "laptops",
)


@functools.lru_cache(maxsize=1)
def sub_index():
    """(sub-catalog, HybridIndex): 60 products of each of 8 categories; the index is cached under
    the project cache dir (keyed by content), so only the first run embeds the ~480 titles."""
    from rl_shop.catalog import load_catalog
    from rl_shop.catalog.index import HybridIndex

    catalog = load_catalog()
    sub = pd.concat([catalog[catalog["category"] == c].head(60) for c in CATEGORIES]).reset_index(drop=True)
    return sub, HybridIndex.load_or_build(sub)


def agent(llm=None, **overrides) -> ProductSearchAgent:
    _, index = sub_index()
    cfg = {
        "rerank": {
            "enabled": llm is not None,
            "top_n": 4,
            "max_tokens": 16,
            "rrf_k": 10.0,
            "retrieval_weight": 1.0,
            "llm_weight": 0.5,
            "title_words": 8,
        }
    }
    for key, value in overrides.items():
        cfg.setdefault(key, {}).update(value) if isinstance(value, dict) else cfg.__setitem__(key, value)
    return ProductSearchAgent(index, cfg, llm=llm)


def rows_of(product_ids):
    sub, _ = sub_index()
    return sub.set_index("product_id").loc[list(product_ids)]


def test_budget_and_excluded_brand_are_hard_filters():
    sub, _ = sub_index()
    headphones = sub[sub["category"] == "headphones"]
    excluded = headphones["brand"].value_counts().index[0]  # the most frequent brand
    budget = float(headphones["price"].median())
    out = agent().search(
        "headphones", {"k": 10, "category": "headphones", "max_price": budget, "exclude_brands": [excluded]}
    )
    ids = [p["product_id"] for p in out["products"]]
    assert ids, "the category has products under its median price from other brands"
    rows = rows_of(ids)
    assert (rows["price"] <= budget).all() and rows["price"].notna().all()
    assert (rows["brand"].str.lower() != excluded).all()
    assert (rows["category"] == "headphones").all()
    # as many as exist: the filter was applied before truncation
    eligible = headphones[(headphones["price"] <= budget) & (headphones["brand"].str.lower() != excluded)]
    assert len(ids) == min(10, len(eligible))


def test_excluded_feature_is_post_filtered():
    sub, _ = sub_index()
    mice = sub[sub["category"] == "mice"]
    wireless = mice["features"].apply(lambda f: "wireless" in list(f))
    assert wireless.any() and (~wireless).any()
    out = agent().search("mouse", {"k": 20, "category": "mice", "exclude_attributes": {"features": ["wireless"]}})
    feats = rows_of([p["product_id"] for p in out["products"]])["features"]
    assert len(feats) > 0 and not any("wireless" in list(f) for f in feats)


def test_soft_filter_relaxed_but_budget_kept():
    sub, _ = sub_index()
    readers = sub[sub["category"] == "memory card readers"]
    assert not readers["features"].apply(lambda f: "touchscreen" in list(f)).any()
    budget = float(readers["price"].quantile(0.5))
    out = agent().search(
        "card reader",
        {"k": 5, "category": "memory card readers", "max_price": budget, "attributes": {"features": ["touchscreen"]}},
    )
    assert out["products"] and any("features" in r for r in out["relaxed"])
    assert (rows_of([p["product_id"] for p in out["products"]])["price"] <= budget).all()


def test_capacity_is_relaxed_before_the_category_which_never_is():
    # no laptop in the sub-catalog has 4 TB; external drives do: the answer stays laptops
    out = agent().search("laptop 4tb", {"k": 5, "category": "laptops", "attributes": {"capacity_gb": 4000}})
    assert out["products"] and any("capacity_gb" in r for r in out["relaxed"])
    assert set(rows_of([p["product_id"] for p in out["products"]])["category"]) == {"laptops"}
    assert not any("category" in r for r in out["relaxed"])


def test_enrichment_is_derived_from_attributes():
    sub, _ = sub_index()
    laptops = sub[(sub["category"] == "laptops") & sub["price"].notna()]
    q75 = float(laptops["price"].quantile(0.75))
    pricey = laptops[laptops["price"] > q75].iloc[0].to_dict()
    cheap = laptops[laptops["price"] <= q75].iloc[0].to_dict()
    a = agent()
    assert any("top 25%" in c for c in a.enrich(pricey, 1.0, {})["cons"])
    assert not any("top 25%" in c for c in a.enrich(cheap, 1.0, {})["cons"])
    e = a.enrich(cheap, 1.0, {"max_price": cheap["price"] * 2})
    assert any("50% under" in p for p in e["pros"])
    if list(cheap["features"]):
        assert any(list(cheap["features"])[0] in p for p in e["pros"])


def test_llm_rerank_fuses_by_weighted_rrf():
    # retrieval order r1, r2; the LLM says [2, 1]. rrf_k = 10:
    # llm_weight 0.5: r1 = 1/11 + 0.5/12 = 0.1326 > r2 = 1/12 + 0.5/11 = 0.1288 -> order kept;
    # llm_weight 2.0: r1 = 1/11 + 2/12 = 0.2576 < r2 = 1/12 + 2/11 = 0.2652 -> swapped.
    params = {"k": 2, "category": "usb flash drives"}
    base = agent().search("usb flash drive", params)["products"]
    assert len(base) == 2
    llm = ScriptedLLM(['{"order": [2, 1]}'])
    kept = agent(llm).search("usb flash drive", params)
    assert kept["reranked"] and [p["product_id"] for p in kept["products"]] == [p["product_id"] for p in base]
    swapped = agent(ScriptedLLM(['{"order": [2, 1]}']), rerank={"llm_weight": 2.0}).search("usb flash drive", params)
    assert [p["product_id"] for p in swapped["products"]] == [base[1]["product_id"], base[0]["product_id"]]
    assert swapped["products"][0]["llm_rank"] == 1


def test_garbage_rerank_output_keeps_retrieval_order_and_switch_off():
    params = {"k": 4, "category": "mice"}
    base = [p["product_id"] for p in agent().search("wireless mouse", params)["products"]]
    llm = ScriptedLLM(["%%% not json at all", '{"order": [9, 9, 9]}'])
    out = agent(llm).search("wireless mouse", params)
    assert not out["reranked"] and [p["product_id"] for p in out["products"]] == base
    assert llm.metrics.fallbacks == 1
    off = ScriptedLLM(['{"order": [4, 3, 2, 1]}'])
    agent(off, rerank={"enabled": False}).search("wireless mouse", params)
    assert off.calls == []


def test_product_details_finds_a_named_product_and_compare():
    sub, _ = sub_index()
    row = sub[sub["category"] == "external hard drives"].iloc[3]
    name = " ".join(str(row["title"]).split()[:6])
    a = agent()
    out = a.product_details(
        Task(
            task_id="t1",
            type=TaskType.TOOL_CALL,
            query=f"how much storage does the {name} have?",
            params={"tool": "product_details", "target": name},
        ),
        {},
    )
    assert out["product"] is not None and title_overlap(out["product"]["title"], name) == 1.0
    assert out["facts"].get("brand") == row["brand"] or not row["brand"]
    other = sub[sub["category"] == "external hard drives"].iloc[7]
    searches = {
        f"t{i}": a.search(
            " ".join(str(r["title"]).split()[:6]), {"target": " ".join(str(r["title"]).split()[:6]), "k": 1}
        )
        for i, r in enumerate((row, other))
    }
    cmp = a.compare_specs(Task(task_id="t3", type=TaskType.TOOL_CALL, params={"tool": "compare_specs"}), searches)
    assert len(cmp["products"]) == 2
    prices = {p["product_id"]: p["price"] for p in cmp["products"] if p["price"] is not None}
    if prices:
        assert cmp["cheapest"] == min(prices, key=prices.get)
    json.dumps(cmp)  # JSON-ready for Memory


def test_unknown_category_param_is_not_a_crash():
    out = agent().search("headphones", {"k": 3, "category": "no such category", "max_price": 30.0})
    rows = rows_of([p["product_id"] for p in out["products"]])
    assert (rows["price"] <= 30.0).all()
    assert np.isfinite(rows["price"]).all()
