"""A fitted logistic decision over named features, read from a YAML file a fitting script wrote.

The clarify gate and the carried-or-not type gate are both of this shape; their features, files
and fitting scripts differ (``clarify_gate.py``, ``semantic_types.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from rl_shop.agents.config import AgentConfigError
from rl_shop.config_files import read_config


@dataclass
class LogisticGate:
    """p = sigmoid(bias + sum_i w_i x_i); the gate fires when p >= threshold."""

    weights: dict[str, float]
    bias: float
    threshold: float = 0.5

    def probability(self, features: dict[str, float]) -> float:
        z = self.bias + sum(self.weights.get(k, 0.0) * v for k, v in features.items())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def fires(self, features: dict[str, float]) -> bool:
        return self.probability(features) >= self.threshold

    @classmethod
    def read(cls, path: str | Path, features: Sequence[str], fit_command: str) -> tuple[LogisticGate, dict]:
        """The gate stored at ``path`` (weights for every name in ``features``) and the file's other keys."""
        path = Path(path)
        if not path.is_file():
            raise AgentConfigError(f"gate parameters not found: {path}; fit them with `{fit_command}`")
        try:
            data = read_config(path, what="gate parameters", error=AgentConfigError)
        except AgentConfigError as exc:
            raise AgentConfigError(f"malformed gate: {exc}; refit with `{fit_command}`") from None
        try:
            weights = {k: float(data["weights"][k]) for k in features}
            return cls(weights, float(data["bias"]), float(data.get("threshold", 0.5))), data
        except (KeyError, TypeError, ValueError) as exc:
            raise AgentConfigError(
                f"{path}: malformed gate ({exc!r}); expected weights for {list(features)}, "
                f"bias and threshold; refit with `{fit_command}`"
            ) from None

    @staticmethod
    def write(
        path: str | Path, weights: dict[str, float], bias: float, threshold: float, script: str, **extra: object
    ) -> None:
        """Stores a fitted gate (and ``extra`` keys such as the data card of the fit)."""
        out = {
            "bias": float(bias),
            "threshold": float(threshold),
            "weights": {k: round(float(w), 4) for k, w in weights.items()},
            **extra,
        }
        Path(path).write_text(f"# Fitted by {script}; do not edit by hand.\n" + yaml.safe_dump(out, sort_keys=True))
