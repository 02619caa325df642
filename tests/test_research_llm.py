"""The Research Agent and User Agent with the real embedded model: a handful of constrained calls."""

from __future__ import annotations

import pytest
from research_fixtures import WordOverlapIndex, tiny_catalog, tiny_web_backend

from rl_shop.research.research_agent import ResearchAgent, ResearchAgentConfig
from rl_shop.research.tools import ResearchTools
from rl_shop.research.trajectory import TOOL_NAMES
from rl_shop.research.user_agent import UserAgent, UserAgentConfig

pytestmark = [pytest.mark.slow, pytest.mark.llm, pytest.mark.filterwarnings("error::RuntimeWarning")]


@pytest.fixture(scope="module")
def llm():
    from rl_shop.llm import load_llm_config, make_llm

    return make_llm(load_llm_config("embedded", ["cache.enabled=false"]))


def test_embedded_agent_step_is_a_well_formed_executed_tool_call(llm) -> None:
    cat = tiny_catalog()
    agent = ResearchAgent(
        llm,
        ResearchTools(cat, WordOverlapIndex(cat), tiny_web_backend()),
        ResearchAgentConfig(min_steps=1, step_max_tokens=40, thought_max_chars=40),
    )
    step = agent.step("wireless headphones under $120", [], [], n_in_round=0, seed=0)
    assert step is not None  # finish is not offered before min_steps
    assert step.call.name in ("product_search", "web_search") and not step.call.malformed
    assert step.call.name in TOOL_NAMES and step.result.ok
    assert 3 <= len(next(iter(step.call.arguments.values()))) <= 60


def test_embedded_user_agent_picks_category_from_history(llm) -> None:
    events = [
        {"t": float(i), "kind": k, "product_id": p, "session": 0, "noise": False}
        for i, (k, p) in enumerate(
            [("view", "amz-000001"), ("click", "amz-000001"), ("add_to_cart", "amz-000002"), ("view", "amz-000004")]
        )
    ]
    inf = UserAgent(llm, tiny_catalog(), UserAgentConfig(max_tokens=60, max_events=4)).infer(events, seed=0)
    assert inf.category in ("headphones", "mice")  # an enum of the history's categories
    assert inf.brands == [] or set(inf.brands) <= {"sony", "bose", "logitech"}
    assert inf.category.lower() in inf.query.lower()  # the model's query, or the template when it failed


def test_embedded_agent_step_with_reflect_offered_compiles_and_decodes(llm) -> None:
    from rl_shop.research.trajectory import AgentStep, ToolCall, ToolResult

    cat = tiny_catalog()
    agent = ResearchAgent(
        llm,
        ResearchTools(cat, WordOverlapIndex(cat), tiny_web_backend()),
        ResearchAgentConfig(
            min_steps=1, step_max_tokens=40, thought_max_chars=40, reflect_max_tokens=60, reflection_max_chars=120
        ),
    )
    prior = [
        AgentStep(
            thought="find candidates",
            call=ToolCall(id="call_0", name="product_search", arguments={"query": "wireless headphones"}),
            result=ToolResult(
                call_id="call_0",
                name="product_search",
                ok=True,
                product_ids=["amz-000001"],
                content="[amz-000001] sony wh-1000 wireless headphones | brand: sony | $99.00",
            ),
        )
    ]
    step = agent.step("wireless headphones under $120", prior, [], n_in_round=1, seed=0, allow_reflect=True)
    # the model may finish (None), reflect or call a tool; whatever it picks is well-formed
    if step is not None:
        assert not step.call.malformed, step.call.errors
        assert step.call.name in (*TOOL_NAMES, "reflect")
        if step.call.name == "reflect":
            assert 20 <= len(step.thought) <= 120 and step.result.content == ""
        else:
            assert step.result.ok
