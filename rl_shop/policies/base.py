"""The policy protocol shared by heuristics, exported networks and the runtime agents."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    """Anything that maps an observation (and an optional validity mask) to a discrete action.

    Heuristics and exported networks implement the same call so that envs, evaluation and the
    agent runtime can swap one for the other without knowing which it is.
    """

    def act(self, obs: np.ndarray, action_mask: np.ndarray | None = None) -> int:
        """Return the action for one observation; invalid actions (mask False) are never chosen."""
        ...
