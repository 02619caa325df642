"""Hybrid index on a small real sub-catalog: filters, fusion, query handling, cache reuse."""

from __future__ import annotations

import pandas as pd
import pytest

from rl_shop.catalog import load_catalog
from rl_shop.catalog.filters import FilterError, SearchFilters
from rl_shop.catalog.index import HybridIndex

pytestmark = pytest.mark.slow  # builds a small index (embeds ~230 titles)

CATEGORIES = ("headphones", "usb flash drives", "mice", "inkjet printer ink")


@pytest.fixture(scope="module")
def sub_catalog() -> pd.DataFrame:
    catalog = load_catalog()
    parts = [catalog[catalog["category"] == c].head(50) for c in CATEGORIES]
    parts.append(catalog[catalog["source"] == "flipkart"].head(30))
    return pd.concat(parts).reset_index(drop=True)


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("index_cache")


@pytest.fixture(scope="module")
def index(sub_catalog, cache_root) -> HybridIndex:
    return HybridIndex.load_or_build(sub_catalog, cache_root)


def _rows(index: HybridIndex, hits) -> pd.DataFrame:
    return index.catalog.set_index("product_id").loc[[h.product_id for h in hits]]


def test_top_in_both_lists_is_top_fused(index, sub_catalog):
    title = sub_catalog.loc[sub_catalog["category"] == "mice", "title"].iloc[0]
    hits = index.search(title, k=5)
    assert hits[0].bm25_rank == 1 and hits[0].dense_rank == 1
    assert hits[0].product_id == sub_catalog.loc[sub_catalog["title"] == title, "product_id"].iloc[0]
    assert all(h.score <= hits[0].score for h in hits)


def test_max_price_filter_applies_before_truncation(index, sub_catalog):
    budget = 15.0
    affordable = (sub_catalog["price"] <= budget).sum()
    assert affordable >= 10  # the sub-catalog has enough cheap products for a full page
    hits = index.search("wireless headphones", k=10, filters=SearchFilters(max_price=budget))
    assert len(hits) == 10
    prices = _rows(index, hits)["price"]
    assert prices.notna().all() and (prices <= budget).all()


def test_brand_filters(index):
    unfiltered = _rows(index, index.search("sony headphones", k=10))
    assert (unfiltered["brand"] == "sony").any()
    excluded = _rows(index, index.search("sony headphones", k=10, filters=SearchFilters(exclude_brands=["Sony"])))
    assert len(excluded) == 10 and not (excluded["brand"] == "sony").any()
    only = _rows(index, index.search("headphones", k=10, filters=SearchFilters(brands=["sony"])))
    assert len(only) > 0 and (only["brand"] == "sony").all()


def test_category_filters(index):
    mice = _rows(index, index.search("black wireless", k=10, filters=SearchFilters(categories=["mice"])))
    assert len(mice) == 10 and (mice["category"] == "mice").all()
    dept = _rows(index, index.search("black wireless", k=10, filters=SearchFilters(categories=["fashion"])))
    assert len(dept) > 0 and (dept["department"] == "fashion").all()
    prefix = _rows(index, index.search("black", k=10, filters=SearchFilters(categories=["computers > storage"])))
    assert (prefix["category_path"].str.startswith("computers > storage")).all()


def test_unknown_category_lists_close_matches(index):
    with pytest.raises(FilterError, match="headphones"):
        index.search("sony", filters=SearchFilters(categories=["headphone"]))


def test_attribute_filters(index):
    black = _rows(index, index.search("mouse", k=10, filters=SearchFilters(colour="black")))
    assert len(black) > 0 and (black["colour"] == "black").all()
    big = _rows(index, index.search("usb flash drive", k=10, filters=SearchFilters(min_capacity_gb=16)))
    assert len(big) > 0 and (big["capacity_gb"] >= 16).all()
    usb = _rows(index, index.search("mouse", k=10, filters=SearchFilters(connectivity=["usb"])))
    assert len(usb) > 0 and all("usb" in c for c in usb["connectivity"])
    nc = _rows(index, index.search("headphones", k=5, filters=SearchFilters(features=["noise cancelling"])))
    assert len(nc) > 0 and all("noise cancelling" in f for f in nc["features"])


def test_query_validation(index):
    with pytest.raises(ValueError, match="empty"):
        index.search("")
    with pytest.raises(ValueError, match="empty"):
        index.search("   \n\t")
    with pytest.raises(ValueError):
        index.search("mouse", k=0)
    huge = "usb flash drive " * 2000  # 32k characters, cut to query.max_chars at a word boundary
    assert len(index.search(huge, k=3)) == 3
    assert index._clean_query(huge).endswith("drive") or index._clean_query(huge).endswith("flash")
    assert len(index._clean_query(huge)) <= index.config["query"]["max_chars"]


def test_modes_and_batching(index):
    bm25 = index.search("kingston usb flash drive", k=5, mode="bm25")
    assert all(h.dense_rank is None and h.bm25_rank is not None for h in bm25)
    dense = index.search("kingston usb flash drive", k=5, mode="dense")
    assert all(h.bm25_rank is None for h in dense)
    queries = ["sony headphones", "optical mouse", "hp ink cartridge"]
    assert index.search_many(queries, k=4) == [index.search(q, k=4) for q in queries]


def test_cache_is_reused(index, sub_catalog, cache_root):
    builds = HybridIndex.builds
    again = HybridIndex.load_or_build(sub_catalog, cache_root)
    assert HybridIndex.builds == builds and again.loaded_from_cache
    assert again.search("optical mouse", k=5) == index.search("optical mouse", k=5)
    # a different catalog gets a different key and is built
    HybridIndex.load_or_build(sub_catalog.head(50), cache_root)
    assert HybridIndex.builds == builds + 1


def test_processes_that_start_together_build_once(tmp_path):
    """Two processes asking for the same uncached index: one embeds, the other waits and loads."""
    import json
    import os
    import subprocess
    import sys

    from rl_shop.paths import REPO_ROOT

    script = (
        "import json, sys; from rl_shop.catalog import load_catalog; from rl_shop.catalog.index import HybridIndex; "
        "cat = load_catalog(); sub = cat[cat['category'] == 'mice'].head(40); "
        "idx = HybridIndex.load_or_build(sub, sys.argv[1]); "
        "print(json.dumps({'builds': HybridIndex.builds, 'cached': idx.loaded_from_cache}))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert sorted(r["builds"] for r in results) == [0, 1]
    assert sorted(r["cached"] for r in results) == [False, True]
