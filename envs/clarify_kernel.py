"""The formulas of batched ``rl_shop/Clarify-v0``, written once for numpy and torch.

``envs.clarify_batched.ClarifyVectorEnv`` (numpy, Gymnasium) and
``envs.clarify_torch.ClarifyTorchVectorEnv`` (torch, CPU or CUDA) both call these functions with
their ``ops`` (``rl_shop.array_ops.NUMPY`` / ``TORCH``) and their own arrays; they differ only in how
they store state and write restarted rows back (numpy: index assignment on the ended rows;
torch: ``where`` over all rows, no host synchronisation). Same seeds, same bits.

State fields (one array each, ``(n,)``): ``ekey`` (episode stream key, int64 bits), ``t`` (step
counter), ``i`` (pool intent), ``rel``, ``revealed``, ``known``, ``nopref``, ``dontknow``,
``asked`` (slot bitmasks), ``rounds``, ``patience``, ``qt`` (query type), ``h`` (H(s), float64).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, cast

import numpy as np

from envs.clarify import (
    KTH_BIT,
    MASK_TABLE,
    POPCOUNT,
    STOP,
    SUGGEST,
    answer_thresholds,
    confirms,
    entropy_table,
    guider_reward,
    out_of_patience,
    truncates,
    volunteer_index,
)
from envs.clarify_params import ClarifyParams
from envs.intent_pool import N_MASKS, IntentPool
from rl_shop import array_ops as ao
from rl_shop.array_ops import Batch
from rl_shop.policies.features import clarify as feat
from rl_shop.policies.features.clarify import N_SLOTS

STATE_FIELDS: tuple[str, ...] = (
    "ekey", "t", "i", "rel", "revealed", "known", "nopref", "dontknow", "asked", "rounds", "patience", "qt", "h",
)  # fmt: skip


@dataclass(frozen=True)
class ClarifyTables(Generic[Batch]):
    """Per-pool lookup tables as arrays of one library (flat ``[N * 512]`` float64 tables)."""

    H: Batch
    acc: Batch
    log2c: Batch
    pdk: Batch
    pw: Batch
    relevant: Batch
    stated: Batch
    patience: Batch
    query_type: Batch
    mask_table: Batch
    popcount: Batch
    kth_bit: Batch
    bits: Batch
    qt_onehot: Batch
    popcount_frac: Batch
    n_pool: int
    log2_catalog_size: float


def make_tables(
    pool: IntentPool,
    normalize_gain: bool,
    convert: Callable[[np.ndarray], Batch] = lambda a: a,  # type: ignore[assignment,return-value]
) -> ClarifyTables[Batch]:
    """The tables of ``pool``; ``convert`` turns each numpy array into the target library's array."""
    c = lambda a, dt=None: convert(np.ascontiguousarray(a if dt is None else np.asarray(a, dtype=dt)))  # noqa: E731
    return ClarifyTables(
        H=c(entropy_table(pool, normalize_gain).ravel(), np.float64),
        acc=c(pool.accuracy.ravel(), np.float64),
        log2c=c(pool.log2_candidates.ravel(), np.float64),
        pdk=c(pool.p_dont_know.ravel(), np.float64),
        pw=c(pool.p_wrong.ravel(), np.float64),
        relevant=c(pool.relevant, np.int64),
        stated=c(pool.stated, np.int64),
        patience=c(pool.patience, np.int64),
        query_type=c(pool.query_type, np.int64),
        mask_table=c(MASK_TABLE),
        popcount=c(POPCOUNT, np.int64),
        kth_bit=c(KTH_BIT.ravel(), np.int64),  # flat: [mask * N_SLOTS + k]
        bits=c(feat.NUMPY_TABLES.bits),
        qt_onehot=c(feat.NUMPY_TABLES.qt_onehot),
        popcount_frac=c(feat.NUMPY_TABLES.popcount_frac),
        n_pool=len(pool),
        log2_catalog_size=float(pool.log2_catalog_size),
    )


def episode_start(ops: ao.ArrayOps[Batch], tb: ClarifyTables[Batch], keys: Batch, episodes: Batch) -> dict[str, Any]:
    """The first state of episode ``episodes`` of the streams ``keys`` (int64 arrays, same shape).

    Draw 0 of the episode stream picks the pool intent (``clarify_rng`` layout).
    """
    ekey = ao.episode_key(ops, keys, episodes)
    intent = ops.i64(ao.unit53(ops, ao.mix(ops, ekey)) * tb.n_pool)
    stated = ops.take(tb.stated, intent)
    zero = intent * 0
    return {
        "ekey": ekey,
        "t": zero,
        "i": intent,
        "rel": ops.take(tb.relevant, intent),
        "revealed": stated,
        "known": stated,
        "nopref": zero,
        "dontknow": zero,
        "asked": zero,
        "rounds": zero,
        "patience": ops.take(tb.patience, intent),
        "qt": ops.take(tb.query_type, intent),
        "h": ops.take(tb.H, intent * N_MASKS + stated),
    }


def action_masks(tb: ClarifyTables[Batch], s: dict[str, Any]) -> Batch:
    """Valid actions ``(n, 11)``: no re-asking a known or asked slot."""
    return tb.mask_table[s["known"] | s["asked"]]


def transition(
    ops: ao.ArrayOps[Batch], tb: ClarifyTables[Batch], prm: ClarifyParams, s: dict[str, Any], a: Batch
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One step of every row: ``(new state, outputs)``.

    ``outputs``: ``reward`` (float64), ``terminated``, ``truncated``, ``intent_gain``,
    ``accuracy_at_5`` (NaN where the episode did not end). ``prm`` is a ``ClarifyParams``.
    """
    i_m = s["i"] * N_MASKS
    t = s["t"] + 1
    z = ao.mix(ops, s["ekey"] ^ t)  # clarify_rng.bits(ekey, t)
    u_answer = ao.answer_draw(ops, z)
    u_volunteer = ao.volunteer_draw(ops, z)
    revealed = s["revealed"]
    known, asked, rounds, rel = s["known"], s["asked"], s["rounds"], s["rel"]
    acc_before = ops.take(tb.acc, i_m + revealed)

    is_stop = a == STOP
    is_ask = a < N_SLOTS
    leaves = ~is_stop & out_of_patience(rounds, s["patience"])
    active = ~is_stop & ~leaves
    slot = ops.minimum(a, N_SLOTS - 1)
    bit = ops.i64(is_ask) << slot  # 0 for suggest / stop
    fresh = active & (((known | asked) & bit) == 0) & is_ask
    fresh_bit = ops.where(fresh, bit, 0)
    ans = (rel & fresh_bit) != 0
    p_idx = s["i"] * N_SLOTS + slot
    below_dk, below_wrong = answer_thresholds(u_answer, ops.take(tb.pdk, p_idx), ops.take(tb.pw, p_idx))
    dk = ans & below_dk
    not_dk = ans & ~dk
    wrong = not_dk & below_wrong
    correct = not_dk & ~wrong
    sugg = active & (a == SUGGEST)
    confirm = sugg & confirms(acc_before, prm.confirm_threshold)
    reject = sugg & ~confirm
    hidden = rel & ~revealed
    k = volunteer_index(ops, u_volunteer, ops.take(tb.popcount, hidden))
    vol = ops.where(reject, ops.take(tb.kth_bit, hidden * N_SLOTS + k), 0)  # KTH_BIT is 0 when nothing is hidden

    correct_bit = ops.where(correct, bit, 0)
    new_revealed = revealed | correct_bit | vol
    rounds_used = ops.i64(~is_stop)
    new_rounds = rounds + rounds_used
    h_after = ops.take(tb.H, i_m + new_revealed)
    intent_gain = ops.where(leaves, 0.0, s["h"] - h_after)
    handover = is_stop | confirm
    # stop and confirm reveal nothing, so the hand-over's Accuracy@5 is acc_before
    accuracy = ops.where(handover, acc_before, 0.0)
    reward = guider_reward(
        prm.alpha, prm.beta, prm.w_T, prm.abandon_penalty, intent_gain, ops.f64(rounds_used), accuracy, ops.f64(leaves)
    )
    terminated = handover | leaves
    truncated = truncates(terminated, new_rounds, prm.max_rounds)
    if ops.name == "numpy":  # gather only the (rare) truncated rows
        acc_info = cast(Batch, np.where(terminated, accuracy, np.nan))
        if truncated.any():
            tr = np.flatnonzero(truncated)
            acc_info[tr] = tb.acc[i_m[tr] + new_revealed[tr]]
    else:  # no data-dependent shapes on a device
        acc_info = ops.where(
            terminated, accuracy, ops.where(truncated, ops.take(tb.acc, i_m + new_revealed), float("nan"))
        )
    new = dict(s)
    new.update(
        t=t,
        revealed=new_revealed,
        known=known | correct_bit | ops.where(wrong, bit, 0) | vol,
        asked=asked | fresh_bit,
        nopref=s["nopref"] | (fresh_bit & ~rel),
        dontknow=(s["dontknow"] | ops.where(dk, bit, 0)) & ~vol,
        rounds=new_rounds,
        h=h_after,
    )
    out = {
        "reward": reward,
        "terminated": terminated,
        "truncated": truncated,
        "intent_gain": intent_gain,
        "accuracy_at_5": acc_info,
    }
    return new, out


def featurize(ops: ao.ArrayOps[Batch], tb: ClarifyTables[Batch], s: dict[str, Any], max_rounds: int) -> Batch:
    """Observation rows ``(n, 47)`` float32 of the featurizer's one layout (``feat.fill_rows``, as
    ``featurize_batch``; the numpy env calls ``featurize_batch`` itself)."""
    log2c = ops.take(tb.log2c, s["i"] * N_MASKS + s["revealed"])
    n = s["qt"].shape[0]
    out = (
        np.empty((n, feat.N_FEATURES), np.float32)
        if isinstance(tb.bits, np.ndarray)
        else tb.bits.new_empty((n, feat.N_FEATURES))
    )
    return feat.fill_rows(
        ops,
        feat.FeatureTables(tb.qt_onehot, tb.bits, tb.popcount_frac),
        out,
        (s["qt"], s["known"], s["nopref"], s["dontknow"], s["asked"]),
        s["rounds"],
        max_rounds,
        log2c,
        tb.log2_catalog_size,
    )
