"""The shopper's mined reply face: mining reply phrasings from real clarification data, rendering
slot answers with them, and the agent's reading of those replies."""

from __future__ import annotations

import numpy as np
import pytest
from test_sim_helpers import tiny_catalog

from rl_shop.sim.answer_text import AnswerPhrasing, SlotAnswer, answer_to_text
from rl_shop.sim.config import SimConfig, load_sim_config
from rl_shop.sim.lexicon import answer_pairs, mine_answers


@pytest.fixture(scope="module")
def cfg() -> SimConfig:
    return load_sim_config()


PAIRS = [
    ("what is your budget?", "My budget would be $15"),
    ("and do you have a budget?", "100 dollars max"),
    ("any particular brand?", "No"),
    ("any particular brand?", "no"),
    ("is this for work?", "no"),  # not a preference question: a plain "no" is no preference only when asked for one
    ("which colour?", "I don't know"),
    ("which colour?", "i dont know"),
    ("who is it by?", "I don't know but satellite"),  # a content word: not a pure don't-know reply
    ("are you interested in reviews?", "yes i want to see reviews"),
    ("are you interested in reviews?", "Yes, I want the prices"),
    ("are you interested in reviews?", "i would like pictures"),
    ("are you interested in reviews?", "pictures of dogs"),
    ("are you interested in reviews?", "pictures of cats"),
]


def test_mine_answers_hand_counts():
    got = mine_answers(PAIRS, min_count=2)
    assert got["n_pairs"] == len(PAIRS)
    assert got["dont_know"] == {"i dont know": 2}
    assert got["no_preference"] == {"no": 2}
    assert got["budget_frames"] == {"my budget would be {x}": 1, "{x} max": 1}
    # the leading yes is not part of the lead-in; "i would like" is seen once (< min_count): dropped
    assert got["lead_ins"] == {"i want": 2, "": 3}


def test_mine_answers_min_count_one_keeps_rare_phrasings():
    got = mine_answers(PAIRS, min_count=1)
    assert got["lead_ins"]["i would like"] == 1
    assert "i dont know but satellite" not in got["dont_know"]


def test_shipped_answer_phrasings_come_from_real_replies(cfg):
    ans = cfg.lexicon["answers"]
    assert set(ans["pairs_by_source"]) == {"qulac", "clariq", "mgshopdial"}
    assert ans["n_pairs"] == sum(ans["pairs_by_source"].values()) > 20_000
    assert max(ans["dont_know"], key=ans["dont_know"].get) == "i dont know"
    assert "{x}" in next(iter(ans["budget_frames"]))


def test_answer_pairs_read_every_source(shared_data):
    pairs = answer_pairs(shared_data)
    assert len(pairs["qulac"]) > 10_000 and len(pairs["clariq"]) > 10_000
    assert 100 < len(pairs["mgshopdial"]) < 1_000  # client replies after a clarify / elicit turn only
    assert all(isinstance(q, str) and isinstance(a, str) for q, a in pairs["mgshopdial"])


def test_answer_pairs_missing_source_says_what(tmp_path):
    with pytest.raises(FileNotFoundError, match="qulac.json"):
        answer_pairs(tmp_path)


@pytest.fixture
def phrasing(cfg) -> AnswerPhrasing:
    return AnswerPhrasing.from_lexicon(cfg.lexicon)


def test_phrasing_without_mined_answers_is_a_clear_error():
    with pytest.raises(ValueError, match="answer_face=templates"):
        AnswerPhrasing.from_lexicon({"openers": {"i need": 3}})


def test_mined_status_replies_are_mined_phrasings(phrasing):
    rng = np.random.default_rng(0)
    for status in ("dont_know", "no_preference"):
        texts = {answer_to_text(SlotAnswer("colour", status), rng, phrasing) for _ in range(50)}
        assert texts <= set(getattr(phrasing, status))
    quit_text = answer_to_text(SlotAnswer("colour", "quit"), rng, phrasing)
    assert quit_text in {"Never mind, I'll look elsewhere.", "This is taking too long, bye."}


def test_mined_value_replies_carry_the_value(phrasing):
    rng = np.random.default_rng(1)
    cases = [
        (SlotAnswer("budget", "value", 150.0), "$150"),
        (SlotAnswer("brand", "value", {"prefer": ["sony"], "exclude": []}), "sony"),
        (SlotAnswer("colour", "value", "black"), "black"),
        (SlotAnswer("capacity", "value", 2000.0), "at least 2 TB"),
        (SlotAnswer("size", "value", [13.0, 15.0]), "between 13 and 15 inches"),
    ]
    leads = {lead for lead in phrasing.lead_ins if lead}
    for answer, value in cases:
        texts = [answer_to_text(answer, rng, phrasing) for _ in range(40)]
        assert all(value in t for t in texts), (answer, texts)
        if answer.slot != "budget":
            assert any(t.startswith(tuple(leads)) for t in texts) and value in texts  # lead-in or bare
    budget_texts = {answer_to_text(cases[0][0], rng, phrasing) for _ in range(60)}
    assert budget_texts == {f.replace("{x}", "$150") for f in phrasing.budget_frames}


def test_excluded_brand_reply_has_no_lead_in(phrasing):
    rng = np.random.default_rng(2)
    texts = {
        answer_to_text(SlotAnswer("brand", "value", {"prefer": [], "exclude": ["lg"]}), rng, phrasing)
        for _ in range(40)
    }
    assert texts == {t.replace("{x}", "lg") for t in phrasing.exclusions}


def test_guider_reads_mined_replies(phrasing):
    """The agent's reply reader recovers the value from every mined value reply, and never reads a
    mined don't-know / no-preference reply as a value."""
    from rl_shop.agents.demand import CatalogVocab
    from rl_shop.agents.slot_parser import parse_slot_answer

    vocab = CatalogVocab.from_catalog(tiny_catalog(), load_sim_config().knowledge)
    rng = np.random.default_rng(3)
    for _ in range(30):
        text = answer_to_text(SlotAnswer("budget", "value", 150.0), rng, phrasing)
        assert parse_slot_answer("budget", text, vocab)[1].get("budget") == 150.0, text
        text = answer_to_text(SlotAnswer("brand", "value", {"prefer": ["sony"], "exclude": []}), rng, phrasing)
        status, values = parse_slot_answer("brand", text, vocab)
        assert status == "value" and values["preferred_brands"] == ["sony"], text
        for st in ("dont_know", "no_preference"):
            status, values = parse_slot_answer("colour", answer_to_text(SlotAnswer("colour", st), rng, phrasing), vocab)
            assert status != "value" and not values


def test_shopper_face_follows_config(cfg):
    from rl_shop.sim.shopper import Shopper
    from rl_shop.sim.slots import Intent

    intent = Intent(query_type="simple", category="headphones", colour="black", stated_slots=("category",))
    render = {**cfg.render.model_dump(), "answer_face": "templates"}
    mined = Shopper(intent, tiny_catalog(), cfg, seed=0)
    templates = Shopper(intent, tiny_catalog(), load_sim_config(overrides={"render": render}), seed=0)
    assert cfg.render.answer_face == "mined" and mined.phrasing is not None and templates.phrasing is None
    # the templates are sentences; mined replies are lower-case words
    assert templates.answer_text("colour")[-1] in ".!"
    assert all(mined.answer_text("colour")[-1] not in ".!" for _ in range(3))
