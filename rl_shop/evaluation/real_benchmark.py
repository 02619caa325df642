"""The real-language benchmark (``data/benchmark/real_v1.jsonl``): loading and the field-level
scores of a query reader against its hand labels and source-side rule gold.

A reader is any function ``text -> Reading`` (the new :class:`~rl_shop.agents.understanding.Understander`
or the old rule parser, adapted), so both are scored by the same code in the same run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rl_shop.paths import DATA_DIR

if TYPE_CHECKING:
    import pandas as pd

REAL_BENCHMARK = DATA_DIR / "benchmark" / "real_v1.jsonl"


@dataclass
class Reading:
    """The fields of a parse that the benchmark scores."""

    budget_max: float | None = None
    exclusions: list[str] = field(default_factory=list)
    category: str | None = None
    in_catalog: bool = False
    ambiguous: bool = False


def load_real_benchmark(path: str | Path = REAL_BENCHMARK, split: str | None = None) -> list[dict[str, Any]]:
    """Rows of the benchmark (``split``: dev / test / None for both)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"real-language benchmark not found: {path}; build it with `python experiments/build_real_benchmark.py`"
        )
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if split is None or r["split"] == split]


def _key(phrase: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", phrase.lower())
    return {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words}


def exclusion_match(pred: str, gold: str) -> bool:
    """Same thing excluded: the words of one contain the other's (plural-insensitive)."""
    p, g = _key(pred), _key(gold)
    return bool(p and g) and (p <= g or g <= p)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def score_reader(rows: Iterable[dict[str, Any]], read: Callable[[str], Reading]) -> dict[str, Any]:
    """The issue's figures for one reader on ``rows`` (one split)."""
    c: dict[str, int] = {
        k: 0
        for k in (
            "budget_n",
            "budget_found",
            "budget_exact",
            "webshop_n",
            "webshop_exact",
            "excl_gold",
            "excl_found",
            "excl_pred",
            "excl_correct",
            "type_n",
            "type_ok",
            "ooc_n",
            "ooc_ok",
            "inc_n",
            "inc_false_ooc",
            "amb_tp",
            "amb_fp",
            "amb_fn",
            "amb_n",
        )
    }
    for r in rows:
        lab = r.get("labels")
        variant = (r.get("rule_gold") or {}).get("webshop_price_variant")
        if variant:
            c["webshop_n"] += 1
            variant_budget = read(variant["query"]).budget_max
            c["webshop_exact"] += int(variant_budget is not None and abs(variant_budget - variant["budget_max"]) < 0.01)
        if not lab:
            continue
        got = read(r["query"])
        if lab.get("budget_max") is not None:
            c["budget_n"] += 1
            c["budget_found"] += int(got.budget_max is not None)
            c["budget_exact"] += int(
                got.budget_max is not None and abs(got.budget_max - float(lab["budget_max"])) < 0.01
            )
        gold_ex = [str(x) for x in lab.get("exclusions") or []]
        c["excl_gold"] += len(gold_ex)
        c["excl_found"] += sum(1 for g in gold_ex if any(exclusion_match(p, g) for p in got.exclusions))
        c["excl_pred"] += len(got.exclusions)
        c["excl_correct"] += sum(1 for p in got.exclusions if any(exclusion_match(p, g) for g in gold_ex))
        if lab.get("in_catalog"):
            c["type_n"] += 1
            c["type_ok"] += int(got.category in set(lab.get("catalog_categories") or []))
            c["inc_n"] += 1
            c["inc_false_ooc"] += int(not got.in_catalog)
        elif lab.get("product_type"):
            c["ooc_n"] += 1
            c["ooc_ok"] += int(not got.in_catalog)
        gold_amb = bool(lab.get("needs_clarification"))
        c["amb_n"] += 1
        c["amb_tp"] += int(got.ambiguous and gold_amb)
        c["amb_fp"] += int(got.ambiguous and not gold_amb)
        c["amb_fn"] += int(not got.ambiguous and gold_amb)
    return {
        "budget_recall": _ratio(c["budget_found"], c["budget_n"]),
        "budget_exact": _ratio(c["budget_exact"], c["budget_n"]),
        "budget_n": c["budget_n"],
        "webshop_budget_exact": _ratio(c["webshop_exact"], c["webshop_n"]),
        "webshop_n": c["webshop_n"],
        "exclusion_recall": _ratio(c["excl_found"], c["excl_gold"]),
        "exclusion_precision": _ratio(c["excl_correct"], c["excl_pred"]),
        "exclusion_n": c["excl_gold"],
        "product_type_top1": _ratio(c["type_ok"], c["type_n"]),
        "in_catalog_n": c["type_n"],
        "ooc_detected": _ratio(c["ooc_ok"], c["ooc_n"]),
        "ooc_n": c["ooc_n"],
        "false_not_carried": _ratio(c["inc_false_ooc"], c["inc_n"]),
        "ambiguous_precision": _ratio(c["amb_tp"], c["amb_tp"] + c["amb_fp"]),
        "ambiguous_recall": _ratio(c["amb_tp"], c["amb_tp"] + c["amb_fn"]),
        "ambiguous_gold_n": c["amb_tp"] + c["amb_fn"],
        "labelled_n": c["amb_n"],
    }


def gold_products(labels: dict[str, Any], catalog: pd.DataFrame) -> list[str]:
    """Catalog rows that satisfy a labelled in-catalog query: a labelled catalog category, within
    the labelled budget, not an excluded brand, and of the labelled brand when one is given."""
    cats = {c.lower() for c in labels.get("catalog_categories") or []}
    if not cats:
        return []
    rows = catalog[catalog["category"].astype(str).str.strip().str.lower().isin(cats)]
    brand = rows["brand"].astype(str).str.strip().str.lower()
    keep = ~brand.isin({str(x).lower() for x in labels.get("exclusions") or []})
    if labels.get("budget_max") is not None:
        keep &= rows["price"].le(float(labels["budget_max"])).fillna(False)
    if labels.get("budget_min") is not None:
        keep &= rows["price"].ge(float(labels["budget_min"])).fillna(False)
    wanted = (labels.get("attributes") or {}).get("brand")
    if isinstance(wanted, str) and wanted.strip():
        keep &= brand.eq(wanted.strip().lower())
    return rows.loc[keep, "product_id"].astype(str).tolist()
