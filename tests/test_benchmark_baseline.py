"""Retrieval-ranking baseline scoring, with a lookup-table index so numbers are hand-checkable."""

from __future__ import annotations

import pandas as pd
import pytest
from test_sim_helpers import tiny_catalog

from rl_shop.evaluation.retrieval_baseline import evaluate, result_ids, to_markdown
from rl_shop.sim.benchmark import BenchmarkItem
from rl_shop.sim.slots import Intent


class LookupIndex:
    """Test double: returns a fixed ranking per query text (no retrieval model involved)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []

    def search(self, query: str, k: int, filters=None):
        self.calls.append((query, k))
        return [(pid, 1.0 / (r + 1)) for r, pid in enumerate(self.table[query][:k])]


def _item(i: int, qtype: str, query: str, gold: tuple[str, ...]) -> BenchmarkItem:
    return BenchmarkItem(f"q{i}", query, qtype, Intent(query_type=qtype, category="headphones"), gold)


def test_per_type_table_hand_computed():
    bench = [
        _item(0, "simple", "sony headphones", ("h1", "h2", "h6")),
        _item(1, "simple", "koss headphones", ("h4",)),
        _item(2, "negation", "headphones but not sony", ("h3", "h4", "h5", "h7")),
    ]
    index = LookupIndex(
        {
            "sony headphones": ["h1", "h2", "h3", "h6", "h7"],  # 3/5 relevant
            "koss headphones": ["h4"],  # 1/5 (fewer than k returned)
            "headphones but not sony": ["h1", "h2", "h6", "h3", "h4"],  # 2/5
        }
    )
    table = evaluate(bench, tiny_catalog(), index, k=5)
    assert list(table.index) == ["simple", "negation", "overall"]
    assert table.loc["simple", "accuracy@5"] == pytest.approx((0.6 + 0.2) / 2)
    assert table.loc["negation", "accuracy@5"] == pytest.approx(0.4)
    assert table.loc["overall", "accuracy@5"] == pytest.approx((0.6 + 0.2 + 0.4) / 3)
    assert table.loc["simple", "recall@5"] == pytest.approx((1.0 + 1.0) / 2)
    assert table.loc["negation", "recall@5"] == pytest.approx(0.5)
    assert table.loc["simple", "n"] == 2 and table.loc["overall", "n"] == 3
    assert table.loc["simple", "max_accuracy@5"] == pytest.approx((3 / 5 + 1 / 5) / 2)
    assert table.loc["negation", "max_accuracy@5"] == pytest.approx(4 / 5)
    assert index.calls[0] == ("sony headphones", 5)
    md = to_markdown(table)
    assert md.splitlines()[0].startswith("| query_type | accuracy@5") and "| negation | 0.400 |" in md


def test_result_id_shapes_and_errors():
    assert result_ids(["a", "b"]) == ["a", "b"]
    assert result_ids([("a", 0.3)]) == ["a"]
    assert result_ids([{"product_id": 7}]) == ["7"]
    assert result_ids(pd.DataFrame({"product_id": ["x"], "score": [1.0]})) == ["x"]
    with pytest.raises(ValueError, match="product id"):
        result_ids([3.5])
    with pytest.raises(ValueError, match="empty"):
        evaluate([], None, LookupIndex({}))
    bench = [_item(0, "simple", "q", ("h1",))]
    with pytest.raises(ValueError, match="not in the catalog"):
        evaluate(bench, tiny_catalog(), LookupIndex({"q": ["zz"]}))
