"""The reference heuristic of each env, built from the env's own parameters.

A learned policy is compared with these (``rl_shop.train`` evaluates both on the same seeds); each
``EnvSpec.heuristic`` names one. Signature: ``builder(env, extra) -> Policy``, where ``extra`` is the
env config's extra keys (``heuristic:`` in ``configs/env/clarify.yaml``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym

from rl_shop.policies.base import Policy

if TYPE_CHECKING:
    from envs.clarify import ClarifyEnv
    from envs.schedule import ScheduleEnv


def ask_until_confident(env: gym.Env, extra: dict[str, Any]) -> Policy:
    """MACDF's Guider without learning: ask until the estimated Accuracy@5 passes a threshold."""
    from rl_shop.policies.heuristics.clarify import AskUntilConfident, ClarifyPriors, heuristic_params

    u = cast("ClarifyEnv", env.unwrapped)
    h = heuristic_params(extra.get("heuristic"))
    return AskUntilConfident(
        h["threshold"],
        u.pool.log2_catalog_size,
        ClarifyPriors.from_pool(u.pool),
        max_leave_risk=h["max_leave_risk"],
        max_rounds=u.params.max_rounds,
    )


def paper_fixed_trigger(env: gym.Env, extra: dict[str, Any]) -> Policy:
    """The paper's fixed Eq. 1 trigger (delta = 1.0, the config's alpha)."""
    from rl_shop.policies.heuristics.schedule import paper_fixed

    u = cast("ScheduleEnv", env.unwrapped)
    return paper_fixed(u.ACTION_NAMES, alpha=u.params.paper_alpha)


def reflection_replan(env: gym.Env, extra: dict[str, Any]) -> Policy:
    """MACDF's full pipeline with the Leader's Eq. 2 reflection / re-plan."""
    from rl_shop.policies.heuristics.collaborate import ReflectionReplan

    return ReflectionReplan()
