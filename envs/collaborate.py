"""``rl_shop/Collaborate-v0``: feedback learning of the Leader's collaboration strategy.

MACDF Sec. 3.1 ("Feedback Learning") proposes optimising the multi-agent collaboration from
user interactions (clicks, purchases) with RL. Here the Leader chooses, step by step, which agent
acts next (Guider clarification, ProductSearch with a query rewrite, WebSearch, Planner re-plan,
Decider), a latent shopper reacts to the final answer, and the reward is the UCTR / UCVR / ARC
style outcome minus latency and compute.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Generic, SupportsFloat, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from scipy.special import ndtri

from envs import collaborate_formulas as F
from envs.dag import EpisodeUniforms
from envs.specs import COLLABORATE
from rl_shop.array_ops import NUMPY, SCALAR, Batch
from rl_shop.config_files import env_kwargs
from rl_shop.paths import CONFIG_DIR
from rl_shop.policies.features.collaborate import (
    ACTION_NAMES,
    CLARIFY,
    DECIDE,
    FEATURE_NAMES,
    LAYOUT_VERSION,
    PRODUCT_SEARCH,
    REPLAN,
    WEB_SEARCH,
    CollaborateState,
    action_mask_terms,
    featurize_fields,
)
from rl_shop.sim.config import load_sim_config
from rl_shop.sim.shopper import abandon_probability
from rl_shop.sim.slots import QUERY_TYPES

CONFIG_PATH: Path = CONFIG_DIR / "env" / f"{COLLABORATE.config}.yaml"
_TYPE_KEYS = (
    "clarity",
    "clarify_gain",
    "rel_max",
    "web_need",
    "web_gain",
    "p_bad_plan",
    "min_product_searches",
    "type_accuracy",
)
#: Optional per-type keys: how the Leader's clarity estimate reads the latent clarity (see the class
#: docstring, "Observation Space"; absent, the estimate reads the latent clarity itself), and the
#: type's own ``bad_plan_factor`` (absent: the env-wide one).
_OPTIONAL_TYPE_KEYS = ("clarity_seen", "clarity_seen_gain", "bad_plan_factor")
_REWARD_KEYS = ("w_click", "w_purchase", "w_reformulation", "w_abandon", "c_latency", "c_compute", "c_invalid")
#: Uniforms per episode: reset block, per-step block, reaction block (see ``CollaborateParams``).
#: Columns of the reset block: query type, clarity, patience, latency tolerance, bad plan,
#: type prediction correct, the wrong type, type confidence, clarity-estimate noise (normal).
(
    RESET_TYPE,
    RESET_CLARITY,
    RESET_PATIENCE,
    RESET_TOLERANCE,
    RESET_BAD_PLAN,
    RESET_TYPE_CORRECT,
    RESET_WRONG_TYPE,
    RESET_CONFIDENCE,
    RESET_CLARITY_NOISE,
) = range(9)
N_RESET_U = 9
#: Columns of a step's block: search noise, re-plan repair, Relevance / User_Satisfaction /
#: clarity estimate noise. The noise columns are drawn as normals (ndtri), in STEP_NORMAL_COLS order.
STEP_SEARCH_NOISE, STEP_REPLAN, STEP_RELEVANCE_NOISE, STEP_SATISFACTION_NOISE, STEP_CLARITY_NOISE = range(5)
N_STEP_U = 5
STEP_NORMAL_COLS: tuple[int, ...] = (
    STEP_SEARCH_NOISE,
    STEP_RELEVANCE_NOISE,
    STEP_SATISFACTION_NOISE,
    STEP_CLARITY_NOISE,
)


def reaction_columns(max_rank: int) -> tuple[int, int, int, int, int]:
    """Offsets in the reaction block: abandon, then ``max_rank`` relevance, click and purchase
    draws (first column of each run), then reformulate."""
    K = max_rank
    return 0, 1, 1 + K, 1 + 2 * K, 1 + 3 * K


_U_EPS = 1e-12


def load_default_kwargs(path: Path = CONFIG_PATH) -> dict[str, Any]:
    """The ``kwargs`` block of the env config file: the single source of the defaults."""
    return env_kwargs(path)


def _num(value: object, key: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    try:
        x = float(cast("SupportsFloat | str", value))  # anything else: TypeError, reported below
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{COLLABORATE.id}: {key} must be a number, got {value!r}.") from exc
    if not (math.isfinite(x) and lo <= x <= hi):
        raise ValueError(f"{COLLABORATE.id}: {key}={x} is outside [{lo}, {hi}].")
    return x


def _flag(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{COLLABORATE.id}: {key} must be true or false, got {value!r}.")
    return value


@dataclass(frozen=True)
class CollaborateParams(Generic[Batch]):
    """Validated arguments shared by the single and batched env; per-type arrays in QUERY_TYPES order.

    Per-episode uniforms: ``[0:9]`` reset (type, clarity, patience, latency tolerance, bad plan,
    type-correct, wrong type, confidence, clarity-estimate noise), then ``max_steps`` blocks of 5
    (search noise, re-plan success, Relevance / User_Satisfaction / clarity estimate noise), then
    the reaction (abandon, ``K`` relevance, ``K`` click, ``K`` purchase, reformulate; ``K`` =
    click-model max rank).
    """

    type_cum: Batch
    clarity_lo: Batch
    clarity_hi: Batch
    clarify_gain: Batch
    seen_lo: Batch  # the Leader's clarity estimate at the start: uniform in [seen_lo, seen_hi] ...
    seen_hi: Batch  # ... on the same draw as the latent clarity (so the two are rank-correlated)
    seen_gain: Batch  # ... and after each answered question: toward_one(seen, seen_gain)
    rel_max: Batch
    web_need: Batch
    web_gain: Batch
    p_bad_plan: Batch
    min_ps: Batch
    type_accuracy: Batch
    latency: Batch  # (5,) per action
    compute: Batch  # (5,)
    max_steps: int
    max_clarify: int
    max_replan: int
    gamma: float
    replan_threshold: float
    clarity_floor: float
    search_noise_sd: float
    bad_plan_factor: Batch  # per type: product relevance multiplier while the plan is bad
    p_replan_fix: float
    predict_noise_sd: float
    conf_correct: tuple[float, float]
    conf_wrong: tuple[float, float]
    w_click: float
    w_purchase: float
    w_reformulation: float
    w_abandon: float
    c_latency: float
    c_compute: float
    c_invalid: float
    # shopper parameters, from rl_shop.sim (one shopper for env and agent loop)
    patience_lo: int
    patience_hi: int
    tolerance_lo: float
    tolerance_hi: float
    examination_eta: float
    attr_relevant: float
    attr_irrelevant: float
    max_rank: int
    p_purchase: float
    reformulate_top_k: int
    p_reformulate: float
    abandon_base_p: float
    abandon_scale_s: float
    rng_block_episodes: int
    expected_reward: bool

    @property
    def n_uniforms(self) -> int:
        return self.reaction_offset + reaction_columns(self.max_rank)[-1] + 1

    @property
    def reaction_offset(self) -> int:
        return N_RESET_U + N_STEP_U * self.max_steps


def parse_collaborate_kwargs(**overrides: object) -> CollaborateParams:
    """Merge ``overrides`` over the YAML defaults and the sim shopper config; validate everything."""
    kw = load_default_kwargs()
    unknown = sorted(set(overrides) - set(kw))
    if unknown:
        raise TypeError(
            f"unknown {COLLABORATE.id} argument(s) {unknown}; known arguments: {sorted(kw)} (see {CONFIG_PATH})."
        )
    kw.update(overrides)
    sim = load_sim_config(kw["sim_config"]) if kw["sim_config"] else load_sim_config()
    types = kw["types"]
    if not isinstance(types, dict) or set(types) != set(QUERY_TYPES):
        got = sorted(types) if isinstance(types, dict) else types
        raise ValueError(
            f"{COLLABORATE.id}: 'types' must give parameters for exactly the 8 ECCD query types "
            f"{list(QUERY_TYPES)}; got {got}."
        )
    tab: dict[str, list[Any]] = {k: [] for k in (*_TYPE_KEYS, *_OPTIONAL_TYPE_KEYS)}
    for t in QUERY_TYPES:
        spec = types[t]
        missing = [k for k in _TYPE_KEYS if k not in spec]
        if missing:
            raise ValueError(f"{COLLABORATE.id}: types.{t} lacks {missing}; see {CONFIG_PATH}.")
        extra = sorted(set(spec) - set(_TYPE_KEYS) - set(_OPTIONAL_TYPE_KEYS))
        if extra:
            raise ValueError(
                f"{COLLABORATE.id}: types.{t} has unknown key(s) {extra}; known: {[*_TYPE_KEYS, *_OPTIONAL_TYPE_KEYS]}."
            )
        for k in _TYPE_KEYS:
            tab[k].append(spec[k])
        # absent (or null): the Leader's estimate reads the latent clarity (same range, same gain)
        tab["clarity_seen"].append(spec.get("clarity_seen") or spec["clarity"])
        tab["clarity_seen_gain"].append(
            spec["clarify_gain"] if spec.get("clarity_seen_gain") is None else spec["clarity_seen_gain"]
        )
        tab["bad_plan_factor"].append(
            kw["bad_plan_factor"] if spec.get("bad_plan_factor") is None else spec["bad_plan_factor"]
        )
    clarity, seen = (_range_table(tab[k], k) for k in ("clarity", "clarity_seen"))
    arrays = {}
    _num(kw["bad_plan_factor"], "bad_plan_factor", 0.0, 1.0)
    for k in (
        "clarify_gain",
        "clarity_seen_gain",
        "rel_max",
        "web_need",
        "web_gain",
        "p_bad_plan",
        "bad_plan_factor",
        "type_accuracy",
    ):
        arr = np.array([_num(v, f"types.{t}.{k}", 0.0, 1.0) for t, v in zip(QUERY_TYPES, tab[k])])
        arrays[k] = arr
    min_ps = np.array(
        [
            int(_num(v, f"types.{t}.min_product_searches", 1, 10))
            for t, v in zip(QUERY_TYPES, tab["min_product_searches"])
        ]
    )
    acts = kw["actions"]
    if not isinstance(acts, dict) or set(acts) != set(ACTION_NAMES):
        raise ValueError(f"{COLLABORATE.id}: 'actions' must give latency_s and compute for {list(ACTION_NAMES)}.")
    latency = np.array([_num(acts[a]["latency_s"], f"actions.{a}.latency_s", 0.0) for a in ACTION_NAMES])
    compute = np.array([_num(acts[a]["compute"], f"actions.{a}.compute", 0.0) for a in ACTION_NAMES])
    rw = kw["reward"]
    missing = [k for k in _REWARD_KEYS if k not in rw]
    if missing:
        raise ValueError(f"{COLLABORATE.id}: reward lacks {missing}; see {CONFIG_PATH}.")
    max_steps = int(_num(kw["max_steps"], "max_steps", 2, 1000))
    mix = np.array([float(sim.mix.get(t, 0.0)) for t in QUERY_TYPES])
    if mix.sum() <= 0:
        raise ValueError(f"{COLLABORATE.id}: the sim config's query-type mix sums to 0.")
    cum = np.cumsum(mix) / mix.sum()
    cum[-1] = 1.0
    cc = tuple(float(x) for x in kw["confidence_correct"])
    cw = tuple(float(x) for x in kw["confidence_wrong"])
    for name, r in (("confidence_correct", cc), ("confidence_wrong", cw)):
        if len(r) != 2 or not 0 <= r[0] <= r[1] <= 1:
            raise ValueError(f"{COLLABORATE.id}: {name} must be [low, high] within [0, 1], got {r}.")
    sh, sa = sim.shopper, sim.sampler
    return CollaborateParams(
        type_cum=cum,
        clarity_lo=clarity[:, 0],
        clarity_hi=clarity[:, 1],
        clarify_gain=arrays["clarify_gain"],
        seen_lo=seen[:, 0],
        seen_hi=seen[:, 1],
        seen_gain=arrays["clarity_seen_gain"],
        rel_max=arrays["rel_max"],
        web_need=arrays["web_need"],
        web_gain=arrays["web_gain"],
        p_bad_plan=arrays["p_bad_plan"],
        min_ps=min_ps,
        type_accuracy=arrays["type_accuracy"],
        latency=latency,
        compute=compute,
        max_steps=max_steps,
        max_clarify=int(_num(kw["max_clarify"], "max_clarify", 0, 100)),
        max_replan=int(_num(kw["max_replan"], "max_replan", 0, 100)),
        gamma=_num(kw["gamma"], "gamma", 0.0, 1.0),
        replan_threshold=_num(kw["replan_threshold"], "replan_threshold", 0.0, 1.0),
        clarity_floor=_num(kw["clarity_floor"], "clarity_floor", 0.0, 1.0),
        search_noise_sd=_num(kw["search_noise_sd"], "search_noise_sd", 0.0),
        bad_plan_factor=arrays["bad_plan_factor"],
        p_replan_fix=_num(kw["p_replan_fix"], "p_replan_fix", 0.0, 1.0),
        predict_noise_sd=_num(kw["predict_noise_sd"], "predict_noise_sd", 0.0),
        conf_correct=cc,  # type: ignore[arg-type]
        conf_wrong=cw,  # type: ignore[arg-type]
        **{k: _num(rw[k], f"reward.{k}", 0.0) for k in _REWARD_KEYS},
        patience_lo=int(sa.patience.low),
        patience_hi=int(sa.patience.high),
        tolerance_lo=float(sa.latency_tolerance_s.low),
        tolerance_hi=float(sa.latency_tolerance_s.high),
        examination_eta=float(sh.click.examination_eta),
        attr_relevant=float(sh.click.attractiveness_relevant),
        attr_irrelevant=float(sh.click.attractiveness_irrelevant),
        max_rank=int(sh.click.max_rank),
        p_purchase=float(sh.p_purchase),
        reformulate_top_k=int(sh.reformulate_top_k),
        p_reformulate=float(sh.p_reformulate),
        abandon_base_p=float(sh.abandon_base_p),
        abandon_scale_s=float(sh.abandon_scale_s),
        rng_block_episodes=int(_num(kw["rng_block_episodes"], "rng_block_episodes", 1, 1e6)),
        expected_reward=_flag(kw["expected_reward"], "expected_reward"),
    )


def _range_table(rows: list[Any], key: str) -> np.ndarray:
    """Per-type ``[low, high]`` ranges as an ``(8, 2)`` array, checked: ``0 <= low <= high <= 1``."""
    try:
        arr = np.array(rows, dtype=float)
    except (TypeError, ValueError):
        arr = np.empty(0)
    if arr.shape != (8, 2) or not (arr.min() >= 0 and arr.max() <= 1) or (arr[:, 0] > arr[:, 1]).any():
        raise ValueError(f"{COLLABORATE.id}: types.*.{key} must be [low, high] with 0 <= low <= high <= 1.")
    return arr


#: The click model at one rank on Python scalars, typed as what it returns there (three bools);
#: bound once so the per-rank loop of ``_react`` pays no ``cast`` call.
_scalar_click_and_buy = cast(
    "Callable[[float, float, float, float, float, float, float], tuple[bool, bool, bool]]",
    partial(F.click_and_buy, SCALAR),
)


class CollaborateEnv(gym.Env):
    """The Leader picks the next agent action; a latent shopper reacts to the final answer.

    ## Description
    A latent shopper (rl_shop.sim parameters) has a query type (one of the 8 ECCD types, drawn
    with the sim's mix), an intent clarity ``c`` in [0, 1], a patience (clarification rounds
    tolerated) and a latency tolerance. Hidden answer quality: product relevance ``R`` (best
    result list so far), web information coverage ``W``, a possibly bad first plan. Effects,
    all type-dependent through ``types`` in the config:

    * ``clarify`` (Guider): ``c <- c + clarify_gain[type] * (1 - c)``; past the shopper's
      patience the shopper quits (abandonment). Helps ambiguous / reasoning most.
    * ``product_search`` (with a fresh query rewrite): a list of quality
      ``clip(rel_max[type] * (floor + (1 - floor) c) * (bad_plan_factor[type] if the plan is bad)
      + noise)``; ``R <- max(R, new)``. Comparison needs ``min_product_searches = 2``:
      effective ``Relevance = R * min(1, n_product_search / min_product_searches)``.
    * ``web_search``: ``W <- W + clip(web_gain[type] + noise) * (1 - W)``; matters for
      general_qa / product_qa through ``web_need[type]``.
    * ``replan`` (Planner): repairs a bad plan with ``p_replan_fix``.
    * ``decide`` (Decider): the answer is shown; the episode ends.

    Hidden ``User_Satisfaction = (1 - web_need) * Relevance + web_need * W``. Each of the top
    ``K`` shown products is relevant with probability ``User_Satisfaction``; the shopper
    reacts with the sim's model: abandon with ``p = abandon_probability(latency, tolerance)``
    (MACDF Sec. 4.2.2: users left before slow results arrived), else click at rank ``r`` with
    ``(1 / r^eta) * attractiveness(relevant)``, purchase a clicked relevant product with
    ``p_purchase``, reformulate when nothing relevant is in the top ``k``.

    ## Action Space
    ``Discrete(5)``: ``ACTION_NAMES = (clarify, product_search, web_search, replan, decide)``.
    Mask (``action_masks()`` and ``info["action_mask"]``): ``decide`` only after a search
    (or at the last step, so the mask is never empty);
    ``clarify`` at most ``max_clarify`` times and ``replan`` at most ``max_replan`` times (and
    only after a search), both only while ``steps <= max_steps - 3``; searches only while
    ``steps <= max_steps - 2``; so every masked episode ends by ``decide`` within
    ``max_steps``. A masked-out action costs ``c_invalid`` and does nothing else; reaching
    ``max_steps`` that way forces ``decide`` (or abandonment if nothing was searched).

    ## Observation Space
    ``Box(0, inf, (20,), float32)`` from ``rl_shop.policies.features.collaborate.featurize``:
    predicted type one-hot and confidence (demand reasoning), step fraction, elapsed latency,
    action counts, predicted Relevance / User_Satisfaction / clarity (noisy, 0 before a
    search), the Eq. 2 reflection score ``gamma * Relevance + (1 - gamma) * User_Satisfaction``
    and whether it is below ``replan_threshold``. ``LAYOUT_VERSION = "collaborate-v1"``.

    The clarity estimate reads a *seen* clarity, not ``c`` itself: it starts uniform in the type's
    ``clarity_seen`` range on the same draw as ``c`` and moves ``toward_one`` by
    ``clarity_seen_gain`` per answered question. The runtime Leader's estimate is the share of
    slots on record, on a scale of its own (a clear "simple" request names 1-2 of 9 slots), so a
    config calibrated from the agent loop sets both keys from the loop's logs; absent, they
    default to ``clarity`` and ``clarify_gain`` and the estimate reads ``c``.

    ## Rewards
    Every step ``-(c_latency * latency_s[a] + c_compute * compute[a])``; at the end
    ``+ w_click * clicks + w_purchase * purchased - w_reformulation * reformulated
    - w_abandon * abandoned`` (UCTR / UCVR / ARC style). With ``expected_reward=True`` the
    terminal term is its expectation over the reaction's draws given the state at the answer
    (``collaborate_formulas.expected_reaction_reward``): the same mean, less variance; ``info``
    still reports one sampled reaction.

    ## Starting State
    A fresh shopper from the per-episode uniforms; nothing searched; estimates 0 except clarity.
    ``reset(options={"query_type": name})`` fixes the query type (per-type evaluation).

    ## Episode End
    Terminated at ``decide`` or when the shopper quits; never truncated when the mask is obeyed.

    ## Arguments
    Every key of ``configs/env/collaborate.yaml`` ``kwargs``; the shopper's parameters come from
    ``sim_config`` (``configs/sim/default.yaml``). ``info`` carries ``clicked``, ``purchased``,
    ``reformulations``, ``abandoned``, ``latency``, ``rounds`` (clarification rounds),
    ``steps``, ``action_mask``, ``query_type``, and the hidden ``relevance`` and
    ``user_satisfaction``.
    """

    metadata = {"render_modes": []}
    ACTION_NAMES = ACTION_NAMES

    def __init__(self, **kwargs: object) -> None:
        self.params = parse_collaborate_kwargs(**kwargs)
        self.FEATURE_NAMES = FEATURE_NAMES
        self.LAYOUT_VERSION = LAYOUT_VERSION
        self.action_space = spaces.Discrete(len(ACTION_NAMES))
        self.observation_space = spaces.Box(0.0, np.inf, (len(FEATURE_NAMES),), np.float32)
        self._uniforms: EpisodeUniforms | None = None
        self._terms: tuple[bool, ...] | None = None  # the validity terms of the next action (set by _info)
        p = self.params
        self._lat = p.latency.tolist()
        self._cost = F.action_cost(p.c_latency, p.latency, p.c_compute, p.compute).tolist()
        ranks = range(1, p.max_rank + 1)
        self._exam_attr_rel = [F.attractiveness(r, p.examination_eta, p.attr_relevant) for r in ranks]
        self._exam_attr_irr = [F.attractiveness(r, p.examination_eta, p.attr_irrelevant) for r in ranks]
        self._ea_rel, self._ea_irr = np.array(self._exam_attr_rel), np.array(self._exam_attr_irr)
        self._min_ps = [int(m) for m in p.min_ps]  # per type, as Python numbers for the scalar formulas
        self._web_need = [float(w) for w in p.web_need]

    # ------------------------------------------------------------------ episode
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        p = self.params
        if seed is not None or self._uniforms is None:
            self._uniforms = EpisodeUniforms(self.np_random, p.n_uniforms, p.rng_block_episodes)
            self._pending: list[tuple[list[float], list[float]]] = []
        if not self._pending:
            # Transform a whole block at once (same numbers as row by row, far fewer calls).
            u = np.clip(self._uniforms.next_block(), _U_EPS, 1.0 - _U_EPS)
            self._pending = list(zip(u.tolist(), ndtri(u).tolist()))[::-1]
        self._u, self._z = self._pending.pop()
        U = self._u
        t = int(np.searchsorted(p.type_cum, U[RESET_TYPE], side="right"))
        t = min(t, len(QUERY_TYPES) - 1)
        if options and options.get("query_type") is not None:
            # Evaluate one query type (per-type tables, tests); the other draws are unchanged.
            if options["query_type"] not in QUERY_TYPES:
                raise ValueError(f"reset option query_type={options['query_type']!r} is not one of {QUERY_TYPES}.")
            t = QUERY_TYPES.index(options["query_type"])
        self._type = t
        self._c = float(F.uniform(p.clarity_lo[t], p.clarity_hi[t], U[RESET_CLARITY]))
        self._seen = float(F.uniform(p.seen_lo[t], p.seen_hi[t], U[RESET_CLARITY]))
        self._patience = F.uniform_int(SCALAR, p.patience_lo, p.patience_hi, U[RESET_PATIENCE])
        self._tolerance = F.uniform(p.tolerance_lo, p.tolerance_hi, U[RESET_TOLERANCE])
        self._bad_plan = U[RESET_BAD_PLAN] < p.p_bad_plan[t]
        if U[RESET_TYPE_CORRECT] < p.type_accuracy[t]:
            self._pred, lo, hi = t, *p.conf_correct
        else:
            self._pred, lo, hi = cast(int, F.other_type(SCALAR, t, U[RESET_WRONG_TYPE])), *p.conf_wrong
        self._conf = F.uniform(lo, hi, U[RESET_CONFIDENCE])
        self._R = 0.0
        self._W = 0.0
        self._steps = 0
        self._elapsed = 0.0
        self._n = [0, 0, 0, 0, 0]  # per-action counts
        self._rhat = 0.0
        self._uhat = 0.0
        self._chat = F.noisy_estimate(SCALAR, self._seen, p.predict_noise_sd, self._z[RESET_CLARITY_NOISE])
        self._outcome = (0, 0, 0, False)
        return self._obs(), self._info()

    def _relevance(self) -> float:
        """Hidden Relevance: best list quality, scaled down until enough product searches ran."""
        return F.relevance(SCALAR, self._R, self._n[PRODUCT_SEARCH], self._min_ps[self._type])

    def _satisfaction(self, relevance: float) -> float:
        return F.satisfaction(relevance, self._W, self._web_need[self._type])

    def action_masks(self) -> np.ndarray:
        """Valid actions now (``rl_shop.policies.features.collaborate.action_mask_terms``)."""
        if self._terms is None:
            raise RuntimeError("call reset() before action_masks()")
        return np.array(self._terms, dtype=bool)

    def _valid(self) -> tuple[Any, ...]:
        """The mask's terms as Python bools (``step`` needs one of them, not an array)."""
        p, n = self.params, self._n
        return action_mask_terms(
            n[CLARIFY],
            n[PRODUCT_SEARCH],
            n[WEB_SEARCH],
            n[REPLAN],
            self._steps,
            p.max_steps,
            p.max_clarify,
            p.max_replan,
        )

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = int(action)
        if not 0 <= a < len(ACTION_NAMES):
            raise ValueError(f"action {action!r} out of range 0..{len(ACTION_NAMES) - 1} {ACTION_NAMES}.")
        terms = self._terms
        if terms is None:
            raise RuntimeError("call reset() before step()")
        p = self.params
        s = self._steps
        if not terms[a]:
            self._steps += 1
            if self._steps < p.max_steps:
                return self._obs(), -p.c_invalid, False, False, self._info()
            # Out of steps through invalid actions: the Leader must answer now (or lose the user).
            if self._n[PRODUCT_SEARCH] + self._n[WEB_SEARCH] > 0:
                r = self._decide()
                return self._obs(), r - p.c_invalid, True, False, self._info()
            self._outcome = (0, 0, 0, True)
            return self._obs(), -p.c_invalid - p.w_abandon, True, False, self._info()
        self._steps += 1
        self._n[a] += 1
        if a == DECIDE:
            r = self._decide()
            return self._obs(), r, True, False, self._info()
        reward = -self._cost[a]
        self._elapsed += self._lat[a]
        b = N_RESET_U + N_STEP_U * s
        z, u = self._z, self._u
        t = self._type
        if a == CLARIFY:
            if F.out_of_patience(self._n[CLARIFY], self._patience):  # the shopper leaves
                self._outcome = (0, 0, 0, True)
                return self._obs(), reward - p.w_abandon, True, False, self._info()
            self._c = F.toward_one(self._c, float(p.clarify_gain[t]))
            self._seen = F.toward_one(self._seen, float(p.seen_gain[t]))
        elif a == PRODUCT_SEARCH:
            mean = F.search_mean(float(p.rel_max[t]), p.clarity_floor, self._c)
            if self._bad_plan:
                mean *= float(p.bad_plan_factor[t])
            new = F.noisy_estimate(SCALAR, mean, p.search_noise_sd, z[b + STEP_SEARCH_NOISE])
            if new > self._R:
                self._R = new
        elif a == WEB_SEARCH:
            gain = F.noisy_estimate(SCALAR, float(p.web_gain[t]), p.search_noise_sd, z[b + STEP_SEARCH_NOISE])
            self._W = F.toward_one(self._W, gain)
        else:  # REPLAN
            if F.replan_repairs(self._bad_plan, u[b + STEP_REPLAN], p.p_replan_fix):
                self._bad_plan = False
        rel = self._relevance()
        q = self._satisfaction(rel)
        sd = p.predict_noise_sd
        if self._n[PRODUCT_SEARCH] + self._n[WEB_SEARCH] > 0:
            self._rhat = F.noisy_estimate(SCALAR, rel, sd, z[b + STEP_RELEVANCE_NOISE])
            self._uhat = F.noisy_estimate(SCALAR, q, sd, z[b + STEP_SATISFACTION_NOISE])
        self._chat = F.noisy_estimate(SCALAR, self._seen, sd, z[b + STEP_CLARITY_NOISE])
        return self._obs(), reward, False, False, self._info(rel, q)

    def _decide(self) -> float:
        """The Decider answers; the shopper reacts (rl_shop.sim reaction model). Returns reward:
        the sampled reaction's, or its expectation with ``expected_reward`` (the sampled reaction
        is drawn and reported in ``info`` either way)."""
        p = self.params
        base = -self._cost[DECIDE]
        self._elapsed += self._lat[DECIDE]
        p_ab = abandon_probability(self._elapsed, self._tolerance, p.abandon_base_p, p.abandon_scale_s)
        q = self._satisfaction(self._relevance())
        sampled = self._react(base, p_ab, q)
        if not p.expected_reward:
            return sampled
        weights = (p.w_click, p.w_purchase, p.w_reformulation, p.w_abandon)
        expected = F.expected_reaction_reward(
            NUMPY, base, p_ab, np.array([q]), self._ea_rel, self._ea_irr, p.p_purchase,
            p.reformulate_top_k, p.p_reformulate, weights,
        )  # fmt: skip
        return float(expected[0])

    def _react(self, reward: float, p_ab: float, q: float) -> float:
        """One draw of the shopper's reaction to an answer of User_Satisfaction ``q``."""
        p = self.params
        u = self._u
        o = p.reaction_offset
        K = p.max_rank
        c_ab, c_rel, c_click, c_buy, c_reform = reaction_columns(K)
        if u[o + c_ab] < p_ab:
            self._outcome = (0, 0, 0, True)
            return reward - p.w_abandon
        clicks = 0
        purchased = 0
        n_rel_top = 0
        for r in range(K):
            rel, clicked, bought = _scalar_click_and_buy(
                u[o + c_rel + r],
                u[o + c_click + r],
                u[o + c_buy + r],
                q,
                self._exam_attr_rel[r],
                self._exam_attr_irr[r],
                p.p_purchase,
            )
            n_rel_top += rel and r < p.reformulate_top_k
            clicks += clicked
            purchased |= bought
        reform = int(F.reformulates(purchased, n_rel_top, u[o + c_reform], p.p_reformulate))
        self._outcome = (clicks, purchased, reform, False)
        return F.reaction_reward(reward, p.w_click, p.w_purchase, p.w_reformulation, clicks, purchased, reform)

    # ------------------------------------------------------------------ views
    def state(self) -> CollaborateState:
        """The Leader-visible state (what the runtime Leader also builds)."""
        p, n = self.params, self._n
        return CollaborateState(
            predicted_type=self._pred,
            type_confidence=self._conf,
            steps=self._steps,
            max_steps=p.max_steps,
            elapsed_s=self._elapsed,
            n_clarify=n[CLARIFY],
            n_product_search=n[PRODUCT_SEARCH],
            n_web_search=n[WEB_SEARCH],
            n_replan=n[REPLAN],
            relevance_hat=self._rhat,
            satisfaction_hat=self._uhat,
            clarity_hat=self._chat,
            gamma=p.gamma,
            replan_threshold=p.replan_threshold,
        )

    def _obs(self) -> np.ndarray:
        """``featurize(self.state())``, without building the state object (see ``featurize_fields``)."""
        p, n = self.params, self._n
        return featurize_fields(
            self._pred,
            self._conf,
            self._steps,
            p.max_steps,
            self._elapsed,
            n[CLARIFY],
            n[PRODUCT_SEARCH],
            n[WEB_SEARCH],
            n[REPLAN],
            self._rhat,
            self._uhat,
            self._chat,
            p.gamma,
            p.replan_threshold,
        )

    def _info(self, rel: float | None = None, q: float | None = None) -> dict[str, Any]:
        """The step's info; ``rel`` / ``q``: the hidden Relevance and User_Satisfaction when the
        caller has them. Every reset and step ends here, so the validity terms the next step
        checks are computed here once (``self._terms``)."""
        clicks, purchased, reform, abandoned = self._outcome
        if rel is None:
            rel = self._relevance()
        self._terms = self._valid()
        return {
            "clicked": clicks,
            "purchased": purchased,
            "reformulations": reform,
            "abandoned": int(abandoned),
            "latency": self._elapsed,
            "rounds": self._n[CLARIFY],
            "steps": self._steps,
            "action_mask": np.array(self._terms, dtype=bool),
            "query_type": QUERY_TYPES[self._type],
            "relevance": rel,
            "user_satisfaction": self._satisfaction(rel) if q is None else q,
        }
