"""Offline ranking metrics of MACDF's evaluation (section 4.1.3), with binary relevance.

``accuracy_at_k`` follows the paper: the share of the top-K shown products that satisfy the
intent. The denominator is always K, also when a system returns fewer than K products: showing
fewer results is not rewarded (the paper divides by K, reflecting a fixed display of K slots).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def _check(ranked_ids: Sequence[str], k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    if isinstance(ranked_ids, str):
        raise TypeError("ranked_ids must be a sequence of product ids, not a single string")


def _dedup(ranked_ids: Sequence[str], k: int) -> list[str]:
    """Top-k distinct ids in order (a repeated product counts once, at its best rank)."""
    seen: set[str] = set()
    out: list[str] = []
    for pid in ranked_ids:
        pid = str(pid)
        if pid not in seen:
            seen.add(pid)
            out.append(pid)
        if len(out) == k:
            break
    return out


def accuracy_at_k(ranked_ids: Sequence[str], relevant_ids: Iterable[str], k: int = 5) -> float:
    """|top-k ∩ relevant| / k  (denominator k even when fewer than k ids are returned)."""
    _check(ranked_ids, k)
    rel = {str(r) for r in relevant_ids}
    return sum(1 for p in _dedup(ranked_ids, k) if p in rel) / k


def recall_at_k(ranked_ids: Sequence[str], relevant_ids: Iterable[str], k: int = 5) -> float:
    """|top-k ∩ relevant| / |relevant|; 0.0 when there are no relevant ids."""
    _check(ranked_ids, k)
    rel = {str(r) for r in relevant_ids}
    if not rel:
        return 0.0
    return sum(1 for p in _dedup(ranked_ids, k) if p in rel) / len(rel)


def ndcg_at_k(ranked_ids: Sequence[str], relevant_ids: Iterable[str], k: int = 5) -> float:
    """Binary-gain nDCG@k: sum 1/log2(r+1) over relevant ranks, over the ideal min(|rel|, k) ranks."""
    _check(ranked_ids, k)
    rel = {str(r) for r in relevant_ids}
    if not rel:
        return 0.0
    dcg = sum(1.0 / math.log2(r + 2) for r, p in enumerate(_dedup(ranked_ids, k)) if p in rel)
    idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(rel), k)))
    return dcg / idcg
