"""Baseline scheduling rules for the Schedule env (``envs.specs.SCHEDULE``): each always picks one trigger of the grid.

The three baselines of the brief are trigger *rules* living in the env's own action grid, so
they run in exactly the same env as a learned policy and their returns are directly comparable:

* :func:`paper_fixed` - MACDF's fixed setting, Eq. 1 with ``delta = 1.0`` and the config's alpha;
* :func:`periodic_polling` - the Leader wakes every ``period_s`` seconds whatever happened;
* :func:`every_completion` - the Leader wakes at every task completion.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rl_shop.policies.features.schedule import TriggerSpec


class FixedTriggerPolicy:
    """Always returns the same action index (one trigger rule for every scheduling interval)."""

    def __init__(self, action: int, name: str = "") -> None:
        self.action = int(action)
        self.name = name or f"action_{action}"

    def act(self, obs: np.ndarray, action_mask: np.ndarray | None = None) -> int:
        """The fixed trigger; refuses (clearly) if a mask ever forbids it."""
        if action_mask is not None and not bool(action_mask[self.action]):
            raise ValueError(f"{self.name}: its trigger (action {self.action}) is masked out.")
        return self.action

    def __repr__(self) -> str:
        return f"FixedTriggerPolicy({self.name!r}, action={self.action})"


def _find(action_names: Sequence[str], spec: TriggerSpec) -> FixedTriggerPolicy:
    names = list(action_names)
    if spec.name not in names:
        raise ValueError(
            f"trigger {spec.name!r} is not in the env's action grid {names}; add it to the grid in "
            "configs/env/schedule.yaml (delta_grid / alpha_grid / periodic_grid_s / every_completion)."
        )
    return FixedTriggerPolicy(names.index(spec.name), spec.name)


def paper_fixed(action_names: Sequence[str], alpha: float, delta: float = 1.0) -> FixedTriggerPolicy:
    """MACDF's fixed trigger: Eq. 1 with ``delta = 1.0`` (paper) and a fixed decay ``alpha``."""
    return _find(action_names, TriggerSpec("eq1", delta=float(delta), alpha=float(alpha)))


def periodic_polling(action_names: Sequence[str], period_s: float) -> FixedTriggerPolicy:
    """Poll Memory every ``period_s`` seconds regardless of ``e(t)``."""
    return _find(action_names, TriggerSpec("periodic", period_s=float(period_s)))


def every_completion(action_names: Sequence[str]) -> FixedTriggerPolicy:
    """Dispatch at every task completion (Eq. 1 in the limit ``delta -> 0``)."""
    return _find(action_names, TriggerSpec("every_completion"))
