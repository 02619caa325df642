"""The exceptions the training glue raises to its entry points.

Entry points catch them and print the message (which says what was wrong or what happened and what
to do) instead of a traceback from deep inside Hydra, SB3, TorchRL or Optuna.
"""

from __future__ import annotations

from pathlib import Path


class TrainConfigError(ValueError):
    """A training / tuning configuration is invalid; the message names the key and the fix."""


class TrainingInterrupted(RuntimeError):
    """SIGTERM/SIGINT arrived; a checkpoint was written and the run can be resumed."""

    def __init__(self, run_dir: Path, step: int, signal_name: str) -> None:
        super().__init__(
            f"{signal_name} at step {step}: checkpoint saved; continue with `resume=true run_dir={run_dir}`"
        )
        self.run_dir = run_dir
        self.step = step
