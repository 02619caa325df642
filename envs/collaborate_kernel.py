"""The formulas of batched ``rl_shop/Collaborate-v0``, written once for numpy and torch.

``envs.collaborate_batched.CollaborateVectorEnv`` (numpy) and
``envs.collaborate_torch.CollaborateTorchVectorEnv`` (torch, CPU or CUDA) call these functions with
their ``ops`` (``rl_shop.array_ops``). What differs is glue: where the per-episode uniforms come from,
how the normal noise ``ndtri(u)`` is obtained, and how rows are written back (numpy: index
assignment on the rows concerned; torch: ``where`` over all rows).

State (dict of ``(B,)`` arrays unless noted): ``type``, ``pred``, ``patience``, ``c``, ``tol``,
``conf``, ``seen`` (the clarity the Leader's estimate reads), ``R``, ``W``, ``bad``, ``steps``, ``elapsed``, ``n`` ``(B, 5)`` (actions taken),
``rhat``, ``uhat``, ``chat``, ``clicks``, ``purchased``, ``reform``, ``abandoned``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs import collaborate_formulas as F
from envs.collaborate import (
    N_RESET_U,
    N_STEP_U,
    RESET_BAD_PLAN,
    RESET_CLARITY,
    RESET_CONFIDENCE,
    RESET_PATIENCE,
    RESET_TOLERANCE,
    RESET_TYPE,
    RESET_TYPE_CORRECT,
    RESET_WRONG_TYPE,
    STEP_CLARITY_NOISE,
    STEP_NORMAL_COLS,
    STEP_RELEVANCE_NOISE,
    STEP_REPLAN,
    STEP_SATISFACTION_NOISE,
    STEP_SEARCH_NOISE,
    CollaborateParams,
    reaction_columns,
)
from rl_shop.array_ops import ArrayOps, Batch
from rl_shop.policies.features import collaborate as features
from rl_shop.policies.features.collaborate import (
    CLARIFY,
    DECIDE,
    N_ACTIONS,
    N_TYPES,
    PRODUCT_SEARCH,
    REPLAN,
    WEB_SEARCH,
    action_mask_terms,
)
from rl_shop.sim.shopper import abandon_probability

#: Position of each normal column of a step's block in ``Zb`` (``ndtri`` of ``STEP_NORMAL_COLS``).
ZB_SEARCH, ZB_RELEVANCE, ZB_SATISFACTION, ZB_CLARITY = (
    STEP_NORMAL_COLS.index(c)
    for c in (STEP_SEARCH_NOISE, STEP_RELEVANCE_NOISE, STEP_SATISFACTION_NOISE, STEP_CLARITY_NOISE)
)


@dataclass(frozen=True)
class CollaborateTables(CollaborateParams[Batch]):
    """``CollaborateParams`` with every array converted by ``convert`` (numpy arrays, or torch
    tensors on a device: the array fields then hold tensors), plus the derived per-action cost and
    click-model attractiveness-by-rank tables. Build it with :meth:`build`."""

    ea_rel: Batch = None  # type: ignore[assignment]  # attractiveness of a relevant item, by rank (set by build)
    ea_irr: Batch = None  # type: ignore[assignment]  # ... of an irrelevant one
    cost: Batch = None  # type: ignore[assignment]  # per action
    decide_cost: float = 0.0
    decide_latency: float = 0.0

    @classmethod
    def build(
        cls,
        p: CollaborateParams[np.ndarray],
        convert: Callable[[np.ndarray], Batch] = lambda a: a,  # type: ignore[assignment,return-value]
    ) -> CollaborateTables[Batch]:
        values = {f.name: getattr(p, f.name) for f in dataclasses.fields(p)}
        arrays = {k: convert(np.asarray(v, dtype=np.float64)) for k, v in values.items() if isinstance(v, np.ndarray)}
        ranks = np.arange(1, p.max_rank + 1, dtype=np.float64)
        cost = np.asarray(F.action_cost(p.c_latency, p.latency, p.c_compute, p.compute), dtype=np.float64)
        return cls(
            **(values | arrays),
            ea_rel=convert(F.attractiveness(ranks, p.examination_eta, p.attr_relevant)),
            ea_irr=convert(F.attractiveness(ranks, p.examination_eta, p.attr_irrelevant)),
            cost=convert(cost),
            decide_cost=float(cost[DECIDE]),
            decide_latency=float(p.latency[DECIDE]),
        )


def reset_values(ops: ArrayOps[Batch], T: CollaborateTables[Batch], u: Batch, z8: Batch) -> dict[str, Any]:
    """First state of an episode from its reset uniforms ``u`` ``(m, >= 9)`` (clipped to (0, 1))
    and ``z8 = ndtri(u[:, RESET_CLARITY_NOISE])``."""
    t = ops.minimum(ops.searchsorted(T.type_cum, u[:, RESET_TYPE]), N_TYPES - 1)
    c = F.uniform(ops.take(T.clarity_lo, t), ops.take(T.clarity_hi, t), u[:, RESET_CLARITY])
    seen = F.uniform(ops.take(T.seen_lo, t), ops.take(T.seen_hi, t), u[:, RESET_CLARITY])
    correct = u[:, RESET_TYPE_CORRECT] < ops.take(T.type_accuracy, t)
    zero_f = u[:, RESET_TYPE] * 0.0
    lo = ops.where(correct, zero_f + T.conf_correct[0], zero_f + T.conf_wrong[0])
    hi = ops.where(correct, zero_f + T.conf_correct[1], zero_f + T.conf_wrong[1])
    zero_i = t * 0
    return {
        "type": t,
        "pred": ops.where(correct, t, F.other_type(ops, t, u[:, RESET_WRONG_TYPE])),
        "patience": F.uniform_int(ops, T.patience_lo, T.patience_hi, u[:, RESET_PATIENCE]),
        "c": c,
        "seen": seen,
        "tol": F.uniform(T.tolerance_lo, T.tolerance_hi, u[:, RESET_TOLERANCE]),
        "conf": F.uniform(lo, hi, u[:, RESET_CONFIDENCE]),
        "R": zero_f,
        "W": zero_f,
        "bad": u[:, RESET_BAD_PLAN] < ops.take(T.p_bad_plan, t),
        "steps": zero_i,
        "elapsed": zero_f,
        "n": ops.stack([zero_i] * N_ACTIONS, 1),
        "rhat": zero_f,
        "uhat": zero_f,
        "chat": F.noisy_estimate(ops, seen, T.predict_noise_sd, z8),
        "clicks": zero_i,
        "purchased": zero_i,
        "reform": zero_i,
        "abandoned": zero_i != 0,
    }


def action_masks(ops: ArrayOps[Batch], T: CollaborateTables[Batch], s: dict[str, Any]) -> Batch:
    """``(B, 5)`` valid actions (``rl_shop.policies.features.collaborate.action_mask_terms``)."""
    n = s["n"]
    terms = action_mask_terms(
        n[:, CLARIFY],
        n[:, PRODUCT_SEARCH],
        n[:, WEB_SEARCH],
        n[:, REPLAN],
        s["steps"],
        T.max_steps,
        T.max_clarify,
        T.max_replan,
    )
    return ops.stack(list(terms), 1)


def relevance(ops: ArrayOps[Batch], T: CollaborateTables[Batch], R: Batch, n_ps: Batch, t: Batch) -> Batch:
    """``envs.collaborate_formulas.relevance`` of each row's query type."""
    return F.relevance(ops, R, ops.f64(n_ps), ops.take(T.min_ps, t))


def satisfaction(ops: ArrayOps[Batch], T: CollaborateTables[Batch], rel: Batch, W: Batch, t: Batch) -> Batch:
    """``envs.collaborate_formulas.satisfaction`` of each row's query type."""
    return F.satisfaction(rel, W, ops.take(T.web_need, t))


def step_block_index(ops: ArrayOps[Batch], T: CollaborateTables[Batch], steps_before: Batch) -> Batch:
    """First column of this step's block of uniforms in an episode row."""
    return N_RESET_U + N_STEP_U * ops.minimum(steps_before, T.max_steps - 1)


def transition(
    ops: ArrayOps[Batch], T: CollaborateTables[Batch], s: dict[str, Any], a: Batch, Ub: Batch, Zb: Batch
) -> tuple[dict[str, Any], Batch, Batch, Batch]:
    """All rows' step except the Decider's shopper reaction: ``(new state, reward, decide, gone)``.

    ``Ub``: this step's ``(B, 5)`` uniforms; ``Zb``: ``(B, 4)`` ``ndtri`` of its columns
    ``STEP_NORMAL_COLS``. ``decide`` rows still need ``decide_outcome`` (their reward and
    reaction); ``gone`` rows quit (abandonment). The episode ends on ``decide | gone``.
    """
    valid = ops.pick(action_masks(ops, T, s), a)
    steps = s["steps"] + 1
    n_before = s["n"]
    searched_before = (n_before[:, PRODUCT_SEARCH] + n_before[:, WEB_SEARCH]) > 0
    n = n_before + ops.i64(ops.one_hot(a, N_ACTIONS) & valid[:, None])
    reward = ops.where(valid, 0.0, -T.c_invalid)
    # invalid actions that use up the last step: forced decide, or abandonment if no search
    out_of_steps = ~valid & (steps >= T.max_steps)
    forced_quit = out_of_steps & ~searched_before
    decide = (valid & (a == DECIDE)) | (out_of_steps & searched_before)
    act = valid & (a != DECIDE)
    reward = reward - ops.where(act, ops.take(T.cost, a), 0.0)
    elapsed = ops.where(act, s["elapsed"] + ops.take(T.latency, a), s["elapsed"])
    t = s["type"]
    c = s["c"]
    quit_ = act & (a == CLARIFY) & F.out_of_patience(n[:, CLARIFY], s["patience"])
    clar = act & (a == CLARIFY) & ~quit_
    c = ops.where(clar, F.toward_one(c, ops.take(T.clarify_gain, t)), c)
    seen = ops.where(clar, F.toward_one(s["seen"], ops.take(T.seen_gain, t)), s["seen"])
    z_b = Zb[:, ZB_SEARCH]
    ps = act & (a == PRODUCT_SEARCH)
    mean = F.search_mean(ops.take(T.rel_max, t), T.clarity_floor, c)
    mean = ops.where(s["bad"], mean * ops.take(T.bad_plan_factor, t), mean)
    new = F.noisy_estimate(ops, mean, T.search_noise_sd, z_b)
    R = ops.where(ps & (new > s["R"]), new, s["R"])
    ws = act & (a == WEB_SEARCH)
    gain = F.noisy_estimate(ops, ops.take(T.web_gain, t), T.search_noise_sd, z_b)
    W = ops.where(ws, F.toward_one(s["W"], gain), s["W"])
    rp = act & (a == REPLAN) & F.replan_repairs(s["bad"], Ub[:, STEP_REPLAN], T.p_replan_fix)
    upd = act & ~quit_
    rel = relevance(ops, T, R, n[:, PRODUCT_SEARCH], t)
    sd = T.predict_noise_sd
    searched = upd & ((n[:, PRODUCT_SEARCH] + n[:, WEB_SEARCH]) > 0)
    sat = satisfaction(ops, T, rel, W, t)
    gone = quit_ | forced_quit
    new_s = dict(s)
    new_s.update(
        steps=steps,
        n=n,
        elapsed=elapsed,
        c=c,
        seen=seen,
        R=R,
        W=W,
        bad=s["bad"] & ~rp,
        rhat=ops.where(searched, F.noisy_estimate(ops, rel, sd, Zb[:, ZB_RELEVANCE]), s["rhat"]),
        uhat=ops.where(searched, F.noisy_estimate(ops, sat, sd, Zb[:, ZB_SATISFACTION]), s["uhat"]),
        chat=ops.where(upd, F.noisy_estimate(ops, seen, sd, Zb[:, ZB_CLARITY]), s["chat"]),
        abandoned=s["abandoned"] | gone,
    )
    reward = reward - ops.where(gone, T.w_abandon, 0.0)
    return new_s, reward, decide, gone


def decide_outcome(
    ops: ArrayOps[Batch],
    T: CollaborateTables[Batch],
    elapsed: Batch,
    tol: Batch,
    t: Batch,
    R: Batch,
    W: Batch,
    n_ps: Batch,
    react_u: Batch,
) -> dict[str, Any]:
    """The shopper's reaction to the Decider's answer, for the rows given (any subset).

    ``elapsed``: latency including the Decider's; ``react_u``: the reaction block of uniforms
    ``(m, 2 + 3 K)`` (abandon, K relevance, K click, K purchase, reformulate).
    Returns ``reward`` and ``abandon``, ``clicks``, ``buy``, ``reform``.
    """
    K = T.max_rank
    p_ab = abandon_probability(elapsed, tol, T.abandon_base_p, T.abandon_scale_s, ops=ops)
    c_ab, c_rel, c_click, c_buy, c_reform = reaction_columns(K)
    abandon = react_u[:, c_ab] < p_ab
    q = satisfaction(ops, T, relevance(ops, T, R, n_ps, t), W, t)
    rel, click, bought = F.click_and_buy(
        ops,
        react_u[:, c_rel : c_rel + K],
        react_u[:, c_click : c_click + K],
        react_u[:, c_buy : c_buy + K],
        q[:, None],
        T.ea_rel,
        T.ea_irr,
        T.p_purchase,
    )
    buy = ops.any(bought, 1)
    n_rel_top = ops.sum(ops.i64(rel[:, : T.reformulate_top_k]), 1)
    reform = F.reformulates(buy, n_rel_top, react_u[:, c_reform], T.p_reformulate)
    clicks = ops.sum(ops.i64(click), 1)
    reacted = F.reaction_reward(
        -T.decide_cost, T.w_click, T.w_purchase, T.w_reformulation, ops.f64(clicks), ops.f64(buy), ops.f64(reform)
    )
    reward = ops.where(abandon, -T.decide_cost - T.w_abandon, reacted)
    if T.expected_reward:  # the same reaction is reported; the reward is its expectation
        weights = (T.w_click, T.w_purchase, T.w_reformulation, T.w_abandon)
        reward = F.expected_reaction_reward(
            ops, -T.decide_cost, p_ab, q, T.ea_rel, T.ea_irr, T.p_purchase, T.reformulate_top_k, T.p_reformulate,
            weights,
        )  # fmt: skip
    return {
        "reward": reward,
        "abandon": abandon,
        "clicks": clicks,
        "buy": buy,
        "reform": reform,
    }


def featurize(ops: ArrayOps[Batch], s: dict[str, Any], T: CollaborateTables[Batch], eye: Batch) -> Batch:
    """Observation rows of the featurizer's one layout (``features.fill_rows``, as
    ``featurize_batch``); ``eye``: the float32 ``TYPE_ONEHOT`` table in the library of ``s``."""
    n = s["n"]
    return features.fill_rows(
        ops,
        eye,
        _empty_rows(ops, n.shape[0], eye),
        (s["pred"], s["conf"]),
        (s["steps"], T.max_steps, s["elapsed"]),
        (n[:, CLARIFY], n[:, PRODUCT_SEARCH], n[:, WEB_SEARCH], n[:, REPLAN]),
        (s["rhat"], s["uhat"], s["chat"]),
        (T.gamma, T.replan_threshold),
    )


def _empty_rows(ops: ArrayOps[Batch], n: int, like: Batch) -> Batch:
    """An uninitialised float32 ``(n, N_FEATURES)`` array of the library (and device) of ``like``."""
    if isinstance(like, np.ndarray):
        return np.empty((n, features.N_FEATURES), dtype=np.float32)
    return like.new_empty((n, features.N_FEATURES))
