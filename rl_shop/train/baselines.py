"""The heuristic baseline of each env, built from the env instance, logged as a reference line.

Each heuristic needs something from its env (the clarification env's intent-pool priors, the
scheduling env's action grid), so its builder is the env's own (``EnvSpec.heuristic``, in
``envs.reference``), reading the extra `heuristic:` block of the env config where there is one.
A config may instead name any class with a no-argument constructor:
``baseline.policy="package.module:Class"``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any, cast

import gymnasium as gym

from envs.specs import SPECS
from rl_shop.policies.base import Policy
from rl_shop.train.config import EnvSettings
from rl_shop.train.errors import TrainConfigError

log = logging.getLogger(__name__)

#: ``builder(env, extra) -> Policy``, the signature of ``EnvSpec.heuristic``.
Builder = Callable[[gym.Env, dict[str, Any]], Policy]


def load_heuristic(env_cfg: EnvSettings, spec: str, env: gym.Env) -> Policy | None:
    """The baseline policy for this env, or None when it has none (e.g. CartPole).

    `spec` is "auto" (the env's ``EnvSpec.heuristic``) or "module:Class".
    """
    if spec != "auto":
        module_name, _, cls_name = spec.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
            return cls()
        except (ImportError, AttributeError, TypeError) as exc:
            raise TrainConfigError(f"baseline.policy={spec!r} cannot be built: {exc}") from exc
    env_spec = SPECS.get(env_cfg.id)
    if env_spec is None:
        log.info("no heuristic baseline registered for %s", env_cfg.id)
        return None
    builder = cast(Builder, env_spec.load("heuristic"))
    return builder(env, dict(env_cfg.model_extra or {}))
