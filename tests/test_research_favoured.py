"""What a behaviour history favours (colour, features, connectivity): the simulator writes it into
the history, the User Agent reads it back, and the Research Agent searches and cites within it
first, falling back to the request alone (tiny catalogs, scripted test double, no model)."""

from __future__ import annotations

from collections import Counter

import pytest
from research_fixtures import WordOverlapIndex, tiny_web_backend
from research_fixtures import tiny_catalog as research_catalog
from test_llm_scripted import ScriptedLLM
from test_sim_helpers import tiny_catalog as sim_catalog

from rl_shop.catalog.filters import SearchFilters
from rl_shop.research.history_profile import avoided_brands, favoured_attributes
from rl_shop.research.intent_shift import updated_inferred
from rl_shop.research.limits import preferred_filters, request_filters
from rl_shop.research.tools import ResearchTools
from rl_shop.research.trajectory import InferredIntent, ToolCall
from rl_shop.research.user_agent import UserAgent, UserAgentConfig
from rl_shop.sim import Intent
from rl_shop.sim.config import load_sim_config
from rl_shop.sim.history import generate_history

PROFILE = {"min_share": 0.5, "min_gain": 0.2, "min_products": 3}


def _events(*kind_and_ids: tuple[str, str]) -> list[dict[str, object]]:
    return [
        {"t": float(i), "kind": k, "product_id": p, "session": 0, "noise": False}
        for i, (k, p) in enumerate(kind_and_ids)
    ]


def _silver_share(attribute_weight: float) -> float:
    """Share of silver laptops among the in-category views of 40 seeded histories of a persona who
    wants a silver laptop (3 of the 6 laptops are silver)."""
    cfg = load_sim_config()
    cfg = cfg.model_copy(
        update={"history": cfg.history.model_copy(update={"attribute_preference_weight": attribute_weight})}
    )
    cat = sim_catalog()
    colour = dict(zip(cat.product_id, cat.colour))
    category = dict(zip(cat.product_id, cat.category))
    persona = Intent(query_type="simple", category="laptops", colour="silver")
    views = [
        e.product_id
        for seed in range(40)
        for e in generate_history(persona, cat, cfg, seed=seed)
        if e.kind == "view" and category[e.product_id] == "laptops"
    ]
    return Counter(colour[p] for p in views)["silver"] / len(views)


def test_the_history_over_represents_the_personas_attributes() -> None:
    # weight 4: silver laptops weigh 4 * 3 against 3 black ones, an expected share of 0.8
    assert _silver_share(4.0) > 0.7
    # weight 1: the colour leaves no trace (an expected share of 0.5)
    assert 0.4 < _silver_share(1.0) < 0.6


def test_favoured_attributes_beat_the_categorys_own_share() -> None:
    cat = sim_catalog()
    # three silver laptops with backlit keyboards (l2 has none) and one black one with a backlit keyboard
    events = _events(("view", "l2"), ("view", "l3"), ("click", "l6"), ("view", "l1"))
    got = favoured_attributes(events, cat, "laptops", **PROFILE)
    # silver: 4/5 of the weight (l2 1, l3 1, l6 2) against 3/6 laptops; backlit: 4/5 against 3/6;
    # wifi is on every laptop (gain 0) and bluetooth on 4/6 (share 4/5, gain 0.13 < 0.2)
    # dell (l2, l1): 2/5 of the weight; hp (l3) 1/5; apple (l6) 2/5: none reaches min_share 0.5
    assert got.colour == "silver" and got.features == ("backlit keyboard",) and got.connectivity == ()
    assert got.brands == () and got.words() == ["silver", "backlit keyboard"]
    # a click on the other dell: dell holds 4/7 of the weight against 2/6 of the laptops
    assert favoured_attributes([*events, *_events(("click", "l2"))], cat, "laptops", **PROFILE).brands == ("dell",)
    # a purchase outweighs views: a bought black laptop leaves silver at 4/11 of the weight
    assert favoured_attributes([*events, *_events(("purchase", "l4"))], cat, "laptops", **PROFILE).colour is None
    # too few distinct products of the category, or a category the history never touched
    assert favoured_attributes(events, cat, "laptops", **{**PROFILE, "min_products": 5}).words() == []
    assert favoured_attributes(events, cat, "mice", **PROFILE).words() == []


def test_a_brand_is_avoided_when_its_shelf_share_makes_missing_it_unlikely() -> None:
    cat = sim_catalog()
    # headphones: 7 products, sony 3 of them (h1, h2, h6); bose, koss, jbl and an unbranded one 1 each
    views = ["h4", "h5", "h3", "h4", "h5", "h3", "h7"]
    events = _events(*(("view", p) for p in views))
    # 7 views without a sony: (1 - 3/7) ** 7 = 0.020 <= 0.1; every other branded one was viewed
    assert avoided_brands(events, cat, "headphones", max_chance=0.1) == ("sony",)
    # 3 views: (4/7) ** 3 = 0.187, not unlikely enough at 0.1, enough at 0.2
    assert avoided_brands(events[:3], cat, "headphones", max_chance=0.1) == ()
    assert avoided_brands(events[:3], cat, "headphones", max_chance=0.2) == ("sony",)
    # only views count (a click follows a view), other categories do not, and 0 turns the rule off
    assert avoided_brands(_events(("click", "h4"), ("view", "m1")), cat, "headphones", max_chance=0.9) == ()
    assert avoided_brands(events, cat, "headphones", max_chance=0.0) == ()


def test_a_search_or_citation_that_the_preference_empties_falls_back_to_the_request() -> None:
    cat = research_catalog()
    tools = ResearchTools(cat, WordOverlapIndex(cat), tiny_web_backend())
    quiet = InferredIntent(category="headphones", features=["noise cancelling"], query="q")
    assert request_filters(quiet) == SearchFilters(categories=frozenset({"headphones"}))
    assert preferred_filters(quiet) == SearchFilters(
        categories=frozenset({"headphones"}), features=frozenset({"noise cancelling"})
    )
    assert preferred_filters(InferredIntent(category="headphones", query="q")) is None
    everything = ["amz-000004", "amz-000003", "amz-000002", "amz-000001"]
    assert tools.admitted(everything, request_filters(quiet), preferred_filters(quiet)) == ["amz-000002"]
    # no headphones in the tiny catalog are water resistant: the preference yields to the request
    wet = InferredIntent(category="headphones", features=["water resistant"], query="q")
    assert tools.admitted(everything, request_filters(wet), preferred_filters(wet)) == everything[1:]
    call = ToolCall(id="c0", name="product_search", arguments={"query": "headphones"})
    assert tools.execute(call, request_filters(quiet), preferred_filters(quiet)).product_ids == ["amz-000002"]
    assert set(tools.execute(call, request_filters(wet), preferred_filters(wet)).product_ids) == set(everything[1:])


def test_a_new_use_case_makes_its_features_stated_limits_and_keeps_the_favoured_ones() -> None:
    reading = InferredIntent(category="headphones", colour="black", connectivity=["bluetooth"], query="q")
    old = Intent(query_type="simple", category="headphones")
    new = Intent.model_validate({**old.model_dump(), "use_case": "flights", "features": ("noise cancelling",)})
    r = updated_inferred(reading, old, new, "I now need it for flights, so it must be noise cancelling.")
    assert r.stated_features == ["noise cancelling"] and r.stated_connectivity == []
    assert r.colour == "black" and r.connectivity == ["bluetooth"] and not r.budget_stated
    assert request_filters(r) == SearchFilters(
        categories=frozenset({"headphones"}), features=frozenset({"noise cancelling"})
    )


def test_a_brand_exclusion_drops_the_brand_from_the_favoured_ones() -> None:
    cat = research_catalog()
    tools = ResearchTools(cat, WordOverlapIndex(cat), tiny_web_backend())
    everything = ["amz-000004", "amz-000003", "amz-000002", "amz-000001"]
    reading = InferredIntent(category="headphones", favoured_brands=["bose", "sony"], query="q")
    assert tools.admitted(everything, request_filters(reading), preferred_filters(reading)) == everything[2:]
    old = Intent(query_type="simple", category="headphones")
    no_bose = Intent.model_validate({**old.model_dump(), "excluded_brands": ("bose",)})
    r = updated_inferred(reading, old, no_bose, "no bose please")
    assert r.favoured_brands == ["sony"] and r.excluded_brands == ["bose"]
    assert tools.admitted(everything, request_filters(r), preferred_filters(r)) == ["amz-000001"]


REPLY = '{"category":"headphones","budget":null,"brands":[],"query":"quiet headphones for my commute"}'


@pytest.mark.parametrize("read", [True, False])
def test_the_user_agent_reads_the_favoured_attributes_and_says_them_to_the_model(read: bool) -> None:
    events = _events(("view", "amz-000001"), ("view", "amz-000003"), ("purchase", "amz-000002"))
    llm = ScriptedLLM([REPLY])
    cfg = UserAgentConfig(read_favoured=read)
    reading = UserAgent(llm, research_catalog(), cfg).infer(events, seed=0)
    prompt = llm.calls[0]["messages"][-1]["content"]
    if read:  # the bose (noise cancelling): 6 of 8 of the weight, 1 of the 3 headphones
        assert reading.favoured_brands == ["bose"] and reading.features == ["noise cancelling"]
        assert reading.colour is None  # all three are black
        assert "Most of their headphones activity is on: bose, noise cancelling." in prompt
    else:
        assert reading.favoured_brands == [] and reading.features == [] and "Most of their" not in prompt
    assert reading.query == "quiet headphones for my commute" and not reading.used_fallback


@pytest.mark.parametrize(
    ("mouse_event", "min_share", "offered"),
    [
        ("view", 0.1, ["headphones"]),  # the mouse view: 1 of 11 of the weight, under 0.1
        ("view", 0.0, ["headphones", "mice"]),  # no floor: every category the history touched
        ("click", 0.1, ["headphones", "mice"]),  # a mouse click: 2 of 12, over 0.1
    ],
)
def test_the_category_menu_leaves_out_stray_categories(mouse_event: str, min_share: float, offered: list[str]) -> None:
    # headphones: a purchase (6), a click (2) and two views (1 + 1) = 10
    events = _events(
        ("purchase", "amz-000002"),
        ("click", "amz-000001"),
        ("view", "amz-000001"),
        ("view", "amz-000003"),
        (mouse_event, "amz-000004"),
    )
    llm = ScriptedLLM([REPLY])
    UserAgent(llm, research_catalog(), UserAgentConfig(category_min_share=min_share)).infer(events, seed=0)
    assert llm.calls[0]["json_schema"]["properties"]["category"]["enum"] == offered


@pytest.mark.parametrize(("max_chance", "avoided"), [(0.1, ["sony"]), (0.0, [])])
def test_the_user_agent_reads_the_avoided_brands_and_the_research_agent_leaves_them_out_first(
    max_chance: float, avoided: list[str]
) -> None:
    cat = research_catalog()
    # six headphone views, none of the sony (1 of the 3 headphones): (2/3) ** 6 = 0.088 <= 0.1
    events = _events(*(("view", p) for p in ["amz-000002", "amz-000003"] * 3))
    cfg = UserAgentConfig(avoided_max_chance=max_chance, read_favoured=False)
    reading = UserAgent(ScriptedLLM([REPLY]), cat, cfg).infer(events, seed=0)
    assert reading.avoided_brands == avoided
    tools = ResearchTools(cat, WordOverlapIndex(cat), tiny_web_backend())
    everything = ["amz-000004", "amz-000003", "amz-000002", "amz-000001"]
    admitted = tools.admitted(everything, request_filters(reading), preferred_filters(reading))
    assert admitted == (["amz-000003", "amz-000002"] if avoided else everything[1:])
    # the preference yields when it would leave nothing: only the sony is offered
    assert tools.admitted(["amz-000001"], request_filters(reading), preferred_filters(reading)) == ["amz-000001"]
