"""Calibration of Collaborate-v0 from the agent loop (rl_shop/train/calibration.py, experiments/calibrate_collaborate.py)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from envs.collaborate import CollaborateEnv, load_default_kwargs
from rl_shop.evaluation.runner import EvalRunError, select_items
from rl_shop.paths import CONFIG_DIR
from rl_shop.sim.benchmark import SPLIT_SHARES, load_benchmark, split_of
from rl_shop.train import calibration as C

REPO = Path(__file__).resolve().parent.parent
ANSWER = C.Arm("answer", clarify=False, replan=False)
CLARIFY = C.Arm("clarify", clarify=True, replan=False)
REPLAN = C.Arm("replan", clarify=False, replan=True)


def settings(**kw: object) -> C.FitSettings:
    base = dict(
        episodes=200, seed=0, clarity_floors=(0.3,), prior_weight=0.01, prior_scale=0.25, se_floor=0.02, max_evals=120
    )
    return C.FitSettings(**{**base, **kw})  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- split
def test_split_is_a_fixed_hash_with_the_configured_shares() -> None:
    ids = [f"eccd-{i:05d}" for i in range(20000)]
    counts = Counter(split_of(i) for i in ids)
    assert set(counts) == set(SPLIT_SHARES)
    for name, share in SPLIT_SHARES.items():
        assert abs(counts[name] / len(ids) - share) < 0.015, (name, counts)
    # pinned: a change of the hash would silently move queries between train and test
    assert [split_of(i) for i in ids[:8]] == ["train", "train", "test", "train", "test", "test", "test", "train"]


def test_select_items_by_split_keeps_splits_disjoint() -> None:
    items = load_benchmark()
    train = {it.id for it in select_items(items, split="train")}
    test = {it.id for it in select_items(items, split="test")}
    assert train and test and not train & test
    assert all(split_of(i) == "train" for i in train)
    with pytest.raises(EvalRunError, match="unknown split 'trian'"):
        select_items(items, split="trian")


# ----------------------------------------------------------------------------- arms and logs
def test_arms_from_config_rejects_malformed_arms() -> None:
    assert C.arms_from_config({"a": {"clarify": True, "replan": False}}) == [C.Arm("a", True, False)]
    with pytest.raises(ValueError, match="exactly clarify"):
        C.arms_from_config({"a": {"clarify": True}})
    with pytest.raises(ValueError, match="true or false"):
        C.arms_from_config({"a": {"clarify": "yes", "replan": False}})
    with pytest.raises(ValueError, match="no calibration arms"):
        C.arms_from_config({})


def test_summarise_by_hand() -> None:
    recs = [
        {"query_type": "ambiguous", "system": "clarify", "accuracy@5": 1.0, "rounds": 2, "total_s": 1.0,
         "shopper_quit": False, "extra": {"replans": 0}},
        {"query_type": "ambiguous", "system": "clarify", "accuracy@5": 0.2, "rounds": 1, "total_s": 3.0,
         "shopper_quit": True, "extra": {"replans": 1}},
        {"query_type": "ambiguous", "system": "clarify", "accuracy@5": 0.0, "error": "boom"},
    ]  # fmt: skip
    (cell,) = C.summarise(recs)
    assert (cell.query_type, cell.arm, cell.n) == ("ambiguous", "clarify", 2)
    assert cell.accuracy == pytest.approx(0.6)
    assert cell.accuracy_se == pytest.approx(0.4)  # sd of (1.0, 0.2) is 0.5657; / sqrt(2)
    assert cell.rounds == (2, 1)
    assert (cell.replan_rate, cell.total_s, cell.quit_rate) == (0.5, 2.0, 0.5)
    assert math.isnan(cell.clarity_hat)  # no trails in these records
    recs[0]["extra"]["clarity_hat"], recs[1]["extra"]["clarity_hat"] = [0.2, 0.4], [0.4]
    assert C.summarise(recs)[0].clarity_hat == pytest.approx(0.3)  # the mean of the first estimates


def _trail_record(qtype: str, arm: str, trail: list[float], rounds: int) -> dict:
    return {"query_type": qtype, "system": arm, "accuracy@5": 0.0, "rounds": rounds, "extra": {"clarity_hat": trail}}


def test_seen_clarity_by_hand() -> None:
    recs = [
        # ambiguous: starts 0 and 2/9; answers 0 -> 1/9 (gain 1/9) and 2/9 -> 2/9 (gain 0)
        _trail_record("ambiguous", "clarify", [0.0, 1 / 9, 1 / 9], 1),  # the last decision: no question
        _trail_record("ambiguous", "clarify", [2 / 9, 2 / 9], 1),
        _trail_record("ambiguous", "answer", [0.9], 0),  # another arm: not read
        # simple: one query, one answer 0.5 -> 0.75 (gain 0.5)
        _trail_record("simple", "clarify", [0.5, 0.75], 1),
        {**_trail_record("simple", "clarify", [0.1, 1.0], 1), "error": "boom"},  # failed: not read
    ]
    seen = {s.query_type: s for s in C.seen_clarity(recs, "clarify", min_answers=2)}
    amb, simple = seen["ambiguous"], seen["simple"]
    assert (amb.n, amb.n_answers, amb.pooled_gain) == (2, 2, False)
    assert amb.mean == pytest.approx(1 / 9) and amb.sd == pytest.approx(math.sqrt(2) / 9)
    assert amb.gain == pytest.approx(round(1 / 18, 4))
    # uniform with mean 1/9 and sd sqrt(2)/9: half-width sqrt(3) * sqrt(2) / 9 = 0.2722; cut at 0
    assert amb.seen_range == [0.0, round(1 / 9 + math.sqrt(6) / 9, 4)]
    # one answer is under min_answers: the gain is the mean of all three answers, (1/9 + 0 + 0.5) / 3
    assert simple.pooled_gain and simple.gain == pytest.approx(round((1 / 9 + 0.5) / 3, 4))
    assert simple.seen_range == [0.5, 0.5]
    assert seen["negation"].n == 0
    kw = C.with_seen_clarity(load_default_kwargs(), seen.values())
    assert kw["types"]["ambiguous"]["clarity_seen"] == amb.seen_range
    assert "clarity_seen" not in kw["types"]["negation"]  # no queries: the default (the latent) stands
    CollaborateEnv(**kw)  # a valid env config


def test_seen_clarity_refuses_records_without_estimates() -> None:
    recs = [{"query_type": "simple", "system": "clarify", "accuracy@5": 1.0, "rounds": 1, "extra": {}}]
    with pytest.raises(ValueError, match="no clarity estimates under arm 'clarify'.*rerun the loop"):
        C.seen_clarity(recs, "clarify")


def test_with_type_params_changes_only_that_type() -> None:
    base = load_default_kwargs()
    kw = C.with_type_params(base, "ambiguous", {"rel_max": 0.5, "clarity_shift": 0.1})
    assert kw["types"]["ambiguous"]["rel_max"] == 0.5
    lo, hi = base["types"]["ambiguous"]["clarity"]
    assert kw["types"]["ambiguous"]["clarity"] == [round(lo + 0.1, 4), round(hi + 0.1, 4)]
    assert kw["types"]["simple"] == base["types"]["simple"]
    assert base["types"]["ambiguous"]["rel_max"] != 0.5  # the base is not mutated


# ----------------------------------------------------------------------------- env side
def test_play_arm_follows_the_script() -> None:
    env = CollaborateEnv()
    answer = C.play_arm(env, "ambiguous", ANSWER, (), 400, seed=3)
    asked = C.play_arm(env, "ambiguous", CLARIFY, (2,), 400, seed=3)
    assert len(answer) == len(asked) == 400  # patience >= 2: nobody quits after two questions
    assert asked.mean() > answer.mean() + 0.1  # ambiguous: clarity is what the env's clarify recovers
    gains = {}
    for p_bad in (0.0, 1.0):
        env = CollaborateEnv(**C.with_type_params(load_default_kwargs(), "negation", {"p_bad_plan": p_bad}))
        answered = C.play_arm(env, "negation", ANSWER, (), 300, seed=4)
        replanned = C.play_arm(env, "negation", REPLAN, (), 300, seed=4)
        assert (replanned >= answered - 1e-12).all()  # a re-plan adds a search; the best list is kept
        gains[p_bad] = replanned.mean() - answered.mean()
    assert gains[1.0] > gains[0.0] + 0.05  # the re-plan pays most where the first plan is bad


def test_fit_recovers_outcomes_generated_by_known_parameters() -> None:
    """Loop means made by the env itself at known parameters (another seed): the fit, started
    from the hand-set prior, must reproduce them."""
    base = load_default_kwargs()
    truth = C.with_type_params(base, "ambiguous", {"rel_max": 0.95, "clarify_gain": 0.85, "p_bad_plan": 0.05})
    env = CollaborateEnv(**truth)
    arms, rounds = [ANSWER, CLARIFY], (1, 2, 2)
    cells = [
        C.LoopCell("ambiguous", a.name, 100, float(C.play_arm(env, "ambiguous", a, rounds, 3000, 99).mean()), 0.02,
                   rounds if a.clarify else (), 0.0, 0.0, 0.0)
        for a in arms
    ]  # fmt: skip
    prior_env = CollaborateEnv(**base)
    prior_gap = C.play_arm(prior_env, "ambiguous", CLARIFY, rounds, 3000, 99).mean() - cells[1].accuracy
    assert abs(prior_gap) > 0.08  # the prior is visibly off: the fit has something to do
    fit = C.fit_type(base, "ambiguous", cells, arms, settings())
    for c in cells:
        assert fit.env_accuracy[c.arm] == pytest.approx(c.accuracy, abs=0.03), (fit, cells)
    assert math.isfinite(fit.loss)


def test_more_starts_never_fit_worse_and_workers_change_nothing() -> None:
    """The loop's general Q&A pattern (nothing unless a question *and* a re-plan): the prior start
    is one of the starts, so more starts can only lower the loss; processes do not change the fit."""
    arms = [ANSWER, CLARIFY, REPLAN, C.Arm("clarify_replan", True, True)]
    means = {"answer": 0.0, "clarify": 0.0, "replan": 0.14, "clarify_replan": 0.45}
    cells = [
        C.LoopCell("general_qa", a.name, 50, means[a.name], 0.05, (1,) if a.clarify else (), 0, 0, 0) for a in arms
    ]
    quick = dict(episodes=60, max_evals=15, clarity_floors=(0.0,))
    one = C.fit_type(load_default_kwargs(), "general_qa", cells, arms, settings(**quick))
    three = C.fit_type(load_default_kwargs(), "general_qa", cells, arms, settings(**quick, starts=3))
    assert three.loss <= one.loss
    every_type = [C.LoopCell(t, "answer", 50, 0.5, 0.05, (), 0, 0, 0) for t in load_default_kwargs()["types"]]
    tiny = settings(episodes=20, max_evals=3, clarity_floors=(0.0,))
    serial = C.fit_all(load_default_kwargs(), every_type, [ANSWER], tiny, progress=str)
    pooled = C.fit_all(
        load_default_kwargs(), every_type, [ANSWER], settings(**{**tiny.__dict__, "workers": 2}), progress=str
    )
    assert serial == pooled


def test_fit_needs_every_arm_of_the_type() -> None:
    cell = C.LoopCell("simple", "answer", 5, 0.9, 0.02, (), 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="no loop outcomes for query type 'simple' under arm"):
        C.fit_type(load_default_kwargs(), "simple", [cell], [ANSWER, CLARIFY], settings())


def test_calibrated_kwargs_sets_floor_and_types() -> None:
    fit = C.TypeFit("general_qa", {"rel_max": 0.3, "clarity_shift": 0.0, "clarify_gain": 0.1, "p_bad_plan": 0.2}, {}, 0)
    kw = C.calibrated_kwargs(load_default_kwargs(), 0.15, [fit])
    env = CollaborateEnv(**kw)
    assert env.params.clarity_floor == 0.15
    assert env.params.rel_max[-1] == pytest.approx(0.3)


# ----------------------------------------------------------------------------- shipped calibration
def test_shipped_calibrated_env_composes_and_differs_from_the_prior() -> None:
    path = CONFIG_DIR / "env" / "collaborate_calibrated.yaml"
    card = json.loads((REPO / "data" / "calibration" / "collaborate_calibration.card.json").read_text())
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["env=collaborate_calibrated"])
    kwargs = OmegaConf.to_container(cfg.env.kwargs, resolve=True)
    assert isinstance(kwargs, dict)
    env = CollaborateEnv(**kwargs)
    assert cfg.env.id == "rl_shop/Collaborate-v0" and path.is_file()
    assert env.params.clarity_floor == card["clarity_floor"]
    prior = CollaborateEnv()
    assert not np.allclose(env.params.rel_max, prior.params.rel_max)
    for qtype, params in card["fitted"].items():
        assert cfg.env.kwargs.types[qtype].rel_max == params["rel_max"]
    for qtype, c in card["clarity"].items():  # the estimate reads on the runtime's scale
        assert cfg.env.kwargs.types[qtype].clarity_seen == c["env_seen"]
    t = list(card["clarity"]).index("simple")
    assert env.params.seen_hi[t] < 0.5 < env.params.clarity_lo[t]  # a clear request names few of 9 slots


@pytest.mark.slow
def test_calibrate_app_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "cal"
    cmd = [
        sys.executable, str(REPO / "experiments" / "calibrate_collaborate.py"), "limit=1", "fit.episodes=40",
        "fit.max_evals=6", "fit.clarity_floors=[0.3]", "fit.starts=2", "fit.workers=2", "check_episodes=40",
        f"results_dir={out}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("per_query.jsonl", "loop_outcomes.csv", "check.csv", "calibration.card.json", "report.md"):
        assert (out / name).is_file(), name
    env_cfg = yaml.safe_load((out / "collaborate_calibrated.yaml").read_text())
    assert env_cfg["defaults"] == ["collaborate", "_self_"]
    assert set(env_cfg["kwargs"]["types"]) == set(load_default_kwargs()["types"])
    assert any("clarity_seen" in spec for spec in env_cfg["kwargs"]["types"].values())
    card = json.loads((out / "calibration.card.json").read_text())
    assert {"runtime_mean", "env_seen", "seen_gain"} <= set(card["clarity"]["ambiguous"])
    lines = (out / "per_query.jsonl").read_text().splitlines()
    assert len(lines) == 8 * 4  # one query per type, four arms
    assert not (CONFIG_DIR / "env" / "collaborate_calibrated.yaml").samefile(out / "collaborate_calibrated.yaml")
