"""Resumable, sharded synthesis (rl_shop.research.synthesis_run and experiments/synthesize.py's merge).

The trajectories are hand-built (research_fixtures): what is under test is which seeds are
attempted, what a killed run keeps, and how shards merge, not the model."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
from research_fixtures import two_round_trajectory

from rl_shop.paths import REPO_ROOT
from rl_shop.research.filtering import FilterConfig
from rl_shop.research.synthesis_run import (
    TRAJECTORIES,
    SynthesisRunError,
    attempt_seeds,
    merge_shards,
    pin,
    read_trajectories,
    run_attempts,
    shard_target,
)
from rl_shop.sharding import check_shard, shard_dir

# score 0.9 passes min_score 0.5; an odd seed's trajectory scores 0.1 and is rejected as low_score
FILTER = FilterConfig(min_score=0.5, min_fact_share=0.0, require_citation=False)


def make(seed: int):
    traj = two_round_trajectory()
    traj.id, traj.seed = f"traj-{seed}", seed
    traj.rounds[-1].feedback.score = 0.9 if seed % 2 == 0 else 0.1
    traj.meta["seconds"] = 1.0
    return traj


class Recorder:
    """``make`` that remembers the seeds it was asked for and can die on a given call."""

    def __init__(self, die_on_call: int | None = None) -> None:
        self.seeds: list[int] = []
        self.die_on_call = die_on_call

    def __call__(self, seed: int):
        if self.die_on_call is not None and len(self.seeds) + 1 == self.die_on_call:
            raise KeyboardInterrupt("killed")
        self.seeds.append(seed)
        return make(seed)


def test_shards_are_disjoint_cover_the_attempts_and_split_the_target() -> None:
    shards = [attempt_seeds(100, 11, i, 3) for i in range(3)]
    assert sorted(s for shard in shards for s in shard) == list(range(100, 111))
    assert shards[1] == [101, 104, 107, 110]
    assert [shard_target(50, i, 3) for i in range(3)] == [17, 17, 16]
    assert attempt_seeds(0, 4) == [0, 1, 2, 3] and shard_target(7) == 7
    for bad in [(2, 2), (-1, 2), (0, 0), (True, 2), ("a", 2)]:
        with pytest.raises(ValueError, match="shard.index must be in"):
            check_shard(*bad)
    assert shard_dir("/r", 1, 4).as_posix() == "/r/shards/1-of-4"


def test_run_stops_at_the_target_and_records_every_attempt(tmp_path) -> None:
    rec = Recorder()
    attempts = list(run_attempts(tmp_path, list(range(10)), 3, rec, FILTER))
    assert rec.seeds == [0, 1, 2, 3, 4]  # 0, 2, 4 kept; 1, 3 rejected
    assert [a.decision.keep for a in attempts] == [True, False, True, False, True]
    assert attempts[1].decision.reasons == ["low_score"]
    saved = read_trajectories(tmp_path / TRAJECTORIES)
    assert [t.seed for t in saved] == [0, 1, 2, 3, 4] and saved[1].meta["filter"]["keep"] is False


def test_a_killed_run_resumes_where_it_stopped_with_the_same_result(tmp_path) -> None:
    for name in ("whole", "cut"):
        (tmp_path / name).mkdir()
    whole = [
        a.trajectory.seed
        for a in run_attempts(tmp_path / "whole", list(range(10)), 3, Recorder(), FILTER)
        if a.decision.keep
    ]
    dying = Recorder(die_on_call=3)
    with pytest.raises(KeyboardInterrupt):
        list(run_attempts(tmp_path / "cut", list(range(10)), 3, dying, FILTER))
    assert dying.seeds == [0, 1]
    again = Recorder()
    attempts = list(run_attempts(tmp_path / "cut", list(range(10)), 3, again, FILTER))
    assert again.seeds == [2, 3, 4]  # nothing attempted twice
    assert [a.resumed for a in attempts] == [True, True, False, False, False]
    assert [a.trajectory.seed for a in attempts if a.decision.keep] == whole == [0, 2, 4]
    # a larger target on the same directory goes on with the next seeds only
    more = Recorder()
    list(run_attempts(tmp_path / "cut", list(range(10)), 4, more, FILTER))
    assert more.seeds == [5, 6]


def test_a_torn_last_line_is_dropped_and_a_bad_middle_line_is_an_error(tmp_path) -> None:
    path = tmp_path / TRAJECTORIES
    good = make(0).model_dump_json()
    path.write_text(good + "\n" + good[: len(good) // 2])  # the process died mid-write
    assert [t.seed for t in read_trajectories(path)] == [0]
    assert path.read_text() == good + "\n"  # rewritten without the torn line
    rec = Recorder()
    list(run_attempts(tmp_path, [0, 1, 2], 2, rec, FILTER))
    assert rec.seeds == [1, 2]
    path.write_text("{not json}\n" + good + "\n")
    with pytest.raises(SynthesisRunError, match=r"trajectories.jsonl:1 is not a trajectory"):
        read_trajectories(path)


def test_a_directory_refuses_another_configuration(tmp_path) -> None:
    pin(tmp_path, {"max_rounds": 2, "seed": 0})
    pin(tmp_path, {"max_rounds": 2, "seed": 0})  # same: fine
    with pytest.raises(SynthesisRunError, match=r"another configuration \(keys \['max_rounds'\]\)"):
        pin(tmp_path, {"max_rounds": 6, "seed": 0})


def test_merge_takes_every_shard_once_in_seed_order_and_refuses_a_foreign_shard(tmp_path) -> None:
    meta = {"max_rounds": 2}
    for i in range(2):
        work = shard_dir(tmp_path, i, 2)
        pin(work, meta)
        list(run_attempts(work, attempt_seeds(0, 8, i, 2), shard_target(3, i, 2), Recorder(), FILTER))
    merged = merge_shards(tmp_path, meta)
    # shard 0 keeps 0 and 2 (its target); shard 1 tries all its odd seeds and keeps none
    assert [t.seed for t in merged] == [0, 1, 2, 3, 5, 7]
    with pytest.raises(SynthesisRunError, match="different configuration"):
        merge_shards(tmp_path, {"max_rounds": 6})
    with pytest.raises(SynthesisRunError, match="has no shard"):
        merge_shards(tmp_path / "elsewhere", meta)


def _script():
    spec = importlib.util.spec_from_file_location("synthesize_app", REPO_ROOT / "experiments" / "synthesize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_merges_shards_into_one_dataset_without_a_model(tmp_path) -> None:
    from hydra import compose, initialize_config_dir

    from rl_shop.paths import CONFIG_DIR

    overrides = [f"out_dir={tmp_path}", "filter.min_fact_share=0.0", "filter.require_citation=false"]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        meta = _script().pinned(compose(config_name="synthesize", overrides=overrides))
    for i in range(2):
        work = shard_dir(tmp_path, i, 2)
        pin(work, meta)
        list(run_attempts(work, attempt_seeds(0, 8, i, 2), shard_target(2, i, 2), Recorder(), FILTER))
    res = subprocess.run(
        [sys.executable, str(REPO_ROOT / "experiments" / "synthesize.py"), *overrides],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "kept 1/5" in res.stdout  # shard 0 keeps seed 0; shard 1 none of 1, 3, 5, 7
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["kept"] == 1 and summary["rejections"] == {"low_score": 4}
    assert len((tmp_path / "sft.jsonl").read_text().splitlines()) == 1
    assert [json.loads(x)["seed"] for x in (tmp_path / TRAJECTORIES).read_text().splitlines()] == sorted(
        json.loads(x)["seed"]
        for i in range(2)
        for x in (shard_dir(tmp_path, i, 2) / TRAJECTORIES).read_text().splitlines()
    )
    # a shard run without out_dir cannot be merged later: refused before any model loads
    res = subprocess.run(
        [sys.executable, str(REPO_ROOT / "experiments" / "synthesize.py"), "shard.count=2"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 2 and "a sharded run needs out_dir" in res.stderr
