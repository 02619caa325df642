"""Multi-criteria decision maths of the Decider (MACDF 3.7): AHP weights and the Pareto front.

Criterion weights come from the Analytic Hierarchy Process: the principal eigenvector of a
pairwise comparison matrix, with Saaty's consistency ratio checked (CR < 0.1, else
:class:`AHPInconsistent`). The Pareto front marks the options no other option dominates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Saaty's random consistency index RI(n) for n = 1..10.
RANDOM_INDEX = {1: 0.0, 2: 0.0, 3: 0.58, 4: 0.90, 5: 1.12, 6: 1.24, 7: 1.32, 8: 1.41, 9: 1.45, 10: 1.49}


class AHPInconsistent(ValueError):
    """The pairwise comparison matrix is too inconsistent (CR >= the configured maximum)."""


@dataclass(frozen=True)
class AHPResult:
    """AHP weights with the quantities of Saaty's consistency check."""

    weights: np.ndarray
    lambda_max: float
    consistency_index: float
    consistency_ratio: float


def ahp_weights(
    matrix: Sequence[Sequence[float]], max_cr: float | None = 0.1, reciprocal_tolerance: float = 0.02
) -> AHPResult:
    """Principal-eigenvector weights of a pairwise comparison matrix and its consistency ratio.

    CI = (lambda_max - n) / (n - 1), CR = CI / RI(n). Raises ``ValueError`` for a matrix that is
    not square, positive and reciprocal, and :class:`AHPInconsistent` when CR >= ``max_cr``.
    """
    a = np.asarray(matrix, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ValueError(f"AHP pairwise matrix must be square and non-empty, got shape {a.shape}")
    n = a.shape[0]
    if n not in RANDOM_INDEX:
        raise ValueError(f"AHP supports 1..10 criteria (Saaty's RI table), got {n}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError("AHP pairwise matrix entries must be positive finite numbers")
    if not np.allclose(np.diag(a), 1.0):
        raise ValueError("AHP pairwise matrix must have ones on the diagonal")
    if not np.allclose(a * a.T, 1.0, rtol=reciprocal_tolerance, atol=reciprocal_tolerance):
        i, j = np.unravel_index(np.argmax(np.abs(a * a.T - 1.0)), a.shape)
        raise ValueError(
            f"AHP pairwise matrix is not reciprocal: a[{i}][{j}] * a[{j}][{i}] = {a[i, j] * a[j, i]:.3f}, "
            f"expected 1 (set a[{j}][{i}] = 1 / a[{i}][{j}])"
        )
    eigvals, eigvecs = np.linalg.eig(a)
    k = int(np.argmax(eigvals.real))
    lambda_max = float(eigvals[k].real)
    w = np.abs(eigvecs[:, k].real)
    w = w / w.sum()
    ci = (lambda_max - n) / (n - 1) if n > 2 else 0.0
    cr = ci / RANDOM_INDEX[n] if RANDOM_INDEX[n] > 0 else 0.0
    ci, cr = max(ci, 0.0), max(cr, 0.0)  # clip -1e-16 round-off on consistent matrices
    if max_cr is not None and cr >= max_cr:
        raise AHPInconsistent(
            f"AHP consistency ratio {cr:.3f} >= {max_cr} (lambda_max={lambda_max:.3f}); "
            f"revise the pairwise judgements in configs/agents/decider.yaml"
        )
    return AHPResult(weights=w, lambda_max=lambda_max, consistency_index=ci, consistency_ratio=cr)


def pareto_front(values: np.ndarray) -> np.ndarray:
    """Boolean mask of rows not dominated by any other row (all criteria maximized)."""
    v = np.asarray(values, dtype=float)
    n = v.shape[0]
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        dominated = np.all(v >= v[i], axis=1) & np.any(v > v[i], axis=1)
        if dominated.any():
            mask[i] = False
    return mask
