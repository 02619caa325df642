"""Query and answer rendering: every type, stated constraints present, lexicon mining."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_sim_helpers import SMALL_SAMPLER, tiny_catalog

from rl_shop.sim.config import load_sim_config
from rl_shop.sim.errors import QueryTextError
from rl_shop.sim.lexicon import mine_lexicon, mine_openers
from rl_shop.sim.render import QueryRenderer, validate_query_text
from rl_shop.sim.sampler import IntentSampler
from rl_shop.sim.slots import QUERY_TYPES, Intent


@pytest.fixture(scope="module")
def cat() -> pd.DataFrame:
    return tiny_catalog()


@pytest.fixture(scope="module")
def cfg():
    return load_sim_config(overrides=SMALL_SAMPLER)


def _no_typos(it: Intent) -> Intent:
    return it.model_copy(update={"typo_rate": 0.0})


@pytest.mark.parametrize("qtype", QUERY_TYPES)
def test_every_type_renders_with_stated_constraints(cat, cfg, qtype):
    sampler = IntentSampler(cat, cfg, seed=11)
    renderer = QueryRenderer(cfg)
    rng = np.random.default_rng(0)
    texts = set()
    for _ in range(12):
        it = _no_typos(sampler.sample(qtype))
        text = renderer.render(it, rng)
        low = text.lower()
        texts.add(low)
        assert text.strip() and len(text) < 500
        if "budget" in it.stated_slots:
            assert f"${it.budget:g}" in text
        if "colour" in it.stated_slots:
            assert it.colour in low
        if "brand" in it.stated_slots:
            for b in it.preferred_brands + it.excluded_brands:
                assert b in low
        if "category" in it.stated_slots and qtype in ("simple", "multi_constraint", "negation"):
            assert it.category in low
        if "connectivity" in it.stated_slots or "features" in it.stated_slots:
            for tok in it.connectivity + it.features:
                assert tok in low
        if qtype in ("product_qa", "comparison"):
            for name in it.target_names:
                assert name.lower() in low
        if qtype == "negation":
            assert it.excluded_brands[0] in low
    assert len(texts) >= 3  # phrasings vary


def test_typos_spare_constraint_values(cat, cfg):
    renderer = QueryRenderer(cfg)
    it = Intent(
        query_type="multi_constraint",
        category="headphones",
        budget=150,
        preferred_brands=("sony",),
        features=("noise cancelling",),
        stated_slots=("category", "budget", "brand", "features"),
        typo_rate=1.0,
    )
    rng = np.random.default_rng(1)
    for _ in range(10):
        low = renderer.render(it, rng).lower()
        assert "sony" in low and "$150" in low and "noise cancelling" in low and "headphones" in low


def test_validate_query_text():
    assert validate_query_text("  hi there ") == "hi there"
    with pytest.raises(QueryTextError, match="empty"):
        validate_query_text("   ")
    with pytest.raises(QueryTextError, match="characters"):
        validate_query_text("x" * 600)
    with pytest.raises(QueryTextError, match="string"):
        validate_query_text(None)


def test_lexicon_mining_hand_counts():
    goals = [
        "i need a red mug",
        "i need some tea without sugar",
        "i am looking for a lamp in blue color",
        "Find me the sugar-free candy",
        "a cat bed",
    ]
    assert mine_openers([g.lower() for g in goals], min_count=1) == {"i need": 2, "i am looking for": 1, "find me": 1}
    lex = mine_lexicon(goals, {"g": ["red mug", "i want tea"]}, ["phones under $100", "cases for less than $20"])
    assert lex["keyword_query_share"] == 0.5
    assert lex["negation_phrasings"]["without_x"]["count"] == 1
    assert lex["negation_phrasings"]["x_free"]["count"] == 1
    assert lex["budget_phrasings"]["under"]["count"] == 1
    assert lex["budget_phrasings"]["less_than"]["count"] == 1
    assert lex["colour_phrasings"]["in_x_color"]["count"] == 1


def test_shipped_lexicon_is_loaded(cfg):
    assert cfg.lexicon["n_goals"] > 1000
    assert "i am looking for" in cfg.lexicon["openers"]


def test_shipped_lexicon_is_reproducible(shared_data, tmp_path):
    """Re-mining the real data gives exactly the shipped configs/sim/lexicon.yaml."""
    import yaml

    from rl_shop.paths import CONFIG_DIR
    from rl_shop.sim.lexicon import write_lexicon

    out = write_lexicon(tmp_path / "lexicon.yaml", data_dir=shared_data)
    assert yaml.safe_load(out.read_text()) == yaml.safe_load((CONFIG_DIR / "sim" / "lexicon.yaml").read_text())
