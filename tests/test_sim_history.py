"""Behaviour histories reflect the persona and are seeded."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest
from test_sim_helpers import tiny_catalog

from rl_shop.sim.config import load_sim_config
from rl_shop.sim.history import EVENT_KINDS, generate_history, history_frame
from rl_shop.sim.slots import Intent


@pytest.fixture(scope="module")
def cat() -> pd.DataFrame:
    return tiny_catalog()


def test_history_consistent_with_persona(cat):
    cfg = load_sim_config()
    it = Intent(query_type="simple", category="laptops", preferred_brands=("hp",), budget=1300.0)
    events = []
    for seed in range(40):
        events += generate_history(it, cat, cfg, seed=seed)
    df = history_frame(events)
    assert set(df.kind) <= set(EVENT_KINDS)
    by_id = cat.set_index("product_id")
    views = df[df.kind == "view"]
    cats = by_id.loc[views.product_id, "category"]
    assert (cats == "laptops").mean() > 0.6
    laptop_brands = Counter(by_id.loc[views.product_id[cats.to_numpy() == "laptops"], "brand"])
    # hp holds 2 of 6 laptops (33%); preference weight 4 should lift it well above that
    assert laptop_brands["hp"] / sum(laptop_brands.values()) > 0.5
    purchases = df[df.kind == "purchase"]
    assert len(purchases) > 0 and (by_id.loc[purchases.product_id, "category"] == "laptops").all()


def test_history_ordered_and_seeded(cat):
    it = Intent(query_type="simple", category="mice")
    a = generate_history(it, cat, seed=5)
    b = generate_history(it, cat, seed=5)
    c = generate_history(it, cat, seed=6)
    assert a == b and a != c
    times = [e.t for e in a]
    assert times == sorted(times)
    # a purchase is always preceded by add_to_cart of the same product
    for i, e in enumerate(a):
        if e.kind == "purchase":
            assert a[i - 1].kind == "add_to_cart" and a[i - 1].product_id == e.product_id


def test_history_bad_category(cat):
    from rl_shop.sim.errors import UnknownCategoryError

    with pytest.raises(UnknownCategoryError, match="toasters"):
        generate_history(Intent(query_type="simple", category="toasters"), cat)
    with pytest.raises(UnknownCategoryError, match="use-case"):
        generate_history(Intent(query_type="reasoning", category="mice", use_case_categories=("toasters",)), cat)
