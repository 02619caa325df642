"""Headroom tables (issue 13, item 3): oracle and verdict arithmetic by hand, the swept pipeline
knobs, the true-type view, and the Hydra app end to end on a few episodes."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from envs.collaborate import CollaborateEnv, load_default_kwargs
from rl_shop.paths import REPO_ROOT
from rl_shop.policies.features.collaborate import (
    DECIDE,
    FEATURE_NAMES,
    N_TYPES,
    PRODUCT_SEARCH,
    WEB_SEARCH,
    CollaborateState,
    featurize,
)
from rl_shop.policies.heuristics.collaborate import AlwaysFullPipeline, RandomValid
from rl_shop.sim.slots import QUERY_TYPES
from rl_shop.train.headroom import (
    Scored,
    TrueTypeObservation,
    collaborate_family,
    hindsight_oracle,
    learned_vs_best,
    learned_vs_heuristic_in_metric,
    select_best,
    table,
    verdict,
)


def _scored(name: str, values: list[float], kind: str = "best heuristic") -> Scored:
    return Scored(name, kind, np.array(values, dtype=float))  # type: ignore[arg-type]


def test_hindsight_oracle_takes_the_best_return_of_each_episode():
    oracle = hindsight_oracle([_scored("a", [1.0, 0.0, 3.0]), _scored("b", [2.0, 5.0, 1.0])])
    assert oracle.returns.tolist() == [2.0, 5.0, 3.0]
    assert oracle.kind == "oracle" and "2 policies" in oracle.name
    with pytest.raises(ValueError, match="at least one"):
        hindsight_oracle([])


def test_table_differences_are_paired():
    best = _scored("best", [1.0, 2.0, 3.0])
    other = _scored("other", [2.0, 2.0, 5.0], "learned")
    rows = table([best, other], best)
    assert rows[0].diff_vs_best == 0.0 and rows[0].diff_ci95 == 0.0
    # differences 1, 0, 2: mean 1, sd 1, paired half-width 1.96 / sqrt(3)
    assert rows[1].diff_vs_best == pytest.approx(1.0)
    assert rows[1].diff_ci95 == pytest.approx(1.96 / math.sqrt(3))
    assert rows[1].mean == pytest.approx(3.0)


def test_learned_vs_best_replicates_over_policies_not_episodes():
    best = _scored("best", [1.0, 1.0, 1.0, 1.0])
    one = learned_vs_best([_scored("s0", [1.0, 1.2, 1.0, 1.2], "learned")], best)
    # one policy: the paired interval over episodes (differences 0, .2, 0, .2)
    assert one["learned_minus_best"] == pytest.approx(0.1)
    assert one["learned_minus_best_ci95"] == pytest.approx(1.96 * np.std([0, 0.2, 0, 0.2], ddof=1) / 2)
    two = learned_vs_best([_scored("s0", [1.1] * 4, "learned"), _scored("s1", [1.3] * 4, "learned")], best)
    # two seeds, mean differences 0.1 and 0.3: t(0.975, 1) = 12.7062 times s.e. 0.1
    assert two["learned_minus_best"] == pytest.approx(0.2)
    assert two["learned_minus_best_ci95"] == pytest.approx(12.7062 * 0.1, rel=1e-4)
    assert two["learned_minus_best_each"] == pytest.approx([0.1, 0.3])
    with pytest.raises(ValueError, match="no learned policy"):
        learned_vs_best([], best)


def test_learned_vs_best_in_the_loops_metric_uses_the_final_info_means():
    def with_info(name: str, latency: float) -> Scored:
        return Scored(name, "learned", np.zeros(3), {"latency": latency, "steps": 4.0})

    best = with_info("best", 10.0)
    out = learned_vs_heuristic_in_metric([with_info("s0", 9.0), with_info("s1", 8.0)], best, "latency")
    # differences -1 and -2: mean -1.5, s.e. 0.5, t(0.975, 1) = 12.7062
    assert out["loop_metric"] == "latency" and out["metric_best_heuristic"] == 10.0
    assert out["metric_learned_minus_best"] == pytest.approx(-1.5)
    assert out["metric_learned_minus_best_ci95"] == pytest.approx(12.7062 * 0.5, rel=1e-4)
    assert math.isnan(
        learned_vs_heuristic_in_metric([with_info("s0", 9.0)], best, "latency")["metric_learned_minus_best_ci95"]
    )
    with pytest.raises(
        ValueError, match="loop metric 'accuracy' is not in the final info.*keys: \\['latency', 'steps'\\]"
    ):
        learned_vs_heuristic_in_metric([with_info("s0", 9.0)], best, "accuracy")


def test_verdict_compares_the_oracle_gap_with_the_span_over_random():
    best = _scored("best", [1.0, 1.0, 1.0, 1.0])
    oracle = _scored("oracle", [1.2, 1.2, 1.2, 1.2], "oracle")
    floor = _scored("random", [0.0, 0.0, 0.0, 0.0], "random")
    near = verdict(best, oracle, floor, near_oracle=0.2)
    assert near["oracle_gap"] == pytest.approx(0.2)
    assert near["gap_share"] == pytest.approx(0.2 / 1.2)
    assert near["no_rl_needed"] is True
    assert verdict(best, oracle, floor, near_oracle=0.1)["no_rl_needed"] is False
    # an oracle no better than random leaves no span to judge: never "no RL needed"
    assert verdict(best, floor, floor, near_oracle=0.5)["no_rl_needed"] is False


def _obs(qtype: str, n_product_search: int, n_web_search: int = 0) -> np.ndarray:
    state = CollaborateState(
        predicted_type=QUERY_TYPES.index(qtype),
        type_confidence=0.9,
        steps=n_product_search + n_web_search,
        max_steps=8,
        elapsed_s=1.0,
        n_clarify=0,
        n_product_search=n_product_search,
        n_web_search=n_web_search,
        n_replan=0,
        relevance_hat=0.8,
        satisfaction_hat=0.8,
        clarity_hat=0.8,
        gamma=0.5,
        replan_threshold=0.3,
    )
    return featurize(state)


def test_pipeline_knobs_change_what_it_does():
    searched = _obs("product_qa", n_product_search=1)
    assert AlwaysFullPipeline().act(searched) == WEB_SEARCH  # MACDF: web search for Q&A types
    assert AlwaysFullPipeline(web_types=set()).act(searched) == DECIDE
    twice = {QUERY_TYPES.index("product_qa")}
    assert AlwaysFullPipeline(double_search_types=twice).act(searched) == PRODUCT_SEARCH
    # comparison is searched twice only while the knob says so
    compared = _obs("comparison", n_product_search=1)
    assert AlwaysFullPipeline().act(compared) == PRODUCT_SEARCH
    assert AlwaysFullPipeline(double_search_types=set()).act(compared) == WEB_SEARCH


def test_collaborate_family_is_the_grid_and_refuses_unknown_types():
    family = collaborate_family([[], ["ambiguous"]], [[]], [[], ["comparison"]], [False, True])
    assert len(family) == 2 * 1 * 2 * 2
    assert any(name.startswith("ReflectionReplan(clarify=ambiguous") for name in family)
    with pytest.raises(ValueError, match="unknown query types"):
        collaborate_family([["ambiguus"]], [[]], [[]], [False])


def _always_wrong_type_env() -> CollaborateEnv:
    kw = copy.deepcopy(load_default_kwargs())
    for spec in kw["types"].values():
        spec.update(type_accuracy=0.0)  # demand reasoning always predicts another type
    return CollaborateEnv(types=kw["types"])


def test_true_type_view_shows_the_hidden_type_at_full_confidence():
    conf = FEATURE_NAMES.index("type_confidence")
    plain, typed = _always_wrong_type_env(), TrueTypeObservation(_always_wrong_type_env())
    obs, info = plain.reset(seed=3)
    tobs, tinfo = typed.reset(seed=3)
    true_type = QUERY_TYPES.index(info["query_type"])
    assert tinfo["query_type"] == info["query_type"]
    assert obs[true_type] == 0.0  # the prediction is wrong in the plain view
    assert tobs[true_type] == 1.0 and tobs[:N_TYPES].sum() == 1.0 and tobs[conf] == 1.0
    tobs, *_ = typed.step(PRODUCT_SEARCH)
    assert tobs[true_type] == 1.0


def test_select_best_picks_the_better_member_on_its_own_episodes():
    env = CollaborateEnv()
    name, means = select_best(env, {"random": RandomValid(seed=1), "pipeline": AlwaysFullPipeline()}, 200, 5)
    assert name == "pipeline" and means["pipeline"] > means["random"]
    with pytest.raises(ValueError, match="empty"):
        select_best(env, {}, 10, 5)


@pytest.mark.slow
def test_headroom_app_end_to_end(tmp_path):
    out = tmp_path / "headroom"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "experiments" / "headroom.py"),
            "episodes=60",
            "select_episodes=40",
            f"results_dir={out}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "headroom.json").read_text())
    assert set(summary) == {"guider", "scheduler", "collaboration"}
    for role in summary.values():
        assert role["episodes"] == 60 and isinstance(role["no_rl_needed"], bool)
        assert role["oracle_gap"] >= 0.0  # the hindsight oracle includes the best heuristic
        assert role["best_heuristic"] in role["selection_means"]
    metrics = {r: s["loop_metric"] for r, s in summary.items()}
    assert metrics == {"guider": "accuracy_at_5", "scheduler": "latency", "collaboration": "relevance"}
    assert 0.0 <= summary["collaboration"]["metric_best_heuristic"] <= 1.0
    report = (out / "report.md").read_text()
    assert "oracle: true type" in report and "learned: checkpoints/guider" in report and "(n = 1 learned)" in report
