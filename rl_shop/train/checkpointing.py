"""Run directories and checkpoints: where a run lives on disk and how a killed run continues.

Layout of one run (``<runs_root>/<experiment>/<timestamp>-s<seed>/``)::

    config.yaml            the resolved Hydra config (what `resume` re-reads)
    checkpoints/step_N/    model (SB3 zip or Q-table), replay_buffer.pkl (off-policy), state.json
    best/                  best model by eval return + best.json
    tb/                    TensorBoard events (one stream, continued on resume)
    summary.json           written at the end (read by aggregate.py and the export step)
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rl_shop.paths import CHECKPOINT_DIR
from rl_shop.train.errors import TrainConfigError

STATE_FILE = "state.json"
MODEL_STEM = "model"
REPLAY_FILE = "replay_buffer.pkl"


@dataclass
class TrainState:
    """Everything besides the model needed to continue a run exactly where it stopped."""

    num_timesteps: int = 0
    best_mean_reward: float = float("-inf")
    best_step: int = -1
    eval_history: list[dict[str, float]] = field(default_factory=list)
    wall_time_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if data["best_mean_reward"] == float("-inf"):
            data["best_mean_reward"] = None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainState:
        data = dict(data)
        if data.get("best_mean_reward") is None:
            data["best_mean_reward"] = float("-inf")
        return cls(**data)


def runs_root(configured: str | None) -> Path:
    """The root of all runs: the configured path, or <repo>/checkpoints/runs."""
    return Path(configured) if configured else CHECKPOINT_DIR / "runs"


def new_run_dir(root: Path, experiment: str, seed: int) -> Path:
    """A fresh, unique run directory: timestamp + seed (+ counter if two start in one second)."""
    base = root / experiment
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1000):
        name = f"{stamp}-s{seed}" + (f"-{k}" if k else "")
        path = base / name
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a unique run dir under {base}")


def find_run_dir(root: Path, experiment: str, spec: str | None) -> Path:
    """Resolve `run_dir` for resume: an explicit path, or "latest" (newest run of the experiment)."""
    if spec in (None, "", "latest"):
        base = root / experiment
        candidates = sorted(p for p in base.glob("*") if (p / "config.yaml").is_file()) if base.is_dir() else []
        if not candidates:
            raise TrainConfigError(
                f"resume=true but no previous run of experiment {experiment!r} under {base}; "
                "start one without resume, or pass run_dir=<path>."
            )
        return max(candidates, key=lambda p: p.stat().st_mtime)
    path = Path(spec)
    if not (path / "config.yaml").is_file():
        raise TrainConfigError(f"run_dir={spec!r} is not a run directory (no config.yaml inside)")
    return path


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Periodic checkpoints sorted by step (oldest first); only complete ones (state.json last)."""
    ckpts = [p for p in (run_dir / "checkpoints").glob("step_*") if (p / STATE_FILE).is_file()]
    return sorted(ckpts, key=lambda p: int(p.name.split("_")[1]))


def latest_checkpoint(run_dir: Path) -> Path | None:
    ckpts = checkpoint_dirs(run_dir)
    return ckpts[-1] if ckpts else None


def write_state(directory: Path, state: TrainState) -> None:
    """state.json is written last and atomically: its presence marks a complete checkpoint."""
    tmp = directory / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2))
    tmp.replace(directory / STATE_FILE)


def read_state(directory: Path) -> TrainState:
    return TrainState.from_json(json.loads((directory / STATE_FILE).read_text()))


def prune_checkpoints(run_dir: Path, keep_last: int) -> None:
    """Delete all but the newest `keep_last` periodic checkpoints (replay buffers are large)."""
    for old in checkpoint_dirs(run_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
