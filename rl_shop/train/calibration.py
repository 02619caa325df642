"""Calibrate the collaboration env (``envs.specs.COLLABORATE``) from the agent loop (issue 13, item 2).

The real MACDF runtime is run on the training split of the benchmark under each collaboration
*arm* (answer at once, clarify first, allow a re-plan); its per-query logs are summarised per
query type and arm (:func:`summarise`), and each type's outcome parameters are fitted so that
the env, playing the same arm, gives the same mean product relevance as the loop's Accuracy@K
(:func:`fit_type`). Both measure the share of relevant products in the shown list: in the env
each of the top ``K`` products is relevant with probability ``Relevance`` (``User_Satisfaction``
for types without web evidence).

The env is not re-implemented here: every candidate parameter set is scored by playing the arm's
script in :class:`envs.collaborate.CollaborateEnv` itself, on the same seeded episodes for every
candidate (common random numbers, so the objective is deterministic). Fitted per type:

* ``rel_max`` (best product relevance), ``clarity`` (the initial clarity range, shifted as a
  whole and cut at 0 and 1), ``clarify_gain`` (what a question recovers), ``p_bad_plan`` (what a
  re-plan can fix) and the type's ``bad_plan_factor`` (what a bad first plan still finds: for a
  general question the runtime's first plan runs no product search, so its list is empty until a
  re-plan adds one, and only then does a clarified request pay).

What the policy *observes* is measured, not fitted (:func:`seen_clarity`): the runtime Leader's
clarity estimate before the first question and after each answer, logged by the loop, gives each
type's ``clarity_seen`` range (a uniform with the logs' mean and spread) and ``clarity_seen_gain``
(the share of the missing estimate one answer adds). Without it a policy trained on the env reads
the runtime's estimate (known slots / 9: about 0.14 for a clear "simple" request) as an unclear
request and asks questions the env never asked.

The objective is a least-squares fit to the loop's means, in units of their standard errors,
plus a weak pull toward the hand-set prior (``prior_weight``): with four arms and five
parameters per type the prior settles what the logs cannot tell apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from envs.collaborate import CollaborateEnv
from rl_shop.policies.features.collaborate import (
    CLARIFY,
    DECIDE,
    FEATURE_NAMES,
    PRODUCT_SEARCH,
    REPLAN,
)
from rl_shop.sim.slots import QUERY_TYPES

#: The per-type parameters the fit moves, in the order of its parameter vector.
FITTED: tuple[str, ...] = ("rel_max", "clarity_shift", "clarify_gain", "p_bad_plan", "bad_plan_factor")
_BELOW_THRESHOLD = FEATURE_NAMES.index("below_replan_threshold")


@dataclass(frozen=True)
class Arm:
    """A collaboration choice applied to every query: clarify first or not, allow one re-plan or not."""

    name: str
    clarify: bool
    replan: bool


@dataclass(frozen=True)
class LoopCell:
    """The agent loop's outcomes for one query type under one arm (training split)."""

    query_type: str
    arm: str
    n: int
    accuracy: float  # mean Accuracy@K of the final list
    accuracy_se: float  # its standard error over queries
    rounds: tuple[int, ...]  # clarification rounds, per query
    replan_rate: float  # share of queries re-planned
    total_s: float  # mean wall latency (deterministic path: no LLM time)
    quit_rate: float  # share of shoppers who quit during clarification
    clarity_hat: float = math.nan  # mean of the runtime's clarity estimate (known slots / SLOTS) before asking


def arms_from_config(spec: Mapping[str, Mapping[str, Any]]) -> list[Arm]:
    """``{name: {clarify: bool, replan: bool}}`` -> arms, with a clear error on a malformed entry."""
    out = []
    for name, a in spec.items():
        if not isinstance(a, Mapping) or set(a) != {"clarify", "replan"}:
            raise ValueError(f"arm {name!r} must give exactly clarify: bool and replan: bool, got {a!r}")
        if not all(isinstance(a[k], bool) for k in ("clarify", "replan")):
            raise ValueError(f"arm {name!r}: clarify and replan must be true or false, got {dict(a)!r}")
        out.append(Arm(str(name), a["clarify"], a["replan"]))
    if not out:
        raise ValueError("no calibration arms configured")
    return out


def clarity_trail(record: Mapping[str, Any]) -> list[float]:
    """The Leader's clarity estimate at each clarify-or-plan decision of one loop record
    (``extra.clarity_hat``, written by ``rl_shop.evaluation.systems``): before the first question,
    then after each answer."""
    return [float(x) for x in (record.get("extra") or {}).get("clarity_hat") or []]


def summarise(records: Iterable[Mapping[str, Any]], k: int = 5) -> list[LoopCell]:
    """One :class:`LoopCell` per (query type, arm) from the evaluation runner's records
    (``system`` is the arm's name). Records with an ``error`` are left out."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in records:
        if r.get("error"):
            continue
        groups.setdefault((str(r["query_type"]), str(r["system"])), []).append(r)
    cells = []
    for (qtype, arm), rs in sorted(groups.items()):
        acc = np.array([float(r[f"accuracy@{k}"]) for r in rs])
        se = float(acc.std(ddof=1) / math.sqrt(len(acc))) if len(acc) > 1 else math.nan
        cells.append(
            LoopCell(
                query_type=qtype,
                arm=arm,
                n=len(rs),
                accuracy=float(acc.mean()),
                accuracy_se=se,
                rounds=tuple(int(r.get("rounds", 0)) for r in rs),
                replan_rate=float(np.mean([int((r.get("extra") or {}).get("replans") or 0) > 0 for r in rs])),
                total_s=float(np.mean([float(r.get("total_s", 0.0)) for r in rs])),
                quit_rate=float(np.mean([bool(r.get("shopper_quit")) for r in rs])),
                clarity_hat=_mean_or_nan([t[0] for t in map(clarity_trail, rs) if t]),
            )
        )
    return cells


def _mean_or_nan(xs: Sequence[float]) -> float:
    return float(np.mean(xs)) if len(xs) else math.nan


@dataclass(frozen=True)
class SeenClarity:
    """How the runtime Leader's clarity estimate reads one query type: the env's ``clarity_seen``
    range and ``clarity_seen_gain``, with the counts they rest on."""

    query_type: str
    n: int  # queries with an initial estimate
    mean: float  # mean initial estimate
    sd: float  # its standard deviation over queries
    n_answers: int  # answered questions with an estimate before and after
    gain: float  # mean share of the missing estimate one answer adds
    pooled_gain: bool  # too few answers of this type: the gain is the all-type mean

    @property
    def seen_range(self) -> list[float]:
        """The uniform with the logs' mean and standard deviation (``mean ± sqrt(3) sd``), cut at 0 and 1."""
        half = math.sqrt(3.0) * self.sd
        return [round(max(self.mean - half, 0.0), 4), round(min(self.mean + half, 1.0), 4)]


def seen_clarity(records: Iterable[Mapping[str, Any]], arm: str, min_answers: int = 10) -> list[SeenClarity]:
    """Per query type, the runtime's clarity estimate under the clarifying ``arm`` (see the module
    docstring). The gain of one answer is ``(after - before) / (1 - before)``, the env's ``toward_one``
    step; a type with fewer than ``min_answers`` answers gets the mean over all answers."""
    starts: dict[str, list[float]] = {t: [] for t in QUERY_TYPES}
    gains: dict[str, list[float]] = {t: [] for t in QUERY_TYPES}
    for r in records:
        if r.get("error") or str(r["system"]) != arm:
            continue
        trail, qtype = clarity_trail(r), str(r["query_type"])
        if not trail:
            continue
        starts[qtype].append(trail[0])
        answered = min(int(r.get("rounds", 0)), len(trail) - 1)
        gains[qtype] += [(b - a) / (1.0 - a) for a, b in zip(trail[:answered], trail[1 : answered + 1]) if a < 1.0]
    pooled = [g for gs in gains.values() for g in gs]
    if not pooled or not any(starts.values()):
        raise ValueError(
            f"no clarity estimates under arm {arm!r}: the loop records carry none (extra.clarity_hat); "
            "rerun the loop with this version of the runtime"
        )
    out = []
    for t in QUERY_TYPES:
        xs, gs = np.array(starts[t]), gains[t]
        own = len(gs) >= min_answers
        gain = float(np.clip(np.mean(gs if own else pooled), 0.0, 1.0))
        sd = float(xs.std(ddof=1)) if len(xs) > 1 else 0.0
        out.append(SeenClarity(t, len(xs), _mean_or_nan(starts[t]), sd, len(gs), round(gain, 4), not own))
    return out


def with_seen_clarity(kwargs: Mapping[str, Any], seen: Iterable[SeenClarity]) -> dict[str, Any]:
    """Env kwargs whose clarity estimate reads as the runtime's does (types without queries keep the default)."""
    types = {t: dict(v) for t, v in kwargs["types"].items()}
    for s in seen:
        if s.n:
            types[s.query_type].update(clarity_seen=s.seen_range, clarity_seen_gain=s.gain)
    return {**kwargs, "types": types}


def clarify_rounds(cells: Sequence[LoopCell], arms: Sequence[Arm], qtype: str) -> tuple[int, ...]:
    """The loop's questions per query of ``qtype`` under the (first) clarifying arm: what the env's
    clarifying script asks; empty when no arm clarifies."""
    arm = next((a.name for a in arms if a.clarify), None)
    return next((c.rounds for c in cells if c.query_type == qtype and c.arm == arm), ())


def with_type_params(base_kwargs: Mapping[str, Any], qtype: str, params: Mapping[str, float]) -> dict[str, Any]:
    """Env kwargs with ``qtype``'s fitted parameters replaced (``clarity_shift`` moves its clarity range)."""
    types = {t: dict(v) for t, v in base_kwargs["types"].items()}
    spec = types[qtype]
    for key, value in params.items():
        if key == "clarity_shift":  # the range moves as a whole and is cut at 0 and 1
            lo, hi = spec["clarity"]
            spec["clarity"] = [round(min(max(lo + value, 0.0), 1.0), 4), round(min(max(hi + value, 0.0), 1.0), 4)]
        else:
            spec[key] = round(float(value), 4)
    return {**base_kwargs, "types": types}


def play_arm(env: CollaborateEnv, qtype: str, arm: Arm, rounds: Sequence[int], episodes: int, seed: int) -> np.ndarray:
    """Hidden product relevance at the answer of ``episodes`` scripted episodes of type ``qtype``.

    The script is the arm's: ``rounds[i % len(rounds)]`` questions (capped at ``max_clarify``) when
    the arm clarifies, the type's product searches, one re-plan and search when the Leader's Eq. 2
    score is below threshold and the arm allows it, then decide. Episodes whose shopper quit before
    any search are left out: the env counts abandonment in its reward, not in its relevance.
    """
    p = env.params
    t = QUERY_TYPES.index(qtype)
    ks = [min(int(r), p.max_clarify) for r in rounds] if arm.clarify and rounds else [0]
    out = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed if i == 0 else None, options={"query_type": qtype})
        script = [CLARIFY] * ks[i % len(ks)] + [PRODUCT_SEARCH] * int(p.min_ps[t])
        done = False
        for a in script:
            obs, _, done, _, info = env.step(a)
            if done:
                break
        if done:
            continue
        if arm.replan and obs[_BELOW_THRESHOLD] > 0.5:
            env.step(REPLAN)
            env.step(PRODUCT_SEARCH)
        _, _, _, _, info = env.step(DECIDE)
        out.append(info["relevance"])
    return np.array(out)


@dataclass(frozen=True)
class FitSettings:
    """Knobs of :func:`fit_all` / :func:`fit_type`; their values live in ``configs/calibrate.yaml`` ``fit``."""

    episodes: int  # scripted env episodes per arm and candidate
    seed: int
    clarity_floors: tuple[float, ...]  # the env-wide clarity_floor is chosen from these (least total loss)
    prior_weight: float  # pull toward the hand-set prior, per parameter, in units of prior_scale
    prior_scale: float
    se_floor: float  # a loop mean's standard error is at least this (a constant arm has se 0)
    max_evals: int  # Nelder-Mead evaluations per type, floor and start
    starts: int = 1  # Nelder-Mead starts per type: the prior, then seeded uniform points within the bounds
    workers: int = 1  # processes fitting query types side by side (the fit is the same for any number)


@dataclass(frozen=True)
class TypeFit:
    """The fitted parameters of one query type, the env's means under each arm, and the objective."""

    query_type: str
    params: dict[str, float]
    env_accuracy: dict[str, float]
    loss: float


def _bounds(spec: Mapping[str, Any]) -> list[tuple[float, float]]:
    lo, hi = spec["clarity"]
    return [(0.01, 1.0), (-float(hi), 1.0 - float(lo)), (0.0, 1.0), (0.0, 1.0), (0.0, 1.0)]


def fit_type(
    base_kwargs: Mapping[str, Any], qtype: str, cells: Sequence[LoopCell], arms: Sequence[Arm], fit: FitSettings
) -> TypeFit:
    """Fit ``qtype``'s :data:`FITTED` parameters to the loop's cells of that type (one per arm)."""
    by_arm = {c.arm: c for c in cells if c.query_type == qtype}
    missing = [a.name for a in arms if a.name not in by_arm]
    if missing:
        raise ValueError(f"no loop outcomes for query type {qtype!r} under arm(s) {missing}; run the loop first")
    spec = base_kwargs["types"][qtype]
    bad_factor = spec.get("bad_plan_factor", base_kwargs["bad_plan_factor"])
    prior = np.array(
        [float(spec["rel_max"]), 0.0, float(spec["clarify_gain"]), float(spec["p_bad_plan"]), float(bad_factor)]
    )
    bounds = _bounds(spec)
    lo, hi = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    rounds = clarify_rounds(cells, arms, qtype)

    def env_means(x: np.ndarray) -> dict[str, float]:
        env = CollaborateEnv(**with_type_params(base_kwargs, qtype, dict(zip(FITTED, x))))
        return {a.name: float(play_arm(env, qtype, a, rounds, fit.episodes, fit.seed).mean()) for a in arms}

    se = {a: max(c.accuracy_se if math.isfinite(c.accuracy_se) else 0.0, fit.se_floor) for a, c in by_arm.items()}

    def loss(x: np.ndarray) -> float:
        x = np.clip(x, lo, hi)
        means = env_means(x)
        misfit = sum(((means[a.name] - by_arm[a.name].accuracy) / se[a.name]) ** 2 for a in arms)
        return float(misfit + fit.prior_weight * np.sum(((x - prior) / fit.prior_scale) ** 2))

    rng = np.random.default_rng([fit.seed, QUERY_TYPES.index(qtype)])
    starts = [prior] + [rng.uniform(lo, hi) for _ in range(fit.starts - 1)]
    best = None
    for x0 in starts:  # several starts: a flat region (e.g. a type whose lists are all empty) traps one
        res = minimize(
            loss,
            x0,
            method="Nelder-Mead",
            bounds=bounds,
            options={"maxfev": fit.max_evals, "xatol": 1e-3, "fatol": 1e-3, "initial_simplex": _simplex(x0, bounds)},
        )
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None, "FitSettings.starts must be at least 1"
    x = np.clip(best.x, lo, hi)
    return TypeFit(qtype, {k: round(float(v), 4) for k, v in zip(FITTED, x)}, env_means(x), float(best.fun))


def _simplex(x0: np.ndarray, bounds: Sequence[tuple[float, float]], step: float = 0.2) -> np.ndarray:
    """A start simplex of ``step``-sized moves that stays inside the bounds."""
    rows = [x0]
    for i, (lo, hi) in enumerate(bounds):
        x = x0.copy()
        x[i] = x0[i] + step if x0[i] + step <= hi else x0[i] - step
        x[i] = min(max(x[i], lo), hi)
        rows.append(x)
    return np.array(rows)


def _fit_type_args(args: tuple[Any, ...]) -> TypeFit:
    return fit_type(*args)


def fit_all(
    base_kwargs: Mapping[str, Any],
    cells: Sequence[LoopCell],
    arms: Sequence[Arm],
    fit: FitSettings,
    progress: Callable[[str], None] = print,
) -> tuple[float, list[TypeFit]]:
    """Every query type's fit for each candidate env-wide ``clarity_floor``; returns the floor with
    the least total loss and its fits. The floor bounds what clarifying can do (at clarity 0 a search
    still finds ``rel_max * clarity_floor``), so it is chosen from the logs, not kept by hand."""
    best: tuple[float, float, list[TypeFit]] | None = None
    for floor in fit.clarity_floors:
        kw = {**base_kwargs, "clarity_floor": float(floor)}
        with ProcessPoolExecutor(fit.workers) if fit.workers > 1 else nullcontext() as pool:
            calls = [(kw, t, cells, arms, fit) for t in QUERY_TYPES]
            fits = list(pool.map(_fit_type_args, calls)) if pool else [fit_type(*c) for c in calls]
        total = sum(f.loss for f in fits)
        progress(f"clarity_floor={floor}: total loss {total:.2f}")
        if best is None or total < best[1]:
            best = (float(floor), total, fits)
    assert best is not None, "FitSettings.clarity_floors is empty"
    return best[0], best[2]


def calibrated_kwargs(base_kwargs: Mapping[str, Any], clarity_floor: float, fits: Iterable[TypeFit]) -> dict[str, Any]:
    """The env kwargs with the chosen floor and every fitted type's parameters in place."""
    kw = {**base_kwargs, "clarity_floor": clarity_floor}
    for f in fits:
        kw = with_type_params(kw, f.query_type, f.params)
    return kw
