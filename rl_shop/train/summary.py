"""summary.json: the one-file result of a run that aggregation, tuning and export read."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

SUMMARY_FILE = "summary.json"


@dataclass
class TrainSummary:
    """Final numbers of one run (None where a quantity does not exist, e.g. no heuristic)."""

    experiment: str
    env_id: str
    env_name: str
    algo: str
    seed: int
    run_dir: str
    total_timesteps: int
    num_timesteps: int
    final_eval_return: float
    best_eval_return: float
    best_step: int
    heuristic_return: float | None
    random_return: float | None
    wall_time_s: float
    steps_per_s: float
    device: str
    resumed: bool
    eval_history: list[dict[str, float]] = field(default_factory=list)
    final_info: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        """The human summary printed at the end of a run."""
        ref = "n/a" if self.heuristic_return is None else f"{self.heuristic_return:.3f}"
        return (
            f"[{self.experiment} seed={self.seed}] final eval {self.final_eval_return:.3f} | best "
            f"{self.best_eval_return:.3f} @ {self.best_step} | heuristic {ref} | "
            f"{self.num_timesteps} steps in {self.wall_time_s:.1f}s ({self.steps_per_s:.0f} steps/s) | {self.run_dir}"
        )


def _clean(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write_summary(run_dir: Path, summary: TrainSummary) -> Path:
    path = run_dir / SUMMARY_FILE
    path.write_text(json.dumps(_clean(asdict(summary)), indent=2))
    return path


def read_summary(path: Path) -> TrainSummary:
    """Load a summary.json (path to the file or to its run dir)."""
    path = path / SUMMARY_FILE if path.is_dir() else path
    data = json.loads(path.read_text())
    for key in ("final_eval_return", "best_eval_return"):
        if data.get(key) is None:
            data[key] = math.nan
    return TrainSummary(**data)
