"""Benchmark of the hybrid index: cold build vs cached load, and per-query latency by mode.

Prints a table with BM25-only as the same-run reference (ratio = mode / BM25-only).
Usage: python experiments/bench_search.py [--catalog FILE] [--cache DIR]
Queries are real shopper queries (ESCI US queryset, WebShop human queries) from the shared data.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rl_shop.catalog import CatalogError, load_catalog
from rl_shop.catalog.config import load_yaml
from rl_shop.catalog.index import HybridIndex
from rl_shop.paths import SHARED_DATA_DIR


def load_queries(cfg: dict, shared: Path) -> list[str]:
    """ESCI queries, then a seeded sample of WebShop search queries up to ``n_queries``."""
    esci = json.loads((shared / cfg["esci_queryset"]).read_text())["querySetQueries"]
    queries = [q["queryText"] for q in esci]
    webshop = json.loads((shared / cfg["webshop_query_map"]).read_text())
    extra = sorted({qs[0] for qs in webshop.values() if qs})
    random.Random(cfg["seed"]).shuffle(extra)
    queries += extra[: max(0, cfg["n_queries"] - len(queries))]
    return queries[: cfg["n_queries"]]


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="bench_search")
    parser.add_argument("--catalog", default=None, help="catalog parquet (default: data/catalog.parquet)")
    parser.add_argument("--cache", default=None, help="cache root for the timed build (default: a temp dir)")
    args = parser.parse_args(argv)
    try:
        cfg = load_yaml(args.config)
        catalog = load_catalog(args.catalog)
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    queries = load_queries(cfg, SHARED_DATA_DIR)
    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="rl_shop_bench_"))

    start = time.perf_counter()
    index = HybridIndex.load_or_build(catalog, cache)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    index = HybridIndex.load_or_build(catalog, cache)
    warm = time.perf_counter() - start
    assert index.loaded_from_cache, "second load should come from the cache"
    print(f"catalog: {len(catalog)} products; queries: {len(queries)}")
    print(f"index build (cold, incl. embedding): {cold:8.2f} s   (embedding+BM25 build: {index.build_seconds:.2f} s)")
    print(f"index load (cached):                 {warm:8.2f} s   ratio cold/cached = {cold / warm:.1f}x\n")

    index.search(queries[0], k=cfg["k"])  # loads the query encoder outside the timing
    rows = []
    for mode in ("bm25", "dense", "hybrid"):
        for q in queries[: cfg["warmup_queries"]]:
            index.search(q, k=cfg["k"], mode=mode)
        times = []
        for q in queries:
            t0 = time.perf_counter()
            index.search(q, k=cfg["k"], mode=mode)
            times.append((time.perf_counter() - t0) * 1000)
        rows.append((mode, float(np.median(times)), float(np.percentile(times, 95))))
    base_med, base_p95 = rows[0][1], rows[0][2]
    print(f"{'mode':<8} {'median ms':>10} {'p95 ms':>10} {'median / bm25':>14} {'p95 / bm25':>11}")
    for mode, med, p95 in rows:
        print(f"{mode:<8} {med:10.2f} {p95:10.2f} {med / base_med:14.2f} {p95 / base_p95:11.2f}")
    t0 = time.perf_counter()
    index.search_many(queries, k=cfg["k"])
    batched = (time.perf_counter() - t0) * 1000 / len(queries)
    print(f"hybrid search_many (batched): {batched:.2f} ms/query")
    if not args.cache:
        shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
