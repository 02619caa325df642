"""Observation and action layout of the Leader's scheduling policy (MACDF Eq. 1).

The Schedule env (``envs.specs.SCHEDULE``) and the runtime Leader both describe "what Memory says right
now" as a :class:`ScheduleState` and turn it into the policy input with :func:`featurize`, so a
policy trained in simulation reads the same numbers at run time. The action layout (the grid of
scheduling triggers) lives here too, because the heuristics, the env and the runtime Leader must
all agree on what action ``k`` means.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Bump whenever FEATURE_NAMES or their scaling change; exported policy cards record it.
LAYOUT_VERSION = "schedule-v1"

#: Number of atomic task types (ProductSearch, WebSearch, ToolCall, Decision; MACDF Sec. 3.4).
N_TASK_TYPES = 4
#: Seconds that map to 1.0 in time features; part of the layout (changing it bumps the version).
TIME_SCALE_S = 10.0
#: Task counts that map to 1.0 in count features; part of the layout.
COUNT_SCALE = 8.0

#: Task status codes shared by the env and the runtime Leader.
BLOCKED, RUNNING, DONE = 0, 1, 2

_TYPE_NAMES = ("product_search", "web_search", "tool_call", "decision")
FEATURE_NAMES: tuple[str, ...] = (
    "elapsed_s",
    "n_events",
    "last_interval_s",
    "frac_done",
    "n_running",
    "n_blocked",
    *(f"running_{t}" for t in _TYPE_NAMES),
    *(f"remaining_{t}" for t in _TYPE_NAMES),
    "mean_running_age_s",
    "max_running_age_s",
    "n_tasks",
)
N_FEATURES = len(FEATURE_NAMES)
_PACK_ROW = struct.Struct(f"={N_FEATURES}f").pack  # native-order float32, as numpy's


@dataclass
class ScheduleState:
    """What the Leader sees in Memory at a scheduling event, right after it has dispatched.

    ``status[i]`` is BLOCKED (a dependency is not done), RUNNING (dispatched, not finished) or
    DONE; ``running_age_s[i]`` is how long a running task has been running (0 otherwise).
    """

    elapsed_s: float
    n_events: int
    last_interval_s: float
    task_types: Sequence[int]
    status: Sequence[int]
    running_age_s: Sequence[float] = field(default_factory=list)


def action_mask(n_triggers: int) -> np.ndarray:
    """Valid actions (bool ``n_triggers``): every trigger of the grid may be chosen at every event."""
    return np.ones(n_triggers, dtype=bool)


def featurize(state: ScheduleState) -> np.ndarray:
    """One observation row (float32, ``FEATURE_NAMES`` order) from one scheduling state."""
    n = len(state.task_types)
    if len(state.status) != n:
        raise ValueError(
            f"ScheduleState: status has {len(state.status)} entries but task_types has {n}; give one status per task."
        )
    return featurize_fields(
        state.elapsed_s, state.n_events, state.last_interval_s, state.task_types, state.status, state.running_age_s
    )


def featurize_fields(
    elapsed_s: float,
    n_events: int,
    last_interval_s: float,
    task_types: Sequence[int],
    status: Sequence[int],
    running_age_s: Sequence[float],
) -> np.ndarray:
    """``featurize`` of the ``ScheduleState`` fields given one by one, without validation.

    The single env calls this at every event with fields it keeps consistent: no state object is
    built, and the row is packed as float32 bytes (``struct`` rounds each double to float32 as
    numpy does) instead of converting a list. Anyone else should call ``featurize``, which
    validates and then calls this.
    """
    n = len(task_types)
    ages = running_age_s if len(running_age_s) else [0.0] * n
    running = [0.0] * N_TASK_TYPES
    remaining = [0.0] * N_TASK_TYPES
    n_done = n_blocked = n_run = 0
    age_sum = 0.0
    age_max = 0.0
    for ty, st, age in zip(task_types, status, ages):
        if st == DONE:
            n_done += 1
            continue
        remaining[ty] += 1.0
        if st == RUNNING:
            n_run += 1
            running[ty] += 1.0
            age_sum += age
            if age > age_max:
                age_max = age
        else:
            n_blocked += 1
    c = COUNT_SCALE
    row = (
        elapsed_s / TIME_SCALE_S,
        n_events / 10.0,
        last_interval_s / TIME_SCALE_S,
        n_done / n if n else 1.0,
        n_run / c,
        n_blocked / c,
        running[0] / c, running[1] / c, running[2] / c, running[3] / c,
        remaining[0] / c, remaining[1] / c, remaining[2] / c, remaining[3] / c,
        (age_sum / n_run if n_run else 0.0) / TIME_SCALE_S,
        age_max / TIME_SCALE_S,
        n / c,
    )  # fmt: skip
    try:
        packed = _PACK_ROW(*row)
    except OverflowError:  # a value beyond float32's range: numpy's conversion (inf), not an error
        packed = np.asarray(row, dtype=np.float32).tobytes()
    return np.frombuffer(bytearray(packed), np.float32)


def featurize_batch(
    elapsed_s: np.ndarray,
    n_events: np.ndarray,
    last_interval_s: np.ndarray,
    task_types: np.ndarray,
    status: np.ndarray,
    running_age_s: np.ndarray,
) -> np.ndarray:
    """Rows identical to :func:`featurize` for a batch; task arrays are ``(B, N)``, type -1 = padding."""
    B, N = task_types.shape
    valid = task_types >= 0
    n = count_rows(valid).astype(np.float64)
    done = valid & (status == DONE)
    run = valid & (status == RUNNING)
    n_done = count_rows(done)
    n_run = count_rows(run)
    # Every column is computed in float64 and rounded to float32 once, on assignment (the same
    # rounding as a float64 table cast with astype, without the float64 temporary).
    out = np.empty((B, N_FEATURES), dtype=np.float32)
    out[:, 0] = elapsed_s / TIME_SCALE_S
    out[:, 1] = n_events / 10.0
    out[:, 2] = last_interval_s / TIME_SCALE_S
    out[:, 3] = np.where(n > 0, n_done / np.maximum(n, 1), 1.0)
    out[:, 4] = n_run / COUNT_SCALE
    out[:, 5] = count_rows(valid & (status == BLOCKED)) / COUNT_SCALE
    not_done = valid & ~done
    if N % 8 == 0:
        # Per-type counts on 8-bool words: AND two words, popcount (each bool byte is 0 or 1).
        run_w, not_done_w = run.view(np.uint64), not_done.view(np.uint64)
        for k in range(N_TASK_TYPES):
            is_k = (task_types == k).view(np.uint64)
            out[:, 6 + k] = _popcount_rows(run_w & is_k) / COUNT_SCALE
            out[:, 10 + k] = _popcount_rows(not_done_w & is_k) / COUNT_SCALE
    else:
        for k in range(N_TASK_TYPES):
            is_k = task_types == k
            out[:, 6 + k] = count_rows(run & is_k) / COUNT_SCALE
            out[:, 10 + k] = count_rows(not_done & is_k) / COUNT_SCALE
    ages = np.where(run, running_age_s, 0.0)
    age_sum = ages @ np.ones(N)  # row sums; a matmul is far faster than sum(axis=1) on short rows
    age_max = np.zeros(B)
    for j in range(N):
        np.maximum(age_max, ages[:, j], out=age_max)
    out[:, 14] = np.where(n_run > 0, age_sum / np.maximum(n_run, 1), 0.0) / TIME_SCALE_S
    out[:, 15] = age_max / TIME_SCALE_S
    out[:, 16] = n / COUNT_SCALE
    return out


def _popcount_rows(words: np.ndarray) -> np.ndarray:
    """Set bits per row of ``(B, m)`` uint64 words, as int64 (``count_rows`` on viewed bools)."""
    counts = np.bitwise_count(words)
    if counts.shape[-1] == 1:
        return counts[..., 0].astype(np.int64)
    return counts.sum(axis=-1, dtype=np.int64)


def count_rows(mask: np.ndarray) -> np.ndarray:
    """True entries per row of a boolean ``(..., N)`` array, via popcount on 8-byte words.

    Bool reductions over short rows are slow in numpy; viewing each 8 bools as one uint64 and
    counting its bits is ~25x faster, which is most of the batched envs' speed.
    """
    N = mask.shape[-1]
    if N % 8:
        pad = np.zeros((*mask.shape[:-1], 8 - N % 8), dtype=bool)
        mask = np.concatenate([mask, pad], axis=-1)
    mask = np.ascontiguousarray(mask, dtype=bool)
    counts = np.bitwise_count(mask.view(np.uint64))
    if counts.shape[-1] == 1:
        return counts[..., 0].astype(np.int64)
    return counts.sum(axis=-1, dtype=np.int64)


# --------------------------------------------------------------------------- Eq. 1 condition


def readiness_vector(status: Sequence[int], levels: Sequence[float] = (0.0, 0.5, 1.0)) -> list[float]:
    """Readiness ``r_i`` per task from its status code (BLOCKED / RUNNING / DONE).

    ``levels`` = (blocked, ready, done). A RUNNING task, and a blocked task whose dependencies
    are all done (dispatchable), count as *ready*; the runtime Leader passes RUNNING for those.
    """
    return [float(levels[min(int(s), 2)]) for s in status]


def eq1_should_fire(r_prev: Sequence[float], r_now: Sequence[float], delta: float, alpha: float, t: float) -> bool:
    """MACDF Eq. 1 condition at time ``t``: ``||e(t)|| > delta * exp(-alpha * t)``.

    ``e(t) = r(t) - r(t_{k-1})`` (Euclidean norm). ``t`` is measured from the time origin the
    env uses (episode start, as in the paper, or the last event). The runtime Leader polls this;
    the env computes the same firing time in closed form.
    """
    if len(r_prev) != len(r_now):
        raise ValueError(f"readiness vectors differ in length: {len(r_prev)} vs {len(r_now)}.")
    e_norm = math.sqrt(sum((a - b) ** 2 for a, b in zip(r_now, r_prev)))
    return e_norm > delta * math.exp(-alpha * t)


# --------------------------------------------------------------------------- action layout

#: Trigger kinds: Eq. 1 threshold, periodic polling, dispatch on every completion.
TRIGGER_KINDS = ("eq1", "periodic", "every_completion")


@dataclass(frozen=True)
class TriggerSpec:
    """One scheduling rule for the next interval.

    ``eq1``: fire at ``inf{t > t_{k-1} : ||e(t)|| > delta * exp(-alpha * t)}`` (MACDF Eq. 1);
    ``periodic``: fire every ``period_s`` regardless of ``e(t)``; ``every_completion``: fire
    at the next task completion (Eq. 1 with ``delta -> 0``).
    """

    kind: str
    delta: float = 0.0
    alpha: float = 0.0
    period_s: float = 0.0

    @property
    def name(self) -> str:
        """Stable human-readable action name (used by heuristics to find their action)."""
        if self.kind == "eq1":
            return f"eq1(delta={self.delta:g},alpha={self.alpha:g})"
        if self.kind == "periodic":
            return f"periodic({self.period_s:g}s)"
        return "every_completion"


def build_trigger_grid(
    delta_grid: Sequence[float],
    alpha_grid: Sequence[float],
    periodic_grid_s: Sequence[float] = (),
    every_completion: bool = True,
) -> tuple[TriggerSpec, ...]:
    """The discrete action set: Eq. 1 grid (delta-major), then periodic, then every-completion.

    Raises ``ValueError`` with the offending value for a negative delta / alpha or a period
    that is not positive: those would make Eq. 1 meaningless (a negative threshold fires at once).
    """
    grid: list[TriggerSpec] = []
    for d in delta_grid:
        d = float(d)
        if not (math.isfinite(d) and d > 0):
            raise ValueError(f"delta_grid contains {d}; the Eq. 1 threshold delta must be a positive number.")
        for a in alpha_grid:
            a = float(a)
            if not (math.isfinite(a) and a >= 0):
                raise ValueError(f"alpha_grid contains {a}; the Eq. 1 decay alpha must be >= 0 (0 = no decay).")
            grid.append(TriggerSpec("eq1", delta=d, alpha=a))
    for p in periodic_grid_s:
        p = float(p)
        if not (math.isfinite(p) and p > 0):
            raise ValueError(f"periodic_grid_s contains {p}; a polling period must be > 0 seconds.")
        grid.append(TriggerSpec("periodic", period_s=p))
    if every_completion:
        grid.append(TriggerSpec("every_completion"))
    if not grid:
        raise ValueError("the trigger grid is empty: give delta_grid and alpha_grid, or periods.")
    names = [t.name for t in grid]
    if len(set(names)) != len(names):
        raise ValueError(f"the trigger grid has duplicate entries: {names}; remove duplicates.")
    return tuple(grid)
