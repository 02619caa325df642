"""`make reproduce`'s entry point end to end, on a tiny slice of its own configuration: the shipped
policies (no training), one query, two systems. The full job is timed in README; this checks that
every step runs and that the report says which benchmark and split it measured."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rl_shop.paths import REPO_ROOT


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_main_job_runs_on_the_generated_test_split(tmp_path) -> None:
    out = tmp_path / "reproduce"
    proc = subprocess.run(
        [
            sys.executable,
            "experiments/reproduce.py",
            "train=false",
            f"results_dir={out}",
            "eval_episodes=20",
            "evaluation.limit=1",
            "evaluation.types=[simple]",
            "evaluation.systems=[retrieval,macdf_heuristic]",
            "evaluation.processes=1",
            "evaluation.real_in_catalog=2",
            "evaluation.extra_overrides=['plots=false','tensorboard=false','ab.enabled=false']",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Retrieval-ranking baseline (eccd_v2, test split)" in report
    baseline = report.split("## Retrieval-ranking baseline", 1)[1].split("\n## ", 1)[0]
    assert "| overall |" in baseline and "| 940 |" in baseline  # the 940 test queries of eccd_v2
    assert "Benchmark slice: eccd_v2, test split, 1 queries" in report
    for role in ("guider", "scheduler", "collaboration"):
        assert f"| {role} |" in report
    assert "## End to end on human-written in-catalog queries (real_v1 test)" in report
