"""Aggregation of multi-seed summaries: hand-computed means and t-intervals, CSV and plot."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from rl_shop.train.aggregate import aggregate, find_summaries, load_runs, plot, t_interval


def _write(root, exp, seed, final, heuristic=0.5):
    run = root / exp / f"run-s{seed}"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(
        json.dumps(
            {
                "experiment": exp,
                "env_name": "clarify",
                "env_id": "rl_shop/Clarify-v0",
                "algo": "dqn",
                "seed": seed,
                "final_eval_return": final,
                "best_eval_return": final + 1,
                "heuristic_return": heuristic,
                "random_return": -1.0,
                "num_timesteps": 100,
                "wall_time_s": 1.0,
                "steps_per_s": 100.0,
                "run_dir": str(run),
                "eval_history": [{"step": 50, "mean_return": final / 2}, {"step": 100, "mean_return": final}],
            }
        )
    )


def test_t_interval_by_hand():
    # values 1, 2, 3: mean 2, sd 1, sem 1/sqrt(3); t(0.975, df=2) = 4.3027
    mean, half = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4)
    assert math.isnan(t_interval([5.0])[1])


def test_aggregate_tables_and_plot(tmp_path):
    for seed, final in enumerate([1.0, 2.0, 3.0]):
        _write(tmp_path, "guider_dqn", seed, final)
    paths = find_summaries([tmp_path])
    assert len(paths) == 3
    runs, curves = load_runs(paths)
    table = aggregate(runs)
    (row,) = table.to_dict("records")
    assert row["n_seeds"] == 3 and row["final_mean"] == 2.0 and row["best_mean"] == 3.0
    assert row["final_ci"] == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4)
    assert row["final_minus_heuristic"] == pytest.approx(1.5)
    out = plot(runs, curves, tmp_path / "out" / "curves.png")
    assert out.stat().st_size > 1000


@pytest.fixture(autouse=True)
def _cli_on_path(monkeypatch):
    import importlib.util
    import sys

    from rl_shop.paths import REPO_ROOT

    spec = importlib.util.spec_from_file_location("experiments_aggregate", REPO_ROOT / "experiments" / "aggregate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "experiments_aggregate", module)


def test_aggregate_cli_writes_csvs(tmp_path, capsys):
    import experiments_aggregate

    for seed, final in enumerate([4.0, 6.0]):
        _write(tmp_path / "runs", "scheduler_ppo", seed, final)
    assert experiments_aggregate.main([str(tmp_path / "runs"), "--out", str(tmp_path / "o")]) == 0
    agg = pd.read_csv(tmp_path / "o" / "aggregate.csv")
    assert agg.loc[0, "final_mean"] == 5.0 and agg.loc[0, "n_seeds"] == 2
    assert experiments_aggregate.main([str(tmp_path / "empty"), "--out", str(tmp_path / "o2")]) == 2
    assert "no summary.json" in capsys.readouterr().err
