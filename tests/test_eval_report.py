"""Report outputs: paper-layout tables, per-type bar plot, TensorBoard scalars read back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rl_shop.evaluation.ab_test import relative_change
from rl_shop.evaluation.report import ab_table, bar_plot, markdown_table, per_type_intervals, wide, write_tensorboard
from rl_shop.evaluation.runner import aggregate


def _records():
    out = []
    for s, acc in (("retrieval", [1.0, 0.6, 0.0]), ("macdf", [0.8, 1.0, 0.4])):
        for i, (t, a) in enumerate(zip(["simple", "simple", "negation"], acc)):
            out.append(
                {
                    "system": s,
                    "item_id": f"q{i}",
                    "query_type": t,
                    "accuracy@5": a,
                    "max_accuracy@5": 1.0,
                    "uds_judge": None,
                    "uds_rubric": 2,
                    "rounds": i,
                    "ttft_s": 0.5,
                    "total_s": 1.0,
                    "error": None,
                }
            )
    return out


def test_wide_table_has_paper_layout():
    table = aggregate(_records(), ["retrieval", "macdf"])
    acc = wide(table, "accuracy@5", ["retrieval", "macdf"])
    assert list(acc.index) == ["Simple Queries", "Negation Intent", "Overall"]
    assert list(acc.columns) == ["retrieval", "macdf", "n"]
    assert acc.loc["Simple Queries", "retrieval"] == 0.8 and acc.loc["Negation Intent", "macdf"] == 0.4
    md = markdown_table(acc)
    assert "| Simple Queries | 0.800 | 0.900 | 2 |" in md  # counts print as integers
    assert "| Overall | 0.533 | 0.733 | 3 |" in md
    assert "n/a" in markdown_table(wide(table, "uds_judge", ["retrieval", "macdf"]))


def test_ab_table_layout():
    rng = np.random.default_rng(0)
    res = {
        "macdf": {
            m: relative_change(rng.poisson(1.0, 500), rng.poisson(1.2, 500), metric=m, n_boot=200)
            for m in ("UCTR", "UCVR", "ARC")
        }
    }
    md = ab_table(res, "retrieval", {"retrieval": 0.0, "macdf": 0.25})
    lines = md.splitlines()
    assert lines[2] == "| retrieval (control) | 0.0% | 0.0% | 0.0% | 0.0% |"
    assert lines[3].startswith("| macdf | +") and "(P=" in lines[3] and lines[3].endswith("| 25.0% |")


def test_plot_and_tensorboard_are_written(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recs = _records()
    iv = per_type_intervals(recs, "accuracy@5", ["retrieval", "macdf"])
    row = iv[(iv.system == "retrieval") & (iv.query_type == "simple")].iloc[0]
    assert row["mean"] == 0.8 and 0.6 <= row["lo"] <= row["hi"] <= 1.0 and row["n"] == 2
    png = bar_plot(iv, "accuracy@5", tmp_path / "plots" / "acc.png", (0, 1))
    assert png.read_bytes()[:4] == b"\x89PNG"
    table = aggregate(recs, ["retrieval", "macdf"])
    logdir = write_tensorboard(table, {}, tmp_path / "tb")
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "eval/macdf/overall/accuracy@5" in tags
    assert abs(acc.Scalars("eval/macdf/simple/accuracy@5")[0].value - 0.9) < 1e-6


def test_consistency_markdown_rows():
    from rl_shop.evaluation.report import consistency_markdown

    df = pd.DataFrame(
        [
            {
                "query_type": "ambiguous",
                "n_sim": 3,
                "n_agent": 2,
                "sim_d_return": 0.5,
                "sim_d_return_ci95": 0.1,
                "sim_d_acc": 0.3,
                "sim_d_acc_ci95": float("nan"),
                "sim_d_rounds": 0.7,
                "sim_d_rounds_ci95": 0.2,
                "agent_d_acc": -0.6,
                "agent_d_acc_ci95": 0.4,
                "agent_d_rounds": -1.0,
                "agent_d_rounds_ci95": 0.5,
                "gap_acc": -0.9,
                "gap_acc_ci95": 0.3,
            }
        ]
    ).set_index("query_type")
    row = consistency_markdown(df).splitlines()[2]
    assert row == (
        "| Ambiguous Intent | 3 / 2 | +0.500 ± 0.100 | +0.300 | +0.70 ± 0.20 | -0.600 ± 0.400 "
        "| -1.00 ± 0.50 | -0.900 ± 0.300 |"
    )


def test_guider_consistency_refuses_when_the_learned_system_runs_the_heuristic_guider(tmp_path):
    """learned_roles=[collaboration]: macdf_learned's dialogues are the heuristic Guider's, so a
    learned-vs-heuristic Guider table built from them would compare a policy with itself."""
    from rl_shop.evaluation.pipeline import run_consistency

    records = [{"system": "macdf_learned", "item_id": "q"}, {"system": "macdf_heuristic", "item_id": "q"}]
    cfg = {"types": ["ambiguous"], "episodes": 1, "seed": 0, "learned_roles": ["collaboration"]}
    table, retained, why = run_consistency(records, [], None, None, cfg, tmp_path)
    assert table is None and retained is None and "heuristic Guider" in why and "collaboration" in why
    table, retained, why = run_consistency(records, [], None, None, {**cfg, "learned_roles": None}, tmp_path)
    assert table is None and retained is None and "no exported Guider" in why  # None = every role learned: it goes on


def test_paired_differences_by_hand():
    from rl_shop.evaluation.report import paired_differences, paired_table

    recs = [
        {"system": "h", "item_id": "a", "query_type": "simple", "accuracy@5": 0.2},
        {"system": "l", "item_id": "a", "query_type": "simple", "accuracy@5": 0.6},
        {"system": "h", "item_id": "b", "query_type": "simple", "accuracy@5": 1.0},
        {"system": "l", "item_id": "b", "query_type": "simple", "accuracy@5": 0.8},
        {"system": "h", "item_id": "c", "query_type": "ambiguous", "accuracy@5": 0.0},
        {"system": "l", "item_id": "c", "query_type": "ambiguous", "accuracy@5": 1.0},
        {"system": "h", "item_id": "d", "query_type": "ambiguous", "accuracy@5": 0.5},  # unpaired: left out
    ]
    d = paired_differences(recs, "accuracy@5", "h", "l").set_index("query_type")
    assert d.loc["simple", "diff"] == pytest.approx(0.1) and d.loc["simple", "n"] == 2
    assert d.loc["simple", "lo"] == pytest.approx(-0.2) and d.loc["simple", "hi"] == pytest.approx(0.4)
    assert d.loc["ambiguous", "diff"] == pytest.approx(1.0) and d.loc["ambiguous", "n"] == 1
    assert d.loc["overall", "diff"] == pytest.approx(0.4) and d.loc["overall", "n"] == 3
    assert "| Overall | +0.400 [" in paired_table(d.reset_index())
