"""Optuna search spaces read from configs/search/<experiment>.yaml.

Format (one entry per dotted train-config key)::

    params:
      algo.kwargs.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
      algo.kwargs.batch_size:    {type: int, low: 32, high: 256, step: 32}
      algo.kwargs.gamma:         {type: categorical, choices: [0.9, 0.95, 0.99]}
      algo.policy_kwargs.net_arch: {type: categorical, choices: ["[64,64]", "[128,128]"]}

Categorical choices are written into the Hydra override verbatim, so lists are given as strings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from rl_shop.config_files import read_config
from rl_shop.train.errors import TrainConfigError

_TYPES = ("float", "int", "categorical", "log")


def load_search_space(path: Path) -> dict[str, dict[str, Any]]:
    """Read and check a search-space YAML; every mistake names the key and what was expected."""
    if not path.is_file():
        raise TrainConfigError(
            f"search space {path} not found; create it (see configs/search/ for examples) or set search_space=<path>"
        )
    raw = read_config(path, what="search space", error=TrainConfigError)
    if not isinstance(raw, dict) or not isinstance(raw.get("params"), dict) or not raw["params"]:
        raise TrainConfigError(f"{path}: expected a non-empty mapping under `params:`")
    space: dict[str, dict[str, Any]] = {}
    for key, spec in raw["params"].items():
        if not isinstance(spec, dict) or spec.get("type") not in _TYPES:
            raise TrainConfigError(f"{path}: params.{key} needs `type` in {_TYPES}, got {spec!r}")
        kind = spec["type"]
        if kind == "categorical":
            if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                raise TrainConfigError(f"{path}: params.{key} (categorical) needs a non-empty `choices` list")
        else:
            for bound in ("low", "high"):
                if not isinstance(spec.get(bound), (int, float)):
                    raise TrainConfigError(f"{path}: params.{key} ({kind}) needs numeric `{bound}`")
            if spec["low"] >= spec["high"]:
                raise TrainConfigError(f"{path}: params.{key}: low must be < high ({spec['low']} >= {spec['high']})")
            if (kind == "log" or spec.get("log")) and spec["low"] <= 0:
                raise TrainConfigError(f"{path}: params.{key}: a log scale needs low > 0")
        space[str(key)] = spec
    return space


def suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Sample one value per key; the parameter name in Optuna is the dotted config key."""
    values: dict[str, Any] = {}
    for key, spec in space.items():
        kind = spec["type"]
        if kind == "categorical":
            values[key] = trial.suggest_categorical(key, spec["choices"])
        elif kind == "int":
            values[key] = trial.suggest_int(
                key,
                int(spec["low"]),
                int(spec["high"]),
                step=int(spec.get("step", 1)),
                log=bool(spec.get("log", False)),
            )
        else:
            log = kind == "log" or bool(spec.get("log", False))
            step = spec.get("step")
            values[key] = trial.suggest_float(
                key, float(spec["low"]), float(spec["high"]), log=log, step=None if log or step is None else float(step)
            )
    return values


def to_overrides(values: dict[str, Any]) -> list[str]:
    """Sampled values -> Hydra override strings (`key=value`)."""
    return [f"{k}={v}" for k, v in values.items()]
