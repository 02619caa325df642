"""The real-language benchmark's labelled in-catalog side as evaluation items (rl_shop/evaluation/real_items.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rl_shop.catalog import load_catalog
from rl_shop.evaluation.real_benchmark import gold_products
from rl_shop.evaluation.real_items import is_real_benchmark, label_intent, label_query_type, real_items

REPO_ROOT = Path(__file__).resolve().parent.parent


def _labels(**kw: object) -> dict:
    base = {"catalog_categories": ["headphones"], "budget_max": None, "exclusions": [], "attributes": {}}
    return {**base, **kw}


def test_label_query_type_by_hand() -> None:
    assert label_query_type(_labels(needs_clarification=True, exclusions=["sony"])) == "ambiguous"
    assert label_query_type(_labels(exclusions=["sony"])) == "negation"
    assert label_query_type(_labels(budget_max=50.0, attributes={"colour": "red"})) == "multi_constraint"
    assert label_query_type(_labels(attributes={"features": ["noise cancelling"]})) == "simple"


def test_label_intent_states_every_label_and_hides_nothing() -> None:
    intent = label_intent(
        _labels(budget_max=80.0, exclusions=["sony", "sugar"], attributes={"brand": "Bose", "colour": "black"}),
        {"sony", "bose"},
    )
    assert intent.category == "headphones" and intent.budget == 80.0 and intent.colour == "black"
    assert intent.preferred_brands == ("bose",) and intent.excluded_brands == ("sony",)  # "sugar" is no brand
    assert set(intent.stated_slots) == {"category", "budget", "brand", "colour"} and intent.hidden_slots == ()


def test_real_items_are_the_labelled_in_catalog_rows_with_gold() -> None:
    catalog = load_catalog()
    test, dev = real_items(catalog, "test"), real_items(catalog, "dev")
    assert len(test) >= 150  # issue 13: the in-catalog test side is at least 150 queries
    assert not {i.id for i in test} & {i.id for i in dev}
    assert len({i.id for i in test}) == len(test)  # the source repeats one instruction: kept once
    rows = {json.loads(line)["id"]: json.loads(line) for line in (REPO_ROOT / "data/benchmark/real_v1.jsonl").open()}
    for item in test[:20]:
        row = rows[item.id]
        assert row["split"] == "test" and row["labels"]["in_catalog"] and item.query == row["query"]
        assert list(item.gold_product_ids) == gold_products(row["labels"], catalog)
    assert is_real_benchmark("real_v1") and is_real_benchmark("data/benchmark/real_v1.jsonl")
    assert not is_real_benchmark(None) and not is_real_benchmark("data/benchmark/eccd_v1.jsonl")


@pytest.mark.slow
def test_evaluate_app_runs_the_real_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "real"
    cmd = [
        sys.executable, str(REPO_ROOT / "experiments" / "evaluate.py"), "benchmark=real_v1", "split=test", "limit=1",
        "systems=[retrieval]", "uds.judge.enabled=false", "ab.enabled=false", "consistency.enabled=false",
        "plots=false", "tensorboard=false", f"results_dir={out}",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["systems"]["retrieval"]["real_v1:test"]["n"] == 4  # one per labelled type present
    assert all(json.loads(line)["item_id"].startswith("real-") for line in (out / "per_query.jsonl").open())
