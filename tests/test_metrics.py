"""Accuracy@K, nDCG@K and Recall@K on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from rl_shop.evaluation.metrics import accuracy_at_k, ndcg_at_k, recall_at_k


def test_accuracy_paper_definition():
    # 3 of the top 5 satisfy the intent -> 3/5
    assert accuracy_at_k(["a", "b", "c", "d", "e", "f"], {"a", "c", "e", "f"}, k=5) == pytest.approx(0.6)
    # items beyond k never count
    assert accuracy_at_k(["x", "y", "z", "w", "v", "a"], {"a"}, k=5) == 0.0


def test_accuracy_divides_by_k_when_fewer_returned():
    # 2 relevant out of only 2 returned: 2/5, not 2/2
    assert accuracy_at_k(["a", "b"], {"a", "b"}, k=5) == pytest.approx(0.4)
    assert accuracy_at_k([], {"a"}, k=5) == 0.0


def test_duplicates_count_once():
    assert accuracy_at_k(["a", "a", "a", "b", "c"], {"a"}, k=3) == pytest.approx(1 / 3)


def test_recall_hand_computed():
    assert recall_at_k(["a", "x", "b"], {"a", "b", "c", "d"}, k=3) == pytest.approx(0.5)
    assert recall_at_k(["a"], set(), k=5) == 0.0


def test_ndcg_hand_computed():
    # relevant at ranks 1 and 3, two relevant overall:
    # DCG = 1/log2(2) + 1/log2(4) = 1.5 ; IDCG = 1 + 1/log2(3)
    expected = 1.5 / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["a", "x", "b", "y", "z"], {"a", "b"}, k=5) == pytest.approx(expected)
    assert ndcg_at_k(["a", "b"], {"a", "b"}, k=5) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "a"], {"a"}, k=1) == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="k must be"):
        accuracy_at_k(["a"], {"a"}, k=0)
    with pytest.raises(TypeError, match="sequence"):
        accuracy_at_k("abc", {"a"}, k=3)
