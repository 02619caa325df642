"""The Guider's observation: a clarification-dialogue state -> a fixed float32 vector.

The Clarify env (``envs.specs.CLARIFY``, single and batched) and the runtime Guider both build observations only
through this module, so a policy trained in simulation sees the same layout when it meets a real
dialogue. ``LAYOUT_VERSION`` is recorded in exported policy cards; bump it on any change to
``FEATURE_NAMES`` (order, meaning or scaling).

Layout (``N_FEATURES`` = 47 float32 values, all in [0, 1]):

* ``qt=<type>`` (8): one-hot query type, in ``rl_shop.sim.slots.QUERY_TYPES`` order.
* ``known=<slot>`` (9): a value for the slot is on record (stated in the first query, answered or
  volunteered). The Guider cannot tell a noisy wrong answer from a right one, so it is "known" too.
* ``no_pref=<slot>`` (9): the shopper said she has no preference on the slot.
* ``dont_know=<slot>`` (9): the shopper answered "don't know".
* ``asked=<slot>`` (9): the Guider has asked about the slot (whatever the answer).
* ``rounds_frac``: rounds used / max rounds.
* ``log2_cand_frac``: log2 |C| / log2 |catalog|, where C is the set of products consistent with
  what is known (1 = nothing known, 0 = a single candidate).
* ``known_frac``: number of slots with a value on record / 9.

Actions (``ACTION_NAMES``): ``ask_<slot>`` for each slot, ``suggest``, ``stop``.
:func:`action_mask` says which are valid (no slot is asked twice, nor one already known); the env
and the runtime Guider both call it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Generic, NamedTuple

import numpy as np

from rl_shop.array_ops import NUMPY, ArrayOps, Batch
from rl_shop.sim.slots import QUERY_TYPES, SLOTS

LAYOUT_VERSION: str = "clarify-v1"
N_SLOTS: int = len(SLOTS)
N_QUERY_TYPES: int = len(QUERY_TYPES)
ALL_SLOTS_MASK: int = (1 << N_SLOTS) - 1

FEATURE_NAMES: tuple[str, ...] = (
    tuple(f"qt={q}" for q in QUERY_TYPES)
    + tuple(f"known={s}" for s in SLOTS)
    + tuple(f"no_pref={s}" for s in SLOTS)
    + tuple(f"dont_know={s}" for s in SLOTS)
    + tuple(f"asked={s}" for s in SLOTS)
    + ("rounds_frac", "log2_cand_frac", "known_frac")
)
N_FEATURES: int = len(FEATURE_NAMES)

# Offsets of each block, so that policies can read the observation back by name.
QT_OFFSET = 0
KNOWN_OFFSET = QT_OFFSET + N_QUERY_TYPES
NO_PREF_OFFSET = KNOWN_OFFSET + N_SLOTS
DONT_KNOW_OFFSET = NO_PREF_OFFSET + N_SLOTS
ASKED_OFFSET = DONT_KNOW_OFFSET + N_SLOTS
ROUNDS_IDX = ASKED_OFFSET + N_SLOTS
LOG2_CAND_IDX = ROUNDS_IDX + 1
KNOWN_FRAC_IDX = LOG2_CAND_IDX + 1

#: The Guider's actions, in action-index order.
ACTION_NAMES: tuple[str, ...] = tuple(f"ask_{s}" for s in SLOTS) + ("suggest", "stop")
SUGGEST: int = N_SLOTS
STOP: int = N_SLOTS + 1
N_ACTIONS: int = len(ACTION_NAMES)

# MASK_TABLE[blocked] = the action mask when the slots in bitmask `blocked` may not be asked.
MASK_TABLE: np.ndarray = np.ones((ALL_SLOTS_MASK + 1, N_ACTIONS), dtype=bool)
MASK_TABLE[:, :N_SLOTS] = ((np.arange(ALL_SLOTS_MASK + 1)[:, None] >> np.arange(N_SLOTS)) & 1) == 0
MASK_TABLE.setflags(write=False)
MASK_ROWS: list[np.ndarray] = list(MASK_TABLE)  # rows as a list: the single env's fast path

# BITS[mask] = the 9 slot flags of a bitmask as float32; one gather instead of a Python loop.
BITS: np.ndarray = ((np.arange(ALL_SLOTS_MASK + 1)[:, None] >> np.arange(N_SLOTS)) & 1).astype(np.float32)
BITS.setflags(write=False)
_QT_ONEHOT: np.ndarray = np.eye(N_QUERY_TYPES, dtype=np.float32)
_POPCOUNT_FRAC: np.ndarray = (BITS.sum(axis=1) / N_SLOTS).astype(np.float32)
# featurize() assembles a row from float32 byte strings: ~4x faster than np.concatenate for a
# 47-value row, which matters because the single env calls it at every step.
_BITS_BYTES: list[bytes] = [row.tobytes() for row in BITS]
_QT_BYTES: list[bytes] = [row.tobytes() for row in _QT_ONEHOT]


class FeatureTables(NamedTuple, Generic[Batch]):
    """The featurizer's lookup tables as arrays of one library (numpy here, torch in the kernel)."""

    qt_onehot: Batch  # (N_QUERY_TYPES, N_QUERY_TYPES) one-hot rows
    bits: Batch  # (512, N_SLOTS): the slot flags of each bitmask
    popcount_frac: Batch  # (512,): share of slots set in each bitmask


NUMPY_TABLES: FeatureTables[np.ndarray] = FeatureTables(_QT_ONEHOT, BITS, _POPCOUNT_FRAC)
_POPCOUNT_FRAC_F64: list[float] = [float(x) for x in _POPCOUNT_FRAC]
_PACK_TAIL = struct.Struct("=3f").pack  # native-order float32, as numpy's
_frombuffer = np.frombuffer
_join = b"".join
_FLOAT32 = np.float32


def action_mask(state: DialogueState) -> np.ndarray:
    """Valid actions (bool ``N_ACTIONS``): every slot not yet known nor asked, ``suggest`` and ``stop``."""
    return MASK_ROWS[state.known | state.asked].copy()


def slot_index(slot: str) -> int:
    """Index of ``slot`` in ``SLOTS``, with an error that lists the valid names."""
    try:
        return SLOTS.index(slot)
    except ValueError:
        raise ValueError(f"unknown slot {slot!r}; valid slots are {list(SLOTS)}") from None


def slots_to_mask(slots: Iterable[str]) -> int:
    """Bitmask (bit i = ``SLOTS[i]``) of a collection of slot names."""
    if isinstance(slots, str):
        raise TypeError(f"expected a collection of slot names, got the single string {slots!r}")
    mask = 0
    for s in slots:
        mask |= 1 << slot_index(s)
    return mask


def mask_to_slots(mask: int) -> tuple[str, ...]:
    """Slot names (in ``SLOTS`` order) of a bitmask."""
    return tuple(s for i, s in enumerate(SLOTS) if (int(mask) >> i) & 1)


def query_type_index(query_type: str | int) -> int:
    """Index of a query type given by name or index, with a clear error on anything else."""
    if isinstance(query_type, (int, np.integer)) and not isinstance(query_type, bool):
        if 0 <= int(query_type) < N_QUERY_TYPES:
            return int(query_type)
        raise ValueError(f"query type index {query_type} out of range 0..{N_QUERY_TYPES - 1}")
    if isinstance(query_type, str) and query_type in QUERY_TYPES:
        return QUERY_TYPES.index(query_type)
    raise ValueError(f"unknown query type {query_type!r}; valid types are {list(QUERY_TYPES)}")


class DialogueState(NamedTuple):
    """What a Guider knows at one point of a clarification dialogue (no hidden intent in here).

    Slot sets are 9-bit masks (bit i = ``SLOTS[i]``) so that the env can update them with integer
    operations; the runtime Guider builds one from slot names with ``DialogueState.from_slots``.
    A NamedTuple (immutable, cheap to create) because the env builds one per step.
    ``log2_candidates`` is log2 of the number of catalog products consistent with the known
    slots; ``log2_catalog_size`` the same for the whole catalog (the start of the scale).
    """

    query_type: int
    known: int
    no_preference: int
    dont_know: int
    asked: int
    rounds: int
    max_rounds: int
    log2_candidates: float
    log2_catalog_size: float

    @classmethod
    def from_slots(
        cls,
        query_type: str | int,
        *,
        known: Iterable[str] = (),
        no_preference: Iterable[str] = (),
        dont_know: Iterable[str] = (),
        asked: Iterable[str] = (),
        rounds: int,
        max_rounds: int,
        n_candidates: int,
        catalog_size: int,
    ) -> DialogueState:
        """Build (and validate) a state from slot names and candidate counts, as a Guider sees it."""
        if catalog_size < 1:
            raise ValueError(f"catalog_size must be >= 1, got {catalog_size}")
        if not 0 <= n_candidates <= catalog_size:
            raise ValueError(f"n_candidates must be in 0..catalog_size ({catalog_size}), got {n_candidates}")
        state = cls(
            query_type=query_type_index(query_type),
            known=slots_to_mask(known),
            no_preference=slots_to_mask(no_preference),
            dont_know=slots_to_mask(dont_know),
            asked=slots_to_mask(asked),
            rounds=int(rounds),
            max_rounds=int(max_rounds),
            log2_candidates=float(np.log2(max(n_candidates, 1))),
            log2_catalog_size=float(np.log2(catalog_size)),
        )
        state.validate()
        return state

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first inconsistent field."""
        query_type_index(self.query_type)
        for name in ("known", "no_preference", "dont_know", "asked"):
            value = getattr(self, name)
            if not 0 <= int(value) <= ALL_SLOTS_MASK:
                raise ValueError(f"{name} must be a 9-bit slot mask (0..{ALL_SLOTS_MASK}), got {value}")
        if self.max_rounds < 1:
            raise ValueError(f"max_rounds must be >= 1, got {self.max_rounds}")
        if not 0 <= self.rounds <= self.max_rounds:
            raise ValueError(f"rounds must be in 0..max_rounds ({self.max_rounds}), got {self.rounds}")
        if not self.log2_catalog_size >= 0:
            raise ValueError(f"log2_catalog_size must be >= 0, got {self.log2_catalog_size}")
        if not 0 <= self.log2_candidates <= self.log2_catalog_size + 1e-9:
            raise ValueError(
                f"log2_candidates must be in [0, log2_catalog_size={self.log2_catalog_size}], "
                f"got {self.log2_candidates}"
            )


def featurize(state: DialogueState) -> np.ndarray:
    """One observation row (float32, shape ``(N_FEATURES,)``, writable) for a dialogue state."""
    qt, known, nopref, dont_know, asked, rounds, max_rounds, log2c, log2n = state
    if (known | nopref | dont_know | asked) & ~ALL_SLOTS_MASK or qt < 0:
        state.validate()  # raises a ValueError naming the bad field
    try:
        return featurize_fields(qt, known, nopref, dont_know, asked, rounds, max_rounds, log2c, log2n)
    except (IndexError, TypeError, ZeroDivisionError, struct.error) as exc:
        state.validate()  # raises a ValueError naming the bad field
        raise ValueError(f"cannot featurize {state!r}: {exc}") from exc


def featurize_fields(
    qt: int,
    known: int,
    nopref: int,
    dont_know: int,
    asked: int,
    rounds: int,
    max_rounds: int,
    log2c: float,
    log2n: float,
) -> np.ndarray:
    """``featurize`` of the ``DialogueState`` fields given one by one, without validation.

    The single env calls this at every step with fields it keeps valid by construction; skipping
    the NamedTuple and the checks saves about a third of the observation cost. Anyone else should
    call ``featurize``, which validates and then calls this (so the two cannot diverge).
    """
    return _frombuffer(
        bytearray(
            _join(
                (
                    _QT_BYTES[qt],
                    _BITS_BYTES[known],
                    _BITS_BYTES[nopref],
                    _BITS_BYTES[dont_know],
                    _BITS_BYTES[asked],
                    _PACK_TAIL(rounds / max_rounds, log2c / (log2n if log2n > 0 else 1.0), _POPCOUNT_FRAC_F64[known]),
                )
            )
        ),
        _FLOAT32,
    )


def featurize_batch(
    query_type: np.ndarray,
    known: np.ndarray,
    no_preference: np.ndarray,
    dont_know: np.ndarray,
    asked: np.ndarray,
    rounds: np.ndarray,
    max_rounds: int | np.ndarray,
    log2_candidates: np.ndarray,
    log2_catalog_size: float,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Observation rows for many states at once, identical to ``featurize`` row by row.

    Arguments are the ``DialogueState`` fields as equal-length integer / float arrays (masks as
    integers). ``out`` may be a preallocated ``(n, N_FEATURES)`` float32 array to fill.
    """
    qt = np.asarray(query_type)
    n = qt.shape[0]
    if out is None:
        out = np.empty((n, N_FEATURES), dtype=np.float32)
    elif out.shape != (n, N_FEATURES) or out.dtype != np.float32:
        raise ValueError(f"out must be a float32 array of shape {(n, N_FEATURES)}, got {out.dtype} {out.shape}")
    return fill_rows(
        NUMPY,
        NUMPY_TABLES,
        out,
        (qt, known, no_preference, dont_know, asked),
        rounds,
        max_rounds,
        log2_candidates,
        log2_catalog_size,
    )


def fill_rows(
    ops: ArrayOps[Batch],
    tables: FeatureTables[Batch],
    out: Batch,
    masks: tuple[Batch, Batch, Batch, Batch, Batch],
    rounds: Batch,
    max_rounds: Batch | float,
    log2_candidates: Batch,
    log2_catalog_size: float,
) -> Batch:
    """Writes the observation layout into ``out`` (float32 ``(n, N_FEATURES)``) on any array
    library (``rl_shop.array_ops``: numpy for :func:`featurize_batch`, torch for the
    device-resident kernel) and returns it. ``masks``: ``(query_type, known, no_preference,
    dont_know, asked)`` integer arrays. Fractions are computed in float64 and rounded to float32
    once, on assignment, as :func:`featurize` does."""
    qt, known, no_preference, dont_know, asked = masks
    out[:, QT_OFFSET:KNOWN_OFFSET] = ops.rows(tables.qt_onehot, qt)
    out[:, KNOWN_OFFSET:NO_PREF_OFFSET] = ops.rows(tables.bits, known)
    out[:, NO_PREF_OFFSET:DONT_KNOW_OFFSET] = ops.rows(tables.bits, no_preference)
    out[:, DONT_KNOW_OFFSET:ASKED_OFFSET] = ops.rows(tables.bits, dont_know)
    out[:, ASKED_OFFSET:ROUNDS_IDX] = ops.rows(tables.bits, asked)
    out[:, ROUNDS_IDX] = ops.f64(rounds) / max_rounds
    scale = log2_catalog_size if log2_catalog_size > 0 else 1.0
    out[:, LOG2_CAND_IDX] = ops.f64(log2_candidates) / scale
    out[:, KNOWN_FRAC_IDX] = ops.take(tables.popcount_frac, known)
    return out


def feature_index(name: str) -> int:
    """Position of a named feature, with an error listing the valid names."""
    try:
        return FEATURE_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown feature {name!r}; valid names are {list(FEATURE_NAMES)}") from None
