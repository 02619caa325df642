"""Shopper: answers, noise rates, patience, click model and abandonment statistics (seeded)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from test_sim_helpers import tiny_catalog

from rl_shop.sim.answer_text import SlotAnswer
from rl_shop.sim.config import load_sim_config
from rl_shop.sim.shopper import Shopper, abandon_probability
from rl_shop.sim.slots import Intent


@pytest.fixture(scope="module")
def cat() -> pd.DataFrame:
    return tiny_catalog()


@pytest.fixture(scope="module")
def cfg():
    return load_sim_config()


def _intent(**kw) -> Intent:
    base = dict(
        query_type="multi_constraint",
        category="headphones",
        budget=150.0,
        preferred_brands=("sony",),
        stated_slots=("category", "budget", "brand"),
        hidden_slots=(),
        patience=20,
        p_dont_know=0.0,
        p_wrong=0.0,
        latency_tolerance_s=5.0,
    )
    return Intent(**{**base, **kw})


def test_noise_free_answers(cat, cfg):
    sh = Shopper(_intent(), cat, cfg, seed=0)
    assert sh.answer("budget").value == 150.0
    assert sh.answer("brand").value == {"prefer": ["sony"], "exclude": []}
    assert sh.answer("colour").status == "no_preference"
    assert sh.answer("category").value == "headphones"
    assert sh.patience_left == 16


def test_dont_know_and_wrong_rates(cat, cfg):
    n = 3000
    it = _intent(p_dont_know=0.2, p_wrong=0.25, stated_slots=("category", "budget"), hidden_slots=("brand",))
    sh = Shopper(it.model_copy(update={"patience": n}), cat, cfg, seed=1)
    answers = [sh.answer("budget") for _ in range(n)]
    dk = sum(a.status == "dont_know" for a in answers) / n
    wrong = [a for a in answers if a.noisy]
    assert abs(dk - 0.2) < 0.03
    assert abs(len(wrong) / n - 0.8 * 0.25) < 0.03
    assert all(a.value != 150.0 for a in wrong)
    # hidden slots are known less well: base 0.2 + hidden bonus
    sh2 = Shopper(it.model_copy(update={"patience": n}), cat, cfg, seed=2)
    dk_hidden = sum(sh2.answer("brand").status == "dont_know" for _ in range(n)) / n
    assert abs(dk_hidden - (0.2 + cfg.shopper.p_dont_know_hidden_bonus)) < 0.03


def test_patience_runs_out(cat, cfg):
    sh = Shopper(_intent(patience=2), cat, cfg, seed=0)
    assert sh.answer("budget").status == "value"
    assert sh.answer("brand").status == "value"
    assert not sh.quit
    assert sh.answer("colour").status == "quit" and sh.quit
    assert sh.answer("budget").status == "quit"


def test_answer_text_language_face(cat, cfg):
    sh = Shopper(_intent(), cat, cfg, seed=0)
    assert "150" in sh.answer_text("budget")
    assert "sony" in sh.answer_text("brand")
    with pytest.raises(ValueError, match="unknown slot"):
        sh.answer("flavour")


def test_click_model_statistics(cat, cfg):
    # gold = sony headphones <= $150 = {h1, h2}; h4 koss is not gold
    sh = Shopper(_intent(), cat, cfg, seed=3)
    n = 4000
    clicks = np.zeros(3)
    for _ in range(n):
        r = sh.react(["h1", "h2", "h4"], latency_s=0.0)
        clicks += [p in r.clicks for p in ("h1", "h2", "h4")]
    rate = clicks / n
    c = cfg.shopper.click
    a_rel, a_irr = c.attractiveness_relevant, c.attractiveness_irrelevant
    # h4 satisfies category + budget but not brand: graded relevance 2/3
    a_h4 = a_irr + (a_rel - a_irr) * (2 / 3) ** 2
    expected = np.array([a_rel / 1, a_rel / 2, a_h4 / 3])
    assert np.allclose(rate, expected, atol=0.03), (rate, expected)


def test_purchase_reformulate_abandon(cat, cfg):
    sh = Shopper(_intent(), cat, cfg, seed=4)
    reactions = [sh.react(["h1", "h2"], 0.0) for _ in range(2000)]
    assert any(r.purchased in ("h1", "h2") for r in reactions)
    assert not any(r.reformulate for r in reactions)
    bad = [sh.react(["h3", "h4", "m1"], 0.0) for _ in range(2000)]
    assert all(r.purchased is None for r in bad)
    assert abs(np.mean([r.reformulate for r in bad]) - cfg.shopper.p_reformulate) < 0.03
    slow = [sh.react(["h1"], 10.0) for _ in range(3000)]
    expected = 1 - math.exp(-(10.0 - 5.0) / cfg.shopper.abandon_scale_s)
    assert abs(np.mean([r.abandon for r in slow]) - expected) < 0.03
    assert all(not r.clicks for r in slow if r.abandon)


def test_abandon_probability_hand_values():
    assert abandon_probability(3.0, 5.0, 0.0, 5.0) == 0.0
    assert abandon_probability(10.0, 5.0, 0.0, 5.0) == pytest.approx(1 - math.exp(-1))
    assert abandon_probability(10.0, 5.0, 0.5, 5.0) == pytest.approx(1 - 0.5 * math.exp(-1))
    with pytest.raises(ValueError, match="latency"):
        abandon_probability(-1.0, 5.0, 0.0, 5.0)


def test_unknown_product_in_ranking(cat, cfg):
    sh = Shopper(_intent(), cat, cfg, seed=0)
    with pytest.raises(ValueError, match="not in the catalog"):
        sh.react(["nope"], 0.0)


def test_answer_to_text_every_status():
    from rl_shop.sim.answer_text import SlotAnswer, answer_to_text

    rng = np.random.default_rng(0)
    for status in ("quit", "dont_know", "no_preference"):
        assert answer_to_text(SlotAnswer("colour", status), rng).strip()
    assert "64 GB" in answer_to_text(SlotAnswer("capacity", "value", 64.0), rng)
    assert "2 TB" in answer_to_text(SlotAnswer("capacity", "value", 2000.0), rng)
    text = answer_to_text(SlotAnswer("size", "value", [13.0, 15.0]), rng)
    assert "13" in text and "15" in text
    assert "kingston" in answer_to_text(SlotAnswer("brand", "value", {"prefer": [], "exclude": ["kingston"]}), rng)


def test_shortlist_confirmed_or_a_hidden_slot_volunteered(cat, cfg):
    """The Clarify env's ``suggest`` on the language face: a shortlist whose gold share reaches the
    threshold is confirmed; otherwise she volunteers a relevant slot not yet revealed, uniformly,
    with its true value; with none left she rejects it with nothing to add."""
    from rl_shop.sim.slots import SUGGESTION

    it = _intent(stated_slots=("category",), hidden_slots=())  # budget, brand unsaid; gold: sony <= $150: h1, h2, h6
    sh = Shopper(it, cat, cfg, seed=0)
    assert sh.suggestion(["h1", "h2", "h6", "h3"], 0.5) is None  # 3 of 4 gold
    assert sh.suggestion(["h1", "h3", "h4"], 0.5) is not None  # 1 of 3: rejected
    volunteered = Counter()
    for seed in range(400):
        ans = Shopper(it, cat, cfg, seed=seed).suggestion(["h3"], 0.5)
        assert ans.status == "value" and ans.value == it.slot_value(ans.slot)
        volunteered[ans.slot] += 1
    assert set(volunteered) == {"budget", "brand"} and abs(volunteered["budget"] / 400 - 0.5) < 0.08
    sh = Shopper(it, cat, cfg, seed=3)
    sh.answer("budget"), sh.answer("brand")  # both revealed by answers
    assert sh.suggestion(["h3"], 0.5) == SlotAnswer(SUGGESTION, "no_preference")
    tired = Shopper(it.model_copy(update={"patience": 1}), cat, cfg, seed=0)
    tired.suggestion(["h3"], 0.5)
    assert tired.suggestion(["h3"], 0.5).status == "quit" and tired.quit


def test_shortlist_reply_text_both_faces(cat, cfg):
    from rl_shop.sim.slots import SUGGESTION

    it = _intent(stated_slots=("category", "budget"), hidden_slots=("brand",))
    mined = Shopper(it, cat, cfg, seed=0)
    assert mined.reply(SUGGESTION, ["h1", "h2"], 0.5) == "yes"
    text = mined.reply(SUGGESTION, ["h3"], 0.5)
    assert text.startswith("no, ") and "sony" in text
    render = {**cfg.render.model_dump(), "answer_face": "templates"}
    old = Shopper(it, cat, load_sim_config(overrides={"render": render}), seed=0)
    assert old.reply(SUGGESTION, ["h1"], 0.5) == "Yes, one of those works."
    assert old.reply(SUGGESTION, ["h3"], 0.5).startswith("None of those. ")
    assert mined.reply("colour", (), 0.5) in set(mined.phrasing.no_preference)  # a slot question: answer_text
