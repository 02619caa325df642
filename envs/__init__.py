"""The project's Gymnasium environments; importing this package registers the ``rl_shop/`` ids.

Registration uses string entry points, so importing ``envs`` does not import the env modules
(nor the simulator or catalog behind them) until an env is made. ``make_batched`` builds the
numpy-vectorized version of an env (many shoppers per ``step`` call).
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium

ENV_IDS: dict[str, tuple[str, str]] = {
    # id: (single-env entry point, batched vector-env entry point)
    "rl_shop/Clarify-v0": ("envs.clarify:ClarifyEnv", "envs.clarify_batched:ClarifyVectorEnv"),
    "rl_shop/Schedule-v0": ("envs.schedule:ScheduleEnv", "envs.schedule_batched:ScheduleVectorEnv"),
    "rl_shop/Collaborate-v0": (
        "envs.collaborate:CollaborateEnv",
        "envs.collaborate_batched:CollaborateVectorEnv",
    ),
}


def _register_all() -> None:
    """Register every id once (re-importing, e.g. under pytest, must not warn or fail)."""
    for env_id, (entry_point, vector_entry_point) in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                entry_point=entry_point,
                vector_entry_point=vector_entry_point,
                disable_env_checker=False,
            )


def _load(entry_point: str) -> Any:
    module_name, _, attr = entry_point.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)


def make_batched(env_id: str, num_envs: int, seed: int | None = None, **kwargs: Any) -> gymnasium.vector.VectorEnv:
    """The numpy-batched vector env for ``env_id`` with ``num_envs`` shoppers.

    ``seed`` seeds sub-env i with ``seed + i`` (so sub-env i replays ``gymnasium.make(env_id)``
    reset with ``seed + i``); ``kwargs`` are the env's arguments (as in ``configs/env/*.yaml``).
    """
    if env_id not in ENV_IDS:
        raise gymnasium.error.Error(f"unknown env id {env_id!r}; valid ids are {sorted(ENV_IDS)}")
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
    try:
        cls = _load(ENV_IDS[env_id][1])
    except (ImportError, AttributeError) as exc:
        raise gymnasium.error.Error(
            f"the batched version of {env_id} ({ENV_IDS[env_id][1]}) is not available: {exc}"
        ) from exc
    return cls(num_envs=num_envs, seed=seed, **kwargs)


_register_all()

__all__ = ["ENV_IDS", "make_batched"]
