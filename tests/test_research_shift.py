"""Multi-turn intent shift: the simulator edits the latent intent, the agent is told, the scorer
checks the final report against the final intent (tiny catalog, scripted test double, no model)."""

from __future__ import annotations

import numpy as np
import pytest
from research_fixtures import WordOverlapIndex, tiny_catalog, tiny_web_backend
from test_llm_scripted import ScriptedLLM

from rl_shop.research import pipeline
from rl_shop.research.intent_shift import ShiftConfig, brand_exclusion, budget_drop, new_use_case, shift_intent
from rl_shop.research.pipeline import PersonaConfig, ResearchWorld, synthesize
from rl_shop.research.research_agent import ResearchAgentConfig
from rl_shop.research.supervisor import SupervisorConfig
from rl_shop.research.user_agent import UserAgentConfig
from rl_shop.sim import Intent, gold_ids

# tiny catalog headphones: sony $99, bose $149 (noise cancelling), jbl $29.50
BASE = Intent(query_type="simple", category="headphones", budget=150.0, stated_slots=("category", "budget"))


def test_budget_drop_to_a_sayable_median_gold_price() -> None:
    new, msg = budget_drop(BASE, tiny_catalog(), np.random.default_rng(0))
    # gold prices 29.5, 99, 149: median 99 -> nice_ceil 100 < 150
    assert new.budget == 100.0 and "$100" in msg
    assert gold_ids(tiny_catalog(), new) == ["amz-000001", "amz-000003"]


def test_brand_exclusion_takes_the_most_frequent_gold_brand_then_name() -> None:
    new, msg = brand_exclusion(BASE, tiny_catalog(), np.random.default_rng(0))
    assert new.excluded_brands == ("bose",) and "no bose" in msg and "brand" in new.stated_slots
    # a preferred brand the shopper turns against leaves the preferred list; the rest of the gold set stays
    sony = Intent(query_type="simple", category="headphones", budget=120.0, preferred_brands=("sony",))
    flip, _ = brand_exclusion(sony, tiny_catalog(), np.random.default_rng(0))
    assert flip.preferred_brands == () and flip.excluded_brands == ("sony",)
    assert gold_ids(tiny_catalog(), flip) == ["amz-000003"]
    mice = Intent(query_type="simple", category="mice")  # one brand only: no exclusion possible
    assert brand_exclusion(mice, tiny_catalog(), np.random.default_rng(0)) is None


def test_new_use_case_adds_the_rules_requirements_that_gold_still_meets() -> None:
    rules = [
        {
            "use_case": "commuting",
            "phrasings": ["for my daily commute"],
            "categories": ["headphones"],
            "features": ["noise cancelling"],
        },
        {"use_case": "gaming", "categories": ["keyboards"], "features": ["gaming"]},
    ]
    new, msg = new_use_case(BASE, tiny_catalog(), np.random.default_rng(0), rules)
    assert new.use_case == "commuting" and new.features == ("noise cancelling",)
    assert gold_ids(tiny_catalog(), new) == ["amz-000002"]
    assert msg == "Actually, I now need it for my daily commute, so it must be noise cancelling."
    # kinds are tried from seed % len(kinds): seed 1 -> brand_exclusion first
    assert shift_intent(BASE, tiny_catalog(), 1)[0] == "brand_exclusion"


PERSONA = Intent(
    query_type="simple",
    category="headphones",
    budget=120.0,
    preferred_brands=("sony",),
    stated_slots=("category", "brand"),
)
EVENTS = [{"t": 1.0, "kind": "click", "product_id": "amz-000001", "session": 0, "noise": False}]
REPLIES = [
    '{"category":"headphones","budget":150.0,"brands":["sony"],"query":"wireless headphones under $150, sony"}',
    '{"thought":"search","tool":"product_search","argument":"wireless headphones"}',
    '{"summary":"The bose and the sony are both strong wireless headphones","recommendations":'
    '[{"product_id":"amz-000002","reason":"bose, noise cancelling"},{"product_id":"amz-000001","reason":"sony, wireless"}],'
    '"verdict":"Buy the bose for the quiet."}',
    '{"thought":"cheaper","tool":"product_search","argument":"sony headphones"}',
    '{"summary":"Within the new 100 dollar budget the sony fits best","recommendations":'
    '[{"product_id":"amz-000001","reason":"sony, priced at 99 dollars"}],"verdict":"Buy the sony now."}',
]


@pytest.fixture()
def world() -> ResearchWorld:
    cat = tiny_catalog()
    return ResearchWorld(cat, WordOverlapIndex(cat), ResearchTools_(cat))


def ResearchTools_(cat):  # noqa: N802 - a small factory
    from rl_shop.research.tools import ResearchTools

    return ResearchTools(cat, WordOverlapIndex(cat), tiny_web_backend())


def test_scripted_synthesis_with_a_budget_drop(world, monkeypatch) -> None:
    from rl_shop.research.evaluate import race_by_round, shift_outcomes
    from rl_shop.research.internalize import internalize
    from rl_shop.research.trajectory import Trajectory

    monkeypatch.setattr(pipeline, "sample_persona", lambda w, seed, cfg: (PERSONA, EVENTS))
    llm = ScriptedLLM(REPLIES)
    traj = synthesize(
        world,
        llm,
        0,
        persona_cfg=PersonaConfig(),
        user_cfg=UserAgentConfig(),
        agent_cfg=ResearchAgentConfig(max_steps=1, min_steps=1, seed_first_search=False, max_consecutive_reflections=0),
        sup_cfg=SupervisorConfig(use_llm=False, accept_threshold=0.0, blocking=[]),
        max_rounds=2,
        shift_cfg=ShiftConfig(enabled=True, after_round=0, kinds=["budget_drop"]),
    )
    assert len(llm.calls) == len(REPLIES)
    # round 0 was accepted (threshold 0) but the shopper's shift forces round 1
    assert len(traj.rounds) == 2 and traj.rounds[0].feedback.accept
    assert [s["kind"] for s in traj.shifts] == ["budget_drop"]
    assert traj.persona["budget"] == 120.0 and traj.final_persona["budget"] == 100.0  # gold {sony $99}: nice_ceil(99)
    assert traj.final_inferred.budget == 100.0 and traj.inferred.budget == 150.0
    # the round-1 prompts carry the shopper's turn as its own user message, before the supervisor's notes
    turns = [m["content"] for m in llm.calls[3]["messages"] if m["role"] == "user"]
    assert "The shopper updated the request: Update: my budget dropped, I can spend at most $100 now." in turns
    assert not any("The shopper updated" in m["content"] for m in llm.calls[1]["messages"])
    # the citations offered after the drop are the evidence within $100: not the bose ($149)
    offered = traj.rounds[1].report.offered_ids
    assert "amz-000002" in traj.rounds[0].report.offered_ids
    assert set(offered) == {"amz-000001", "amz-000003"}  # headphones at $99 and $29.50 (not the $14.99 mouse)
    enum = llm.calls[4]["json_schema"]["properties"]["recommendations"]["items"]["properties"]["product_id"]["enum"]
    assert enum == offered
    report_turn = llm.calls[4]["messages"][-1]["content"]
    assert "[amz-000001]" in report_turn and "[amz-000002]" not in report_turn
    again = Trajectory.model_validate_json(traj.model_dump_json())
    assert again.shifts == traj.shifts
    msgs = internalize(traj)
    assert msgs[-2]["content"] == report_turn  # the SFT report request lists what synthesis offered
    shift_turn = [
        i for i, m in enumerate(msgs) if m["role"] == "user" and m["content"].startswith("The shopper updated")
    ]
    assert (
        len(shift_turn) == 1
        and msgs[shift_turn[0] + 1]["tool_calls"][0]["function"]["arguments"] == '{"query":"sony headphones"}'
    )
    out = shift_outcomes([traj], world.catalog)
    assert out.to_dict("records")[0] == {
        "trajectory": "traj-0",
        "kind": "budget_drop",
        "rounds": 2,
        "ends_on_final_intent": True,
        "ends_on_initial_intent": True,
        "final_need_addressed": True,
    }
    # the round-0 draft (bose $149) is judged against the initial intent, round 1 against the final one
    import yaml

    from rl_shop.paths import CONFIG_DIR
    from rl_shop.research.race import RaceConfig, make_judge

    cfg = RaceConfig.model_validate(yaml.safe_load((CONFIG_DIR / "research" / "race.yaml").read_text()))
    rows = race_by_round(world, [traj], cfg, make_judge(cfg, world.catalog), reference_k=3)
    assert list(rows["shifted"]) == [False, True] and rows["race"].iloc[1] > rows["race"].iloc[0]


def test_shift_needs_a_round_after_it(world, monkeypatch) -> None:
    monkeypatch.setattr(pipeline, "sample_persona", lambda w, seed, cfg: (PERSONA, EVENTS))
    with pytest.raises(ValueError, match="max_rounds >= 2"):
        synthesize(
            world,
            ScriptedLLM(REPLIES),
            0,
            persona_cfg=PersonaConfig(),
            user_cfg=UserAgentConfig(),
            agent_cfg=ResearchAgentConfig(),
            sup_cfg=SupervisorConfig(),
            max_rounds=1,
            shift_cfg=ShiftConfig(enabled=True),
        )


def test_request_filters_hold_the_type_and_only_what_the_shopper_said() -> None:
    from rl_shop.catalog.filters import SearchFilters
    from rl_shop.research.limits import request_filters
    from rl_shop.research.tools import ResearchTools
    from rl_shop.research.trajectory import InferredIntent

    said = InferredIntent(category="headphones", budget=100.0, budget_stated=True, excluded_brands=["Bose"], query="q")
    assert request_filters(said) == SearchFilters(
        categories=frozenset({"headphones"}), max_price=100.0, exclude_brands=frozenset({"bose"})
    )
    guessed = InferredIntent(category="headphones", budget=100.0, query="q")  # inferred from behaviour only
    assert request_filters(guessed) == SearchFilters(categories=frozenset({"headphones"}))
    assert request_filters(InferredIntent(category="", query="q")) is None
    cat = tiny_catalog()
    tools = ResearchTools(cat, WordOverlapIndex(cat), tiny_web_backend())
    everything = ["amz-000004", "amz-000003", "amz-000002", "amz-000001"]
    # the $14.99 mouse is another type, the bose is excluded, jbl $29.50 and sony $99 are within $100
    assert tools.admitted(everything, request_filters(said)) == ["amz-000003", "amz-000001"]
    assert tools.admitted(everything, None) == everything
    cheap = InferredIntent(category="headphones", budget=50.0, budget_stated=True, query="q")
    assert tools.admitted(everything, request_filters(cheap)) == ["amz-000003"]


def test_the_updated_reading_takes_only_what_the_shopper_said() -> None:
    from rl_shop.research.intent_shift import updated_inferred
    from rl_shop.research.trajectory import InferredIntent

    latent = Intent(query_type="simple", category="headphones", budget=150.0, excluded_brands=("jbl",))
    reading = InferredIntent(category="headphones", budget=40.0, brands=["bose", "sony"], query="q")
    no_bose = Intent.model_validate({**latent.model_dump(), "excluded_brands": ("jbl", "bose")})
    r = updated_inferred(reading, latent, no_bose, "no bose please")
    # the latent exclusion (jbl) and budget (150) were never said: the reading keeps its own budget
    assert r.excluded_brands == ["bose"] and r.brands == ["sony"] and r.budget == 40.0 and not r.budget_stated
    cheaper = Intent.model_validate({**latent.model_dump(), "budget": 100.0})
    r = updated_inferred(reading, latent, cheaper, "at most $100")
    assert r.budget == 100.0 and r.budget_stated and r.excluded_brands == [] and r.query == "q at most $100"


BRAND_REPLIES = [
    '{"category":"headphones","budget":200.0,"brands":["bose"],"query":"bose headphones under $200"}',
    '{"summary":"The bose is the quiet pick among these wireless headphones","recommendations":'
    '[{"product_id":"amz-000002","reason":"bose, noise cancelling"}],"verdict":"Buy the bose for the quiet."}',
    '{"summary":"Without bose the sony is the best wireless pick for this shopper","recommendations":'
    '[{"product_id":"amz-000001","reason":"sony, priced at 99 dollars"}],"verdict":"Buy the sony now."}',
]


def test_a_brand_exclusion_reseeds_the_search_and_leaves_the_brand_uncited(world, monkeypatch) -> None:
    """The round after "no bose" starts with the seeded search of the updated reading (its query no
    longer names bose) and the report may not cite a bose product, though one is in the evidence."""
    from rl_shop.research.evaluate import shift_outcomes

    persona = Intent(
        query_type="simple",
        category="headphones",
        budget=150.0,
        preferred_brands=(),
        stated_slots=("category", "budget"),
    )
    bose_click = [{**EVENTS[0], "product_id": "amz-000002"}]  # the reading's brands come from the history
    monkeypatch.setattr(pipeline, "sample_persona", lambda w, seed, cfg: (persona, bose_click))
    llm = ScriptedLLM(BRAND_REPLIES)
    traj = synthesize(
        world,
        llm,
        1,  # seed 1: brand_exclusion is tried first
        persona_cfg=PersonaConfig(),
        user_cfg=UserAgentConfig(),
        agent_cfg=ResearchAgentConfig(max_steps=1, min_steps=1, max_consecutive_reflections=0),
        sup_cfg=SupervisorConfig(use_llm=False, accept_threshold=0.0, blocking=[]),
        max_rounds=2,
        shift_cfg=ShiftConfig(enabled=True, after_round=0, kinds=["brand_exclusion"]),
    )
    assert len(llm.calls) == len(BRAND_REPLIES)  # two seeded searches, no model steps: max_steps=1
    assert traj.shifts[0]["kind"] == "brand_exclusion" and traj.final_inferred.excluded_brands == ["bose"]
    seeded = [(r.index, s.call.arguments["query"]) for r in traj.rounds for s in r.steps if s.source == "seeded"]
    assert seeded == [(0, "headphones bose"), (1, "headphones")]
    assert "amz-000002" in traj.rounds[0].report.offered_ids
    assert "amz-000002" not in traj.rounds[1].report.offered_ids and traj.rounds[1].report.offered_ids
    assert shift_outcomes([traj], world.catalog).loc[0, "ends_on_final_intent"]


def test_reseeding_and_stated_limits_can_be_switched_off(world, monkeypatch) -> None:
    persona = Intent(query_type="simple", category="headphones", budget=150.0, stated_slots=("category", "budget"))
    bose_click = [{**EVENTS[0], "product_id": "amz-000002"}]
    monkeypatch.setattr(pipeline, "sample_persona", lambda w, seed, cfg: (persona, bose_click))
    model_step = '{"thought":"search","tool":"product_search","argument":"quiet headphones"}'
    llm = ScriptedLLM(BRAND_REPLIES[:2] + [model_step, BRAND_REPLIES[1]])
    traj = synthesize(
        world,
        llm,
        1,
        persona_cfg=PersonaConfig(),
        user_cfg=UserAgentConfig(),
        agent_cfg=ResearchAgentConfig(
            max_steps=1,
            min_steps=1,
            max_consecutive_reflections=0,
            reseed_on_update=False,
            search_within_request=False,
            cite_within_request=False,
        ),
        sup_cfg=SupervisorConfig(use_llm=False, accept_threshold=0.0, blocking=[]),
        max_rounds=2,
        shift_cfg=ShiftConfig(enabled=True, after_round=0, kinds=["brand_exclusion"]),
    )
    assert [s.source for s in traj.rounds[1].steps] == ["model"]
    assert "amz-000002" in traj.rounds[1].report.offered_ids


def test_a_budget_drop_reruns_the_seeded_search_within_the_new_budget(world, monkeypatch) -> None:
    """Same query, new filters: the round after "at most $100" starts with the seeded search again,
    and its hits (and the citations) are within $100; the first search still showed the $149 bose."""
    monkeypatch.setattr(pipeline, "sample_persona", lambda w, seed, cfg: (PERSONA, EVENTS))
    llm = ScriptedLLM([REPLIES[0], REPLIES[2], REPLIES[4]])
    traj = synthesize(
        world,
        llm,
        0,
        persona_cfg=PersonaConfig(),
        user_cfg=UserAgentConfig(),
        agent_cfg=ResearchAgentConfig(max_steps=1, min_steps=1, max_consecutive_reflections=0),
        sup_cfg=SupervisorConfig(use_llm=False, accept_threshold=0.0, blocking=[]),
        max_rounds=2,
        shift_cfg=ShiftConfig(enabled=True, after_round=0, kinds=["budget_drop"]),
    )
    assert len(llm.calls) == 3 and traj.final_inferred.budget_stated
    first, again = traj.rounds[0].steps[0], traj.rounds[1].steps[0]
    assert first.source == again.source == "seeded" and first.call.arguments == again.call.arguments
    assert "amz-000002" in first.result.product_ids and "amz-000002" not in again.result.product_ids
    assert again.result.product_ids and all(p in ("amz-000001", "amz-000003") for p in again.result.product_ids)
    assert "amz-000002" not in traj.final_report.offered_ids


def _compare_research_runs():
    import importlib.util

    from rl_shop.paths import REPO_ROOT

    spec = importlib.util.spec_from_file_location("crr", REPO_ROOT / "experiments" / "compare_research_runs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_compare_research_runs_names_a_missing_run(tmp_path, capsys) -> None:
    mod = _compare_research_runs()
    assert mod.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert "no trajectories.jsonl" in capsys.readouterr().err
    assert mod.wilson(11, 16) == "11/16 = 0.688 [0.444, 0.858]"  # Wilson score interval, by hand: 0.4440-0.8584


def test_compare_research_runs_pairs_the_shift_outcomes_by_shopper(capsys) -> None:
    import pandas as pd

    def run(ends: list[bool]) -> pd.DataFrame:
        return pd.DataFrame(
            {"trajectory": [f"traj-{i}" for i in range(5)], "kind": "budget_drop", "ends_on_final_intent": ends}
        )

    _compare_research_runs().compare_shifts(
        run([True, True, False, False, False]), run([True, True, True, True, False])
    )
    out = capsys.readouterr().out
    assert "discordant pairs: B only 2, A only 0" in out
    # differences 0, 0, 1, 1, 0: mean 0.4, sd 0.5477, t(4, 0.975) = 2.7764 -> half width 0.680;
    # McNemar: 2 of 2 discordant pairs one way, two-sided 2 * 0.5**2 = 0.5
    assert "B - A per shopper: +0.400 [-0.280, +1.080] (Student-t 95%), exact McNemar p = 0.500" in out
