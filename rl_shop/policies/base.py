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


@runtime_checkable
class ScoringPolicy(Policy, Protocol):
    """A policy that also scores every action (an exported network): Q-values for DQN
    (``output_kind == "q_values"``), action probabilities for actor-critic algorithms."""

    @property
    def output_kind(self) -> str: ...

    def q_values(self, obs: np.ndarray) -> np.ndarray: ...

    def action_probabilities(self, obs: np.ndarray, action_mask: np.ndarray | None = None) -> np.ndarray: ...
