"""The self-contained agent modules wired together: safety -> Planner -> executor (WebSearch on the
shipped corpus, a stand-in product search over hand-made candidates) -> Decider -> output screen."""

from __future__ import annotations

from datetime import date

import pytest

from rl_shop.agents.decider import Decider
from rl_shop.agents.executor import DAGExecutor
from rl_shop.agents.memory import Memory
from rl_shop.agents.planner import Planner
from rl_shop.agents.safety import SafetyReview
from rl_shop.agents.types import Candidate, IntentSpec, TaskType, WebSearchResult
from rl_shop.agents.websearch import WebSearchAgent
from rl_shop.paths import DATA_DIR

PRODUCTS = [
    Candidate(
        product_id="p1",
        title="Sony bluetooth wireless headphones",
        brand="sony",
        price=79.0,
        category="headphones",
        attributes={"connectivity": ["bluetooth"]},
    ),
    Candidate(
        product_id="p2",
        title="Sony wired headphones",
        brand="sony",
        price=19.0,
        category="headphones",
        attributes={"connectivity": ["3.5mm"]},
    ),
    Candidate(
        product_id="p3",
        title="Beats bluetooth headphones",
        brand="beats",
        price=149.0,
        category="headphones",
        attributes={"connectivity": ["bluetooth"]},
    ),
    Candidate(
        product_id="p4",
        title="JBL bluetooth headphones",
        brand="jbl",
        price=49.0,
        category="headphones",
        attributes={"connectivity": ["bluetooth"]},
    ),
]


@pytest.mark.skipif(not (DATA_DIR / "web_corpus" / "documents.jsonl").is_file(), reason="web corpus not built")
def test_reasoning_request_end_to_end():
    text = "ignore the previous results, I need bluetooth headphones for the gym under $100"
    safety = SafetyReview()
    assert safety.screen_input(text).allowed
    intent = IntentSpec(
        query=text,
        query_type="reasoning",
        category="headphones",
        budget=100,
        required_attributes={"connectivity": "bluetooth"},
        excluded_brands=["jbl"],
    )
    mem = Memory()
    plan = Planner(memory=mem).plan(intent, session_id="s1")
    assert plan.by_type(TaskType.WEB_SEARCH)  # reasoning gets a buying-guide search
    web = WebSearchAgent.from_config()

    def product_search(task, inputs):
        return [p.model_dump() for p in PRODUCTS]

    def web_search(task, inputs):
        return web.run(task.query, intent, purpose=task.params.get("purpose", "default"), today=date(2024, 1, 1))

    def decide(task, inputs):
        cands = [c for out in inputs.values() if isinstance(out, list) for c in out]
        webres = next((o for o in inputs.values() if isinstance(o, WebSearchResult)), None)
        return Decider().decide(intent, cands, web=webres)

    report = DAGExecutor(
        {TaskType.PRODUCT_SEARCH: product_search, TaskType.WEB_SEARCH: web_search, TaskType.DECISION: decide},
        memory=mem,
    ).run_sync(plan, "s1")
    assert report.ok
    decision = report.outputs[plan.by_type(TaskType.DECISION)[0].task_id]
    assert [r.product_id for r in decision.recommendations] == ["p1"]
    assert set(decision.excluded) == {"p2", "p3", "p4"}
    cleaned, verdict = safety.filter_decision(decision, intent, PRODUCTS)
    assert verdict.allowed and cleaned.recommendations == decision.recommendations
    dumped = mem.dump("s1")
    assert {s["status"] for s in dumped["task_states"]} == {"done"}
    assert {o["agent"] for o in dumped["agent_outputs"]} == {"ProductSearch", "WebSearch", "Decision"}


@pytest.mark.skipif(not (DATA_DIR / "catalog.parquet").is_file(), reason="catalog not built")
def test_real_catalog_rows_feed_planner_and_decider():
    from rl_shop.agents.planner import PlanConflict, category_min_prices
    from rl_shop.catalog import load_catalog

    catalog = load_catalog()
    mins = category_min_prices(catalog)
    headphones = catalog[catalog["category"] == "headphones"]
    cheapest = float(headphones["price"].min())
    assert mins["headphones"] == cheapest
    too_low = IntentSpec(query="headphones", category="headphones", budget=cheapest / 2)
    with pytest.raises(PlanConflict, match="budget_below_category_minimum"):
        Planner(category_min_price=mins).plan(too_low, replan=False)
    rows = headphones.head(60).to_dict("records")
    intent = IntentSpec(query="wireless headphones", category="headphones", budget=50)
    decision = Decider().decide(intent, rows)
    for rec in decision.recommendations:
        assert rec.price is not None and rec.price <= 50
    matrix = Decider().evaluate(intent, rows)
    assert len(matrix.candidates) + len(matrix.excluded) == len({r["product_id"] for r in rows})
    assert all(c.price <= 50 for c in matrix.candidates)
    assert all("budget" in why or "price" in why for why in matrix.excluded.values())
