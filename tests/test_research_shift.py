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
    again = Trajectory.model_validate_json(traj.model_dump_json())
    assert again.shifts == traj.shifts
    msgs = internalize(traj)
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
