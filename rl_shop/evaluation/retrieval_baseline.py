"""The retrieval-ranking baseline of MACDF: hybrid search on the raw query text, nothing else.

No LLM, no parsed filters: the query goes straight into the index and the top-k is scored
against the benchmark's gold set. This is the reference point the agentic system must beat on
negation and multi-constraint queries. Product Q&A and comparison are scored on their target
products, general Q&A on the implied gold products (both are the benchmark's gold_product_ids).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import pandas as pd

from rl_shop.evaluation.metrics import accuracy_at_k, ndcg_at_k, recall_at_k
from rl_shop.sim.benchmark import BenchmarkItem
from rl_shop.sim.slots import QUERY_TYPES

METRIC_COLUMNS: tuple[str, ...] = ("accuracy@k", "ndcg@k", "recall@k", "max_accuracy@k", "n")


class SearchIndex(Protocol):
    """What the baseline needs from an index (``rl_shop.catalog.HybridIndex`` satisfies it)."""

    def search(self, query: str, k: int) -> object: ...


def result_ids(results: object) -> list[str]:
    """Product ids from a search result, whatever its shape (ids, (id, score) pairs, hits, frame)."""
    if results is None:
        return []
    if isinstance(results, pd.DataFrame):
        if "product_id" not in results.columns:
            raise ValueError("search returned a DataFrame without a product_id column")
        return [str(x) for x in results["product_id"]]
    if not isinstance(results, Iterable):
        raise TypeError(f"search returned {type(results).__name__}, not an iterable of hits")
    out: list[str] = []
    for hit in results:
        if isinstance(hit, str):
            out.append(hit)
        elif isinstance(hit, dict):
            out.append(str(hit["product_id"]))
        elif hasattr(hit, "product_id"):
            out.append(str(hit.product_id))
        elif isinstance(hit, (tuple, list)) and hit:
            out.append(str(hit[0]))
        else:
            raise ValueError(f"cannot read a product id from search hit {hit!r}")
    return out


def evaluate(
    benchmark: Sequence[BenchmarkItem],
    catalog: pd.DataFrame | None,
    index: SearchIndex,
    k: int = 5,
) -> pd.DataFrame:
    """Per-type Accuracy@k, nDCG@k, Recall@k, the Accuracy@k ceiling and n, plus an 'overall' row.

    Rows are means over queries. ``max_accuracy@k`` is min(|gold|, k) / k averaged: product Q&A
    has one target, so no system can exceed 0.2 Accuracy@5 there; read scores against it.

    ``catalog`` is accepted for symmetry with agentic evaluators (and to check ids); the
    baseline itself only uses ``index``.
    """
    if not benchmark:
        raise ValueError("benchmark is empty; load one with rl_shop.sim.benchmark.load_benchmark()")
    known = set(map(str, catalog["product_id"])) if catalog is not None else None
    queries = [item.query for item in benchmark]
    if hasattr(index, "search_many"):  # one batched embedding call instead of one per query
        all_results = index.search_many(queries, k=k)
    else:
        all_results = [index.search(q, k=k) for q in queries]
    rows = []
    for item, results in zip(benchmark, all_results):
        ranked = result_ids(results)
        if known is not None:
            unknown = [p for p in ranked if p not in known]
            if unknown:
                raise ValueError(f"index returned ids {unknown[:3]} not in the catalog; rebuild the index")
        gold = item.gold_product_ids
        rows.append(
            {
                "query_type": item.query_type,
                "accuracy@k": accuracy_at_k(ranked, gold, k),
                "ndcg@k": ndcg_at_k(ranked, gold, k),
                "recall@k": recall_at_k(ranked, gold, k),
                # the best any system could score: a gold set smaller than k caps Accuracy@k
                "max_accuracy@k": min(len(gold), k) / k,
            }
        )
    per_query = pd.DataFrame(rows)
    metrics = list(METRIC_COLUMNS[:-1])
    table = per_query.groupby("query_type")[metrics].mean()
    table["n"] = per_query.groupby("query_type").size()
    order = [t for t in QUERY_TYPES if t in table.index]
    table = table.loc[order]
    overall = per_query[metrics].mean()
    table.loc["overall"] = [*overall.to_numpy(), len(per_query)]
    table["n"] = table["n"].astype(int)
    table.columns = [c.replace("@k", f"@{k}") if c != "n" else c for c in table.columns]
    table.index.name = "query_type"
    return table


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub markdown table (no ``tabulate`` dependency)."""
    cols = list(table.columns)
    lines = ["| " + " | ".join([table.index.name or "", *cols]) + " |", "|" + "---|" * (len(cols) + 1)]
    for name, row in table.iterrows():
        cells = [str(int(v)) if c == "n" else f"{float(v):.{digits}f}" for c, v in zip(cols, row)]
        lines.append("| " + " | ".join([str(name), *cells]) + " |")
    return "\n".join(lines)


__all__ = ["SearchIndex", "evaluate", "result_ids", "to_markdown"]
