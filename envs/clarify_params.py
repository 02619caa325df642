"""Coefficients of ``rl_shop/Clarify-v0``: loading ``configs/env/clarify.yaml`` and validating them.

Shared by the single env (``envs/clarify.py``) and the batched one (``envs/clarify_batched.py``);
``envs.clarify`` re-exports every name here, so ``from envs.clarify import resolve_params`` works.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.intent_pool import IntentPool, IntentPoolError, load_or_build_intent_pool
from envs.specs import CLARIFY
from rl_shop.config_files import env_kwargs
from rl_shop.paths import CONFIG_DIR

CONFIG_PATH: Path = CONFIG_DIR / "env" / f"{CLARIFY.config}.yaml"


@dataclass(frozen=True)
class ClarifyParams:
    """Validated coefficients of the clarification env (defaults: ``configs/env/clarify.yaml``)."""

    alpha: float
    beta: float
    normalize_gain: bool
    w_T: float
    abandon_penalty: float
    confirm_threshold: float
    max_rounds: int
    pool_size: int
    pool_seed: int
    sim_config: Mapping[str, Any] | None


def load_default_kwargs(path: Path = CONFIG_PATH) -> dict[str, Any]:
    """The ``kwargs`` block of the env config file: the single source of the defaults."""
    return env_kwargs(path)


def resolve_params(**overrides: object) -> ClarifyParams:
    """Merge ``overrides`` over the config defaults and validate every coefficient."""
    kwargs = load_default_kwargs()
    unknown = set(overrides) - set(kwargs)
    if unknown:
        raise TypeError(
            f"unknown {CLARIFY.id} argument(s) {sorted(unknown)}; valid ones are {sorted(kwargs)} "
            "(plus intent_pool and render_mode)"
        )
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    missing = {f for f in ClarifyParams.__dataclass_fields__} - set(kwargs)
    if missing:
        raise ValueError(f"{CONFIG_PATH} lacks required kwargs {sorted(missing)}")

    def number(name: str, low: float = 0.0, high: float = math.inf, low_open: bool = False) -> float:
        value = kwargs[name]
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{CLARIFY.id} argument {name} must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
            bound = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
            raise ValueError(f"{CLARIFY.id} argument {name}={value} is out of range {bound}")
        return value

    def integer(name: str, low: int) -> int:
        value = kwargs[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{CLARIFY.id} argument {name} must be an integer >= {low}, got {value!r}")
        return int(value)

    sim_config = kwargs["sim_config"]
    if sim_config is not None and not isinstance(sim_config, Mapping):
        try:  # a Hydra DictConfig
            from omegaconf import OmegaConf

            sim_config = OmegaConf.to_container(sim_config, resolve=True)
        except Exception as exc:  # noqa: BLE001 - re-raised with a clear message
            raise ValueError(f"sim_config must be a mapping or null, got {sim_config!r}") from exc
    if not isinstance(kwargs["normalize_gain"], (bool, np.bool_)):
        raise ValueError(f"normalize_gain must be true or false, got {kwargs['normalize_gain']!r}")
    return ClarifyParams(
        alpha=number("alpha"),
        beta=number("beta"),
        normalize_gain=bool(kwargs["normalize_gain"]),
        w_T=number("w_T"),
        abandon_penalty=number("abandon_penalty"),
        confirm_threshold=number("confirm_threshold", 0.0, 1.0, low_open=True),
        max_rounds=integer("max_rounds", 1),
        pool_size=integer("pool_size", 1),
        pool_seed=integer("pool_seed", 0),
        sim_config=sim_config,
    )


def resolve_pool(params: ClarifyParams, intent_pool: IntentPool | None) -> IntentPool:
    """The given pool, or the cached pool of the shipped catalog for ``params``."""
    if intent_pool is None:
        return load_or_build_intent_pool(params.pool_size, params.pool_seed, params.sim_config)
    if not isinstance(intent_pool, IntentPool):
        raise IntentPoolError(f"intent_pool must be an envs.intent_pool.IntentPool, got {type(intent_pool).__name__}")
    return intent_pool


def entropy_table(pool: IntentPool, normalize_gain: bool) -> np.ndarray:
    """H[i, m] in the unit of Intent_Gain: log2 |C|, divided by log2 |catalog| when normalized."""
    if normalize_gain and pool.catalog_size > 1:
        return pool.log2_candidates_share  # computed once per pool, shared by its envs
    return pool.log2_candidates
