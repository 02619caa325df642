"""The one exception type the training glue raises for bad user input.

Entry points catch it and print its message (which says what was wrong and what to do) instead
of a traceback from deep inside Hydra, SB3 or Optuna.
"""

from __future__ import annotations


class TrainConfigError(ValueError):
    """A training / tuning configuration is invalid; the message names the key and the fix."""
