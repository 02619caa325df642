"""The README's research commands, end to end, as a new user runs them (subprocesses, embedded model).

experiments/synthesize.py -> sft.py -> race.py on a tiny config: one shopper, one round of one tool
step (the seeded search) with the LLM critique off, two LoRA steps, one held-out query. Each test
checks the files its command writes. The README's own command lines are also checked to compose
(every override exists), without running them. Slow: it loads the embedded model three times.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys

import pytest

from rl_shop.paths import REPO_ROOT

# a module fixture may build the search index cold (minutes on 2 slow cores): past the suite's 600 s
pytestmark = [pytest.mark.slow, pytest.mark.llm, pytest.mark.timeout(1000)]

ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def run_app(script: str, *overrides: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Runs an experiment script; past ``timeout`` it is sent SIGABRT, so faulthandler prints every
    thread's stack and the failure says where it was stuck (a cold index build alone takes minutes)."""
    args = [sys.executable, str(REPO_ROOT / "experiments" / script), *overrides]
    proc = subprocess.Popen(
        args,
        cwd=REPO_ROOT,
        env={**ENV, "PYTHONFAULTHANDLER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        out, err = proc.communicate()
        pytest.fail(f"{script} ran past {timeout} s; where its threads were:\n{err[-8000:]}\n{out[-2000:]}")
    res = subprocess.CompletedProcess(args, proc.returncode, out, err)
    assert res.returncode == 0, f"{script} exited {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


def readme_commands(app: str) -> list[list[str]]:
    """The override lists of the README's ``experiments/<app>`` command lines."""
    text = (REPO_ROOT / "README.md").read_text()
    return [
        line.split(f"experiments/{app}", 1)[1].split("#")[0].split()
        for line in text.splitlines()
        if f"experiments/{app} " in line or line.rstrip().endswith(f"experiments/{app}")
    ]


@pytest.mark.parametrize("app", ["synthesize", "sft", "race"])
def test_readme_research_command_lines_compose(app) -> None:
    from hydra import compose, initialize_config_dir

    from rl_shop.paths import CONFIG_DIR

    lines = readme_commands(f"{app}.py")
    assert lines, f"the README has no experiments/{app}.py command"
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        for overrides in lines:
            cfg = compose(config_name=app, overrides=overrides)  # an unknown key raises here
            assert cfg is not None


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("research") / "demo"
    res = run_app(
        "synthesize.py",
        "n_target=1",
        "max_attempts=2",
        "max_rounds=1",
        "seed=0",
        "research_agent.max_steps=1",
        "supervisor.use_llm=false",
        "filter.min_score=0.0",
        "filter.min_fact_share=0.0",
        "llm.cache.enabled=false",
        f"out_dir={out}",
    )
    return out, res


def test_synthesize_writes_trajectories_sft_data_and_card(synth) -> None:
    from rl_shop.research.sft_data import read_sft_jsonl
    from rl_shop.research.trajectory import Trajectory

    out, res = synth
    assert re.search(r"kept 1/\d trajectories", res.stdout)
    trajs = [Trajectory.model_validate_json(x) for x in (out / "trajectories.jsonl").read_text().splitlines()]
    assert 1 <= len(trajs) <= 2 and trajs[-1].meta["filter"]["keep"]
    assert trajs[-1].rounds[0].steps[0].source == "seeded" and trajs[-1].final_report.recommendations
    recs = read_sft_jsonl(out / "sft.jsonl")
    assert len(recs) == 1 and recs[0]["messages"][0]["role"] == "system"
    assert recs[0]["messages"][-1]["role"] == "assistant" and "recommendations" in recs[0]["messages"][-1]["content"]
    card = (out / "README.md").read_text()
    # the card's literal JSON example survives (it crashed the f-string before), and its stats are JSON
    assert '{"thought": "Reflection: ...", "tool": "reflect", "argument": ""}' in card
    stats = json.loads(re.search(r"Statistics: `(.*)`", card).group(1))
    assert stats["kept"] == 1 and stats["attempted"] == len(trajs)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kept"] == 1 and summary["intent_shift"] is None
    assert (out / "rounds.csv").read_text().startswith("trajectory,round")


@pytest.fixture(scope="module")
def sft(synth):
    out, _ = synth
    res = run_app("sft.py", f"data={out / 'sft.jsonl'}", "max_steps=2", "save_steps=2", "max_length=512")
    return out / "sft", res


def test_sft_trains_two_steps_and_saves_an_adapter(sft) -> None:
    run, res = sft
    assert "trained 2 steps on 1 examples (text tool format, cpu)" in res.stdout
    summary = json.loads((run / "sft_summary.json").read_text())
    assert summary["steps"] == 2 and len(summary["losses"]) == 2
    assert all(math.isfinite(v) and v > 0 for v in summary["losses"])
    assert (run / "adapter" / "adapter_config.json").is_file() and (
        run / "adapter" / "adapter_model.safetensors"
    ).is_file()


def test_race_base_vs_tuned_and_by_round(synth, sft) -> None:
    import pandas as pd

    out, _ = synth
    run, _ = sft
    race_dir = out / "race"
    run_app(
        "race.py",
        f"adapter={run / 'adapter'}",
        f"trajectories={out / 'trajectories.jsonl'}",
        "n_queries=1",
        "research_agent.max_steps=1",
        "llm.cache.enabled=false",
        f"out_dir={race_dir}",
    )
    summary = json.loads((race_dir / "summary.json").read_text())
    assert summary["judge"] == "criteria" and summary["n_queries"] == 1
    assert set(summary["models"]) == {"base", "tuned"} and "+adapter" in summary["models"]["tuned"]
    table = pd.read_csv(race_dir / "base_vs_tuned.csv")
    assert sorted(table["model"]) == ["base", "tuned"] and table["race"].between(0, 1).all()
    assert summary["tuned_minus_base"]["n"] == 1
    rounds = pd.read_csv(race_dir / "by_round.csv")
    n_rounds = sum(len(json.loads(x)["rounds"]) for x in (out / "trajectories.jsonl").read_text().splitlines())
    assert len(rounds) == n_rounds and rounds["race"].between(0, 1).all()
    assert (race_dir / "race.png").stat().st_size > 1000


def test_race_on_a_server_with_the_tuned_model_served_beside_the_base(synth, sft, tmp_path) -> None:
    """The documented ``llm=openai`` path: `rl-shop serve-llm` serves the base and, under its own
    name, the SFT adapter; race.py compares them on the server and judges with the LLM judge."""
    import pandas as pd
    from llm_server import Server

    out, _ = synth
    run, _ = sft
    srv = Server(tmp_path, "--set", f"adapters.tuned={run / 'adapter'}", model_name="base", wait_s=300)
    try:
        assert [m["id"] for m in srv.models["data"]] == ["base", "tuned"]
        served = ("llm=openai", f"llm.base_url={srv.url}", "llm.model=base", "llm.cache.enabled=false")
        race_dir = out / "race_served"
        run_app(
            "race.py",
            *served,
            "tuned_model=tuned",
            "race.judge=llm",
            "n_queries=1",
            "research_agent.max_steps=1",
            f"out_dir={race_dir}",
        )
        summary = json.loads((race_dir / "summary.json").read_text())
        assert summary["judge"] == "llm"
        assert summary["models"] == {"base": "openai:base", "tuned": "openai:tuned"}
        table = pd.read_csv(race_dir / "base_vs_tuned.csv")
        assert sorted(table["model"]) == ["base", "tuned"] and table["race"].between(0, 1).all()
        # a name the server does not list is refused before any query (llama_cpp.server would
        # otherwise answer it with its default model, and the "tuned" column would be the base)
        bad = subprocess.run(
            [sys.executable, str(REPO_ROOT / "experiments" / "race.py"), *served, "tuned_model=tuend", "n_queries=1"],
            cwd=REPO_ROOT,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert bad.returncode == 2 and "serves ['base', 'tuned'], not both 'base' and 'tuend'" in bad.stderr
    finally:
        srv.stop()
