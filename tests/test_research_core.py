"""Research pipeline pieces without a model: internalization, filtering, FACT, RACE arithmetic."""

from __future__ import annotations

import json

import pytest
from research_fixtures import SEARCH_TEXT, VISIT_TEXT, report, tiny_catalog, two_round_trajectory

from rl_shop.research.fact import extract_citations, extract_numbers, fact_check
from rl_shop.research.filtering import FilterConfig, filter_trajectory
from rl_shop.research.internalize import internalize
from rl_shop.research.race import (
    JudgeTask,
    RaceConfig,
    RubricJudge,
    dimension_score,
    intermediate_score,
    race_score,
    relative,
)
from rl_shop.research.research_agent import ResearchAgentConfig, action_schema
from rl_shop.research.sft_data import to_text_format
from rl_shop.research.supervisor import to_first_person


# ---------------------------------------------------------------- internalization
def test_internalize_two_round_trajectory_exact_shape() -> None:
    msgs = internalize(two_round_trajectory())
    assert [m["role"] for m in msgs] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "assistant",
        "tool",
        "user",
        "assistant",
    ]
    assert msgs[0]["content"] == "SYS"
    assert msgs[1]["content"] == "Research request: headphones under $120"
    call = msgs[2]["tool_calls"][0]
    assert call == {
        "id": "call_0",
        "type": "function",
        "function": {"name": "product_search", "arguments": '{"query":"wireless headphones"}'},
    }
    assert msgs[3] == {"role": "tool", "tool_call_id": "call_0", "name": "product_search", "content": SEARCH_TEXT}
    # the supervisor turn became the agent's own reflect step, in the action format; the draft report is gone
    assert msgs[4] == {
        "role": "assistant",
        "content": (
            '{"thought":"Reflection: I have drafted a report recommending amz-000001. My draft recommends only '
            "1 product(s); I should compare at least 2. My draft lacks a comparison. I will continue the research "
            'to fix this.","tool":"reflect","argument":""}'
        ),
    }
    assert "tool_calls" not in msgs[4]
    assert msgs[5]["tool_calls"][0]["function"]["arguments"] == '{"product_id":"amz-000002"}'
    assert msgs[6]["content"] == VISIT_TEXT
    # the report request: visited record first (its first 3 lines), then the search hits, newest first
    assert msgs[7] == {
        "role": "user",
        "content": (
            "Now write the research report. Evidence products:\n"
            "[amz-000002] bose quietcomfort headphones | brand: bose | price: $149.00\n"
            "[amz-000001] sony wh-1000 wireless headphones | brand: sony | $99.00 | headphones\n"
            "[amz-000003] jbl tune wired headphones | brand: jbl | $29.50 | headphones\n"
            "Recommend products by id and say why; summarise and give a verdict."
        ),
    }
    final = json.loads(msgs[8]["content"])
    assert [r["product_id"] for r in final["recommendations"]] == ["amz-000001", "amz-000003"]
    assert not any("supervisor" in json.dumps(m).lower() for m in msgs)
    assert not any("The report" in (m.get("content") or "") for m in msgs)


def test_reflection_is_a_valid_reflect_action_and_fits_its_cap() -> None:
    import jsonschema

    traj = two_round_trajectory()
    traj.rounds[0].feedback.critique_reflection = 'My draft says "great" {twice}_really.'
    cfg = ResearchAgentConfig(reflection_max_chars=150)
    refl = internalize(traj, config=cfg)[4]["content"]
    # written by hand: the second point no longer fits in 150 characters and is dropped; the critique
    # (cleaned of quotes, braces and "_") is kept since it fits
    assert json.loads(refl) == {
        "thought": "Reflection: I have drafted a report recommending amz-000001. My draft "
        "says great twice really. I will continue the research to fix this.",
        "tool": "reflect",
        "argument": "",
    }
    schema = action_schema(cfg, allow_finish=True, seen_ids=["amz-000001"], allow_reflect=True)
    jsonschema.validate(json.loads(refl), schema)  # the agent could decode exactly this turn
    with pytest.raises(jsonschema.ValidationError):  # and the step grammar without reflect rejects it
        jsonschema.validate(json.loads(refl), action_schema(cfg, allow_finish=True, seen_ids=["amz-000001"]))


def test_training_text_prefix_equals_inference_prompt() -> None:
    from research_fixtures import WordOverlapIndex, tiny_web_backend

    from rl_shop.research.internalize import single_role_steps
    from rl_shop.research.research_agent import ResearchAgent
    from rl_shop.research.tools import ResearchTools

    traj = two_round_trajectory()
    traj.system_prompt = ""  # the agent's own SYSTEM prompt
    cfg = ResearchAgentConfig(observation_chars=60)  # observations cut as the agent sees them
    text = to_text_format(internalize(traj, config=cfg))
    cat = tiny_catalog()
    agent = ResearchAgent(None, ResearchTools(cat, WordOverlapIndex(cat), tiny_web_backend()), cfg)
    steps = single_role_steps(traj, cfg)
    assert [s.call.name for s in steps] == ["product_search", "reflect", "visit_product"]
    at = [i for i, m in enumerate(text) if m["role"] == "assistant"]
    assert len(at) == 4
    for k, i in enumerate(at[:-1]):  # each action: its prefix is the step prompt
        assert text[:i] == agent.step_prompt(traj.query, steps[:k], [])
    assert text[: at[-1]] == agent.report_prompt(traj.query, steps, [])
    assert text[3]["content"] == f"<tool_response>\n{SEARCH_TEXT[:60]}\n</tool_response>"
    assert "JSON schema" not in json.dumps(text) and "Calls so far" not in json.dumps(text)


def test_degenerate_queries_and_seed_query() -> None:
    from rl_shop.research.prompt import is_degenerate_query, seed_query
    from rl_shop.research.trajectory import InferredIntent

    for q in [
        "product-search",
        "visit_product",
        "Product Search",
        "query",
        "web search url",
        "amz-018259",
        "amz-009090, amz-003857, amz-00411",
        "rl-shop://guides/x",
        "product fk-KHREGSDWQZ",
        "  ",
    ]:
        assert is_degenerate_query(q), q
    for q in ["wireless headphones", "paper shredder", "web search guide for cameras", "sony", "amz-1 headphones"]:
        assert not is_degenerate_query(q), q
    inf = InferredIntent(category="home_security systems", budget=15.0, brands=["3m", "ge"], query="q")
    assert seed_query(inf, 60) == "home security systems 3m ge"
    assert seed_query(inf, 12) == "home securit"


def test_text_tool_format_keeps_calls_in_content() -> None:
    text = to_text_format(internalize(two_round_trajectory()))
    assert {m["role"] for m in text} == {"system", "user", "assistant"}
    assert json.loads(text[2]["content"]) == {
        "thought": "search wireless headphones",
        "tool": "product_search",
        "argument": "wireless headphones",
    }
    assert text[3] == {"role": "user", "content": f"<tool_response>\n{SEARCH_TEXT}\n</tool_response>"}


def test_first_person_rewrite() -> None:
    assert (
        to_first_person("The report ignores your budget; you should fix the report.")
        == "My draft ignores my budget; I should fix my draft."
    )


# ---------------------------------------------------------------- filter
def test_filter_keeps_the_good_trajectory() -> None:
    d = filter_trajectory(two_round_trajectory(), FilterConfig())
    assert d.keep, d.reasons


def test_filter_rejects_malformed_call() -> None:
    t = two_round_trajectory()
    t.rounds[1].steps[0].call.malformed = True
    assert filter_trajectory(t).reasons == ["malformed_tool_call"]


def test_filter_rejects_failed_tool() -> None:
    t = two_round_trajectory()
    t.rounds[1].steps[0].result.ok = False
    t.rounds[1].steps[0].result.content = "ERROR: no product"
    # the failed visit no longer supports anything, but the final report cites only search hits
    assert filter_trajectory(t).reasons == ["failed_tool"]


def test_filter_rejects_unsupported_product_and_number() -> None:
    t = two_round_trajectory()
    t.rounds[1].report = report(["amz-000001", "amz-009999"])
    assert filter_trajectory(t).reasons == ["unsupported_claims"]
    t = two_round_trajectory()
    t.rounds[1].report = report(["amz-000001"], extra=" It lasts 37 hours.")
    d = filter_trajectory(t)
    assert d.reasons == ["unsupported_claims"] and d.details["fact"]["unsupported_numbers"] == [37.0]


def test_filter_rejects_low_score_and_missing_review() -> None:
    t = two_round_trajectory()
    t.rounds[1].feedback.score = 0.2
    assert filter_trajectory(t, FilterConfig(min_score=0.5)).reasons == ["low_score"]
    t.rounds[1].feedback = None
    assert filter_trajectory(t).reasons == ["low_score"]


# ---------------------------------------------------------------- FACT
def test_fact_numbers_and_citations() -> None:
    md = "1. **a** [amz-000001]\n   costs $99 and has 2 modes; see [fk-ABC12]"
    assert extract_citations(md) == ["amz-000001", "fk-ABC12"]
    assert extract_numbers(md) == [99.0, 2.0]
    r = fact_check(md, {"amz-000001"}, "price $99.00", query="")
    assert r.unsupported_products == ["fk-ABC12"] and r.unsupported_numbers == [2.0]
    assert r.share == pytest.approx(2 / 4)  # supported: amz-000001, 99; unsupported: fk-ABC12, 2
    assert fact_check("no claims", set(), "").share == 1.0


# ---------------------------------------------------------------- RACE arithmetic
def test_race_arithmetic_hand_computed() -> None:
    crit = {"comprehensiveness": {"a": 1.0, "b": 3.0}, "readability": {"c": 1.0}}
    W = {"comprehensiveness": 3.0, "readability": 1.0}  # normalised: 0.75, 0.25
    target = {"comprehensiveness": {"a": 8, "b": 4}, "readability": {"c": 6}}
    ref = {"comprehensiveness": {"a": 6, "b": 6}, "readability": {"c": 10}}
    # S_comp(target) = (1*8 + 3*4)/4 = 5;  S_read(target) = 6;  S_int = 0.75*5 + 0.25*6 = 5.25
    # S_comp(ref) = 6; S_read(ref) = 10; S_int = 0.75*6 + 0.25*10 = 7.0
    assert dimension_score(target["comprehensiveness"], crit["comprehensiveness"]) == pytest.approx(5.0)
    assert intermediate_score({"comprehensiveness": 5, "readability": 6}, W) == pytest.approx(5.25)
    s = race_score(target, ref, W, crit)
    assert s.target_total == pytest.approx(5.25) and s.reference_total == pytest.approx(7.0)
    assert s.final == pytest.approx(5.25 / 12.25)  # = 0.428571...
    assert s.per_dimension == pytest.approx({"comprehensiveness": 5 / 11, "readability": 6 / 16})
    assert relative(0, 0) == 0.5 and relative(3, 1) == pytest.approx(0.75)


def test_race_rejects_bad_weights_and_missing_scores() -> None:
    with pytest.raises(ValueError, match="no score"):
        dimension_score({"a": 1}, {"a": 1, "b": 1})
    with pytest.raises(ValueError, match="non-negative"):
        intermediate_score({"x": 1}, {"x": -1})


def test_rubric_judge_prefers_grounded_in_budget_report() -> None:
    import yaml

    from rl_shop.paths import CONFIG_DIR

    cfg = RaceConfig.model_validate(yaml.safe_load((CONFIG_DIR / "research" / "race.yaml").read_text()))
    judge = RubricJudge(cfg, tiny_catalog())
    task = JudgeTask(query="headphones under $120", category="headphones", budget=120.0)
    good = report(
        ["amz-000001", "amz-000003"],
        summary="The sony is better than the jbl for travel, while the "
        "jbl is cheaper for headphones under 120 dollars.",
    )
    bad = report(["amz-000004"], summary="Buy it. Buy it.")
    sg, sb = judge.score(good.markdown, task), judge.score(bad.markdown, task)
    assert sg["instruction_following"]["category"] == 10.0 and sb["instruction_following"]["category"] == 0.0
    assert sg["comprehensiveness"]["coverage"] == pytest.approx(10 * 2 / 3)
    crit = {d: cfg.criteria[d] for d in cfg.criteria}
    assert race_score(sg, sb, cfg.weights_for("simple"), crit).final > 0.5
