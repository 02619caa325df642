"""``AskUntilConfident``: the hand-written Guider baseline that a learned clarification policy must beat.

It sees only what a runtime Guider sees, the observation of ``rl_shop.policies.features.clarify``
(never the hidden intent), plus population-level priors: how many bits asking each slot removes
on average per query type, and how large gold sets typically are. Those priors can be estimated
from any table of simulated intents (``ClarifyPriors.from_pool``) or left uniform.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from rl_shop.policies.features.clarify import (
    ASKED_OFFSET,
    KNOWN_OFFSET,
    LOG2_CAND_IDX,
    N_FEATURES,
    N_QUERY_TYPES,
    N_SLOTS,
    QT_OFFSET,
    ROUNDS_IDX,
    STOP,
)

_FLOAT32_TOL = 1e-6
STOP_ACTION = STOP  # ids follow ACTION_NAMES of the featurizer: ask_<slot> x 9, suggest, stop


class PoolTables(Protocol):
    """The per-intent tables of a simulated intent pool that :meth:`ClarifyPriors.from_pool` reads
    (``envs.intent_pool.IntentPool`` has them)."""

    @property
    def query_type(self) -> np.ndarray: ...
    @property
    def relevant(self) -> np.ndarray: ...
    @property
    def stated(self) -> np.ndarray: ...
    @property
    def n_hits(self) -> np.ndarray: ...
    @property
    def p_dont_know(self) -> np.ndarray: ...
    @property
    def p_wrong(self) -> np.ndarray: ...
    @property
    def patience(self) -> np.ndarray: ...
    @property
    def log2_candidates(self) -> np.ndarray: ...


@dataclass(frozen=True)
class ClarifyPriors:
    """Population statistics a Guider may know without seeing the current shopper's intent.

    ``slot_gain[q, s]``: expected bits removed from log2 |C| by asking slot s first, for query
    type q (0 for slots never worth asking). ``log2_gold[q]``: mean log2 of the gold-set size.
    ``leave_hazard[r]``: chance that a shopper who answered r rounds leaves at the next one
    (``P(patience = r | patience >= r)``; 1 past the largest patience seen, all 0 if unknown).
    """

    slot_gain: np.ndarray  # float [8, 9]
    log2_gold: np.ndarray  # float [8]
    leave_hazard: np.ndarray = field(default_factory=lambda: np.zeros(1))  # float [R]

    def __post_init__(self) -> None:
        gain = np.asarray(self.slot_gain, dtype=np.float64)
        gold = np.asarray(self.log2_gold, dtype=np.float64)
        if gain.shape != (N_QUERY_TYPES, N_SLOTS) or not np.isfinite(gain).all():
            raise ValueError(f"slot_gain must be a finite ({N_QUERY_TYPES}, {N_SLOTS}) array, got shape {gain.shape}")
        if gold.shape != (N_QUERY_TYPES,) or not np.isfinite(gold).all() or (gold < 0).any():
            raise ValueError(f"log2_gold must be a finite non-negative ({N_QUERY_TYPES},) array")
        hazard = np.asarray(self.leave_hazard, dtype=np.float64)
        if hazard.ndim != 1 or hazard.size == 0 or ((hazard < 0) | (hazard > 1)).any():
            raise ValueError("leave_hazard must be a non-empty 1-d array of probabilities")
        object.__setattr__(self, "slot_gain", gain)
        object.__setattr__(self, "log2_gold", gold)
        object.__setattr__(self, "leave_hazard", hazard)

    def hazard(self, rounds: int) -> float:
        """``leave_hazard`` at ``rounds``, holding the last value beyond the table."""
        return float(self.leave_hazard[min(max(rounds, 0), self.leave_hazard.size - 1)])

    @classmethod
    def uniform(cls) -> ClarifyPriors:
        """No knowledge: every slot equally promising (ties go to ``SLOTS`` order), one gold product."""
        return cls(np.ones((N_QUERY_TYPES, N_SLOTS)), np.zeros(N_QUERY_TYPES), np.zeros(1))

    @classmethod
    def from_pool(cls, pool: PoolTables) -> ClarifyPriors:
        """Average over a simulated intent pool (``envs.intent_pool.IntentPool`` or alike).

        Uses the pool's per-intent tables ``query_type``, ``stated``, ``log2_candidates``,
        ``n_hits``, ``relevant``, ``p_dont_know`` and ``p_wrong``. The gain of slot s for an intent
        is the drop of log2 |C| when s is revealed right after the first query, times the chance
        the shopper answers it correctly; intents that already stated s contribute nothing.
        """
        qt = np.asarray(pool.query_type)
        stated = np.asarray(pool.stated)
        log2c = np.asarray(pool.log2_candidates)
        rows = np.arange(qt.shape[0])
        base = log2c[rows, stated]
        gain = np.zeros((N_QUERY_TYPES, N_SLOTS))
        log2_gold = np.zeros(N_QUERY_TYPES)
        p_correct = 1.0 - np.asarray(pool.p_dont_know) - np.asarray(pool.p_wrong)
        for s in range(N_SLOTS):
            bit = 1 << s
            drop = (base - log2c[rows, stated | bit]) * p_correct[:, s]
            drop = np.where(stated & bit, 0.0, drop)
            for q in range(N_QUERY_TYPES):
                sel = qt == q
                if sel.any():
                    gain[q, s] = drop[sel].mean()
        gold = np.log2(np.maximum(np.asarray(pool.n_hits)[rows, np.asarray(pool.relevant)], 1))
        for q in range(N_QUERY_TYPES):
            sel = qt == q
            if sel.any():
                log2_gold[q] = gold[sel].mean()
        patience = np.asarray(pool.patience)
        top = int(patience.max())
        at = np.bincount(patience, minlength=top + 2).astype(np.float64)
        at_least = at[::-1].cumsum()[::-1]
        hazard = np.divide(at, at_least, out=np.ones_like(at), where=at_least > 0)
        return cls(gain, log2_gold, hazard)


def heuristic_params(block: Mapping[str, Any] | None) -> dict[str, float]:
    """``AskUntilConfident``'s ``threshold`` and ``max_leave_risk`` from the ``heuristic:`` block of
    ``configs/env/clarify.yaml``, their one home (a missing key is an error, not a silent default)."""
    missing = sorted({"threshold", "max_leave_risk"} - set(block or {}))
    if missing or block is None:
        raise ValueError(f"the heuristic block of configs/env/clarify.yaml lacks {missing}; restore it with git")
    return {"threshold": float(block["threshold"]), "max_leave_risk": float(block["max_leave_risk"])}


class AskUntilConfident:
    """Ask the valid slot with the highest prior gain until the estimated Accuracy@5 passes ``threshold``.

    Estimated Accuracy@5 = ``min(1, 2**log2_gold[q] / |C|)``: the env's ``|G ∩ C| / |C|`` with
    the unknown gold-set size replaced by its prior. It stops when the estimate reaches the
    threshold, when no slot with positive prior gain is left to ask, or when the prior chance
    that the shopper leaves at the next question exceeds ``max_leave_risk``. Implements the
    ``rl_shop.policies.base.Policy`` protocol.

    ``max_rounds`` is the env's (to read the round count back from the observation's fraction).
    """

    def __init__(
        self,
        threshold: float,
        log2_catalog_size: float,
        priors: ClarifyPriors | None = None,
        max_leave_risk: float = 1.0,
        max_rounds: int = 1,
    ) -> None:
        if isinstance(threshold, bool) or not 0.0 < float(threshold) <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
        if not float(log2_catalog_size) >= 0.0:
            raise ValueError(f"log2_catalog_size must be >= 0, got {log2_catalog_size!r}")
        if not 0.0 <= float(max_leave_risk) <= 1.0:
            raise ValueError(f"max_leave_risk must be in [0, 1], got {max_leave_risk!r}")
        if isinstance(max_rounds, bool) or int(max_rounds) < 1:
            raise ValueError(f"max_rounds must be >= 1, got {max_rounds!r}")
        self.threshold = float(threshold)
        self.log2_catalog_size = float(log2_catalog_size)
        self.priors = priors if priors is not None else ClarifyPriors.uniform()
        self.max_leave_risk = float(max_leave_risk)
        self.max_rounds = int(max_rounds)

    def estimated_accuracy(self, obs: np.ndarray) -> float:
        """The heuristic's Accuracy@5 estimate for one observation."""
        q = int(np.argmax(obs[QT_OFFSET : QT_OFFSET + N_QUERY_TYPES]))
        log2c = float(obs[LOG2_CAND_IDX]) * self.log2_catalog_size
        return float(min(1.0, 2.0 ** (self.priors.log2_gold[q] - log2c)))

    def act(self, obs: np.ndarray, action_mask: np.ndarray | None = None) -> int:
        """Next action: ``ask_<slot>`` (0-8) or ``stop`` (10)."""
        obs = np.asarray(obs, dtype=np.float64)
        if obs.shape != (N_FEATURES,):
            raise ValueError(f"expected one Clarify observation of shape ({N_FEATURES},), got {obs.shape}")
        # The tolerance absorbs float32 rounding of the observation (|C| = 2 read back as 2.0000001).
        if self.estimated_accuracy(obs) >= self.threshold - _FLOAT32_TOL or obs[ROUNDS_IDX] >= 1.0:
            return STOP_ACTION
        rounds = int(round(float(obs[ROUNDS_IDX]) * self.max_rounds))
        if self.priors.hazard(rounds) > self.max_leave_risk:
            return STOP_ACTION
        q = int(np.argmax(obs[QT_OFFSET : QT_OFFSET + N_QUERY_TYPES]))
        blocked = (obs[KNOWN_OFFSET : KNOWN_OFFSET + N_SLOTS] > 0.5) | (
            obs[ASKED_OFFSET : ASKED_OFFSET + N_SLOTS] > 0.5
        )
        if action_mask is not None:
            blocked |= ~np.asarray(action_mask, dtype=bool)[:N_SLOTS]
        gains = np.where(blocked, -np.inf, self.priors.slot_gain[q])
        best = int(np.argmax(gains))
        if not gains[best] > 0.0:
            return STOP_ACTION
        return best
