"""Decider: AHP on textbook matrices, Pareto front, hard constraints, ranking, LLM / template advice."""

from __future__ import annotations

import numpy as np
import pytest

from rl_shop.agents.config import AgentConfigError
from rl_shop.agents.decider import Decider, hard_constraint_violation
from rl_shop.agents.decider_config import decider_settings
from rl_shop.agents.mcda import AHPInconsistent, ahp_weights, pareto_front
from rl_shop.agents.types import Candidate, IntentSpec, ScoredDocument, WebDocument, WebSearchResult

EQUAL = [[1, 1, 1, 1]] * 4


def test_ahp_saaty_textbook_example():
    # Saaty's classic 3x3 example: weights ~ (0.637, 0.258, 0.105), lambda_max ~ 3.039, CR ~ 0.033.
    res = ahp_weights([[1, 3, 5], [1 / 3, 1, 3], [1 / 5, 1 / 3, 1]])
    np.testing.assert_allclose(res.weights, [0.637, 0.258, 0.105], atol=2e-3)
    assert res.lambda_max == pytest.approx(3.039, abs=2e-3)
    assert res.consistency_ratio == pytest.approx(0.033, abs=2e-3)


def test_ahp_consistent_matrix_exact_weights_and_zero_cr():
    # a_ij = w_i / w_j with w = (4, 2, 1) / 7 is perfectly consistent.
    res = ahp_weights([[1, 2, 4], [0.5, 1, 2], [0.25, 0.5, 1]])
    np.testing.assert_allclose(res.weights, [4 / 7, 2 / 7, 1 / 7], atol=1e-9)
    assert res.lambda_max == pytest.approx(3.0)
    assert res.consistency_ratio == pytest.approx(0.0, abs=1e-9)


def test_ahp_rejects_inconsistent_and_malformed_matrices():
    with pytest.raises(AHPInconsistent, match="consistency ratio"):
        ahp_weights([[1, 9, 1 / 9], [1 / 9, 1, 9], [9, 1 / 9, 1]])
    with pytest.raises(ValueError, match="not reciprocal"):
        ahp_weights([[1, 3], [3, 1]])
    with pytest.raises(ValueError, match="square"):
        ahp_weights([[1, 2, 3], [0.5, 1, 2]])
    with pytest.raises(ValueError, match="positive"):
        ahp_weights([[1, -2], [-0.5, 1]])
    bad = [[1, 9, 1 / 9, 1], [1 / 9, 1, 9, 1], [9, 1 / 9, 1, 1], [1, 1, 1, 1]]
    with pytest.raises(AHPInconsistent, match="configs/agents/decider.yaml"):
        Decider({"pairwise": bad})
    with pytest.raises(AgentConfigError, match="pairwise must be a 4x4"):
        Decider({"pairwise": [[1, 2], [0.5, 1]]})


def test_pareto_front_hand_example():
    values = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.4, 0.4], [1.0, 0.0]])
    # row 3 is dominated by row 2; the duplicate rows 0 and 4 do not dominate each other.
    assert pareto_front(values).tolist() == [True, True, True, False, True]


def _cands():
    return [
        Candidate(
            product_id="a",
            title="Sony bluetooth headphones",
            brand="sony",
            price=80.0,
            attributes={"connectivity": ["bluetooth"]},
        ),
        Candidate(
            product_id="b",
            title="Bose bluetooth headphones",
            brand="bose",
            price=120.0,
            attributes={"connectivity": ["bluetooth"]},
        ),
        Candidate(
            product_id="c",
            title="Koss wired headphones",
            brand="koss",
            price=20.0,
            attributes={"connectivity": ["wired"]},
        ),
        Candidate(
            product_id="d",
            title="JLab bluetooth earbuds",
            brand="jlab",
            price=30.0,
            attributes={"connectivity": ["bluetooth"]},
        ),
        Candidate(product_id="e", title="Beats bluetooth headphones", brand="beats", price=90.0, attributes={}),
    ]


def test_hard_constraints_are_never_violated():
    intent = IntentSpec(
        query="bluetooth headphones",
        budget=100,
        excluded_brands=["jlab"],
        required_attributes={"connectivity": "bluetooth"},
    )
    dec = Decider(decider_settings(pairwise=EQUAL)).decide(intent, _cands())
    ids = [r.product_id for r in dec.recommendations]
    assert set(ids) == {"a", "e"}  # e has no structured connectivity but says bluetooth in its title
    assert dec.excluded == {
        "b": "price 120.00 over budget 100.00",
        "c": "missing required connectivity=bluetooth",
        "d": "excluded brand jlab",
    }
    strict = decider_settings(pairwise=EQUAL, hard_constraints={"unknown_attribute": "exclude"})
    assert [r.product_id for r in Decider(strict).decide(intent, _cands()).recommendations] == ["a"]


def test_attribute_matching_rules():
    cfg = decider_settings(hard_constraints={"at_least": ["capacity_gb"], "numeric_tolerance": 0.05}).hard_constraints
    drive = Candidate(product_id="x", title="usb drive", attributes={"capacity_gb": 64.0, "size_in": 15.6})
    assert hard_constraint_violation(drive, IntentSpec(required_attributes={"capacity_gb": 32}), cfg) is None
    assert "capacity_gb" in hard_constraint_violation(drive, IntentSpec(required_attributes={"capacity_gb": 128}), cfg)
    assert hard_constraint_violation(drive, IntentSpec(required_attributes={"size_in": 15.5}), cfg) is None
    assert hard_constraint_violation(drive, IntentSpec(required_attributes={"size_in": 13.3}), cfg) is not None
    assert "excluded" in hard_constraint_violation(drive, IntentSpec(excluded_attributes={"features": ["usb"]}), cfg)


def test_hand_worked_ranking_with_equal_weights():
    # Equal AHP weights -> score is the mean of the four criteria.
    intent = IntentSpec(query="headphones", budget=100)
    cands = [
        Candidate(product_id="cheap", title="headphones", brand="x", price=20.0),
        Candidate(product_id="pricey", title="headphones", brand="y", price=100.0),
    ]
    cfg = decider_settings(pairwise=EQUAL, economic={"budget_headroom_weight": 0.5}, risk={"known_brand_min_count": 5})
    dec = Decider(cfg).decide(intent, cands)
    # functional: full query overlap = 1 for both; economic: 1 - 0.5*20/100 = 0.9 vs 1 - 0.5*1 = 0.5;
    # risk: unknown brand (0) with weight 0.5, no outlier (1) with weight 0.3 -> 0.3/0.8 = 0.375;
    # preference: no brand stated -> 0.5.  Means: (1+0.9+0.375+0.5)/4 = 0.69375, (1+0.5+0.375+0.5)/4 = 0.59375
    assert [r.product_id for r in dec.recommendations] == ["cheap", "pricey"]
    assert dec.recommendations[0].score == pytest.approx(0.6938, abs=1e-4)
    assert dec.recommendations[1].score == pytest.approx(0.5938, abs=1e-4)
    assert dec.recommendations[0].pareto_optimal and not dec.recommendations[1].pareto_optimal
    assert dec.weights == pytest.approx({"functional": 0.25, "economic": 0.25, "risk": 0.25, "preference": 0.25})
    assert dec.advice_source == "template"
    assert dec.advice.startswith("My recommendation: headphones at $20.00")
    assert any("under your $100 budget" in r for r in dec.recommendations[0].reasons)


def test_preferences_history_and_web_evidence_move_the_ranking():
    intent = IntentSpec(query="headphones", preferred_brands=["bose"])
    cands = [
        Candidate(product_id="s", title="headphones", brand="sony", price=50.0),
        Candidate(product_id="b", title="headphones", brand="bose", price=50.0),
    ]
    dec = Decider(decider_settings(pairwise=EQUAL)).decide(intent, cands)
    assert dec.recommendations[0].product_id == "b"
    assert any("preferred brand bose" in r for r in dec.recommendations[0].reasons)
    doc = WebDocument(url="u", title="Sony review", text="sony headphones are reliable", source="t", authority=0.9)
    web = WebSearchResult(
        queries=["q"], documents=[ScoredDocument(document=doc, relevance=1, authority=0.9, freshness=1, score=1)]
    )
    neutral = IntentSpec(query="headphones")
    dec2 = Decider(decider_settings(pairwise=EQUAL)).decide(neutral, cands, web=web)
    assert dec2.recommendations[0].product_id == "s"
    dec3 = Decider(decider_settings(pairwise=EQUAL)).decide(
        neutral, cands, user_history=[{"event": "purchase", "payload": {"brand": "bose"}}]
    )
    assert dec3.recommendations[0].product_id == "b"


def test_empty_result_follow_up_and_catalog_rows():
    intent = IntentSpec(query="tv", budget=10)
    rows = [
        {
            "product_id": "p1",
            "title": "tv",
            "brand": "lg",
            "price": 300.0,
            "connectivity": ["hdmi"],
            "features": ["4k"],
            "specs": '{"Screen": "55 in"}',
            "capacity_gb": float("nan"),
        }
    ]
    dec = Decider(decider_settings(pairwise=EQUAL)).decide(intent, rows)
    assert dec.recommendations == []
    assert "raise the budget" in dec.follow_up_question
    assert "p1" in dec.excluded


class _StreamingLLM:
    """Test double for llm.stream: yields fixed chunks."""

    def __init__(self, chunks):
        self.chunks = chunks
        self.messages = None

    def stream(self, messages, **kw):
        self.messages = messages
        yield from self.chunks


def test_llm_advice_is_streamed_and_template_is_fallback():
    intent = IntentSpec(query="headphones")
    cands = [Candidate(product_id="a", title="Sony headphones", brand="sony", price=50.0)]
    tokens: list[str] = []
    llm = _StreamingLLM(["Buy ", "the Sony."])
    dec = Decider(decider_settings(pairwise=EQUAL), llm=llm).decide(intent, cands, on_token=tokens.append)
    assert dec.advice_source == "llm"
    assert dec.advice.startswith("Buy the Sony.")
    assert tokens == ["Buy ", "the Sony."]
    assert "Sony headphones" in llm.messages[1]["content"]  # the prompt carries the analysed options
    empty = Decider(decider_settings(pairwise=EQUAL), llm=_StreamingLLM([])).decide(intent, cands)
    assert empty.advice_source == "template" and "Sony headphones" in empty.advice


def test_shipped_config_weights_are_consistent():
    d = Decider()
    assert d.ahp.consistency_ratio < 0.1
    assert sum(d.weights.values()) == pytest.approx(1.0)
    assert max(d.weights, key=d.weights.get) == "functional"


def test_numeric_range_requirement():
    cfg = decider_settings().hard_constraints
    laptop = Candidate(product_id="l", title="laptop", attributes={"size_in": 14.0})
    assert (
        hard_constraint_violation(laptop, IntentSpec(required_attributes={"size_in": {"min": 13, "max": 15}}), cfg)
        is None
    )
    assert hard_constraint_violation(laptop, IntentSpec(required_attributes={"size_in": {"min": 15}}), cfg) is not None
    unknown = Candidate(product_id="u", title="laptop 14 inch")
    assert "unknown size_in" in hard_constraint_violation(
        unknown, IntentSpec(required_attributes={"size_in": {"max": 15}}), cfg
    )


def test_clean_llm_advice_dedupes_loops_and_rejects_off_topic():
    from rl_shop.agents.decider import clean_llm_advice
    from rl_shop.agents.types import Recommendation

    recs = [
        Recommendation(
            product_id="a",
            title="Sony WH headphones",
            brand="sony",
            price=79.0,
            score=1.0,
            criteria={},
            pareto_optimal=True,
            reasons=[],
        )
    ]
    looped = "Get the Sony.\n\nGet the Sony.\nGet  the sony!\nIt is light."
    assert clean_llm_advice(looped, recs) == "Get the Sony.\nIt is light."
    assert clean_llm_advice("Please provide a product.", recs) == ""


def test_self_evaluation_and_experience_memory():
    from rl_shop.agents.memory import Memory

    d = Decider(decider_settings(pairwise=EQUAL))
    intent = IntentSpec(query="headphones", query_type="simple")
    dec = d.decide(intent, [Candidate(product_id="a", title="headphones", brand="x", price=10.0)])
    assert d.self_evaluate(dec, purchased=["a"]).replan is False
    assert d.self_evaluate(dec, clicked=["a"]).satisfaction == 0.5
    assert d.self_evaluate(dec, clicked=["zzz"]).replan is True
    assert d.self_evaluate(dec, purchased=["a"], new_need=True).replan is True
    mem = Memory()
    assert d.remember(mem, intent, dec, d.self_evaluate(dec, purchased=["a"])) is True
    assert d.remember(mem, intent, dec, d.self_evaluate(dec, clicked=["a"])) is False
    (exp,) = mem.experiences("simple")
    assert exp["payload"]["recommended"] == ["a"] and exp["satisfaction"] == 1.0


def test_nothing_fits_names_the_nearest_real_alternative_but_never_an_excluded_brand():
    # Every candidate misses the required colour; "a" is also an excluded brand.
    intent = IntentSpec(
        query="purple headphones, not sony", excluded_brands=["sony"], required_attributes={"colour": "purple"}
    )
    strict = Decider(decider_settings(pairwise=EQUAL, hard_constraints={"relax_attributes": False})).decide(
        intent, _cands()
    )
    assert strict.recommendations == [] and strict.relaxed == []
    assert "closest match is Bose bluetooth headphones" in strict.advice
    assert "Sony" not in strict.advice.split("closest match")[1]
    # relaxed (the default): the alternatives are the recommendations, each saying what it misses
    dec = Decider(decider_settings(pairwise=EQUAL)).decide(intent, _cands())
    assert dec.recommendations and all(r.brand.lower() != "sony" for r in dec.recommendations)
    assert dec.relaxed == ["colour=purple"] and dec.advice.startswith(
        "Nothing meets every requirement (none has colour=purple)"
    )
    assert all(r.reasons[0] == "does not meet colour=purple" for r in dec.recommendations)
    assert not set(dec.excluded) & {r.product_id for r in dec.recommendations}
    over = IntentSpec(query="tv", budget=10)  # over budget is no "nearest alternative"
    dec2 = Decider(decider_settings(pairwise=EQUAL)).decide(over, _cands())
    assert "closest match" not in dec2.advice and dec2.recommendations == [] and dec2.relaxed == []
