"""Planner: Hard Constraints (validator), PlanConflict + re-planning, Soft-Constraint score,
LLM proposal repair, reflection knowledge base, storage in Memory."""

from __future__ import annotations

from types import SimpleNamespace

import networkx as nx
import pytest

from rl_shop.agents.config import AgentConfigError
from rl_shop.agents.memory import Memory
from rl_shop.agents.planner import (
    InvalidPlan,
    PlanConflict,
    Planner,
    PlannerConfig,
    PlanProposal,
    SoftConstraintWeights,
    check_plan,
    find_conflicts,
    score_plan,
    validate_plan,
)
from rl_shop.agents.types import IntentSpec, Plan, Task, TaskType

PS, WS, TC, DE = TaskType.PRODUCT_SEARCH, TaskType.WEB_SEARCH, TaskType.TOOL_CALL, TaskType.DECISION


def _plan(*specs):
    return Plan(tasks=[Task(task_id=i, type=t, query=q, depends_on=list(d)) for i, t, q, d in specs])


def _check_invariants(plan: Plan) -> None:
    g = plan.graph()
    assert nx.is_directed_acyclic_graph(g)
    decisions = plan.by_type(DE)
    assert len(decisions) == 1
    assert [n for n in g.nodes if g.out_degree(n) == 0] == [decisions[0].task_id]


@pytest.mark.parametrize(
    "qt", ["simple", "reasoning", "multi_constraint", "negation", "ambiguous", "product_qa", "comparison", "general_qa"]
)
def test_every_query_type_gives_a_valid_dag(qt):
    intent = IntentSpec(
        query="wireless headphones",
        query_type=qt,
        category="headphones",
        budget=100,
        targets=["sony wh-1000xm4", "bose qc35"] if qt in ("comparison", "product_qa") else [],
    )
    plan = Planner(PlannerConfig()).plan(intent)
    _check_invariants(plan)
    assert validate_plan(plan, intent) == []


def test_comparison_needs_two_product_searches_even_with_one_target():
    intent = IntentSpec(query="is the sony wh-1000xm4 good", query_type="comparison", targets=["sony wh-1000xm4"])
    plan = Planner(PlannerConfig()).plan(intent)
    assert len(plan.by_type(PS)) >= 2
    # the lookup of a named target must not be filtered by the user's brand preferences
    intent2 = IntentSpec(
        query="sony vs bose", query_type="comparison", targets=["sony x", "bose y"], preferred_brands=["sony"]
    )
    plan2 = Planner(PlannerConfig()).plan(intent2)
    bose = [t for t in plan2.by_type(PS) if t.query == "bose y"][0]
    assert "brands" not in bose.params


def test_time_sensitive_question_gets_a_web_search():
    intent = IntentSpec(query="latest iphone price", query_type="simple", time_sensitive=True)
    plan = Planner(PlannerConfig()).plan(intent)
    assert plan.by_type(WS)


def test_validator_catches_each_hard_constraint():
    comparison = IntentSpec(query="a vs b", query_type="comparison", time_sensitive=True)
    one_search = _plan(("t1", PS, "a", []), ("t2", DE, "", ["t1"]))
    errors = validate_plan(one_search, comparison)
    assert any("comparison needs >= 2" in e for e in errors)
    assert any("time-sensitive" in e for e in errors)
    simple = IntentSpec(query="x")
    assert any("exactly one Decision" in e for e in validate_plan(_plan(("t1", PS, "a", [])), simple))
    two_dec = _plan(("t1", PS, "a", []), ("d1", DE, "", ["t1"]), ("d2", DE, "", ["t1"]))
    assert any("exactly one Decision" in e for e in validate_plan(two_dec, simple))
    leaf_missing = _plan(("t1", PS, "a", []), ("t2", WS, "b", []), ("d", DE, "", ["t1"]))
    assert any("missing ['t2']" in e for e in validate_plan(leaf_missing, simple))
    cyclic = _plan(("t1", PS, "a", ["t2"]), ("t2", PS, "b", ["t1"]), ("d", DE, "", ["t1", "t2"]))
    assert any("cycle" in e for e in validate_plan(cyclic, simple))
    unknown = _plan(("t1", PS, "a", ["zz"]), ("d", DE, "", ["t1"]))
    assert any("unknown task 'zz'" in e for e in validate_plan(unknown, simple))
    with pytest.raises(InvalidPlan):
        check_plan(cyclic, simple)


def test_conflicts_detected_and_replanned():
    intent = IntentSpec(
        query="cheap tv", category="tvs", budget=20, preferred_brands=["sony", "lg"], excluded_brands=["sony"]
    )
    kinds = {k for k, _ in find_conflicts(intent, {"tvs": 99.0})}
    assert kinds == {"brand_preferred_and_excluded", "budget_below_category_minimum"}
    planner = Planner(PlannerConfig(), category_min_price={"tvs": 99.0})
    with pytest.raises(PlanConflict) as info:
        planner.plan(intent, replan=False)
    assert "sony" in str(info.value)
    plan = planner.plan(intent)  # re-planning relaxes: exclusion wins, impossible budget dropped
    search = plan.by_type(PS)[0]
    assert search.params.get("brands") == ["lg"]
    assert search.params.get("exclude_brands") == ["sony"]
    assert "max_price" not in search.params
    assert any("relaxed" in n for n in plan.notes)


def test_max_replans_zero_propagates_conflict():
    intent = IntentSpec(query="x", budget=10, budget_min=50)
    with pytest.raises(PlanConflict, match="budget_range_inverted"):
        Planner(PlannerConfig(max_replans=0)).plan(intent)


def test_soft_constraint_score_hand_worked():
    intent = IntentSpec(query="tv", budget=100)
    plan = Plan(
        tasks=[
            Task(task_id="t1", type=PS, query="tv", params={"max_price": 100}, priority=0.0),
            Task(task_id="t2", type=PS, query="TV", params={}, priority=1.0),
            Task(task_id="t3", type=DE, depends_on=["t1", "t2"]),
        ]
    )
    w = SoftConstraintWeights(
        call_penalty=0.1,
        depth_penalty=0.2,
        duplicate_query_penalty=0.5,
        price_priority_penalty=0.3,
        coverage_reward=1.0,
    )
    # coverage 1/1 (max_price expressed) = 1.0; calls 2 -> -0.2; depth 1 -> -0.2;
    # duplicate "tv"/"TV" -> -0.5; t1 is the price task but not top priority -> -0.3  => -0.2
    assert score_plan(plan, intent, w) == pytest.approx(-0.2)


def test_merged_calls_preferred_when_coverage_equal():
    intent = IntentSpec(query="usb flash drive", query_type="simple", category="usb flash drives")
    planner = Planner(PlannerConfig())
    cands = planner.symbolic_candidates(intent)
    assert len(cands) == 2
    chosen = planner.plan(intent)
    assert len(chosen.by_type(PS)) == 1  # one merged call beats the split plan on the call penalty


class _ScriptedLLM:
    """Test double for the structured-output interface (returns a fixed proposal)."""

    def __init__(self, value, used_fallback=False):
        self.value, self.used_fallback, self.calls = value, used_fallback, 0

    def structured(self, messages, schema, **kw):
        self.calls += 1
        assert schema is PlanProposal
        return SimpleNamespace(value=self.value, used_fallback=self.used_fallback)


def test_llm_proposal_is_repaired():
    # The proposal lacks a Decision and has a dependency on a non-existent task.
    proposal = PlanProposal.model_validate(
        {
            "tasks": [
                {"id": "a", "type": "ProductSearch", "query": "sony headphones", "depends_on": ["ghost"]},
                {"id": "b", "type": "WebSearch", "query": "sony headphones reviews", "depends_on": []},
            ]
        }
    )
    intent = IntentSpec(query="sony headphones", query_type="reasoning")
    llm = _ScriptedLLM(proposal)
    planner = Planner(
        PlannerConfig(soft_constraints=SoftConstraintWeights(call_penalty=0.0, depth_penalty=0.0, coverage_reward=0.0)),
        llm=llm,
    )
    repaired = planner.repair(planner._from_proposal(proposal, intent), intent)
    assert repaired is not None and repaired.source == "llm_repaired"
    _check_invariants(repaired)
    assert repaired.task("a").depends_on == []
    assert llm.calls == 0
    planner.plan(intent)
    assert llm.calls == 1


def test_llm_cyclic_or_fallback_proposal_replaced_by_symbolic():
    cyclic = PlanProposal.model_validate(
        {
            "tasks": [
                {"id": "a", "type": "ProductSearch", "query": "x", "depends_on": ["b"]},
                {"id": "b", "type": "ProductSearch", "query": "y", "depends_on": ["a"]},
                {"id": "d", "type": "Decision", "depends_on": ["a", "b"]},
            ]
        }
    )
    intent = IntentSpec(query="x", query_type="simple")
    plan = Planner(PlannerConfig(), llm=_ScriptedLLM(cyclic)).plan(intent)
    assert plan.source == "symbolic"
    _check_invariants(plan)
    plan2 = Planner(PlannerConfig(), llm=_ScriptedLLM(None, used_fallback=True)).plan(intent)
    assert plan2.source == "symbolic"


def test_reflection_kb_adds_remedies_and_graph_is_stored():
    mem = Memory()
    planner = Planner(PlannerConfig(), memory=mem)
    intent = IntentSpec(query="best running shoes", query_type="simple")
    before = planner.plan(intent, session_id="s0")
    assert not before.by_type(WS)
    after = planner.replan(intent, reason="low relevance", session_id="s1", score=0.2, remedy="add_web_search")
    assert after.by_type(WS)
    assert any("add_web_search" in n for n in after.notes)
    stored = mem.load_graph("s1")
    assert set(stored.nodes) == {t.task_id for t in after.tasks}
    assert mem.get_context("s1", "Planner", "plan")["tasks"][0]["task_id"] == after.tasks[0].task_id
    # a failure without a named remedy uses the per-query-type default (simple -> add_product_rewrite)
    mem.record_failure("negation", "headphones not sony", "low satisfaction")
    neg = Planner(
        PlannerConfig.model_validate({"reflection": {"default_remedy": {"negation": "add_product_rewrite"}}}),
        memory=mem,
    ).plan(
        IntentSpec(query="headphones not sony", query_type="negation", category="headphones", excluded_brands=["sony"])
    )
    assert len(neg.by_type(PS)) == 2


def test_shipped_config_and_bad_config():
    assert Planner().config.min_comparison_targets == 2
    with pytest.raises(AgentConfigError, match="soft_constraints.call_penalty"):
        Planner({"soft_constraints": {"call_penalty": "lots"}})
    with pytest.raises(ValueError, match="remedy"):
        Planner(PlannerConfig(), memory=Memory()).replan(IntentSpec(query="x"), "bad", remedy="pray")


def test_simulator_intent_is_adapted():
    slots = pytest.importorskip("rl_shop.sim.slots")
    intent = slots.Intent(
        query_type="multi_constraint",
        category="usb flash drives",
        budget=30.0,
        preferred_brands=("sandisk",),
        min_capacity_gb=64.0,
        connectivity=("usb",),
        min_size_in=13.0,
        max_size_in=15.0,
    )
    spec = IntentSpec.from_intent(intent, query="sandisk usb drive 64gb under $30")
    assert spec.required_attributes == {
        "capacity_gb": 64.0,
        "connectivity": ["usb"],
        "size_in": {"min": 13.0, "max": 15.0},
    }
    assert spec.preferred_brands == ["sandisk"] and spec.budget == 30.0
    plan = Planner(PlannerConfig()).plan(spec)
    assert plan.by_type(PS)[0].params["attributes"]["capacity_gb"] == 64.0
    assert Planner._rewrite(spec) == "sandisk 64 GB usb usb flash drives"
