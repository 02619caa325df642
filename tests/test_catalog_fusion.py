"""Reciprocal rank fusion and filter validation (no index needed)."""

from __future__ import annotations

import math

import pytest

from rl_shop.catalog.filters import FilterError, SearchFilters
from rl_shop.catalog.fusion import reciprocal_rank_fusion


def test_rrf_hand_worked():
    # doc 7: 1/(60+1) + 1/(60+2) = 0.032522; doc 8: 1/(60+2) = 0.016129; doc 9: 1/(60+1) = 0.016393
    fused = reciprocal_rank_fusion([[7, 8], [9, 7]], [1.0, 1.0], 60)
    assert [d for d, _ in fused] == [7, 9, 8]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    # weights scale each list's contribution: with bm25 weight 3, doc 8 (rank 2 there) beats doc 9
    assert [d for d, _ in reciprocal_rank_fusion([[7, 8], [9, 7]], [3.0, 1.0], 60)][:2] == [7, 8]
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([[1]], [1.0, 1.0], 60)


def test_bad_filter_values():
    with pytest.raises(FilterError, match="black"):
        SearchFilters(colour="blak")
    with pytest.raises(FilterError):
        SearchFilters(connectivity=["bluetoth"])
    with pytest.raises(FilterError):
        SearchFilters(max_price=-3)
    with pytest.raises(FilterError):
        SearchFilters(max_price=math.nan)
