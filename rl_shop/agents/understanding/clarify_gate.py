"""The clarify-or-not gate: does a human assistant need to ask before helping?

A logistic model over a handful of surface features of the request. It is fitted by
``experiments/fit_clarify_gate.py`` on ClariQ train (one row per initial request, need >= 3 =
clarify), MG-ShopDial opening requests (did the human assistant clarify next?) and the dev side of
the real-language benchmark's hand labels; the fitted weights and threshold live in
``configs/agents/clarify_gate.yaml`` with the data card of the fit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rl_shop.agents.types import AgentConfigError
from rl_shop.paths import CONFIG_DIR

GATE_PATH = CONFIG_DIR / "agents" / "clarify_gate.yaml"
FEATURES = ("has_type", "catalog_type", "log_words", "short", "n_constraints", "vague", "question", "brand",
            "info_request", "shopping_verb")
_INFO = re.compile(r"^\s*(?:tell me (?:about|more)|(?:find |i'?m looking for |looking for )?information|what is|who is|"
                   r"i'?d like to (?:know|learn)|i want to know|how (?:to|do|does|can))\b", re.I)
_SHOP = re.compile(r"\b(?:buy|looking for|need|want|find me|shop|purchase|order|get me|recommend)\b", re.I)


def gate_features(text: str, pt: Any, n_constraints: int, vague: bool, question: bool, brand: bool) -> dict[str, float]:
    """The gate's features of one request (``pt``: its :class:`ProductType`)."""
    n_words = len(re.findall(r"[\w']+", text))
    return {
        "has_type": float(pt.phrase is not None),
        "catalog_type": float(pt.support > 0),
        "log_words": math.log1p(n_words),
        "short": float(n_words <= 2),
        "n_constraints": float(min(n_constraints, 4)),
        "vague": float(vague),
        "question": float(question),
        "brand": float(brand),
        "info_request": float(bool(_INFO.search(text))),
        "shopping_verb": float(bool(_SHOP.search(text))),
    }


@dataclass
class ClarifyGate:
    """p(clarify) = sigmoid(bias + sum_i w_i x_i); clarify when p >= threshold."""

    weights: dict[str, float]
    bias: float
    threshold: float = 0.5

    def probability(self, features: dict[str, float]) -> float:
        z = self.bias + sum(self.weights.get(k, 0.0) * v for k, v in features.items())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    @classmethod
    def load(cls, path: str | Path = GATE_PATH) -> "ClarifyGate":
        path = Path(path)
        if not path.is_file():
            raise AgentConfigError(f"clarify gate parameters not found: {path}; fit them with "
                                   "`python experiments/fit_clarify_gate.py`")
        data = yaml.safe_load(path.read_text()) or {}
        try:
            weights = {k: float(data["weights"][k]) for k in FEATURES}
            return cls(weights, float(data["bias"]), float(data.get("threshold", 0.5)))
        except (KeyError, TypeError, ValueError) as exc:
            raise AgentConfigError(f"{path}: malformed clarify gate ({exc!r}); expected weights for {list(FEATURES)}, "
                                   "bias and threshold; refit with experiments/fit_clarify_gate.py") from None
