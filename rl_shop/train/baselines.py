"""The heuristic baseline of each env, built from the env instance, logged as a reference line.

Each heuristic needs something from its env (the clarification env's intent-pool priors, the
scheduling env's action grid), so the builders live here, one per env id, reading the extra
`heuristic:` block of the env config where there is one.  A config may instead name any class
with a no-argument constructor: ``baseline.policy="package.module:Class"``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from rl_shop.policies.base import Policy
from rl_shop.train.config import EnvSettings
from rl_shop.train.errors import TrainConfigError

log = logging.getLogger(__name__)

Builder = Callable[[gym.Env, dict[str, Any]], Policy]


def _clarify(env: gym.Env, extra: dict[str, Any]) -> Policy:
    """MACDF's Guider without learning: ask until the estimated Accuracy@5 passes a threshold."""
    from rl_shop.policies.heuristics.clarify import AskUntilConfident, ClarifyPriors

    u = env.unwrapped
    h = dict(extra.get("heuristic") or {})
    return AskUntilConfident(
        float(h.get("threshold", 0.5)),
        u.pool.log2_catalog_size,
        ClarifyPriors.from_pool(u.pool),
        max_leave_risk=float(h.get("max_leave_risk", 1.0)),
        max_rounds=u.params.max_rounds,
    )


def _schedule(env: gym.Env, extra: dict[str, Any]) -> Policy:
    """The paper's fixed Eq. 1 trigger (delta = 1.0, the config's alpha)."""
    from rl_shop.policies.heuristics.schedule import paper_fixed

    u = env.unwrapped
    return paper_fixed(u.ACTION_NAMES, alpha=u.params.paper_alpha)


def _collaborate(env: gym.Env, extra: dict[str, Any]) -> Policy:
    """MACDF's full pipeline with the Leader's Eq. 2 reflection / re-plan."""
    from rl_shop.policies.heuristics.collaborate import ReflectionReplan

    return ReflectionReplan()


BUILDERS: dict[str, Builder] = {
    "rl_shop/Clarify-v0": _clarify,
    "rl_shop/Schedule-v0": _schedule,
    "rl_shop/Collaborate-v0": _collaborate,
}


def load_heuristic(env_cfg: EnvSettings, spec: str, env: gym.Env) -> Policy | None:
    """The baseline policy for this env, or None when it has none (e.g. CartPole).

    `spec` is "auto" (the builder registered for the env id) or "module:Class".
    """
    if spec != "auto":
        module_name, _, cls_name = spec.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
            return cls()
        except (ImportError, AttributeError, TypeError) as exc:
            raise TrainConfigError(f"baseline.policy={spec!r} cannot be built: {exc}") from exc
    builder = BUILDERS.get(env_cfg.id)
    if builder is None:
        log.info("no heuristic baseline registered for %s", env_cfg.id)
        return None
    return builder(env, dict(env_cfg.model_extra or {}))
