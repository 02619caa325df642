"""Shared plumbing of the experiment scripts that chain the project's own entry points.

Training and export run as subprocesses of the real entry points (`experiments/train.py`,
`experiments/export.py`), so a chained job sees exactly what a user typing the commands would:
the same Hydra composition, the same error messages, the same files on disk.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_entry_point(cmd: list[str]) -> None:
    """Run one of the project's entry points; its own error message is the one the user sees."""
    print("$ " + " ".join(cmd), flush=True)
    result = subprocess.run([sys.executable, *cmd], cwd=REPO_ROOT)
    if result.returncode != 0:
        raise SystemExit(f"error: `{' '.join(cmd)}` failed with exit code {result.returncode}")


def train_and_export(
    experiment: str, steps: int, seed: int, run_dir: Path, export_dir: Path, extra: list[str] | None = None
) -> Path:
    """Train one recipe (`configs/experiment/<experiment>.yaml`) and export it; returns export_dir."""
    run_entry_point(
        [
            "experiments/train.py",
            f"experiment={experiment}",
            f"seed={seed}",
            f"total_timesteps={steps}",
            f"run_dir={run_dir}",
            *(extra or []),
        ]
    )
    run_entry_point(["experiments/export.py", f"run_dir={run_dir}", f"out={export_dir}", "overwrite=true"])
    return export_dir
