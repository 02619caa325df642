"""A/B statistics for MACDF's Table 3: relative change of a per-user metric, bootstrap 95% interval, p-value.

Pure numpy / scipy on two arrays of per-user values (arm A = control, arm B = treatment), so the
same code serves the simulated A/B test (``rl_shop.evaluation.ab_sim``) and any real log.

* relative change ``Delta = mean(B) / mean(A) - 1`` (Table 3 reports it in percent);
* its interval: percentile bootstrap, arms resampled independently (users are the unit, as in a
  bucketed online test), ``n_boot`` replicates;
* the p-value of H0: mean(B) = mean(A): Welch's unequal-variance t-test (default; per-user counts
  over thousands of users are close to normal in the mean), or a two-sided permutation test.

Tests check the interval covers a known effect and that with no effect the test rejects at about
its nominal rate over repeated seeds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

PMethod = Literal["welch", "permutation"]


@dataclass(frozen=True)
class RelativeChange:
    """One metric's A/B comparison."""

    metric: str
    mean_a: float
    mean_b: float
    rel_change: float
    ci_low: float
    ci_high: float
    p_value: float
    n_a: int
    n_b: int
    alpha: float

    @property
    def significant(self) -> bool:
        """p < alpha."""
        return bool(self.p_value < self.alpha)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_array(x: object, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float).ravel()
    if arr.size < 2:
        raise ValueError(f"arm {name} needs at least 2 users, got {arr.size}")
    if not np.isfinite(arr).all():
        raise ValueError(f"arm {name} has non-finite values")
    return arr


def welch_p_value(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Welch t-test p-value; 1.0 when both arms are constant and equal, 0.0 if constant and different."""
    va, vb = a.var(ddof=1), b.var(ddof=1)
    if va == 0 and vb == 0:
        return 1.0 if a.mean() == b.mean() else 0.0
    return float(stats.ttest_ind(b, a, equal_var=False).pvalue)


def permutation_p_value(a: np.ndarray, b: np.ndarray, n_perm: int, rng: np.random.Generator) -> float:
    """Two-sided permutation p-value of |mean(B) - mean(A)| with the (1 + hits) / (1 + n) correction."""
    pooled = np.concatenate([a, b])
    n_a = a.size
    observed = abs(b.mean() - a.mean())
    hits = 0
    chunk = max(1, min(n_perm, 2_000_000 // max(1, pooled.size)))
    done = 0
    while done < n_perm:
        m = min(chunk, n_perm - done)
        perms = np.argsort(rng.random((m, pooled.size)), axis=1)
        shuffled = pooled[perms]
        diff = np.abs(shuffled[:, n_a:].mean(axis=1) - shuffled[:, :n_a].mean(axis=1))
        hits += int((diff >= observed - 1e-12).sum())
        done += m
    return (1 + hits) / (1 + n_perm)


def bootstrap_relative_ci(
    a: np.ndarray, b: np.ndarray, n_boot: int, alpha: float, rng: np.random.Generator
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(B)/mean(A) - 1 (NaN where a replicate has mean(A) = 0)."""
    chunk = max(1, min(n_boot, 4_000_000 // max(a.size, b.size)))
    reps: list[np.ndarray] = []
    done = 0
    while done < n_boot:
        m = min(chunk, n_boot - done)
        ma = a[rng.integers(0, a.size, (m, a.size))].mean(axis=1)
        mb = b[rng.integers(0, b.size, (m, b.size))].mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            reps.append(np.where(ma > 0, mb / ma - 1.0, np.nan))
        done += m
    r = np.concatenate(reps)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return math.nan, math.nan
    lo, hi = np.quantile(r, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def relative_change(
    a: object,
    b: object,
    *,
    metric: str = "metric",
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
    p_method: PMethod = "welch",
    n_perm: int = 2000,
) -> RelativeChange:
    """Relative change of mean(B) over mean(A), its bootstrap interval and a p-value."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if n_boot < 100:
        raise ValueError(f"n_boot must be >= 100 for a usable percentile interval, got {n_boot}")
    a_, b_ = _as_array(a, "A"), _as_array(b, "B")
    rng = np.random.default_rng(seed)
    mean_a, mean_b = float(a_.mean()), float(b_.mean())
    rel = mean_b / mean_a - 1.0 if mean_a > 0 else math.nan
    lo, hi = bootstrap_relative_ci(a_, b_, n_boot, alpha, rng)
    if p_method == "welch":
        p = welch_p_value(a_, b_)
    elif p_method == "permutation":
        p = permutation_p_value(a_, b_, n_perm, rng)
    else:
        raise ValueError(f"p_method must be 'welch' or 'permutation', got {p_method!r}")
    return RelativeChange(metric, mean_a, mean_b, rel, lo, hi, p, a_.size, b_.size, alpha)


def format_change(rc: RelativeChange) -> str:
    """``+3.9% [+1.2, +6.8] (P=0.037)`` as in Table 3, with the interval added."""
    if not math.isfinite(rc.rel_change):
        return "n/a (control mean is 0)"
    ci = "" if not math.isfinite(rc.ci_low) else f" [{100 * rc.ci_low:+.1f}, {100 * rc.ci_high:+.1f}]"
    return f"{100 * rc.rel_change:+.1f}%{ci} (P={rc.p_value:.3f})"


__all__ = [
    "PMethod",
    "RelativeChange",
    "bootstrap_relative_ci",
    "format_change",
    "permutation_p_value",
    "relative_change",
    "welch_p_value",
]
