"""Benchmark build / write / load: determinism, counts, card and clear errors on bad files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf
from test_sim_helpers import SMALL_SAMPLER, tiny_catalog

from rl_shop.paths import CONFIG_DIR, REPO_ROOT
from rl_shop.sim.benchmark import (
    DEFAULT_BENCHMARK,
    build_benchmark,
    catalog_hash,
    check_catalog_matches,
    load_benchmark,
    load_card,
    type_counts,
    write_benchmark,
)
from rl_shop.sim.config import load_sim_config
from rl_shop.sim.constraints import gold_ids
from rl_shop.sim.errors import BenchmarkFileError, ConfigError
from rl_shop.sim.slots import QUERY_TYPES


@pytest.fixture(scope="module")
def cat() -> pd.DataFrame:
    return tiny_catalog()


@pytest.fixture(scope="module")
def cfg():
    return load_sim_config(overrides=SMALL_SAMPLER)


def _write(cat, cfg, path: Path, seed: int, size: int = 40) -> Path:
    items = build_benchmark(cat, cfg, size, seed)
    write_benchmark(items, path, {"version": "t", "seed": seed, "catalog_hash": catalog_hash(cat)})
    return path


def test_same_seed_same_bytes_different_seed_differs(cat, cfg, tmp_path):
    a = _write(cat, cfg, tmp_path / "a.jsonl", seed=1).read_bytes()
    b = _write(cat, cfg, tmp_path / "b.jsonl", seed=1).read_bytes()
    c = _write(cat, cfg, tmp_path / "c.jsonl", seed=2).read_bytes()
    assert a == b and a != c


def test_roundtrip_counts_and_gold(cat, cfg, tmp_path):
    path = _write(cat, cfg, tmp_path / "b.jsonl", seed=3, size=80)
    items = load_benchmark(path)
    assert len(items) == 80 and len({i.id for i in items}) == 80
    assert {t: sum(i.query_type == t for i in items) for t in QUERY_TYPES} == {t: 10 for t in QUERY_TYPES}
    for it in items:
        assert list(it.gold_product_ids) == gold_ids(cat, it.intent)
        assert it.query_type == it.intent.query_type
        if it.query_type in ("product_qa", "general_qa"):
            assert it.gold_answer
    card = load_card(path)
    assert card["n_queries"] == 80 and card["counts"]["negation"] == 10
    check_catalog_matches(card, cat)
    other = cat.assign(price=cat.price * 2)
    with pytest.raises(BenchmarkFileError, match="regenerate"):
        check_catalog_matches(card, other)


def test_type_counts():
    assert type_counts(10, "balanced", {}) == dict(zip(QUERY_TYPES, [2, 2, 1, 1, 1, 1, 1, 1]))
    mix = load_sim_config().mix_probabilities()
    counts = type_counts(1000, "mix", mix)
    assert sum(counts.values()) == 1000 and counts["simple"] == 300
    with pytest.raises(ConfigError):
        type_counts(10, "weird", mix)


def test_bad_files(tmp_path):
    with pytest.raises(BenchmarkFileError, match="not found"):
        load_benchmark(tmp_path / "missing.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(BenchmarkFileError, match="empty"):
        load_benchmark(empty)
    corrupt = tmp_path / "corrupt.jsonl"
    corrupt.write_text('{"id": "x", "query": \n')
    with pytest.raises(BenchmarkFileError, match="corrupt.jsonl:1 is not valid JSON"):
        load_benchmark(corrupt)
    partial = tmp_path / "partial.jsonl"
    partial.write_text(json.dumps({"id": "x", "query": "hi"}) + "\n")
    with pytest.raises(BenchmarkFileError, match="lacks field"):
        load_benchmark(partial)


def test_hydra_app_run(cat, tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO_ROOT / "experiments"))
    try:
        import make_benchmark
    finally:
        sys.path.pop(0)
    monkeypatch.setattr(make_benchmark, "_load_catalog", lambda path: cat)
    base = OmegaConf.load(CONFIG_DIR / "benchmark_build" / "default.yaml")
    base.pop("hydra")
    cfg = OmegaConf.merge(base, {"size": 16, "seed": 5, "output": str(tmp_path / "x.jsonl")})
    monkeypatch.setattr(make_benchmark, "load_sim_config", lambda p: load_sim_config(p, overrides=SMALL_SAMPLER))
    jsonl, card = make_benchmark.run(cfg)
    assert len(load_benchmark(jsonl)) == 16
    assert json.loads(card.read_text())["catalog_hash"] == catalog_hash(cat)


@pytest.mark.slow
def test_shipped_benchmark_matches_shipped_catalog():
    """The shipped file's gold sets are exactly what the shipped catalog says today."""
    if not DEFAULT_BENCHMARK.is_file():
        pytest.skip("shipped benchmark not built yet")
    from rl_shop.catalog import load_catalog

    catalog = load_catalog()
    items = load_benchmark()
    card = load_card()
    check_catalog_matches(card, catalog)
    assert card["n_queries"] == len(items) == 800
    assert {t: sum(i.query_type == t for i in items) for t in QUERY_TYPES} == {t: 100 for t in QUERY_TYPES}
    for it in items:
        assert list(it.gold_product_ids) == gold_ids(catalog, it.intent), it.id


def test_rows_carry_their_split_and_prefix(cat, cfg, tmp_path):
    from rl_shop.sim.benchmark import SPLIT_SHARES, split_of

    items = build_benchmark(cat, cfg, 40, seed=4, id_prefix="t2")
    assert all(it.id.startswith("t2-") for it in items)
    path = tmp_path / "s.jsonl"
    write_benchmark(items, path, {"version": "t"})
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["split"] for r in rows] == [split_of(r["id"]) for r in rows]
    by_split = load_card(path)["counts_by_split"]
    assert set(by_split) == set(SPLIT_SHARES)
    assert sum(sum(c.values()) for c in by_split.values()) == 40


def test_shipped_benchmarks_by_name():
    from rl_shop.sim.benchmark import benchmark_path

    assert benchmark_path(None) == DEFAULT_BENCHMARK
    assert benchmark_path("eccd_v2") == DEFAULT_BENCHMARK.parent / "eccd_v2.jsonl"
    assert benchmark_path("no_such_set") == Path("no_such_set")  # not shipped: a path, so the loader names it
    with pytest.raises(BenchmarkFileError, match="not found"):
        load_benchmark("no_such_set")


def test_eccd_v2_card_has_100_test_queries_per_type():
    """The issue's floor for the generated test split, and the face its shoppers reply with."""
    card = load_card("eccd_v2")
    assert card["version"] == "eccd_v2" and card["answer_face"] == "mined"
    assert min(card["counts_by_split"]["test"][t] for t in QUERY_TYPES) >= 100
    items = load_benchmark("eccd_v2")
    assert len(items) == card["n_queries"] and all(it.id.startswith("eccd2-") for it in items)
    assert {it.id for it in items}.isdisjoint({it.id for it in load_benchmark()})  # eccd_v1 ids stay apart


@pytest.mark.slow
def test_shipped_eccd_v2_is_rebuilt_byte_for_byte(tmp_path):
    """``make_benchmark.py --config-name eccd_v2`` on the shipped catalog writes the shipped file."""
    sys.path.insert(0, str(REPO_ROOT / "experiments"))
    try:
        import make_benchmark
    finally:
        sys.path.pop(0)
    base = OmegaConf.merge(
        OmegaConf.load(CONFIG_DIR / "benchmark_build" / "default.yaml"),
        OmegaConf.load(CONFIG_DIR / "benchmark_build" / "eccd_v2.yaml"),
    )
    base.pop("hydra")
    base.pop("defaults")
    jsonl, card = make_benchmark.run(OmegaConf.merge(base, {"output": str(tmp_path / "eccd_v2.jsonl")}))
    shipped = DEFAULT_BENCHMARK.parent / "eccd_v2.jsonl"
    assert jsonl.read_bytes() == shipped.read_bytes()
    assert json.loads(card.read_text()) == load_card(shipped)
