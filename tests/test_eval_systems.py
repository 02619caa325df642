"""RAG baseline, MACDF adapter, UDS judge, sim-to-agent table and the app's flags, with test doubles only.

The LLM here is the scripted test double of tests/test_llm_scripted.py (fixed replies, never
presented as a model): it checks the plumbing (prompt, schema, parsing, fallback), not quality.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from test_eval_helpers import FixedIndex, make_items, tiny_catalog
from test_llm_scripted import ScriptedLLM

from rl_shop.evaluation.consistency import SimOutcome, consistency_table, item_differences, sim_outcomes
from rl_shop.evaluation.rag import RAGSettings, RAGSystem, merge_ranking, parse_answer
from rl_shop.evaluation.systems import MACDFSystem, RetrievalSystem, System
from rl_shop.evaluation.uds import UDSJudge, describe_intent
from rl_shop.paths import REPO_ROOT
from rl_shop.sim.config import load_sim_config
from rl_shop.sim.constraints import CatalogArrays
from rl_shop.sim.shopper import Shopper


@pytest.fixture(scope="module")
def cat():
    return tiny_catalog()


@pytest.fixture(scope="module")
def item(cat):
    return make_items(cat)[0]  # sony headphones under $150


def _shopper(item, cat, seed=0):
    return Shopper(item.intent, cat, load_sim_config(), seed=seed)


def test_parse_and_merge():
    assert parse_answer('{"ranking": [3, 1], "justification": " ok "}', 4) == ([2, 0], "ok", [])
    picks, _, problems = parse_answer('{"ranking": [9, 2, 2], "justification": "x"}', 4)
    assert picks == [1] and len(problems) == 2
    assert parse_answer("no json here", 4)[0] is None
    assert parse_answer('{"ranking": "one"}', 4)[0] is None
    assert merge_ranking(["a", "b", "c", "d"], [2, 0], 3) == ["c", "a", "b"]


def test_rag_reranks_with_the_llm_and_streams(cat, item):
    index = FixedIndex(["h3", "h4", "h2", "h1"])
    llm = ScriptedLLM(['{"ranking": [3, 4], "justification": "The sony h2 and h1 fit a $150 budget."}'])
    rag = RAGSystem(llm, index, cat, RAGSettings(n_candidates=4, k=4))
    assert isinstance(rag, System)
    out = rag.run(item, _shopper(item, cat))
    assert out.ranked_ids == ["h2", "h1", "h3", "h4"]
    assert out.answer.startswith("The sony h2") and out.llm_fallbacks == 0
    assert out.products[0]["reason"] and out.products[2]["reason"] == ""
    assert 0 <= out.ttft_s <= out.total_s
    prompt = llm.calls[0]["messages"][-1]["content"]
    assert "[3] sony headphones model h2" in prompt and "$120.00" in prompt and item.query in prompt
    schema = llm.calls[0]["json_schema"]
    assert schema["properties"]["ranking"]["items"]["maximum"] == 4


def test_rag_unusable_output_keeps_retrieval_order_and_counts(cat, item):
    rag = RAGSystem(
        ScriptedLLM(["I think number three is best"]),
        FixedIndex(["h3", "h4", "h2"]),
        cat,
        RAGSettings(n_candidates=3, k=3),
    )
    out = rag.run(item, _shopper(item, cat))
    assert out.ranked_ids == ["h3", "h4", "h2"] and out.answer == "" and out.llm_fallbacks == 1


def test_retrieval_system_uses_raw_query(cat, item):
    index = FixedIndex(["h1", "h2"])
    out = RetrievalSystem(index, k=2).run(item, _shopper(item, cat))
    assert index.queries == [item.query] and out.ranked_ids == ["h1", "h2"] and out.ttft_s == out.total_s
    with pytest.raises(ValueError):
        RetrievalSystem(index, k=0)


class FakeAssistant:
    """Stands in for MACDFAssistant: asks one question and shows one shortlist through answer_fn,
    returns the contract's fields."""

    def __init__(self):
        self.sessions = []

    def run(self, query, answer_fn, session_id, on_token=None):
        self.sessions.append(session_id)
        reply = answer_fn("brand", "Any brand you prefer?", ())
        self.shortlist_reply = answer_fn("suggest", "Would one of these do: 1. Sony h2?", ("h2",))
        return SimpleNamespace(
            products=[SimpleNamespace(product_id="h2", title="Sony h2", brand="sony", price=120.0, reason="in budget")],
            answer="Sony h2 fits.",
            follow_up="Want a case too?",
            clarifications=[
                SimpleNamespace(slot="brand", question="Any brand you prefer?", answer=reply, status="value")
            ],
            timings={"ttft_s": 0.7, "total_s": 3.5, "agent:Guider": 1.0},
            refused=False,
            query_type="multi_constraint",
            replans=1,
            llm_fallbacks=2,
            trace=[],
        )


def test_macdf_adapter_uses_the_language_face(cat, item):
    from rl_shop.evaluation.systems import clarify_confirm_threshold

    fake = FakeAssistant()
    out = MACDFSystem(fake, "macdf_heuristic").run(item, _shopper(item, cat, seed=11))
    twin = _shopper(item, cat, seed=11)  # same shopper seed -> same replies
    expected = twin.answer_text("brand")
    assert fake.shortlist_reply == twin.reply("suggest", ("h2",), clarify_confirm_threshold())
    assert out.clarifications == [("brand", "Any brand you prefer?", expected)] and out.rounds == 1
    assert out.ranked_ids == ["h2"] and out.ttft_s == 0.7 and out.total_s == 3.5 and out.llm_fallbacks == 2
    assert out.extra["agent_s"] == {"agent:Guider": 1.0} and out.extra["replans"] == 1
    assert fake.sessions == ["eval:macdf_heuristic:q0"]
    with pytest.raises(TypeError):
        MACDFSystem(object(), "x")


def test_judge_scores_or_reports_missing(cat, item):
    rows = cat.set_index("product_id", drop=False)
    ok = UDSJudge(ScriptedLLM(['{"completeness": 3, "correctness": 2, "usefulness": 3, "overall": 2}']), rows)
    s = ok.score(item, ["h2", "h3"], "Sony h2 is in budget.")
    assert (s.completeness, s.correctness, s.usefulness, s.overall) == (3, 2, 3, 2)
    prompt = ok.llm.calls[0]["messages"][-1]["content"]
    assert "budget at most $150" in prompt and "sony headphones model h2" in prompt and "completeness" in prompt
    bad = UDSJudge(ScriptedLLM(['{"completeness": 7, "correctness": 2, "usefulness": 3, "overall": 9}']), rows)
    assert bad.score(item, ["h2"], "x") is None  # out-of-scale scores are not clipped into a verdict
    assert "brand: sony" in describe_intent(item)


def test_consistency_table_hand_computed(cat):
    items = make_items(cat)[:2]  # q0 multi_constraint, q1 negation
    sim = {
        ("learned", "q0"): SimOutcome(1.0, 0.8, 2),
        ("heuristic", "q0"): SimOutcome(0.5, 0.6, 1),
        ("learned", "q1"): SimOutcome(0.2, 0.4, 1),
        ("heuristic", "q1"): SimOutcome(0.4, 0.4, 3),
    }
    recs = [
        {"system": "macdf_learned", "item_id": "q0", "accuracy@5": 0.6, "rounds": 2},
        {"system": "macdf_heuristic", "item_id": "q0", "accuracy@5": 0.6, "rounds": 1},
        {"system": "macdf_learned", "item_id": "q1", "accuracy@5": 0.2, "rounds": 0},
        {"system": "macdf_heuristic", "item_id": "q1", "accuracy@5": 0.4, "rounds": 1},
    ]
    crashed = {"system": "macdf_learned", "item_id": "q9", "accuracy@5": 0.0, "rounds": 0, "error": "boom"}
    t = consistency_table(item_differences(items, sim, [*recs, crashed]))
    assert t.loc["multi_constraint", "sim_d_acc"] == pytest.approx(0.2)
    assert t.loc["multi_constraint", "agent_d_acc"] == pytest.approx(0.0)
    assert t.loc["overall", "sim_d_acc"] == pytest.approx(0.1)
    assert t.loc["overall", "agent_d_acc"] == pytest.approx(-0.1)
    assert t.loc["overall", "gap_acc"] == pytest.approx(-0.2)  # per query: (0 - 0.2) and (-0.2 - 0)
    assert t.loc["overall", "sim_d_rounds"] == pytest.approx(-0.5)
    assert math.isnan(t.loc["negation", "sim_d_acc_ci95"])  # one intent: no interval
    partial = consistency_table(
        item_differences(items, sim, [r for r in recs if r["item_id"] == "q0"])
    )  # q1 not run in the loop
    assert partial.loc["overall", "gap_acc"] == pytest.approx(-0.2)  # only q0 is paired: 0.0 - 0.2
    assert partial.loc["overall", "sim_d_acc"] == pytest.approx(0.1) and partial.loc["overall", "n_agent"] == 1
    only_errors = consistency_table(item_differences(items, sim, [{**r, "error": "x"} for r in recs]))
    assert math.isnan(only_errors.loc["overall", "agent_d_acc"]) and only_errors.loc["overall", "n_agent"] == 0


def test_retained_share_by_hand():
    from rl_shop.evaluation.consistency import retained_share

    pairs = [
        ("reasoning", {"sim_d_acc": 0.4, "agent_d_acc": 0.2}),
        ("ambiguous", {"sim_d_acc": 0.2, "agent_d_acc": 0.4}),
    ]
    out = retained_share([*pairs, ("simple", {"sim_d_acc": None, "agent_d_acc": 1.0})], seed=0)
    assert out["n"] == 2 and out["sim_delta"] == pytest.approx(0.3) and out["loop_delta"] == pytest.approx(0.3)
    assert out["retained"] == pytest.approx(1.0) and out["same_sign"]
    lo, hi = out["retained_ci95"]  # resamples: (0.4, 0.2) -> 0.5, mixed -> 1.0, (0.2, 0.4) -> 2.0
    assert lo == pytest.approx(0.5) and hi == pytest.approx(2.0)
    flat = retained_share([("simple", {"sim_d_acc": 0.0, "agent_d_acc": 0.1})])
    assert flat["retained"] is None and flat["sim_delta"] == 0.0 and not flat["same_sign"]
    assert retained_share([])["retained"] is None


class AlwaysStop:
    def act(self, obs, action_mask=None):
        return 10  # envs.clarify.STOP


def test_sim_outcomes_on_one_intent_pools(cat):
    item = make_items(cat)[0]  # stated: category, budget, brand -> C = {h1, h2, h6} = gold
    arr = CatalogArrays.of(cat)
    out = sim_outcomes([item], {"stop": AlwaysStop()}, arr, {}, episodes=3, seed=0, hidden_dont_know_bonus=0.1)
    o = out[("stop", "q0")]
    assert o.rounds == 0 and o.accuracy_at_5 == pytest.approx(1.0) and o.mean_return == pytest.approx(1.0)
    item2 = make_items(cat)[2]  # ambiguous usb stick, capacity >= 32 hidden: C = 6 drives, gold = 5 of them
    o2 = sim_outcomes([item2], {"stop": AlwaysStop()}, arr, {}, 2, 0, 0.1)[("stop", "q2")]
    assert o2.accuracy_at_5 == pytest.approx(5 / 6)  # u2, u3, u4, u5, u6 of u1..u6


def test_app_translates_argparse_flags():
    spec = importlib.util.spec_from_file_location("evaluate_app", REPO_ROOT / "experiments" / "evaluate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.translate_flags(["--limit", "1", "--types", "simple,negation", "seed=3"]) == [
        "limit=1",
        "types=[simple,negation]",
        "seed=3",
    ]
    assert mod.translate_flags(["--types=[simple]", "--results-dir", "r"]) == ["types=[simple]", "results_dir=r"]
    with pytest.raises(SystemExit):
        mod.translate_flags(["--limit"])


@pytest.mark.slow
def test_sharded_multirun_then_merge_writes_one_report(tmp_path):
    """The documented sharded run: two Hydra multirun jobs (joblib launcher) write their shards,
    a plain run over the same results_dir merges them and reports the whole slice."""
    out = tmp_path / "run"
    common = [
        f"results_dir={out}",
        "systems=[retrieval]",
        "limit=1",
        "uds.judge.enabled=false",
        "ab.enabled=false",
        "consistency.enabled=false",
        "plots=false",
        "tensorboard=false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    app = str(REPO_ROOT / "experiments" / "evaluate.py")
    shards = subprocess.run(
        [
            sys.executable,
            app,
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "shard.count=2",
            "shard.index=0,1",
            *common,
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert shards.returncode == 0, shards.stderr[-2000:]
    sizes = [len((out / "shards" / f"{i}-of-2" / "per_query.jsonl").read_text().splitlines()) for i in range(2)]
    assert sizes == [4, 4] and not (out / "report.md").exists()  # 8 types, one query each, split in two
    merged = subprocess.run(
        [sys.executable, app, *common], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert merged.returncode == 0, merged.stderr[-2000:]
    assert "merged 8 results" in merged.stdout and "0 to go" in merged.stdout
    assert len((out / "per_query.jsonl").read_text().splitlines()) == 8
    report = (out / "report.md").read_text()
    assert "95% intervals" in report and "| Negation Intent |" in report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["systems"]["retrieval"]["eccd_v1"]["n"] == 8
    assert all(r["loop_delta"] is None and r["notes"] for r in summary["roles"].values())
