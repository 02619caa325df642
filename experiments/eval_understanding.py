"""Query understanding on human-written text: old rule parser vs the open-world Understander,
in one run, on both sides of ``real_v1`` (dev: tune; test: report), plus the clarify gate on
ClariQ dev against the majority baseline.

    python experiments/eval_understanding.py                # prints the table, writes JSON
    python experiments/eval_understanding.py --out docs/results/understanding.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rl_shop.agents.demand import CatalogVocab, rule_parse
from rl_shop.agents.understanding import Understander
from rl_shop.catalog import load_catalog
from rl_shop.catalog.index import HybridIndex
from rl_shop.evaluation.real_benchmark import Reading, load_real_benchmark, score_reader
from rl_shop.sim import load_sim_config

ROWS = [
    ("budget_recall", ">= 0.95"),
    ("budget_exact", ">= 0.95"),
    ("webshop_budget_exact", ">= 0.95"),
    ("exclusion_recall", ">= 0.85"),
    ("exclusion_precision", ">= 0.90"),
    ("product_type_top1", ">= 0.80"),
    ("ooc_detected", ">= 0.90"),
    ("false_not_carried", "<= 0.05"),
    ("ambiguous_precision", ">= 0.80"),
    ("ambiguous_recall", ">= 0.80"),
]


def old_reader(vocab: CatalogVocab):
    def read(text: str) -> Reading:
        d = rule_parse(text, vocab)
        return Reading(
            budget_max=d.budget,
            exclusions=[*d.excluded_brands, *d.excluded_features],
            category=d.category,
            in_catalog=d.category is not None,
            ambiguous=d.query_type == "ambiguous",
        )

    return read


def new_reader(u: Understander):
    def read(text: str) -> Reading:
        q = u.parse(text)
        return Reading(
            budget_max=q.budget_max,
            exclusions=q.exclusions,
            category=q.category,
            in_catalog=q.in_catalog,
            ambiguous=q.query_type == "ambiguous",
        )

    return read


def eccd_rows(benchmark: str = "eccd_v1", split: str | None = None) -> list[dict]:
    """A generated benchmark (all of it, or one split) in the same label layout (gold from the
    simulator's intents)."""
    import json

    from rl_shop.sim.benchmark import benchmark_path, split_of

    rows = []
    for line in benchmark_path(benchmark).read_text().splitlines():
        item = json.loads(line)
        if split is not None and split_of(item["id"]) != split:
            continue
        it = item["intent"]
        said = set(it.get("stated_slots") or [])  # gold only for what the first query states
        cat = it.get("category") if "category" in said else None
        rows.append(
            {
                "query": item["query"],
                "labels": {
                    "budget_max": it.get("budget") if "budget" in said else None,
                    "exclusions": list(it.get("excluded_brands") or []) if "brand" in said else [],
                    "in_catalog": cat is not None,
                    "catalog_categories": [cat] if cat else [],
                    "product_type": cat,
                    "needs_clarification": item["query_type"] == "ambiguous",
                },
            }
        )
    return rows


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    catalog = load_catalog()
    vocab = CatalogVocab.from_catalog(catalog, load_sim_config().knowledge)
    u = Understander.from_catalog(catalog, index=HybridIndex.load_or_build(catalog))
    readers = {
        "old": old_reader(vocab),
        "lexical": new_reader(Understander.from_catalog(catalog)),
        "new": new_reader(u),
    }
    results: dict[str, dict[str, dict]] = {}
    for split in ("dev", "test"):
        rows = load_real_benchmark(split=split)
        for name, read in readers.items():
            t0 = time.perf_counter()
            results.setdefault(split, {})[name] = score_reader(rows, read)
            results[split][name]["seconds"] = round(time.perf_counter() - t0, 2)
    results["eccd_v1"] = {name: score_reader(eccd_rows(), read) for name, read in readers.items()}
    v2 = eccd_rows("eccd_v2", split="test")
    results["eccd_v2_test"] = {name: score_reader(v2, read) for name, read in readers.items()}
    from rl_shop.evaluation.clarify_eval import clariq_gate_scores

    results["clariq_dev"] = clariq_gate_scores(u)
    print(
        "| figure | goal | real_v1 dev old | dev new | real_v1 test old | test lexical only | test new | n test | "
        "eccd_v1 old | eccd_v1 new | eccd_v2 test old | eccd_v2 test new |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    n_key = {
        "budget_recall": "budget_n",
        "budget_exact": "budget_n",
        "webshop_budget_exact": "webshop_n",
        "exclusion_recall": "exclusion_n",
        "exclusion_precision": "exclusion_n",
        "product_type_top1": "in_catalog_n",
        "ooc_detected": "ooc_n",
        "false_not_carried": "in_catalog_n",
        "ambiguous_precision": "ambiguous_gold_n",
        "ambiguous_recall": "ambiguous_gold_n",
    }
    for key, goal in ROWS:
        d, t = results["dev"], results["test"]
        print(
            f"| {key} | {goal} | {_fmt(d['old'][key])} | {_fmt(d['new'][key])} | {_fmt(t['old'][key])} | "
            f"{_fmt(t['lexical'][key])} | {_fmt(t['new'][key])} | {t['new'][n_key[key]]} | {_fmt(results['eccd_v1']['old'][key])} | "
            f"{_fmt(results['eccd_v1']['new'][key])} | {_fmt(results['eccd_v2_test']['old'][key])} | "
            f"{_fmt(results['eccd_v2_test']['new'][key])} |"
        )
    cq = results["clariq_dev"]
    print(
        f"\nClariQ dev clarify gate (n={cq['n']}): accuracy {cq['accuracy']:.3f} (majority {cq['majority_accuracy']:.3f}), "
        f"macro-F1 {cq['macro_f1']:.3f} (majority {cq['majority_macro_f1']:.3f})"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
