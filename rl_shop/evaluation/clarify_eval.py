"""The clarify-or-not gate against ClariQ's human ``clarification_need`` (need >= 3 = clarify),
one row per initial request, with the majority baseline of the same rows."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Protocol

from rl_shop.paths import SHARED_DATA_DIR

NEED_THRESHOLD = 3


def load_clariq(split: str, shared: Path = SHARED_DATA_DIR) -> list[tuple[str, int]]:
    """(initial_request, clarify 0/1) per unique request of ClariQ ``split`` (train / dev)."""
    path = Path(shared) / "clarification" / f"{split}.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"ClariQ {split} file not found: {path} (the shared data folder)")
    seen: dict[str, int] = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            seen.setdefault(r["initial_request"].strip(), int(int(r["clarification_need"]) >= NEED_THRESHOLD))
    return sorted(seen.items())


def binary_scores(gold: list[int], pred: list[int]) -> tuple[float, float]:
    """(accuracy, macro-F1 over the two classes)."""
    n = len(gold)
    acc = sum(g == p for g, p in zip(gold, pred)) / n if n else 0.0
    f1s = []
    for cls in (0, 1):
        tp = sum(g == cls and p == cls for g, p in zip(gold, pred))
        fp = sum(g != cls and p == cls for g, p in zip(gold, pred))
        fn = sum(g == cls and p != cls for g, p in zip(gold, pred))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return acc, sum(f1s) / 2


class _ClarifyReading(Protocol):
    needs_clarification: bool


class ClarifyReader(Protocol):
    """What the ClariQ scorer needs of a reader (``rl_shop.agents.understanding.Understander``)."""

    def parse(self, query: str) -> _ClarifyReading: ...


def clariq_gate_scores(understander: ClarifyReader, split: str = "dev") -> dict[str, Any]:
    rows = load_clariq(split)
    gold = [y for _, y in rows]
    pred = [int(understander.parse(q).needs_clarification) for q, _ in rows]
    majority = int(sum(gold) * 2 > len(gold))
    acc, f1 = binary_scores(gold, pred)
    macc, mf1 = binary_scores(gold, [majority] * len(gold))
    return {
        "split": split,
        "n": len(rows),
        "accuracy": acc,
        "macro_f1": f1,
        "majority_accuracy": macc,
        "majority_macro_f1": mf1,
        "positive_rate": sum(gold) / len(gold),
    }
