"""Hand-built research trajectories and a tiny catalog for the research tests (no model needed)."""

from __future__ import annotations

import json

import pandas as pd

from rl_shop.research.trajectory import (
    AgentStep,
    Feedback,
    InferredIntent,
    Recommendation,
    Report,
    Round,
    ToolCall,
    ToolResult,
    Trajectory,
)


def tiny_catalog() -> pd.DataFrame:
    rows = [
        ("amz-000001", "sony wh-1000 wireless headphones", "sony", 99.0, "headphones"),
        ("amz-000002", "bose quietcomfort headphones", "bose", 149.0, "headphones"),
        ("amz-000003", "jbl tune wired headphones", "jbl", 29.5, "headphones"),
        ("amz-000004", "logitech wireless mouse m185", "logitech", 14.99, "mice"),
    ]
    return pd.DataFrame(
        [
            {
                "product_id": pid,
                "source": "amazon",
                "title": t,
                "description": f"{t} description",
                "category": c,
                "category_path": f"electronics > {c}",
                "department": "electronics",
                "brand": b,
                "price": p,
                "colour": "black",
                "capacity_gb": float("nan"),
                "size_in": float("nan"),
                "connectivity": ["bluetooth"],
                "features": ["noise cancelling"] if "quiet" in t else [],
                "specs": json.dumps({"weight": "250 g"}),
            }
            for pid, t, b, p, c in rows
        ]
    )


def search_step(i: int, query: str, ids: list[str], content: str) -> AgentStep:
    return AgentStep(
        thought=f"search {query}",
        call=ToolCall(id=f"call_{i}", name="product_search", arguments={"query": query}),
        result=ToolResult(call_id=f"call_{i}", name="product_search", ok=True, content=content, product_ids=ids),
    )


SEARCH_TEXT = (
    "[amz-000001] sony wh-1000 wireless headphones | brand: sony | $99.00 | headphones\n"
    "[amz-000003] jbl tune wired headphones | brand: jbl | $29.50 | headphones"
)
VISIT_TEXT = "[amz-000002] bose quietcomfort headphones\nbrand: bose\nprice: $149.00"


def report(md_ids: list[str], summary: str = "Two good headphones under budget.", extra: str = "") -> Report:
    recs = [Recommendation(product_id=p, reason="good sound") for p in md_ids]
    lines = ["# Product research: headphones under $120", "", "## Summary", summary + extra, "", "## Recommendations"]
    lines += [f"{i}. **x** [{p}]\n   good sound" for i, p in enumerate(md_ids, 1)]
    lines += ["", "## Verdict", "Buy the sony."]
    return Report(summary=summary, recommendations=recs, verdict="Buy the sony.", markdown="\n".join(lines))


def two_round_trajectory() -> Trajectory:
    """Round 0: one search, draft citing amz-000001; feedback; round 1: a visit, final report."""
    r0 = Round(
        index=0,
        steps=[search_step(0, "wireless headphones", ["amz-000001", "amz-000003"], SEARCH_TEXT)],
        report=report(["amz-000001"]),
        feedback=Feedback(
            score=0.4,
            accept=False,
            issues=["The report recommends 1 product(s); compare at least 2 from the search results."],
            reflections=["My draft recommends only 1 product(s); I should compare at least 2."],
            critique="The report lacks a comparison.",
            critique_reflection="My draft lacks a comparison.",
        ),
    )
    visit = AgentStep(
        thought="open the bose",
        call=ToolCall(id="call_1", name="visit_product", arguments={"product_id": "amz-000002"}),
        result=ToolResult(
            call_id="call_1", name="visit_product", ok=True, content=VISIT_TEXT, product_ids=["amz-000002"]
        ),
    )
    r1 = Round(
        index=1, steps=[visit], report=report(["amz-000001", "amz-000003"]), feedback=Feedback(score=0.9, accept=True)
    )
    return Trajectory(
        id="traj-hand",
        seed=7,
        persona={"query_type": "simple", "category": "headphones"},
        history=[],
        inferred=InferredIntent(category="headphones", budget=120.0, brands=[], query="headphones under $120"),
        rounds=[r0, r1],
        system_prompt="SYS",
    )


class WordOverlapIndex:
    """TEST DOUBLE for HybridIndex.search: ranks products by shared title words (no embeddings)."""

    def __init__(self, catalog: pd.DataFrame) -> None:
        self.catalog = catalog

    def search(self, query: str, k: int = 10, filters=None, mode: str = "hybrid"):
        from rl_shop.catalog.filters import FilterColumns
        from rl_shop.catalog.index import SearchHit

        q = set(query.lower().split())
        mask = FilterColumns(self.catalog).mask(filters)  # the real filter semantics
        scored = [
            (len(q & set(str(t).split())), pid)
            for i, (pid, t) in enumerate(zip(self.catalog["product_id"], self.catalog["title"]))
            if mask is None or mask[i]
        ]
        scored = sorted([s for s in scored if s[0] > 0], key=lambda s: (-s[0], s[1]))[:k]
        return [SearchHit(pid, float(s), None, None) for s, pid in scored]


def tiny_web_backend():
    from datetime import date

    from rl_shop.agents.types import WebDocument
    from rl_shop.agents.websearch import LocalCorpusBackend

    docs = [
        WebDocument(
            url="rl-shop://guides/headphones",
            title="Headphones buying guide",
            text="Headphones prices range from $29.50 to $149.00. Noise cancelling helps on flights.",
            source="catalog_guide",
            authority=0.8,
            published=date(2016, 3, 25),
        ),
        WebDocument(
            url="rl-shop://guides/mice",
            title="Mice buying guide",
            text="Wireless mice cost about $15.",
            source="catalog_guide",
            authority=0.8,
            published=date(2016, 3, 25),
        ),
    ]
    return LocalCorpusBackend(docs)
