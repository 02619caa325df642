"""IntentSampler: every type, non-empty gold sets, the paper's mix and seed determinism."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest
from test_sim_helpers import SMALL_SAMPLER, tiny_catalog

from rl_shop.sim.config import load_sim_config
from rl_shop.sim.constraints import gold_ids
from rl_shop.sim.errors import ConfigError
from rl_shop.sim.sampler import IntentSampler, nice_ceil
from rl_shop.sim.slots import QUERY_TYPES


@pytest.fixture(scope="module")
def cat() -> pd.DataFrame:
    return tiny_catalog()


@pytest.fixture(scope="module")
def cfg():
    return load_sim_config(overrides=SMALL_SAMPLER)


@pytest.mark.parametrize("qtype", QUERY_TYPES)
def test_every_type_has_nonempty_gold(cat, cfg, qtype):
    sampler = IntentSampler(cat, cfg, seed=3)
    for _ in range(15):
        intent = sampler.sample(qtype)
        assert intent.query_type == qtype
        assert gold_ids(cat, intent), intent


def test_negation_excludes_frequent_brand(cat, cfg):
    sampler = IntentSampler(cat, cfg, seed=1)
    for _ in range(20):
        it = sampler.sample("negation")
        (brand,) = it.excluded_brands
        in_cat = cat[cat.category == it.category]
        share = (in_cat.brand == brand).mean()
        assert share >= cfg.sampler.negation_min_brand_share
        assert brand not in set(cat.set_index("product_id").loc[gold_ids(cat, it), "brand"])
        assert "brand" in it.stated_slots


def test_multi_constraint_has_two_to_four_constraints(cat, cfg):
    sampler = IntentSampler(cat, cfg, seed=2)
    for _ in range(30):
        it = sampler.sample("multi_constraint")
        extra = [s for s in it.constrained_slots() if s != "category"]
        assert 2 <= len(extra) <= 4
        assert set(extra) <= set(it.stated_slots)


def test_consultative_types(cat, cfg):
    sampler = IntentSampler(cat, cfg, seed=4)
    by_id = cat.set_index("product_id")
    for _ in range(20):
        comp = sampler.sample("comparison")
        assert 2 <= len(comp.target_product_ids) <= 3
        assert set(gold_ids(cat, comp)) == set(comp.target_product_ids)
        assert len({by_id.loc[p, "category"] for p in comp.target_product_ids}) == 1
        qa = sampler.sample("product_qa")
        (pid,) = qa.target_product_ids
        row = by_id.loc[pid]
        expected = {
            "price": f"${row.price:.2f}",
            "brand": row.brand,
            "colour": row.colour,
            "capacity": f"{row.capacity_gb:g} GB",
            "size": f"{row.size_in:g} inches",
            "connectivity": ", ".join(row.connectivity),
        }[qa.qa_field]
        assert qa.gold_answer == expected


def test_reasoning_uses_knowledge_table(cat, cfg):
    sampler = IntentSampler(cat, cfg, seed=5)
    rules = {r["use_case"]: r for r in cfg.knowledge["reasoning"]}
    for _ in range(20):
        it = sampler.sample("reasoning")
        assert it.use_case in rules and it.stated_slots == ("use_case",)
        assert "category" in it.hidden_slots
        assert any(k in it.category for k in rules[it.use_case]["categories"])
    running = [sampler.sample("reasoning") for _ in range(200)]
    run = [it for it in running if it.use_case == "running"]
    assert run and all(set(gold_ids(cat, it)) <= {"h2", "h5"} for it in run)  # wireless + water resistant


def test_mix_matches_paper(cat, cfg):
    sampler = IntentSampler(cat, cfg, seed=0)
    counts = Counter(sampler.sample_type() for _ in range(6000))
    simple = counts["simple"] / 6000
    complex_ = sum(counts[t] for t in ("reasoning", "multi_constraint", "negation", "ambiguous")) / 6000
    consult = sum(counts[t] for t in ("product_qa", "comparison", "general_qa")) / 6000
    assert abs(simple - 0.30) < 0.03 and abs(complex_ - 0.50) < 0.03 and abs(consult - 0.20) < 0.03


def test_seed_determinism(cat, cfg):
    a = [i.to_json() for i in IntentSampler(cat, cfg, seed=9).sample_many(30)]
    b = [i.to_json() for i in IntentSampler(cat, cfg, seed=9).sample_many(30)]
    c = [i.to_json() for i in IntentSampler(cat, cfg, seed=10).sample_many(30)]
    assert a == b and a != c


def test_bad_inputs(cat, cfg):
    with pytest.raises(ConfigError, match="min_category_size"):
        IntentSampler(cat, load_sim_config(overrides={"sampler": {"min_category_size": 500}}))
    with pytest.raises(ValueError, match="unknown query type"):
        IntentSampler(cat, cfg).sample("haiku")
    with pytest.raises(ConfigError, match="mix"):
        load_sim_config(overrides={"mix": {"simple": 1.0, "poetry": 1.0}})


def test_nice_ceil_hand_values():
    assert nice_ceil(37.2) == 40 and nice_ceil(123) == 150 and nice_ceil(8.4) == 8.5 and nice_ceil(40) == 40


def test_min_gold_size_is_respected(cat):
    cfg = load_sim_config(overrides={"sampler": {**SMALL_SAMPLER["sampler"], "min_gold_size": {"negation": 4}}})
    sampler = IntentSampler(cat, cfg, seed=0)
    for _ in range(20):
        assert len(gold_ids(cat, sampler.sample("negation"))) >= 4


@pytest.mark.slow
def test_real_catalog_all_types():
    """Default config on the shipped catalog: every type samples, gold sets meet the minimum."""
    from rl_shop.catalog import DEFAULT_CATALOG_PATH, load_catalog

    if not DEFAULT_CATALOG_PATH.is_file():
        pytest.skip("shipped catalog not built yet")
    catalog = load_catalog()
    cfg = load_sim_config()
    sampler = IntentSampler(catalog, cfg, seed=0)
    for qtype in QUERY_TYPES:
        for _ in range(5):
            it = sampler.sample(qtype)
            assert len(gold_ids(catalog, it)) >= cfg.sampler.min_gold_size.get(qtype, 1)
