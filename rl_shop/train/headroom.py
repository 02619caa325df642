"""Headroom of an env before any RL: random, the shipped heuristics, the best of a swept heuristic
family, the learned policy, and an oracle, all on the same episodes.

Every policy plays the same seeded episodes: each env draws episode ``i`` of a seed's stream
whatever the actions were (common random numbers), so every difference below is paired and its
interval is the paired one.

* The **best heuristic** is the family member (the shipped heuristics included) with the highest
  mean return on *selection* episodes of another seed; it is then scored on the evaluation
  episodes, so the choice does not inflate its figure (winner's curse).
* The **hindsight oracle** takes, per episode, the best return of every member of the family, every
  learned policy and the true-type oracle (random left out). It sees each shopper's hidden
  variables and every draw, so it is an upper bound on choosing among these policies per shopper,
  not a policy one could deploy.
* The **true-type oracle** (Collaborate only) is the family's best member fed the shopper's true
  query type instead of demand reasoning's prediction: a real policy that sees one hidden variable.

The verdict: a role needs no RL when the oracle's gain over the best heuristic is below
``near_oracle`` of the oracle's gain over random (the span a policy could cover).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from envs.clarify import ClarifyEnv
from envs.specs import CLARIFY
from rl_shop.policies.base import Policy
from rl_shop.policies.evaluate import RandomPolicy, evaluate_policy
from rl_shop.policies.features.collaborate import FEATURE_NAMES, N_TYPES
from rl_shop.policies.heuristics.clarify import AskUntilConfident, ClarifyPriors
from rl_shop.policies.heuristics.collaborate import AlwaysFullPipeline, ReflectionReplan
from rl_shop.policies.heuristics.schedule import FixedTriggerPolicy
from rl_shop.sim.slots import QUERY_TYPES
from rl_shop.train.aggregate import normal_half_width, t_interval

Kind = Literal["random", "shipped", "best heuristic", "learned", "oracle"]
_TYPE_CONFIDENCE = FEATURE_NAMES.index("type_confidence")


@dataclass(frozen=True)
class Scored:
    """One policy's per-episode returns on the evaluation episodes."""

    name: str
    kind: Kind
    returns: np.ndarray = field(repr=False)
    info: dict[str, float] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(self.returns.mean())


@dataclass(frozen=True)
class HeadroomRow:
    """A table row: the policy's mean return and its paired difference with the best heuristic."""

    policy: str
    kind: Kind
    mean: float
    ci95: float
    diff_vs_best: float
    diff_ci95: float
    info: dict[str, float] = field(default_factory=dict)


def score(env: gym.Env, name: str, kind: Kind, policy: Policy, episodes: int, seed: int) -> Scored:
    """``policy`` on ``episodes`` episodes of ``seed``'s stream."""
    result = evaluate_policy(env, policy, episodes, seed)
    return Scored(name, kind, result.returns, result.final_info_means)


def select_best(env: gym.Env, family: Mapping[str, Policy], episodes: int, seed: int) -> tuple[str, dict[str, float]]:
    """The family member with the highest mean return on the selection episodes, and every mean."""
    if not family:
        raise ValueError("the heuristic family is empty; give at least one policy to select from")
    means = {name: evaluate_policy(env, policy, episodes, seed).mean_return for name, policy in family.items()}
    return max(means, key=lambda n: (means[n], n)), means


def hindsight_oracle(scored: Sequence[Scored]) -> Scored:
    """Per episode, the best return of any scored policy (see the module docstring)."""
    if not scored:
        raise ValueError("the hindsight oracle needs at least one scored policy")
    best = np.max(np.stack([s.returns for s in scored]), axis=0)
    return Scored(f"oracle: hindsight best of {len(scored)} policies, per episode", "oracle", best)


def policy_name(policy: Policy) -> str:
    """A readable name: the policy's own ``name`` (trigger rules) or its class."""
    return str(getattr(policy, "name", "") or type(policy).__name__)


def table(scored: Sequence[Scored], best: Scored) -> list[HeadroomRow]:
    """Rows with each policy's paired difference against ``best`` (the best heuristic)."""
    rows = []
    for s in scored:
        diff = s.returns - best.returns
        rows.append(
            HeadroomRow(
                s.name,
                s.kind,
                s.mean,
                normal_half_width(s.returns),
                float(diff.mean()),
                normal_half_width(diff),
                s.info,
            )
        )
    return rows


def verdict(best: Scored, oracle: Scored, random: Scored, near_oracle: float) -> dict[str, float | bool]:
    """Oracle gap (paired, with its interval), its share of the oracle-over-random span, and
    whether the best heuristic is near enough the oracle that the role needs no RL."""
    gap = oracle.returns - best.returns
    span = oracle.mean - random.mean
    share = float(gap.mean() / span) if span > 0 else math.nan
    return {
        "oracle_gap": float(gap.mean()),
        "oracle_gap_ci95": normal_half_width(gap),
        "oracle_over_random": float(span),
        "gap_share": share,
        "no_rl_needed": bool(math.isfinite(share) and share < near_oracle),
    }


def learned_vs_best(learned: Sequence[Scored], best: Scored) -> dict[str, float | int | list[float]]:
    """Learned minus best heuristic. With several learned policies (training seeds) the interval is
    the Student-t one over their mean paired differences: the seed is the unit of replication; with
    one, the paired interval over episodes."""
    if not learned:
        raise ValueError("no learned policy to compare; give at least one exported policy directory")
    diffs = [s.returns - best.returns for s in learned]
    means = np.array([float(d.mean()) for d in diffs])
    mean, half = t_interval(means) if len(learned) > 1 else (float(means[0]), normal_half_width(diffs[0]))
    return {
        "n_learned": len(learned),
        "learned_minus_best": mean,
        "learned_minus_best_ci95": half,
        "learned_minus_best_each": means.tolist(),
    }


def learned_vs_heuristic_in_metric(
    learned: Sequence[Scored], heuristic: Scored, metric: str, label: str = "best"
) -> dict[str, Any]:
    """Learned minus a heuristic (``label``: ``best``, or ``shipped``, the one the agent loop's
    heuristic system runs) in the agent loop's metric: the mean of ``info[metric]`` at the
    episodes' end (``accuracy_at_5`` for the Guider's env, ``latency`` for the scheduler's, the
    answer's ``relevance`` for the collaboration env), so that the env's difference and the loop's
    are in one unit. The interval is the Student-t one over the learned policies (training seeds);
    NaN with one."""
    missing = [s.name for s in (*learned, heuristic) if metric not in s.info]
    if missing:
        raise ValueError(
            f"loop metric {metric!r} is not in the final info of {missing}; this env's keys: {sorted(heuristic.info)}"
        )
    if not learned:
        raise ValueError("no learned policy to compare; give at least one exported policy directory")
    diffs = np.array([s.info[metric] - heuristic.info[metric] for s in learned])
    mean, half = t_interval(diffs)
    return {
        "loop_metric": metric,
        f"metric_{label}_heuristic": heuristic.info[metric],
        f"metric_learned_minus_{label}": mean,
        f"metric_learned_minus_{label}_ci95": half,
        f"metric_learned_minus_{label}_each": diffs.tolist(),
    }


# ---------------------------------------------------------------------------- families
def clarify_family(env: gym.Env, thresholds: Iterable[float], max_leave_risks: Iterable[float]) -> dict[str, Policy]:
    """``AskUntilConfident`` over its two knobs, with the env's intent-pool priors."""
    u = env.unwrapped
    if not isinstance(u, ClarifyEnv):
        raise TypeError(f"the AskUntilConfident family needs {CLARIFY.id}, got {type(u).__name__}")
    priors = ClarifyPriors.from_pool(u.pool)
    return {
        f"AskUntilConfident(threshold={t:g}, max_leave_risk={r:g})": AskUntilConfident(
            float(t), u.pool.log2_catalog_size, priors, max_leave_risk=float(r), max_rounds=u.params.max_rounds
        )
        for t, r in product(thresholds, max_leave_risks)
    }


def schedule_family(env: gym.Env) -> dict[str, Policy]:
    """One fixed trigger rule per action of the env's grid (the paper's setting among them)."""
    names: Sequence[str] = env.unwrapped.ACTION_NAMES  # type: ignore[attr-defined]
    return {name: FixedTriggerPolicy(i, name) for i, name in enumerate(names)}


def _type_set(names: Iterable[str]) -> set[int]:
    unknown = sorted(set(names) - set(QUERY_TYPES))
    if unknown:
        raise ValueError(f"unknown query types {unknown}; use names from {QUERY_TYPES}")
    return {QUERY_TYPES.index(n) for n in names}


def _label(names: Iterable[str]) -> str:
    names = list(names)
    return "none" if not names else "all" if set(names) == set(QUERY_TYPES) else "+".join(names)


def collaborate_family(
    clarify_sets: Iterable[Sequence[str]],
    web_sets: Iterable[Sequence[str]],
    double_search_sets: Iterable[Sequence[str]],
    reflection: Iterable[bool],
) -> dict[str, Policy]:
    """The MACDF pipeline over which types it clarifies, web-searches and searches twice, with and
    without the Leader's Eq. 2 re-plan (:class:`ReflectionReplan`)."""
    family: dict[str, Policy] = {}
    for clar, web, double, replan in product(clarify_sets, web_sets, double_search_sets, reflection):
        cls = ReflectionReplan if replan else AlwaysFullPipeline
        name = f"{cls.__name__}(clarify={_label(clar)}, web={_label(web)}, search twice={_label(double)})"
        family[name] = cls(_type_set(clar), _type_set(web), _type_set(double))
    return family


class TrueTypeObservation(gym.Wrapper):
    """The Collaborate observation with the shopper's true query type (``info["query_type"]``) in
    place of demand reasoning's prediction, at full confidence: the true-type oracle's view."""

    def _rewrite(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        out = np.array(obs, dtype=np.float32, copy=True)
        out[:N_TYPES] = 0.0
        out[QUERY_TYPES.index(info["query_type"])] = 1.0
        out[_TYPE_CONFIDENCE] = 1.0
        return out

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self._rewrite(obs, info), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._rewrite(obs, info), float(reward), terminated, truncated, info


def random_policy(env: gym.Env, seed: int) -> Policy:
    """Uniform over the valid actions: the floor."""
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(f"the random floor needs a Discrete action space, got {env.action_space}")
    return RandomPolicy(int(env.action_space.n), seed)
