"""The open-world front end inside the MACDF loop: real phrasing fills the demand the closed
rule parse missed, and a product type the catalog lacks gets a plain "not carried" answer."""

from __future__ import annotations

import pytest
from test_agents_runtime import assistant, sub_index

from rl_shop.agents.demand import CatalogVocab, enrich, rule_parse
from rl_shop.agents.understanding import Understander

pytestmark = pytest.mark.slow


def _vocab_and_reader():
    sub, _ = sub_index()
    from rl_shop.sim import load_sim_config

    return CatalogVocab.from_catalog(sub, load_sim_config().knowledge), Understander.from_catalog(sub)


def test_webshop_budget_and_brand_exclusion_reach_the_demand() -> None:
    vocab, reader = _vocab_and_reader()
    brand = sorted(vocab.brand_set)[0]
    text = f"i need headphones, not {brand}, and price lower than 40.00 dollars"
    before = rule_parse(text, vocab)
    after = enrich(before, reader.parse(text), vocab)
    assert before.budget != 40.0  # the closed parser misses WebShop's own phrasing
    assert after.budget == 40.0 and after.sources["budget"] == "understanding"
    assert brand in after.excluded_brands and brand not in after.preferred_brands


def test_product_type_the_catalog_lacks_gets_a_plain_answer() -> None:
    a = assistant()
    res = a.run("i am looking for an eye cream for fine lines")
    assert res.products == []
    assert "does not carry" in res.answer and "eye cream" in res.answer
    assert any(step.action == "open_world" for step in res.trace)


def test_a_short_request_for_an_uncarried_type_is_answered_not_asked() -> None:
    """Real_v1 dev requests such as "hair glitter" are typed ambiguous (a human would ask what
    kind); when the catalog lacks the type, a question would only waste the shopper's turn."""
    a = assistant()
    asked: list[str] = []
    res = a.run("hair glitter", answer_fn=lambda slot, question, shown: asked.append(question) or "no preference")
    assert asked == [] and res.products == []
    assert "does not carry" in res.answer and "hair glitter" in res.answer


def test_a_question_about_an_uncarried_type_is_not_refused() -> None:
    a = assistant()
    res = a.run("what is the best eye cream for fine lines?")
    assert "does not carry" not in res.answer
    assert not any(step.action == "open_world" for step in res.trace)


def test_open_world_off_keeps_the_old_behaviour() -> None:
    a = assistant("runtime.open_world=false")
    res = a.run("i am looking for an eye cream for fine lines")
    assert "does not carry" not in res.answer


def test_the_readings_catalog_category_replaces_the_rule_parse_one() -> None:
    from types import SimpleNamespace

    vocab, _ = _vocab_and_reader()
    text = "i need headphones for my laptop"
    before = rule_parse(text, vocab)
    other = next(c for c in sorted(vocab.category_set) if c != before.category)
    reading = SimpleNamespace(
        budget_max=None,
        budget_min=None,
        excluded_brands=[],
        in_catalog=True,
        category=other,
        product_type="headphones",
        query_type="simple",
        is_question=False,
    )
    after = enrich(before, reading, vocab)
    assert after.category == other and after.sources["category"] == "understanding"
    unknown = SimpleNamespace(**{**vars(reading), "category": "no such category"})
    assert enrich(before, unknown, vocab).category == before.category  # only a catalog category replaces it


def test_a_category_outside_the_stated_use_case_does_not_replace_the_rule_one() -> None:
    """eccd_v2 "Im looking for a good pick to keep office documents organized": the rules find the
    use case (printers, shredders, ...), the reading the category "filing & organization"; taking
    the reading's left no candidate, and the Guider stopped without a question."""
    from types import SimpleNamespace

    vocab, _ = _vocab_and_reader()
    cats = sorted(vocab.category_set)
    before = rule_parse("a good pick to keep office documents organized", vocab).model_copy(
        update={"category": None, "use_case_categories": cats[:2]}
    )
    reading = SimpleNamespace(
        budget_max=None,
        budget_min=None,
        excluded_brands=[],
        in_catalog=True,
        category=cats[2],
        product_type="documents organized",
        query_type="simple",
        is_question=False,
    )
    assert enrich(before, reading, vocab).category is None
    inside = SimpleNamespace(**{**vars(reading), "category": cats[1]})
    assert enrich(before, inside, vocab).category == cats[1]
