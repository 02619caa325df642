"""End-to-end training runs through rl_shop.train.runner (the code path of experiments/train.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rl_shop.paths import REPO_ROOT
from rl_shop.train.checkpointing import checkpoint_dirs
from rl_shop.train.config import compose_train_config
from rl_shop.train.runner import train

CARTPOLE = ["env=gym", "env.id=CartPole-v1", "baseline.n_episodes=5"]


def _cfg(tmp_path: Path, *extra: str):
    return compose_train_config([*CARTPOLE, f"runs_root={tmp_path}", *extra])


def _scalar_steps(tb_dir: Path, tag: str) -> list[int]:
    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    if tag not in acc.Tags()["scalars"]:
        return []
    return [e.step for e in acc.Scalars(tag)]


@pytest.mark.slow
def test_ppo_cartpole_learns_and_writes_run_dir(tmp_path):
    s = train(
        _cfg(
            tmp_path,
            "algo=ppo",
            "seed=1",
            "total_timesteps=5000",
            "eval.freq=2500",
            "eval.n_episodes=10",
            "checkpoint.freq=2500",
            "algo.kwargs.n_steps=128",
        )
    )
    # Random CartPole lasts ~22 steps; a PPO policy after 5k steps should clearly beat it.
    assert s.random_return is not None and s.random_return < 40
    assert s.best_eval_return > 2 * s.random_return
    run = Path(s.run_dir)
    for name in ("config.yaml", "summary.json", "best/model.zip", "references.json"):
        assert (run / name).exists(), name
    data = json.loads((run / "summary.json").read_text())
    assert data["num_timesteps"] >= 5000 and data["algo"] == "ppo"
    assert _scalar_steps(run / "tb", "eval/mean_reward")  # eval curve in TensorBoard
    assert _scalar_steps(run / "tb", "reference/random_return") == [0]
    # the random reference is also drawn as a flat line beside the eval curve
    assert _scalar_steps(run / "tb", "eval/random_return") == _scalar_steps(run / "tb", "eval/mean_reward")


def test_same_seed_same_numbers(tmp_path):
    args = (
        "algo=dqn",
        "seed=5",
        "total_timesteps=1200",
        "eval.freq=600",
        "eval.n_episodes=3",
        "checkpoint.freq=600",
        "algo.kwargs.learning_starts=200",
        "hardware.n_envs=2",
    )
    a = train(_cfg(tmp_path / "a", *args))
    b = train(_cfg(tmp_path / "b", *args))
    assert [h["mean_return"] for h in a.eval_history] == [h["mean_return"] for h in b.eval_history]
    assert a.num_timesteps == b.num_timesteps == 1200


@pytest.mark.slow
def test_resume_after_kill_continues_to_same_steps_and_same_tensorboard(tmp_path):
    args = (
        "algo=dqn",
        "seed=2",
        "total_timesteps=3000",
        "eval.freq=1000",
        "eval.n_episodes=3",
        "checkpoint.freq=1000",
        "algo.kwargs.learning_starts=200",
        "hardware.n_envs=2",
    )

    class Killed(Exception):
        pass

    def kill_at_2000(step: int, mean: float) -> None:
        if step >= 2000:
            raise Killed

    with pytest.raises(Killed):
        train(_cfg(tmp_path, *args), on_eval=kill_at_2000)
    (run_dir,) = list((tmp_path / "gym_dqn").iterdir())
    assert not (run_dir / "summary.json").exists()
    # A hard kill at the step-2000 evaluation: the last complete checkpoint is step 1000.
    last = checkpoint_dirs(run_dir)[-1]
    assert last.name == "step_1000" and (last / "replay_buffer.pkl").is_file()
    tb_files_before = sorted(p.name for p in (run_dir / "tb").iterdir())

    resumed = train(_cfg(tmp_path, "resume=true", "run_dir=latest", *args))
    assert resumed.resumed and resumed.run_dir == str(run_dir)
    assert resumed.num_timesteps == 3000
    # TensorBoard: same directory, one curve covering both halves (2000 was logged by both)
    steps = _scalar_steps(run_dir / "tb", "eval/mean_reward")
    assert sorted(set(steps)) == [1000, 2000, 3000]
    assert set(tb_files_before) <= {p.name for p in (run_dir / "tb").iterdir()}
    assert [h["step"] for h in resumed.eval_history] == [1000, 2000, 3000]


@pytest.mark.slow
def test_sigterm_checkpoints_then_resume_finishes_the_run(tmp_path):
    """A real kill: SIGTERM to a training subprocess mid-run, then resume=true to the same total."""
    import signal
    import time

    cmd = [
        sys.executable,
        str(REPO_ROOT / "experiments" / "train.py"),
        *CARTPOLE,
        f"runs_root={tmp_path}",
        "algo=dqn",
        "seed=4",
        "total_timesteps=200000",
        "eval.freq=1000",
        "eval.n_episodes=2",
        "checkpoint.freq=1000",
        "hardware.n_envs=1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.time() + 90
    while time.time() < deadline and not list(tmp_path.glob("gym_dqn/*/checkpoints/step_1000/state.json")):
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    (run_dir,) = list((tmp_path / "gym_dqn").iterdir())
    killed_at = int(checkpoint_dirs(run_dir)[-1].name.split("_")[1])
    assert killed_at > 1000 and f"at step {killed_at}" in err  # saved at the kill, not only at 1000

    total = killed_at + 500  # finish quickly: extend nothing, just a short remaining budget
    cfg_path = run_dir / "config.yaml"
    cfg_path.write_text(cfg_path.read_text().replace("total_timesteps: 200000", f"total_timesteps: {total}"))
    proc = subprocess.run(
        [*cmd[:2], *CARTPOLE, f"runs_root={tmp_path}", "algo=dqn", "resume=true", f"run_dir={run_dir}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["num_timesteps"] == total and summary["resumed"] is True
    steps = _scalar_steps(run_dir / "tb", "eval/mean_reward")
    assert steps == sorted(steps) and steps[-1] == total


def test_qlearning_runs_through_the_same_runner(tmp_path):
    s = train(
        _cfg(
            tmp_path,
            "algo=qlearning",
            "total_timesteps=800",
            "eval.freq=400",
            "eval.n_episodes=2",
            "checkpoint.freq=400",
            "hardware.n_envs=1",
        )
    )
    assert s.num_timesteps == 800
    assert (Path(s.run_dir) / "best" / "model.npz").is_file()


def test_train_py_config_errors_are_clear(tmp_path):
    cases = {
        "algo=nosuch": "Available options in 'algo'",
        "total_timesteps=-5": "total_timesteps",
        "env.id=Nope-v9": "unknown environment id 'Nope-v9'",
        "notakey=3": "+key=value",
    }
    for override, expected in cases.items():
        proc = subprocess.run(
            [
                sys.executable,
                str(REPO_ROOT / "experiments" / "train.py"),
                *CARTPOLE,
                f"runs_root={tmp_path}",
                "total_timesteps=10",
                override,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert proc.returncode == 2, (override, proc.stderr)
        assert expected in proc.stderr, (override, proc.stderr)
        assert "Traceback" not in proc.stderr, override
