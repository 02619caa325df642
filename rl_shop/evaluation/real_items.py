"""The labelled in-catalog side of the real-language benchmark as evaluation items.

``experiments/evaluate.py benchmark=real_v1`` runs the systems on human-written queries
(``data/benchmark/real_v1.jsonl``) through the same runner as the generated benchmark. Each
labelled in-catalog row becomes a :class:`~rl_shop.sim.benchmark.BenchmarkItem`:

* gold products: :func:`~rl_shop.evaluation.real_benchmark.gold_products` of the hand labels;
* the shopper who answers the Guider holds the hand labels and nothing else: every labelled
  constraint is *stated* (it was read off the text) and none is hidden, so a question about an
  unlabelled slot gets "no preference"; clarifying can only restate what the text said;
* the query type is a coarse one from the labels (for the per-type tables, not a generator's type):
  ``ambiguous`` when the labeller marked that it needs clarification, else ``negation`` with an
  exclusion, ``multi_constraint`` with two or more of budget / brand / colour / features, else
  ``simple``.

The row's own ``split`` (a fixed hash, written by ``experiments/build_real_benchmark.py``) selects
dev or test; the generated benchmark's ``split_of`` does not apply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from rl_shop.evaluation.real_benchmark import REAL_BENCHMARK, gold_products, load_real_benchmark
from rl_shop.sim.benchmark import BenchmarkItem
from rl_shop.sim.slots import Intent


def is_real_benchmark(path: str | Path | None) -> bool:
    """Whether a configured benchmark names the real-language one (``real_v1`` or its file)."""
    return path is not None and Path(str(path)).stem == REAL_BENCHMARK.stem


def label_query_type(labels: dict[str, Any]) -> str:
    """The coarse query type of a labelled row (see the module docstring)."""
    if labels.get("needs_clarification"):
        return "ambiguous"
    if labels.get("exclusions"):
        return "negation"
    attrs = labels.get("attributes") or {}
    n = sum(
        (
            labels.get("budget_max") is not None,
            bool(attrs.get("brand")),
            bool(attrs.get("colour")),
            bool(attrs.get("features")),
        )
    )
    return "multi_constraint" if n >= 2 else "simple"


def label_intent(labels: dict[str, Any], catalog_brands: set[str]) -> Intent:
    """The shopper's intent: the hand labels, all stated (see the module docstring)."""
    attrs = labels.get("attributes") or {}
    brand = str(attrs.get("brand") or "").strip().lower()
    excluded = tuple(sorted({str(x).lower() for x in labels.get("exclusions") or []} & catalog_brands - {brand}))
    budget = labels.get("budget_max")
    colour = attrs.get("colour")
    stated = ["category"]
    stated += ["budget"] if budget is not None else []
    stated += ["brand"] if brand or excluded else []
    stated += ["colour"] if isinstance(colour, str) and colour else []
    return Intent(
        query_type=label_query_type(labels),
        category=str(labels["catalog_categories"][0]),
        budget=float(budget) if budget is not None and float(budget) > 0 else None,
        preferred_brands=(brand,) if brand else (),
        excluded_brands=excluded,
        colour=colour if isinstance(colour, str) and colour else None,
        stated_slots=tuple(stated),
    )


def real_items(
    catalog: pd.DataFrame, split: str | None = "test", path: str | Path = REAL_BENCHMARK
) -> list[BenchmarkItem]:
    """Every labelled in-catalog row of ``split`` with at least one gold product, as an item (a row
    whose id, a hash of its text, repeats an earlier one's is the same query and is kept once)."""
    brands = set(catalog["brand"].astype(str).str.strip().str.lower())
    items: list[BenchmarkItem] = []
    seen: set[str] = set()
    for row in load_real_benchmark(path, split):
        labels = row.get("labels") or {}
        if not labels.get("in_catalog") or not labels.get("catalog_categories") or row["id"] in seen:
            continue
        seen.add(str(row["id"]))
        gold = gold_products(labels, catalog)
        if not gold:
            continue
        intent = label_intent(labels, brands)
        items.append(BenchmarkItem(str(row["id"]), str(row["query"]), intent.query_type, intent, tuple(gold)))
    if not items:
        raise ValueError(f"no labelled in-catalog query with a gold product in {path} (split={split})")
    return items
