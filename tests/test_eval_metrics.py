"""UDS rubric and per-type aggregation on hand-computed cases (tiny catalog, no model)."""

from __future__ import annotations

import math

import pytest
from test_eval_helpers import make_items, tiny_catalog

from rl_shop.evaluation.runner import aggregate
from rl_shop.evaluation.uds import RubricConfig, answer_recall, rubric_score
from rl_shop.sim.benchmark import BenchmarkItem
from rl_shop.sim.constraints import CatalogArrays
from rl_shop.sim.slots import Intent


@pytest.fixture(scope="module")
def cat():
    return tiny_catalog()


@pytest.fixture(scope="module")
def arr(cat):
    return CatalogArrays.of(cat)


def _item(**kw) -> BenchmarkItem:
    intent = Intent(
        **{
            "query_type": "multi_constraint",
            "category": "headphones",
            "budget": 150.0,
            "preferred_brands": ("sony",),
            "stated_slots": ("category", "budget"),
            "hidden_slots": ("brand",),
            **kw,
        }
    )
    # gold by reading the table: sony headphones at most $150 = h1 ($50), h2 ($120), h6 ($30)
    return BenchmarkItem("t0", "headphones under $150", intent.query_type, intent, ("h1", "h2", "h6"))


def test_rubric_hand_computed_multi_constraint(arr, cat):
    item = _item()
    ranked = ["h1", "h3", "h4", "h2", "m1"]
    answer = "The sony headphones model h1 fit your budget well and cancel noise."
    titles = dict(zip(cat.product_id, cat.title))
    r = rubric_score(item, ranked, answer, arr, RubricConfig(), titles)
    # correctness: Accuracy@5 = 2/5 over the ceiling min(3, 5)/5 = 0.6
    assert r.correctness == pytest.approx(0.4 / 0.6)
    # explicit: (category, budget, brand) satisfied by h1 3/3, h3 1/3, h4 2/3, h2 3/3, m1 1/3
    assert r.explicit == pytest.approx(10 / 15)
    # implicit: the hidden brand slot holds for h1 and h2 only
    assert r.implicit == pytest.approx(2 / 5)
    assert r.usefulness == 1.0  # >= 8 words and names the brand of a shown product
    assert r.score == pytest.approx(0.4 * (2 / 3) + 0.2 * (2 / 3) + 0.2 * 0.4 + 0.2 * 1.0)
    assert r.level == 2
    # the same list with no text (a retrieval system) loses the usefulness fifth
    bare = rubric_score(item, ranked, "", arr)
    assert bare.usefulness == 0.0 and bare.score == pytest.approx(r.score - 0.2)
    # echoing the query's own words back names no product: half credit only
    echo = rubric_score(
        item, ranked, "These headphones are great headphones under your budget, enjoy", arr, titles=titles
    )
    assert echo.usefulness == 0.5
    named = rubric_score(item, ranked, "Try the bose one: model h3 is the quietest of these, truly", arr, titles=titles)
    assert named.usefulness == 1.0  # brand of a shown product


def test_unknown_ids_keep_their_slot_and_satisfy_nothing(arr):
    item = _item()
    r = rubric_score(item, ["h1", "made-up-1", "h2"], "", arr)
    assert r.correctness == pytest.approx((2 / 5) / 0.6)
    assert r.explicit == pytest.approx((3 + 0 + 3) / 9)  # the invented id scores 0 of 3 constraints
    assert r.implicit == pytest.approx(2 / 3)


def test_rubric_levels_follow_thresholds(arr):
    item = _item()
    perfect = rubric_score(item, ["h1", "h2", "h6"], "Sony h1, h2 and h6 are all within your $150 budget.", arr)
    assert perfect.correctness == 1.0 and perfect.explicit == 1.0 and perfect.level == 3
    wrong = rubric_score(item, ["m1", "m2", "l1"], "", arr)
    assert wrong.correctness == 0.0 and wrong.level == 1
    assert rubric_score(item, [], "", arr).level == 1
    with pytest.raises(ValueError, match="must not exceed"):
        RubricConfig(partial=0.9, full=0.5)


def test_rubric_product_qa_scores_the_answer(arr):
    intent = Intent(
        query_type="product_qa",
        category="headphones",
        target_product_ids=("h2",),
        qa_field="colour",
        gold_answer="white",
        stated_slots=("category",),
    )
    item = BenchmarkItem("t1", "what colour is the sony h2?", "product_qa", intent, ("h2",), "white")
    right = rubric_score(item, ["h2", "h1"], "It is white.", arr)
    assert right.correctness == 1.0 and right.explicit == 1.0 and right.usefulness == 0.0  # 3 words only
    assert right.score == pytest.approx(0.8) and right.level == 3
    wrong = rubric_score(item, ["h1"], "It is black.", arr)
    assert wrong.correctness == 0.0 and wrong.explicit == 0.0 and wrong.level == 1


def test_answer_recall():
    assert answer_recall("13 to 14 inch screens", "Pick 13 or 14 inch screens") == pytest.approx(1.0)
    assert answer_recall("$6.95", "it costs $6.95") == 1.0
    assert answer_recall("$6.95", "it costs $7.95") == 0.0
    assert answer_recall("", "anything") == 0.0


def _rec(system, item_id, qtype, acc, uds_j, uds_r, rounds, ttft, total, error=None):
    return {
        "system": system,
        "item_id": item_id,
        "query_type": qtype,
        "accuracy@5": acc,
        "max_accuracy@5": 1.0,
        "uds_judge": uds_j,
        "uds_rubric": uds_r,
        "rounds": rounds,
        "ttft_s": ttft,
        "total_s": total,
        "error": error,
    }


def test_aggregate_hand_computed():
    recs = [
        _rec("a", "1", "simple", 0.8, 3, 3, 0, 1.0, 2.0),
        _rec("a", "2", "simple", 0.4, None, 2, 2, 3.0, 4.0),
        _rec("a", "3", "negation", 0.0, 1, 1, 1, 2.0, 6.0, error="boom"),
        _rec("b", "1", "simple", 1.0, 2, 3, 0, 0.5, 0.5),
    ]
    t = aggregate(recs, ["a", "b"])
    assert t.loc[("a", "simple"), "accuracy@5"] == pytest.approx(0.6)
    assert t.loc[("a", "simple"), "uds_judge"] == 3.0  # mean over judged queries only
    assert t.loc[("a", "simple"), "judge_missing"] == 1
    assert t.loc[("a", "overall"), "accuracy@5"] == pytest.approx(0.4)
    assert t.loc[("a", "overall"), "total_s"] == pytest.approx(4.0)
    assert t.loc[("a", "overall"), "rounds"] == pytest.approx(1.0)
    assert t.loc[("a", "overall"), "errors"] == 1 and t.loc[("a", "overall"), "n"] == 3
    assert t.loc[("b", "overall"), "n"] == 1
    assert list(t.loc["a"].index) == ["simple", "negation", "overall"]  # QUERY_TYPES order
    shuffled = aggregate(list(reversed(recs)), ["a", "b"])
    assert shuffled.equals(t)
    assert math.isnan(aggregate([_rec("c", "1", "simple", 0.0, None, 1, 0, 0, 0)]).loc[("c", "simple"), "uds_judge"])


def test_fixture_gold_sets_are_hand_checkable(cat):
    items = {it.id: it for it in make_items(cat)}
    assert items["q0"].gold_product_ids == ("h1", "h2", "h6")
    assert items["q7"].gold_product_ids == ("m1", "m2")
