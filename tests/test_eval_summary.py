"""summary.json of an evaluation run (rl_shop/evaluation/summary.py): every figure by hand, nothing filled in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rl_shop.evaluation.pipeline import evaluate
from rl_shop.evaluation.runner import EvalRunError
from rl_shop.evaluation.summary import build_summary, load_headroom, load_summary, merge_summaries


def _rec(system: str, item: str, acc: float, qtype: str = "ambiguous", **kw: object) -> dict:
    return {"system": system, "item_id": item, "query_type": qtype, "accuracy@5": acc, "total_s": 1.0, **kw}


RECORDS = [
    _rec("macdf_heuristic", "a", 0.2),
    _rec("macdf_learned", "a", 0.6),
    _rec("macdf_heuristic", "b", 1.0, "simple"),
    _rec("macdf_learned", "b", 1.0, "simple"),
    _rec("macdf_learned", "c", 0.0, error="boom"),  # failed: not in the system's mean
]
HEADROOM = {
    "collaboration": {
        "loop_metric": "relevance",
        "metric_learned_minus_best": 0.4,
        "metric_learned_minus_best_ci95": 0.05,
        "metric_learned_minus_shipped": 0.8,
        "metric_learned_minus_shipped_ci95": 0.06,
        "n_learned": 5,
        "oracle_gap": 0.3,
        "no_rl_needed": False,
    }
}


def test_summary_by_hand() -> None:
    s = build_summary(
        RECORDS,
        ["macdf_heuristic", "macdf_learned"],
        k=5,
        benchmark=None,
        split="test",
        learned_roles=["collaboration"],
        headroom=HEADROOM,
        seed=0,
    )
    assert s["systems"]["macdf_heuristic"] == {"eccd_v1:test": {"accuracy_at_5": pytest.approx(0.6), "n": 2}}
    assert s["systems"]["macdf_learned"]["eccd_v1:test"] == {"accuracy_at_5": pytest.approx(0.8), "n": 2}
    c = s["roles"]["collaboration"]
    # paired differences: +0.4 (a) and 0 (b): mean 0.2; the bootstrap interval lies within [0, 0.4]
    assert c["loop_delta"] == pytest.approx(0.2) and c["loop_n"] == 2 and c["loop_metric"] == "accuracy@5"
    lo, hi = c["loop_ci95"]
    assert 0.0 <= lo <= 0.2 <= hi <= 0.4
    assert (c["sim_delta"], c["sim_ci95"], c["sim_seeds"], c["oracle_gap"]) == (0.4, 0.05, 5, 0.3)
    assert c["no_rl_needed"] is False and c["notes"] == []
    # the loop's heuristic is the shipped one: 0.2 of the env's learned-minus-shipped 0.8
    assert c["retained"] == pytest.approx(0.25) and c["sim_delta_vs_shipped"] == 0.8
    assert c["retained_ci95"] == pytest.approx([lo / 0.8, hi / 0.8])
    g = s["roles"]["guider"]  # not isolated by this run and not in the headroom file: null, with reasons
    assert g["loop_delta"] is None and g["sim_delta"] is None and g["retained"] is None
    assert any("does not isolate the guider" in n for n in g["notes"])
    assert any("no guider role" in n for n in g["notes"])


def test_summary_refuses_a_headroom_file_in_another_unit() -> None:
    stale = {"collaboration": {**HEADROOM["collaboration"], "loop_metric": None}}
    with pytest.raises(ValueError, match="not the loop's unit 'relevance'; rerun experiments/headroom.py"):
        build_summary(
            RECORDS, ["macdf_heuristic"], k=5, benchmark=None, split=None, learned_roles=None, headroom=stale, seed=0
        )


def test_load_headroom_errors(tmp_path: Path) -> None:
    assert load_headroom(None) is None
    (tmp_path / "headroom.json").write_text(json.dumps(HEADROOM))
    assert load_headroom(tmp_path) == HEADROOM  # a run directory is read as its headroom.json
    (tmp_path / "other.json").write_text(json.dumps({"guider": {"n_learned": 5}}))
    assert set(load_headroom([tmp_path, tmp_path / "other.json"])) == {"collaboration", "guider"}  # runs merge
    with pytest.raises(FileNotFoundError, match="run experiments/headroom.py first"):
        load_headroom(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_headroom(tmp_path / "bad.json")


def test_a_wrong_headroom_path_stops_the_run_before_any_query(tmp_path: Path) -> None:
    cfg = {"systems": ["retrieval"], "ab": {"enabled": False}, "summary": {"headroom": str(tmp_path / "none")}}
    with pytest.raises(EvalRunError, match="no such file"):
        evaluate(cfg, tmp_path / "out", "")
    assert not (tmp_path / "out" / "per_query.jsonl").exists()


def test_a_role_system_isolates_its_role_whatever_learned_roles_says() -> None:
    recs = [
        _rec("macdf_heuristic", "a", 0.5, total_s=2.0),
        _rec("macdf_learned_scheduler", "a", 0.5, total_s=1.5),
        _rec("macdf_learned", "a", 0.9, total_s=9.0),
    ]
    names = ["macdf_heuristic", "macdf_learned", "macdf_learned_scheduler"]
    s = build_summary(
        recs, names, k=5, benchmark="x/real_v1.jsonl", split=None, learned_roles=None, headroom=None, seed=0
    )
    sch = s["roles"]["scheduler"]
    assert (sch["loop_system"], sch["loop_metric"], sch["loop_delta"], sch["loop_n"]) == (
        "macdf_learned_scheduler",
        "total_s",
        -0.5,
        1,
    )
    assert s["roles"]["collaboration"]["loop_delta"] is None  # every role learned at once isolates none
    assert set(s["systems"]["macdf_learned"]) == {"real_v1"}


def test_role_systems_build_with_only_their_role_learned() -> None:
    from rl_shop.evaluation.pipeline import _macdf_variant

    assert _macdf_variant("macdf_learned_guider", ["scheduler"]) == ("learned", ["guider"])
    assert _macdf_variant("macdf_learned", ["scheduler"]) == ("learned", ["scheduler"])
    assert _macdf_variant("macdf_learned", None) == ("learned", None)
    assert _macdf_variant("macdf_heuristic", ["guider"]) == ("heuristic", None)


def test_merging_a_second_benchmark_keeps_the_first_as_primary(tmp_path: Path) -> None:
    names = ["macdf_heuristic", "macdf_learned_collaboration"]
    same = {"n": 3, "sim_delta": 0.2, "loop_delta": 0.1, "retained": 0.5, "retained_ci95": [0.1, 0.9]}
    first = build_summary(
        [_rec("macdf_heuristic", "a", 0.0), _rec("macdf_learned_collaboration", "a", 1.0)],
        names, k=5, benchmark=None, split="test", learned_roles=None, headroom=HEADROOM, seed=0,
        guider_same_queries=same,
    )  # fmt: skip
    assert first["roles"]["guider"]["same_queries"] == {**same, "benchmark": "eccd_v1:test"}
    second = build_summary(
        [_rec("macdf_heuristic", "r", 0.5), _rec("macdf_learned_collaboration", "r", 0.5)],
        names, k=5, benchmark="real_v1", split="test", learned_roles=None, headroom=None, seed=0,
    )  # fmt: skip
    assert second["roles"]["guider"]["same_queries"] is None
    merged = merge_summaries(first, second)
    assert merged["roles"]["guider"]["same_queries"]["benchmark"] == "eccd_v1:test"  # the primary's
    assert merge_summaries(second, first)["roles"]["guider"]["same_queries"]["retained"] == 0.5  # filled in
    c = merged["roles"]["collaboration"]
    assert (c["loop_benchmark"], c["loop_delta"], c["sim_delta"]) == ("eccd_v1:test", 1.0, 0.4)
    assert c["loop_by_benchmark"]["real_v1:test"]["loop_delta"] == 0.0
    assert c["loop_by_benchmark"]["eccd_v1:test"]["loop_delta"] == 1.0
    assert set(merged["systems"]["macdf_heuristic"]) == {"eccd_v1:test", "real_v1:test"}
    assert first["roles"]["collaboration"]["loop_by_benchmark"].keys() == {"eccd_v1:test"}  # not mutated
    (tmp_path / "s.json").write_text(json.dumps(merged))
    assert load_summary(tmp_path / "s.json") == merged
    (tmp_path / "h.json").write_text(json.dumps(HEADROOM))
    with pytest.raises(ValueError, match="is not a summary.json"):
        load_summary(tmp_path / "h.json")


def test_a_bad_sim_override_stops_the_run_before_any_query(tmp_path: Path) -> None:
    cfg = {"systems": ["retrieval"], "ab": {"enabled": False}, "sim_overrides": {"render": {"answer_face": "poetry"}}}
    with pytest.raises(EvalRunError, match="(?s)sim_overrides: .*answer_face"):
        evaluate(cfg, tmp_path / "out", "")
    assert not (tmp_path / "out" / "per_query.jsonl").exists()
