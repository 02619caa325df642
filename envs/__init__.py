"""The project's Gymnasium environments; importing this package registers the ``rl_shop/`` ids.

Each env is described once, by its :class:`envs.specs.EnvSpec`. Registration uses the specs'
string entry points, so importing ``envs`` does not import the env modules (nor the simulator or
catalog behind them) until an env is made; it also tells the policy loader which featurizer each
env's observations come from. ``make_batched`` builds the numpy-vectorized version of an env
(many shoppers per ``step`` call).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import gymnasium

from envs.specs import SPECS, load_entry_point
from rl_shop.policies.loader import register_layout

#: The registered ids (the keys of ``envs.specs.SPECS``).
ENV_IDS: tuple[str, ...] = tuple(SPECS)


def _register_all() -> None:
    """Register every id once (re-importing, e.g. under pytest, must not warn or fail)."""
    for spec in SPECS.values():
        if spec.id not in gymnasium.registry:
            gymnasium.register(
                id=spec.id,
                entry_point=spec.entry_point,
                vector_entry_point=spec.vector_entry_point,
                disable_env_checker=False,
            )
        register_layout(spec.id, spec.featurizer)


def make_batched(env_id: str, num_envs: int, seed: int | None = None, **kwargs: object) -> gymnasium.vector.VectorEnv:
    """The numpy-batched vector env for ``env_id`` with ``num_envs`` shoppers.

    ``seed`` seeds sub-env i with ``seed + i`` (so sub-env i replays ``gymnasium.make(env_id)``
    reset with ``seed + i``); ``kwargs`` are the env's arguments (as in ``configs/env/*.yaml``).
    """
    if env_id not in SPECS:
        raise gymnasium.error.Error(f"unknown env id {env_id!r}; valid ids are {sorted(SPECS)}")
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
    entry_point = SPECS[env_id].vector_entry_point
    try:
        cls = cast("Callable[..., gymnasium.vector.VectorEnv]", load_entry_point(entry_point))
    except (ImportError, AttributeError) as exc:
        raise gymnasium.error.Error(f"the batched version of {env_id} ({entry_point}) is not available: {exc}") from exc
    return cls(num_envs=num_envs, seed=seed, **kwargs)


_register_all()

__all__ = ["ENV_IDS", "make_batched"]
