"""`hardware=gpu`: a loud, single warning where torch cannot use CUDA; real CUDA training where it can.

The warning tests fake a CPU-only torch (they run anywhere). The `gpu` tests train on CUDA and
run only where a CUDA device is visible to a CUDA build of torch.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
import torch

from rl_shop.train import seeding
from rl_shop.train.config import compose_train_config
from rl_shop.train.runner import train

CUDA = torch.cuda.is_available()


@pytest.fixture
def cpu_only_torch(monkeypatch):
    """torch as a CPU-only wheel (2.13.0+cpu) sees it, and a fresh 'warned already' state."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch, "__version__", "2.13.0+cpu")
    monkeypatch.setattr(seeding, "_cuda_warning_given", False, raising=False)


def _messages(record) -> list[str]:
    return [str(w.message) for w in record]


@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_gpu_request_on_cpu_only_torch_warns_once_and_says_how_to_fix(cpu_only_torch, caplog, device):
    with warnings.catch_warnings(record=True) as record, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        assert seeding.resolve_device(device) == "cpu"
        assert seeding.resolve_device(device) == "cpu"  # the second run in the process stays quiet
    msgs = [m for m in _messages(record) if "CUDA" in m]
    assert len(msgs) == 1, _messages(record)
    msg = msgs[0]
    assert "2.13.0+cpu" in msg and "CPU-only" in msg, msg  # names the installed torch build
    assert "torch==2.13.0" in msg and "--index-url" in msg, msg  # how to get the CUDA build
    assert "docs/training.md" in msg, msg
    assert sum("CPU-only" in r.getMessage() for r in caplog.records) == 1  # also in the run's log


def test_cpu_device_never_warns(cpu_only_torch):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert seeding.resolve_device("cpu") == "cpu"
    assert not [m for m in _messages(record) if "CUDA" in m]


@pytest.mark.slow
def test_hardware_gpu_run_on_cpu_only_torch_warns(cpu_only_torch, tmp_path: Path):
    cfg = compose_train_config(
        [
            "env=clarify",
            "algo=dqn",
            "hardware=gpu",
            "hardware.n_envs=4",
            f"runs_root={tmp_path}",
            "total_timesteps=200",
            "eval.freq=200",
            "eval.n_episodes=2",
            "checkpoint.freq=200",
            "baseline.enabled=false",
            "algo.kwargs.learning_starts=100",
        ]
    )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        summary = train(cfg)
    assert summary.device == "cpu"
    assert len([m for m in _messages(record) if "CPU-only" in m]) == 1, _messages(record)


# ------------------------------------------------------------------------------ real CUDA
GPU_RUN = [
    "hardware=gpu",
    "hardware.n_envs=8",
    "total_timesteps=2048",
    "eval.freq=1024",
    "eval.n_episodes=5",
    "checkpoint.freq=2048",
    "baseline.n_episodes=5",
]


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device and a CUDA build of torch")
@pytest.mark.parametrize(
    "env, algo, extra",
    [
        ("clarify", "dqn", ["algo.kwargs.learning_starts=256"]),
        ("collaborate", "maskable_ppo", ["algo.kwargs.n_steps=128"]),
    ],
)
def test_hardware_gpu_trains_on_cuda(tmp_path: Path, env: str, algo: str, extra: list[str]):
    from rl_shop.train.algos import load_model  # noqa: F401  (import check on the GPU machine)

    cfg = compose_train_config([f"env={env}", f"algo={algo}", f"runs_root={tmp_path}", *GPU_RUN, *extra])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        summary = train(cfg)
    assert summary.device == "cuda"
    assert not [m for m in _messages(record) if "CPU-only" in m or "training on CPU" in m]
    assert summary.num_timesteps >= 2048
    assert summary.eval_history and all(abs(h["mean_return"]) < 1e6 for h in summary.eval_history)
    assert (Path(summary.run_dir) / "best" / "model.zip").is_file()


def test_auto_and_cuda_resolve_to_cuda_where_cuda_is_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert seeding.resolve_device("auto") == "cuda"
        assert seeding.resolve_device("cuda") == "cuda"
        assert seeding.resolve_device("cpu") == "cpu"
    assert not [m for m in _messages(record) if "CUDA" in m]
