"""Resumable runner: interruption + resume gives identical aggregates; same seed -> same shoppers."""

from __future__ import annotations

import json

import pytest
from test_eval_helpers import Interrupting, KeyedSystem, ProbeSystem, make_items, tiny_catalog

from rl_shop.evaluation.runner import (
    EvalRunError,
    EvalRunner,
    aggregate,
    load_records,
    select_items,
    shard_dir,
    shard_items,
    shopper_seed,
)
from rl_shop.sim.config import load_sim_config


@pytest.fixture(scope="module")
def cat():
    return tiny_catalog()


@pytest.fixture(scope="module")
def items(cat):
    return make_items(cat)


@pytest.fixture(scope="module")
def sim():
    return load_sim_config()


def _runner(systems, cat, sim, path, seed=0, **kw):
    return EvalRunner(systems, cat, sim, path, seed=seed, progress=lambda m: None, **kw)


def test_resume_after_interruption_gives_identical_aggregates(cat, items, sim, tmp_path):
    full = _runner([KeyedSystem("a", cat, 2), KeyedSystem("b", cat, 1)], cat, sim, tmp_path / "full").run(items)
    expected = aggregate(full, ["a", "b"])

    # killed on the 6th call of system b (after 5 items of b, 6 of a): the results on disk survive
    killed = [KeyedSystem("a", cat, 2), Interrupting(KeyedSystem("b", cat, 1), at=6)]
    with pytest.raises(KeyboardInterrupt):
        _runner(killed, cat, sim, tmp_path / "resumed").run(items)
    on_disk = load_records(tmp_path / "resumed" / "per_query.jsonl")
    assert len(on_disk) == 11
    calls = {"n": 0}

    class Counting(KeyedSystem):
        def run(self, item, shopper):
            calls["n"] += 1
            return super().run(item, shopper)

    resumed = _runner([Counting("a", cat, 2), Counting("b", cat, 1)], cat, sim, tmp_path / "resumed").run(items)
    assert calls["n"] == 16 - 11  # only the missing (system, item) pairs ran again
    assert len(resumed) == 16
    assert aggregate(resumed, ["a", "b"]).equals(expected)

    def strip(recs):
        return sorted(
            json.dumps({k: v for k, v in r.items() if k not in ("wall_s", "judge_s")}, sort_keys=True) for r in recs
        )

    assert strip(resumed) == strip(full)  # per-query results identical too, shopper answers included


def test_shards_merged_by_the_whole_run_give_the_unsharded_results(cat, items, sim, tmp_path):
    systems = lambda: [KeyedSystem("a", cat, 2), KeyedSystem("b", cat, 1)]  # noqa: E731
    full = _runner(systems(), cat, sim, tmp_path / "full").run(items)
    shards = [shard_items(items, i, 3) for i in range(3)]
    assert sorted(it.id for sh in shards for it in sh) == sorted(it.id for it in items)  # disjoint, covering
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # balanced
    out = tmp_path / "sharded"
    for i, sh in enumerate(shards):
        _runner(systems(), cat, sim, shard_dir(out, i, 3)).run(sh)
    calls = {"n": 0}

    class Counting(KeyedSystem):
        def run(self, item, shopper):
            calls["n"] += 1
            return super().run(item, shopper)

    merged = _runner([Counting("a", cat, 2), Counting("b", cat, 1)], cat, sim, out).run(items)
    assert calls["n"] == 0 and len(merged) == len(full)  # the merge ran nothing again
    assert aggregate(merged, ["a", "b"]).equals(aggregate(full, ["a", "b"]))
    assert len(load_records(out / "per_query.jsonl")) == len(full)
    # a shard produced with another configuration is refused, not mixed in
    _runner(systems(), cat, sim, shard_dir(tmp_path / "mixed", 0, 2), seed=9).run(shards[0])
    with pytest.raises(EvalRunError, match="shard .* different configuration.*seed"):
        _runner(systems(), cat, sim, tmp_path / "mixed").run(items)
    with pytest.raises(EvalRunError, match="shard.index"):
        shard_items(items, 2, 2)


def test_torn_last_line_is_recomputed(cat, items, sim, tmp_path):
    out = tmp_path / "torn"
    _runner([KeyedSystem("a", cat)], cat, sim, out).run(items[:3])
    path = out / "per_query.jsonl"
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # the process died in the middle of the last line
    assert len(load_records(path)) == 2
    again = _runner([KeyedSystem("a", cat)], cat, sim, out).run(items[:3])
    assert len(again) == 3 and len(load_records(path)) == 3


def test_resume_with_other_config_is_refused(cat, items, sim, tmp_path):
    _runner([KeyedSystem("a", cat)], cat, sim, tmp_path / "r", seed=1).run(items[:2])
    with pytest.raises(EvalRunError, match="different configuration.*seed"):
        _runner([KeyedSystem("a", cat)], cat, sim, tmp_path / "r", seed=2).run(items[:2])


def test_two_systems_same_seed_meet_the_same_shoppers(cat, items, sim, tmp_path):
    p1, p2 = ProbeSystem("p1"), ProbeSystem("p2")
    _runner([p1, p2], cat, sim, tmp_path / "o1", seed=5).run(items)
    q1, q2 = ProbeSystem("p1"), ProbeSystem("p2")
    _runner([q2, q1], cat, sim, tmp_path / "o2", seed=5).run(list(reversed(items)))  # other order everywhere
    assert p1.seen == p2.seen == q1.seen == q2.seen
    # and the shoppers do differ across items and across seeds (the check above is not vacuous)
    assert len({str(v) for v in p1.seen.values()}) > 1
    r = ProbeSystem("p1")
    _runner([r], cat, sim, tmp_path / "o3", seed=6).run(items)
    assert r.seen != p1.seen


def test_shopper_seed_depends_on_seed_and_item_only():
    assert shopper_seed(0, "eccd-00001") == shopper_seed(0, "eccd-00001")
    assert shopper_seed(0, "eccd-00001") != shopper_seed(1, "eccd-00001")
    assert shopper_seed(0, "eccd-00001") != shopper_seed(0, "eccd-00002")
    assert 0 <= shopper_seed(123, "x") < 2**63


def test_select_items_slices_per_type(items):
    sel = select_items(items, ["simple", "negation"], limit=1)
    assert [it.id for it in sel] == ["q1", "q3"]  # first of each type, benchmark order
    assert len(select_items(items)) == len(items)
    assert [it.query_type for it in select_items(items, limit=1)].count("simple") == 1
    with pytest.raises(EvalRunError, match="unknown query type"):
        select_items(items, ["simpel"])
    with pytest.raises(EvalRunError, match="limit"):
        select_items(items, limit=0)
    with pytest.raises(EvalRunError, match="no benchmark query"):
        select_items(items, ["comparison"])


def test_system_errors_are_recorded_not_fatal(cat, items, sim, tmp_path):
    class Broken:
        name = "broken"

        def run(self, item, shopper):
            raise RuntimeError("model server down")

    recs = _runner([Broken()], cat, sim, tmp_path / "e").run(items[:2])
    assert all(r["error"] == "RuntimeError: model server down" and r["accuracy@5"] == 0.0 for r in recs)
    assert aggregate(recs).loc[("broken", "overall"), "errors"] == 2
    fixed = KeyedSystem("broken", cat)  # the server is back: same name, now working
    assert all(r["error"] for r in _runner([fixed], cat, sim, tmp_path / "e").run(items[:2]))  # kept by default
    again = _runner([fixed], cat, sim, tmp_path / "e", retry_errors=True).run(items[:2])
    assert len(again) == 2 and all(r["error"] is None for r in again)
    assert len(load_records(tmp_path / "e" / "per_query.jsonl")) == 2
    with pytest.raises(RuntimeError):
        _runner([Broken()], cat, sim, tmp_path / "e2", fail_fast=True).run(items[:1])
    with pytest.raises(EvalRunError, match="unique"):
        _runner([KeyedSystem("a", cat), KeyedSystem("a", cat)], cat, sim, tmp_path / "e3")
