"""The synthesis pipeline end to end with a scripted test double (no model), plus tools and scoring."""

from __future__ import annotations

import json

import pytest
from research_fixtures import WordOverlapIndex, tiny_catalog, tiny_web_backend
from test_llm_scripted import ScriptedLLM

from rl_shop.research import pipeline
from rl_shop.research.filtering import filter_trajectory
from rl_shop.research.internalize import internalize
from rl_shop.research.pipeline import PersonaConfig, ResearchWorld, synthesize
from rl_shop.research.research_agent import ResearchAgentConfig, action_schema
from rl_shop.research.sft_data import SFTDataError, load_sft_dataset, read_sft_jsonl, write_sft_jsonl
from rl_shop.research.supervisor import SupervisorConfig
from rl_shop.research.tools import ResearchTools
from rl_shop.research.trajectory import InferredIntent, ToolCall, Trajectory
from rl_shop.research.user_agent import UserAgentConfig, score_intent
from rl_shop.sim import Intent


@pytest.fixture()
def world() -> ResearchWorld:
    cat = tiny_catalog()
    return ResearchWorld(cat, WordOverlapIndex(cat), ResearchTools(cat, WordOverlapIndex(cat), tiny_web_backend()))


PERSONA = Intent(query_type="simple", category="headphones", budget=120.0, preferred_brands=("sony",))
EVENTS = [
    {"t": 1.0, "kind": "view", "product_id": "amz-000001", "session": 0, "noise": False},
    {"t": 2.0, "kind": "click", "product_id": "amz-000001", "session": 0, "noise": False},
    {"t": 3.0, "kind": "view", "product_id": "amz-000004", "session": 0, "noise": True},
]
REPLIES = [
    # budget options: the headphones events cost $99 -> nice_ceil(99 * 1.1) = 150 (or null)
    '{"category":"headphones","budget":150.0,"brands":["sony"],"query":"wireless headphones under $150, sony"}',
    '{"thought":"search","tool":"product_search","argument":"wireless headphones"}',
    '{"thought":"open it","tool":"visit_product","argument":"amz-000001"}',
    '{"summary":"The sony is a good pick","recommendations":[{"product_id":"amz-000001","reason":"sony, in budget"}],"verdict":"Buy the sony now."}',
    '{"flaw":"The report compares only one product.","rating":2}',
    '{"thought":"guide","tool":"web_search","argument":"headphones buying guide"}',
    '{"thought":"done","tool":"finish","argument":""}',
    '{"summary":"The sony costs $99.00 and the jbl is cheaper at $29.50 for wired use",'
    '"recommendations":[{"product_id":"amz-000001","reason":"sony, wireless"},'
    '{"product_id":"amz-000003","reason":"cheaper than the sony"}],"verdict":"Buy the sony."}',
    '{"flaw":"Nothing important.","rating":5}',
]


def run_scripted(world: ResearchWorld, monkeypatch: pytest.MonkeyPatch) -> tuple[Trajectory, ScriptedLLM]:
    monkeypatch.setattr(pipeline, "sample_persona", lambda w, seed, cfg: (PERSONA, EVENTS))
    llm = ScriptedLLM(REPLIES)
    traj = synthesize(
        world,
        llm,
        3,
        persona_cfg=PersonaConfig(),
        user_cfg=UserAgentConfig(),
        agent_cfg=ResearchAgentConfig(max_steps=2, min_steps=1, seed_first_search=False),
        sup_cfg=SupervisorConfig(),
        max_rounds=3,
    )
    return traj, llm


def test_scripted_synthesis_two_rounds_then_accept(world, monkeypatch) -> None:
    traj, llm = run_scripted(world, monkeypatch)
    assert len(llm.calls) == len(REPLIES)  # no retries: every scripted answer was valid
    assert [len(r.steps) for r in traj.rounds] == [2, 1]  # round 1 finished after one step
    r0, r1 = traj.rounds
    assert not r0.feedback.accept and r1.feedback.accept  # stop on accept, before max_rounds=3
    # round 0 fails: 1 recommendation (weight 1, blocking), no web use (0.5), a 5-word summary (0.5);
    # checks 1 - 2/6, rating 2 -> (2-1)/4; score = 0.7 * 2/3 + 0.3 * 0.25
    assert len(r0.feedback.issues) == 3 and "recommends 1 product" in r0.feedback.issues[0]
    assert r0.feedback.score == pytest.approx(0.7 * (2 / 3) + 0.3 * 0.25, abs=1e-4)
    assert r1.feedback.score == pytest.approx(1.0)
    assert "[amz-000003]" in r1.report.markdown and "jbl tune wired headphones" in r1.report.markdown
    assert llm.calls[0]["json_schema"]["properties"]["budget"] == {"enum": [150.0, None]}
    # persona budget 120, inferred 150: 1 - 30/120 = 0.75
    assert traj.intent_score == {
        "category": 1.0,
        "brand": 1.0,
        "budget": 0.75,
        "mean": pytest.approx(2.75 / 3, abs=1e-4),
    }
    # the visit_product grammar offered only ids that the search had shown
    schema = llm.calls[2]["json_schema"]
    visit = [o for o in schema["anyOf"] if o["properties"]["tool"] == {"const": "visit_product"}][0]
    # ("wireless headphones": sony shares 2 title words, the other headphones 1 each, ties by id; the
    # wireless mouse shares one too but is not the requested type: the search keeps to the request)
    assert visit["properties"]["argument"]["enum"] == ["amz-000001", "amz-000002", "amz-000003"]
    assert filter_trajectory(traj).keep


def test_scripted_trajectory_to_sft_jsonl_roundtrip(world, monkeypatch, tmp_path) -> None:
    traj, _ = run_scripted(world, monkeypatch)
    again = Trajectory.model_validate_json(traj.model_dump_json())
    assert again == traj
    msgs = internalize(traj)
    reflection = [m for m in msgs if m["role"] == "assistant" and m["content"].startswith('{"thought":"Reflection:')]
    thought = json.loads(reflection[0]["content"])["thought"]
    assert len(reflection) == 1 and json.loads(reflection[0]["content"])["tool"] == "reflect"
    # 4 failed checks + the critique exceed reflection_max_chars=240: points are kept in order while they fit
    assert "My draft recommends only 1 product(s)" in thought and len(thought) <= 240
    assert thought.endswith("I will continue the research to fix this.")
    path = tmp_path / "sft.jsonl"
    write_sft_jsonl([{"id": traj.id, "messages": msgs, "tools": ResearchTools.openai_tool_specs()}], path)
    assert read_sft_jsonl(path)[0]["messages"] == msgs
    native = load_sft_dataset(path)
    assert native[0]["messages"][2]["tool_calls"][0]["function"]["name"] == "product_search"
    assert [t["function"]["name"] for t in json.loads(native[0]["tools"])] == [
        "product_search",
        "visit_product",
        "web_search",
        "web_visit",
    ]
    text = load_sft_dataset(path, text_tool_format=True)
    assert {m["role"] for m in text[0]["messages"]} == {"system", "user", "assistant"}


def test_completion_only_rows_put_the_last_assistant_turn_alone_in_the_completion(tmp_path) -> None:
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
    write_sft_jsonl([{"id": "x", "messages": msgs, "tools": []}], tmp_path / "ok.jsonl")
    row = load_sft_dataset(tmp_path / "ok.jsonl", text_tool_format=True, completion_only=True)[0]
    assert row["prompt"] == msgs[:2] and row["completion"] == msgs[2:] and "messages" not in row
    write_sft_jsonl([{"id": "y", "messages": msgs[:2], "tools": []}], tmp_path / "bad.jsonl")
    with pytest.raises(SFTDataError, match="bad.jsonl:1: completion_only needs"):
        load_sft_dataset(tmp_path / "bad.jsonl", completion_only=True)


def test_sft_data_errors(tmp_path) -> None:
    with pytest.raises(SFTDataError, match="synthesize.py"):
        read_sft_jsonl(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(SFTDataError, match="no trajectory passed the filter"):
        read_sft_jsonl(tmp_path / "empty.jsonl")
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(SFTDataError, match="bad.jsonl:1"):
        read_sft_jsonl(tmp_path / "bad.jsonl")


def test_tools_ok_and_failures(world) -> None:
    t = world.tools
    res = t.execute(ToolCall(id="a", name="product_search", arguments={"query": "wireless headphones"}))
    assert res.ok and res.product_ids[0] == "amz-000001" and "$99.00" in res.content
    rec = t.execute(ToolCall(id="b", name="visit_product", arguments={"product_id": "amz-000002"}))
    assert rec.ok and "features: noise cancelling" in rec.content and "price: $149.00" in rec.content
    assert not t.execute(ToolCall(id="c", name="visit_product", arguments={"product_id": "amz-999"})).ok
    assert not t.execute(ToolCall(id="d", name="web_visit", arguments={"url": "http://nowhere"})).ok
    assert not t.execute(ToolCall(id="e", name="buy_now", arguments={"x": "1"})).ok
    assert not t.execute(ToolCall(id="f", name="product_search", arguments={})).ok
    web = t.execute(ToolCall(id="g", name="web_search", arguments={"query": "headphones guide"}))
    assert web.ok and web.urls[0] == "rl-shop://guides/headphones"
    assert t.execute(ToolCall(id="h", name="web_visit", arguments={"url": web.urls[0]})).ok


def test_action_grammar_offers_visit_only_after_search() -> None:
    cfg = ResearchAgentConfig()
    tools0 = [o["properties"]["tool"]["const"] for o in action_schema(cfg, allow_finish=False)["anyOf"]]
    assert tools0 == ["product_search", "web_search"]
    tools1 = [o["properties"]["tool"]["const"] for o in action_schema(cfg, True, ["amz-1"], ["u"])["anyOf"]]
    assert tools1 == ["product_search", "visit_product", "web_search", "web_visit", "finish"]
    tools2 = [
        o["properties"]["tool"]["const"] for o in action_schema(cfg, True, ["amz-1"], allow_reflect=True)["anyOf"]
    ]
    assert tools2 == ["product_search", "visit_product", "web_search", "reflect", "finish"]


def test_score_intent_hand_computed() -> None:
    inf = InferredIntent(category="headphones", budget=90.0, brands=["sony", "bose"], query="q")
    s = score_intent(inf, PERSONA)  # budget 120: 1 - 30/120 = 0.75; brands {sony}/{sony,bose} = 0.5
    assert s == {"category": 1.0, "brand": 0.5, "budget": 0.75, "mean": pytest.approx((1 + 0.5 + 0.75) / 3, abs=1e-4)}


def test_reference_report_is_the_gold_shortlist_and_race_table(world, monkeypatch) -> None:
    import yaml

    from rl_shop.paths import CONFIG_DIR
    from rl_shop.research.evaluate import compare_models, race_by_round
    from rl_shop.research.race import RaceConfig, RubricJudge
    from rl_shop.research.reference import reference_report

    inf = InferredIntent(category="headphones", budget=150.0, brands=["sony"], query="wireless headphones under $150")
    ref = reference_report(PERSONA, inf, world.catalog, world.index, k=3)
    # gold of (headphones, <= $120, sony preferred): only the sony at $99
    assert [r.product_id for r in ref.recommendations] == ["amz-000001"]
    assert "priced at $99.00, within the $120 budget" in ref.markdown
    cfg = RaceConfig.model_validate(yaml.safe_load((CONFIG_DIR / "research" / "race.yaml").read_text()))
    judge = RubricJudge(cfg, world.catalog)
    traj, _ = run_scripted(world, monkeypatch)
    rounds = race_by_round(world, [traj], cfg, judge, reference_k=3)
    assert list(rounds["round"]) == [1, 2] and rounds["race"].between(0, 1).all()
    # the accepted round-2 report (2 grounded picks with reasons and a comparison) beats the round-1 draft
    assert rounds["race"].iloc[1] > rounds["race"].iloc[0]
    # accepted at round 2 of 4: rounds 3 and 4 carry that report, marked as carried
    carried = race_by_round(world, [traj], cfg, judge, reference_k=3, through_round=4)
    assert list(carried["round"]) == [1, 2, 3, 4] and list(carried["carried"]) == [False, False, True, True]
    assert carried["race"].iloc[3] == carried["race"].iloc[2] == rounds["race"].iloc[1]
    llm = ScriptedLLM([REPLIES[1], REPLIES[2], REPLIES[7]])
    table = compare_models(
        world,
        {"base": llm},
        [(5, PERSONA, inf)],
        ResearchAgentConfig(max_steps=2, seed_first_search=False),
        cfg,
        judge,
        3,
    )
    assert len(table) == 1 and table["fact_share"].iloc[0] == 1.0 and table["steps"].iloc[0] == 2


# ---------------------------------------------------------------- reflect / seeded search / degenerate queries
INTENT = InferredIntent(category="headphones", budget=120.0, brands=["sony"], query="wireless headphones under $120")
REFLECT_REPLY = (
    '{"thought":"Reflection: I have only search hits; I should open the sony record.","tool":"reflect","argument":""}'
)


def _tools(schema) -> list[str]:
    return [o["properties"]["tool"]["const"] for o in schema["anyOf"]]


def test_agent_can_reflect_at_inference_with_a_cap(world) -> None:
    from rl_shop.research.research_agent import ResearchAgent

    cfg = ResearchAgentConfig(max_steps=2, min_steps=1, seed_first_search=False, max_consecutive_reflections=1)
    llm = ScriptedLLM(
        [
            '{"thought":"search","tool":"product_search","argument":"wireless headphones"}',
            REFLECT_REPLY,
            '{"thought":"open it","tool":"visit_product","argument":"amz-000001"}',
            REPLIES[7],
        ]
    )
    steps, rep = ResearchAgent(llm, world.tools, cfg).run_round(INTENT.query, [], [], seed=0, intent=INTENT)
    assert [s.call.name for s in steps] == ["product_search", "reflect", "visit_product"]
    assert steps[1].thought.startswith("Reflection: I have only search hits") and steps[1].result.content == ""
    # reflect is not offered before any tool step, nor right after a reflection (cap 1); no schema text in prompts
    assert "reflect" not in _tools(llm.calls[0]["json_schema"])
    assert "reflect" in _tools(llm.calls[1]["json_schema"]) and "reflect" not in _tools(llm.calls[2]["json_schema"])
    assert not any("JSON schema" in m["content"] for c in llm.calls for m in c["messages"])
    # the reflection is an assistant turn with no observation after it; it did not use up a tool step
    third = llm.calls[2]["messages"]
    assert third[-1] == {"role": "assistant", "content": REFLECT_REPLY} and third[-2]["content"].startswith(
        "<tool_response>"
    )
    assert len(rep.recommendations) == 2
    off = ResearchAgentConfig(max_consecutive_reflections=0)
    assert "reflect" not in _tools(action_schema(off, True, ["amz-1"], allow_reflect=False))


def test_seeded_first_search_and_degenerate_query_retry(world) -> None:
    from rl_shop.research.research_agent import ResearchAgent

    cfg = ResearchAgentConfig(max_steps=2, min_steps=1, max_consecutive_reflections=0)
    llm = ScriptedLLM(
        [
            '{"thought":"x","tool":"web_search","argument":"product-search"}',  # rejected once
            '{"thought":"guide","tool":"web_search","argument":"headphones buying guide"}',
            REPLIES[7],
        ]
    )
    steps, _ = ResearchAgent(llm, world.tools, cfg).run_round(INTENT.query, [], [], seed=0, intent=INTENT)
    assert [(s.source, s.call.name, s.call.arguments) for s in steps] == [
        ("seeded", "product_search", {"query": "headphones sony"}),  # category + brands, no model call
        ("model", "web_search", {"query": "headphones buying guide"}),
    ]
    assert steps[0].result.product_ids[0] == "amz-000001"
    assert "is a tool name" in llm.calls[1]["messages"][-1]["content"]  # the corrective turn
    assert len(llm.calls) == 3 and llm.metrics.retries == 1 and llm.metrics.fallbacks == 0
    assert [e.startswith("attempt 1:") and "not a search" in e for e in steps[1].call.errors] == [True]
    from rl_shop.research.evaluate import query_quality
    from rl_shop.research.trajectory import Report, Round

    traj = Trajectory(
        id="t", seed=0, persona={}, history=[], inferred=INTENT, rounds=[Round(index=0, steps=steps, report=Report())]
    )
    assert query_quality([traj]) == {
        "search_steps": 2,
        "model": 1,
        "seeded": 1,
        "fallback": 0,
        "model_degenerate": 0,
        "model_degenerate_share": 0.0,
        "degenerate_share_all": 0.0,
        "reflect_steps": 0,
        "rejected_degenerate": 1,
    }


def test_degenerate_query_twice_gets_the_intent_query_as_a_counted_fallback(world) -> None:
    from rl_shop.research.research_agent import ResearchAgent

    cfg = ResearchAgentConfig(max_steps=1, min_steps=1, seed_first_search=False)
    llm = ScriptedLLM(
        [
            '{"thought":"x","tool":"product_search","argument":"visit product"}',
            '{"thought":"x","tool":"product_search","argument":"query"}',
            REPLIES[7],
        ]
    )
    steps, rep = ResearchAgent(llm, world.tools, cfg).run_round(INTENT.query, [], [], seed=0, intent=INTENT)
    assert [(s.source, s.call.arguments) for s in steps] == [("fallback", {"query": "headphones sony"})]
    assert not steps[0].call.malformed and sum(e.startswith("attempt") for e in steps[0].call.errors) == 2
    assert llm.metrics.retries == 1 and llm.metrics.fallbacks == 1
    # without an intent there is no stand-in: the round ends (as for a repeated call)
    llm = ScriptedLLM(
        [
            '{"thought":"x","tool":"product_search","argument":"visit product"}',
            '{"thought":"x","tool":"product_search","argument":"query"}',
            '{"summary":"Nothing was found for this request","recommendations":[],"verdict":"No pick yet."}',
        ]
    )
    steps, rep = ResearchAgent(llm, world.tools, cfg).run_round(INTENT.query, [], [], seed=0)
    assert steps == [] and rep.recommendations == []
