"""Observation layout of the Leader's collaboration policy (MACDF Sec. 3.1 "Feedback Learning").

The Collaborate env (``envs.specs.COLLABORATE``) and the runtime Leader describe the Leader-visible situation
as a :class:`CollaborateState` (demand-reasoning output, what has been done, the elapsed latency
and the predicted Relevance / User_Satisfaction of Eq. 2) and call :func:`featurize`, so a
policy trained on the simulator reads the same numbers in the agent loop; :func:`action_mask`
is the one statement of which actions are valid, used by the env, its batched kernels and the
runtime Leader.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from rl_shop.array_ops import NUMPY, ArrayOps, Batch, Num
from rl_shop.sim.slots import QUERY_TYPES

#: Bump whenever FEATURE_NAMES or their scaling change; exported policy cards record it.
LAYOUT_VERSION = "collaborate-v1"

#: The Leader's collaboration actions, in action-index order.
ACTION_NAMES: tuple[str, ...] = ("clarify", "product_search", "web_search", "replan", "decide")
CLARIFY, PRODUCT_SEARCH, WEB_SEARCH, REPLAN, DECIDE = range(len(ACTION_NAMES))
N_ACTIONS = len(ACTION_NAMES)

#: Scales that map counts / seconds to ~1.0; part of the layout (changing one bumps the version).
TIME_SCALE_S = 10.0
COUNT_SCALE = 3.0

FEATURE_NAMES: tuple[str, ...] = (
    *(f"type_{t}" for t in QUERY_TYPES),
    "type_confidence",
    "step_fraction",
    "elapsed_s",
    "n_clarify",
    "n_product_search",
    "n_web_search",
    "n_replan",
    "relevance_hat",
    "satisfaction_hat",
    "clarity_hat",
    "reflection_score",
    "below_replan_threshold",
)
N_FEATURES = len(FEATURE_NAMES)
N_TYPES = len(QUERY_TYPES)

#: A Relevance / User_Satisfaction value: one float, or a numpy array of them.
_Score = TypeVar("_Score", float, np.ndarray)


def reflection_score(relevance: _Score, user_satisfaction: _Score, gamma: float) -> _Score:
    """MACDF Eq. 2: ``score = gamma * Relevance + (1 - gamma) * User_Satisfaction``.

    On floats, or element-wise on numpy arrays (``featurize_batch``)."""
    return gamma * relevance + (1.0 - gamma) * user_satisfaction


@dataclass
class CollaborateState:
    """What the Leader knows before choosing its next collaboration action.

    ``predicted_type`` is the demand-reasoning class (index into ``QUERY_TYPES``) with its
    ``type_confidence``; ``relevance_hat`` / ``satisfaction_hat`` / ``clarity_hat`` are the
    Leader's noisy predictions of the hidden quantities (0 before any search); ``gamma`` and
    ``replan_threshold`` are the Eq. 2 weight and the re-plan threshold.
    """

    predicted_type: int
    type_confidence: float
    steps: int
    max_steps: int
    elapsed_s: float
    n_clarify: int
    n_product_search: int
    n_web_search: int
    n_replan: int
    relevance_hat: float
    satisfaction_hat: float
    clarity_hat: float
    gamma: float
    replan_threshold: float


def featurize(state: CollaborateState) -> np.ndarray:
    """One observation row (float32, ``FEATURE_NAMES`` order)."""
    if not 0 <= state.predicted_type < N_TYPES:
        raise ValueError(f"CollaborateState.predicted_type={state.predicted_type} is not an index into {QUERY_TYPES}.")
    return featurize_fields(
        state.predicted_type,
        state.type_confidence,
        state.steps,
        state.max_steps,
        state.elapsed_s,
        state.n_clarify,
        state.n_product_search,
        state.n_web_search,
        state.n_replan,
        state.relevance_hat,
        state.satisfaction_hat,
        state.clarity_hat,
        state.gamma,
        state.replan_threshold,
    )


def featurize_fields(
    predicted_type: int,
    type_confidence: float,
    steps: int,
    max_steps: int,
    elapsed_s: float,
    n_clarify: int,
    n_product_search: int,
    n_web_search: int,
    n_replan: int,
    relevance_hat: float,
    satisfaction_hat: float,
    clarity_hat: float,
    gamma: float,
    replan_threshold: float,
) -> np.ndarray:
    """``featurize`` of the ``CollaborateState`` fields given one by one, without validation.

    The single env calls this at every step with fields it keeps valid by construction: no state
    object is built, and the row is packed as float32 bytes (``struct`` rounds each double to
    float32 as numpy does) instead of converting a list. Anyone else should call ``featurize``,
    which validates and then calls this.
    """
    score = reflection_score(relevance_hat, satisfaction_hat, gamma)
    values = (
        type_confidence,
        steps / max_steps,
        elapsed_s / TIME_SCALE_S,
        n_clarify / COUNT_SCALE,
        n_product_search / COUNT_SCALE,
        n_web_search / COUNT_SCALE,
        n_replan / COUNT_SCALE,
        relevance_hat,
        satisfaction_hat,
        clarity_hat,
        score,
        1.0 if score < replan_threshold else 0.0,
    )
    try:
        tail = _PACK_TAIL(*values)
    except OverflowError:  # a value beyond float32's range: numpy's conversion (inf), not an error
        tail = np.asarray(values, dtype=np.float32).tobytes()
    return _frombuffer(bytearray(_ONEHOT_BYTES[predicted_type] + tail), np.float32)


def featurize_batch(
    predicted_type: np.ndarray,
    type_confidence: np.ndarray,
    steps: np.ndarray,
    max_steps: int,
    elapsed_s: np.ndarray,
    n_clarify: np.ndarray,
    n_product_search: np.ndarray,
    n_web_search: np.ndarray,
    n_replan: np.ndarray,
    relevance_hat: np.ndarray,
    satisfaction_hat: np.ndarray,
    clarity_hat: np.ndarray,
    gamma: float,
    replan_threshold: float,
) -> np.ndarray:
    """Rows identical to :func:`featurize` for ``(B,)`` arrays of the same fields."""
    out = np.empty((predicted_type.shape[0], N_FEATURES), dtype=np.float32)
    return fill_rows(
        NUMPY,
        TYPE_ONEHOT,
        out,
        (predicted_type, type_confidence),
        (steps, max_steps, elapsed_s),
        (n_clarify, n_product_search, n_web_search, n_replan),
        (relevance_hat, satisfaction_hat, clarity_hat),
        (gamma, replan_threshold),
    )


#: One-hot rows of the predicted type (the kernel holds the same table in its own library).
TYPE_ONEHOT: np.ndarray = np.eye(N_TYPES, dtype=np.float32)
TYPE_ONEHOT.setflags(write=False)
_ONEHOT_BYTES: list[bytes] = [row.tobytes() for row in TYPE_ONEHOT]
_PACK_TAIL = struct.Struct(f"={N_FEATURES - N_TYPES}f").pack  # native-order float32, as numpy's
_frombuffer = np.frombuffer


def fill_rows(
    ops: ArrayOps[Batch],
    type_onehot: Batch,
    out: Batch,
    prediction: tuple[Any, Any],
    progress: tuple[Any, int, Any],
    counts: tuple[Any, Any, Any, Any],
    hats: tuple[Any, Any, Any],
    eq2: tuple[float, float],
) -> Batch:
    """Writes the observation layout into ``out`` (float32 ``(B, N_FEATURES)``) on any array
    library (``rl_shop.array_ops``: numpy for :func:`featurize_batch`, torch for the
    device-resident kernel) and returns it; values in float64, rounded to float32 on assignment.

    ``prediction``: ``(predicted_type, type_confidence)``; ``progress``: ``(steps, max_steps,
    elapsed_s)``; ``counts``: ``(n_clarify, n_product_search, n_web_search, n_replan)``; ``hats``:
    ``(relevance_hat, satisfaction_hat, clarity_hat)``; ``eq2``: ``(gamma, replan_threshold)``;
    ``type_onehot``: :data:`TYPE_ONEHOT` in the library of ``out``.
    """
    (predicted_type, type_confidence), (steps, max_steps, elapsed_s) = prediction, progress
    gamma, replan_threshold = eq2
    k = N_TYPES
    score = reflection_score(hats[0], hats[1], gamma)  # MACDF Eq. 2
    out[:, :k] = ops.rows(type_onehot, predicted_type)
    out[:, k] = type_confidence
    out[:, k + 1] = ops.f64(steps) / max_steps
    out[:, k + 2] = elapsed_s / TIME_SCALE_S
    for i, n in enumerate(counts):
        out[:, k + 3 + i] = ops.f64(n) / COUNT_SCALE
    for i, hat in enumerate(hats):
        out[:, k + 7 + i] = hat
    out[:, k + 10] = score
    out[:, k + 11] = score < replan_threshold
    return out


def action_mask_terms(
    n_clarify: Num,
    n_product_search: Num,
    n_web_search: Num,
    n_replan: Num,
    steps: Num,
    max_steps: int,
    max_clarify: int,
    max_replan: int,
) -> tuple[Num, Num, Num, Num, Num]:
    """Validity of each action, in ``ACTION_NAMES`` order, for scalars or arrays alike.

    ``decide`` only after a search (or at the last step, so the mask is never empty); searches
    while ``steps <= max_steps - 2``; ``clarify`` (at most ``max_clarify`` times) and ``replan``
    (after a search, at most ``max_replan`` times) while ``steps <= max_steps - 3``. Counts may be
    Python ints, numpy or torch arrays (only ``+``, comparisons, ``&`` and ``|`` are used); the
    caller stacks the five terms.
    """
    searched = (n_product_search + n_web_search) > 0
    early = steps <= max_steps - 3
    can_search = steps <= max_steps - 2
    return (
        early & (n_clarify < max_clarify),
        can_search,
        can_search,
        early & searched & (n_replan < max_replan),
        searched | (steps >= max_steps - 1),
    )


def action_mask(state: CollaborateState, max_clarify: int, max_replan: int) -> np.ndarray:
    """Valid actions (bool ``N_ACTIONS``) in ``state`` (rules in :func:`action_mask_terms`)."""
    return np.array(
        action_mask_terms(
            state.n_clarify,
            state.n_product_search,
            state.n_web_search,
            state.n_replan,
            state.steps,
            state.max_steps,
            max_clarify,
            max_replan,
        ),
        dtype=bool,
    )
