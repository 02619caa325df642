"""Reciprocal rank fusion (Cormack et al., 2009) of ranked candidate lists."""

from __future__ import annotations

from collections.abc import Sequence


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], weights: Sequence[float], k: float
) -> list[tuple[int, float]]:
    """Fuses ranked lists of document indices into ``[(doc, score)]``, best first.

    ``score(d) = sum_i weights[i] / (k + rank_i(d))`` with 1-based ranks; a list that does not
    contain ``d`` contributes nothing. Ties break by the better best rank, then by document index,
    so the output is deterministic. RRF needs no score calibration between BM25 and cosine
    similarities, which live on unrelated scales.
    """
    if len(rankings) != len(weights):
        raise ValueError(f"got {len(rankings)} rankings but {len(weights)} weights")
    if k < 0:
        raise ValueError(f"rrf k must be non-negative, got {k}")
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
            best[doc] = min(best.get(doc, rank), rank)
    return sorted(scores.items(), key=lambda item: (-item[1], best[item[0]], item[0]))
