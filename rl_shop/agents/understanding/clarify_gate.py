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
from pathlib import Path

from rl_shop.agents.understanding.logistic_gate import LogisticGate
from rl_shop.agents.understanding.product_type import ProductType
from rl_shop.paths import CONFIG_DIR

GATE_PATH = CONFIG_DIR / "agents" / "clarify_gate.yaml"
FEATURES = (
    "has_type",
    "catalog_type",
    "log_words",
    "short",
    "n_constraints",
    "vague",
    "question",
    "brand",
    "info_request",
    "shopping_verb",
)
_INFO = re.compile(
    r"^\s*(?:tell me (?:about|more)|(?:find |i'?m looking for |looking for )?information|what is|who is|"
    r"i'?d like to (?:know|learn)|i want to know|how (?:to|do|does|can))\b",
    re.I,
)
_SHOP = re.compile(r"\b(?:buy|looking for|need|want|find me|shop|purchase|order|get me|recommend)\b", re.I)


def gate_features(
    text: str, pt: ProductType, n_constraints: int, vague: bool, question: bool, brand: bool
) -> dict[str, float]:
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


class ClarifyGate(LogisticGate):
    """p(clarify) = sigmoid(bias + sum_i w_i x_i); clarify when p >= threshold."""

    @classmethod
    def load(cls, path: str | Path = GATE_PATH) -> ClarifyGate:
        gate, _ = LogisticGate.read(path, FEATURES, "python experiments/fit_clarify_gate.py")
        return cls(gate.weights, gate.bias, gate.threshold)
