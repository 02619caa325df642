"""Batched numpy version of ``rl_shop/Schedule-v0``: many DAG episodes advanced per call.

The event logic of :class:`envs.schedule.ScheduleEnv` written over ``(num_envs, max_tasks)``
arrays. Sub-env ``i`` draws its episodes from a generator seeded ``seed + i`` in the same block
order as the single env, so on the same seeds and actions the two agree step for step (tested).
Autoreset is SAME_STEP: a finished sub-env returns its next episode's first observation, and the
final observation / info of the finished one come in ``info["final_obs"]`` / ``info["final_info"]``
(numeric arrays with ``_final_obs`` / ``_final_info`` masks, not object arrays, for speed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.dag import BatchedUniforms
from envs.schedule import (
    eq1_crossing_time,
    event_reward,
    parse_schedule_kwargs,
    squared_readiness_jumps,
    state_error_norm,
)
from rl_shop.array_ops import NUMPY
from rl_shop.policies.features.schedule import (
    BLOCKED,
    DONE,
    FEATURE_NAMES,
    LAYOUT_VERSION,
    RUNNING,
    action_mask,
    count_rows,
    featurize_batch,
)

_KIND_CODE = {"eq1": 0, "periodic": 1, "every_completion": 2}
#: Multiplying 8 bytes that are each 0 or 1 by this constant gathers them into the top byte as
#: 8 bits (task k -> bit k); far cheaper than np.packbits on the (B, N, N) comparison arrays.
_GATHER = np.uint64(0x0102040810204080)
_SHIFT = np.uint64(56)
#: bytes of packed task bits -> the integer type that holds them as one word
_WORD_DTYPES: dict[int, type[np.unsignedinteger[Any]]] = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def pack_bits(mask: np.ndarray) -> np.ndarray:
    """Bool ``(..., 8m)`` (C-contiguous) -> uint8 ``(..., m)``, bit k of byte w = mask[..., 8w + k]."""
    return ((mask.view(np.uint64) * _GATHER) >> _SHIFT).astype(np.uint8)


class ScheduleVectorEnv(VectorEnv):
    """``num_envs`` independent Schedule-v0 episodes in numpy arrays; see ``ScheduleEnv`` for the MDP.

    Arguments: ``num_envs``, ``seed`` (sub-env ``i`` uses ``seed + i``), and the same keyword
    arguments as ``ScheduleEnv``. ``info`` holds arrays ``latency``, ``scheduling_events``,
    ``action_mask`` (``(num_envs, n_actions)``), and on episode ends ``final_obs`` /
    ``final_info``.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
    single_action_space: spaces.Discrete

    def __init__(self, num_envs: int, seed: int | None = None, **kwargs: object) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}.")
        self.params = p = parse_schedule_kwargs(**kwargs)
        self.num_envs = B = int(num_envs)
        self.ACTION_NAMES = p.action_names
        self.FEATURE_NAMES = FEATURE_NAMES
        self.LAYOUT_VERSION = LAYOUT_VERSION
        self.single_action_space = spaces.Discrete(len(p.triggers))
        self.single_observation_space = spaces.Box(0.0, np.inf, (len(FEATURE_NAMES),), np.float32)
        self.action_space = batch_space(self.single_action_space, B)
        self.observation_space = batch_space(self.single_observation_space, B)
        trig = p.triggers
        self._kind = np.array([_KIND_CODE[t.kind] for t in trig], dtype=np.int64)
        self._delta = np.array([t.delta for t in trig])
        self._alpha = np.array([t.alpha for t in trig])
        self._period = np.array([t.period_s for t in trig])
        self._dd2, self._da2 = squared_readiness_jumps(p)
        # ||e|| for C finished and U unblocked tasks, E[C, U] = sqrt(C dd^2 + U da^2): the same
        # correctly rounded operations as on the (B, N) count arrays, looked up instead.
        counts = np.arange(8 * -(-p.sampler.max_tasks // 8) + 1, dtype=np.int64)
        self._E_stride = len(counts)  # flat index C * stride + U (1-d take beats 2-d indexing)
        self._E_flat = state_error_norm(NUMPY, counts[:, None], counts[None, :], self._dd2, self._da2).ravel()
        # Task axis padded to a multiple of 8 so that 8 bools form one uint64 word: row counts
        # become popcounts and "all parents done" a single AND (see _words / count_rows).
        self._N = p.sampler.max_tasks
        N = 8 * -(-self._N // 8)
        self._Np = N
        self._ones = np.ones(N)
        self._types = np.full((B, N), -1, dtype=np.int64)
        self._parents = np.zeros((B, N, N), dtype=bool)
        self._lat = np.full((B, N), np.inf)
        self._status = np.full((B, N), DONE, dtype=np.int8)
        self._finish = np.full((B, N), np.inf)
        self._start = np.zeros((B, N))
        self._t = np.zeros(B)
        self._events = np.zeros(B, dtype=np.int64)
        self._last = np.zeros(B)
        self._template = np.zeros(B, dtype=np.int64)
        self._mask = np.tile(action_mask(len(trig)), (B, 1))
        # Each task's parent set as one integer word (bit j = parent j) when Np // 8 bytes fit
        # one numpy integer: then Eq. 1's "unblocked by c_j" is a bitwise test (_fire_times).
        self._word = _WORD_DTYPES.get(N // 8)
        self._pb = np.zeros((B, N), dtype=self._word or np.uint8)
        self._ready_table = self._template_ready_table()
        self._seed = seed
        self._seeded = False

    # ------------------------------------------------------------------ randomness
    def _seed_all(self, seed: int | None) -> None:
        p = self.params
        seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        self._uniforms = BatchedUniforms(seeds, p.sampler.n_uniforms, p.rng_block_episodes, p.sampler.uniform_columns)
        self._seeded = True

    # ------------------------------------------------------------------ episode setup
    def _reset_envs(self, idx: np.ndarray) -> None:
        dag = self.params.sampler.sample(self._uniforms.take(idx))
        n, N = self._N, self._Np
        if n == N:  # no padding columns: the sampler's arrays are the rows
            types, parents, lat = dag.types, dag.parents, dag.latency_s
        else:
            types = np.full((len(idx), N), -1, dtype=np.int64)
            types[:, :n] = dag.types
            parents = np.zeros((len(idx), N, N), dtype=bool)
            parents[:, :n, :n] = dag.parents
            lat = np.full((len(idx), N), np.inf)
            lat[:, :n] = dag.latency_s
        # The initial event t_0 = 0 of a fresh episode (nothing done yet): every task without a
        # parent starts (what _dispatch does, computed on these rows only); padding stays DONE.
        valid = types >= 0
        go = valid & ~self._any_row(parents)
        self._types[idx] = types
        self._parents[idx] = parents
        if self._word is not None and self._ready_table is None:
            self._pb[idx] = self._as_word(pack_bits(parents))
        self._lat[idx] = lat
        self._template[idx] = dag.template
        self._status[idx] = np.where(go, np.int8(RUNNING), np.where(valid, np.int8(BLOCKED), np.int8(DONE)))
        self._finish[idx] = np.where(go, 0.0 + lat, np.inf)
        self._start[idx] = 0.0
        self._t[idx] = 0.0
        self._events[idx] = 0
        self._last[idx] = 0.0

    def _template_ready_table(self) -> np.ndarray | None:
        """``T[k, S]``: the tasks of template ``k`` whose parents all lie in the task set ``S``.

        Only when every episode is a template DAG (no random DAGs) and a task set is a uint8 or
        uint16 word (<= 16 tasks): then "which blocked tasks does S unblock" is one table lookup.
        """
        sampler = self.params.sampler
        if sampler.random is not None or self._word not in (np.uint8, np.uint16):
            return None
        n, N = self._N, self._Np
        sets = np.arange(1 << N, dtype=np.int64).astype(self._word)  # every task set S
        table = np.zeros((len(sampler.templates), 1 << N), dtype=self._word)
        for k in range(len(sampler.templates)):
            parents = np.zeros((1, N, N), dtype=bool)
            parents[0, :n, :n] = sampler.template_parents[k]
            pb = self._as_word(pack_bits(parents))[0]  # (N,): parent set of each task
            ok = (pb[None, :] & ~sets[:, None]) == 0  # (2^N, N)
            table[k] = self._as_word(pack_bits(ok))
        return table  # C-contiguous: take() reads it by flat index template * 2^N + S

    def _as_word(self, packed: np.ndarray) -> np.ndarray:
        """``(..., Np // 8)`` uint8 packed bits -> ``(...)`` words of ``self._word``."""
        assert self._word is not None, "_as_word is only called when task sets fit an integer word"
        return np.ascontiguousarray(packed).view(self._word)[..., 0]

    def _any_row(self, mask: np.ndarray) -> np.ndarray:
        """``mask.any(axis=-1)`` for a bool ``(..., Np)`` array, via its uint64 words."""
        words = self._words(mask)
        return words[..., 0] != 0 if words.shape[-1] == 1 else (words != 0).any(axis=-1)

    @staticmethod
    def _words(mask: np.ndarray) -> np.ndarray:
        """View a bool ``(..., Np)`` array as ``(..., Np // 8)`` uint64 words (no copy)."""
        return mask.view(np.uint64)

    def _dispatch(self, sel: np.ndarray) -> None:
        """Dispatch, in the selected sub-envs, every blocked task whose dependencies are done."""
        not_done = self._words(self._status != DONE)  # (B, m)
        words = self._words(self._parents) & not_done[:, None, :]  # (B, i, m)
        waiting = words[:, :, 0] != 0 if words.shape[2] == 1 else (words != 0).any(axis=2)
        go = sel[:, None] & (self._status == BLOCKED) & ~waiting
        # np.where over whole arrays beats boolean-mask fancy indexing by a wide margin here
        self._status = np.where(go, np.int8(RUNNING), self._status)
        t = self._t[:, None]
        self._start = np.where(go, t, self._start)
        self._finish = np.where(go, t + self._lat, self._finish)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None or not self._seeded:
            self._seed_all(self._seed if seed is None else seed)
        self._reset_envs(np.arange(self.num_envs))
        return self._obs(), self._info()

    # ------------------------------------------------------------------ Eq. 1, vectorised
    def _fire_times(self, a: np.ndarray) -> np.ndarray:
        """Exact next event time per sub-env under trigger ``a`` (same rules as ScheduleEnv).

        Per-completion arrays are laid out ``(j, B)`` (completion j of every sub-env in one
        contiguous row): numpy's per-call overhead on the short task axis was most of the cost,
        and reductions over j are then fast row reductions. The element-wise operations are
        the same, so the values are too.
        """
        p = self.params
        st = self._status
        running = st == RUNNING
        blocked = st == BLOCKED
        comps = np.where(running, self._finish, np.inf)  # (B, N) candidate change points
        cT = np.ascontiguousarray(comps.T)  # (j, B)
        t0 = self._t
        kind = self._kind[a]
        if self._word is not None:
            n_comp, n_unbl = self._counts_by_bits(st, blocked, cT)
        else:
            n_comp, n_unbl = (x.T for x in self._counts_by_times(st, running, blocked, comps))
        E = self._E_flat.take(n_comp * self._E_stride + n_unbl)  # ||e(c_j)|| = sqrt(C dd^2 + U da^2)
        delta = self._delta[a]
        alpha = self._alpha[a]
        origin = np.zeros_like(t0) if p.time_origin == "episode" else t0
        tc = eq1_crossing_time(E, delta, alpha, origin, ops=NUMPY)  # Eq. 1 closed form on each piece
        cand = np.maximum(cT, tc)
        # min / max are exact, so the reduction order does not matter
        fire_eq1 = cand.min(axis=0)
        first = cT.min(axis=0)
        last_comp = np.where(cT < np.inf, cT, -np.inf).max(axis=0)  # latest completion, -inf if none
        fire_eq1 = np.where(np.isinf(fire_eq1), last_comp, fire_eq1)  # idle rule
        fire = np.where(kind == 0, fire_eq1, np.where(kind == 1, t0 + self._period[a], first))
        return np.minimum(fire, t0 + p.max_wait_s)  # max-wait safeguard

    def _counts_by_times(
        self, st: np.ndarray, running: np.ndarray, blocked: np.ndarray, comps: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """C and U at each c_j via unblock times (any task count; the reference formulation)."""
        # Parent finish time as seen from this interval: done -> -inf, running -> finish, else inf.
        fpar = np.where(running, self._finish, np.where(st == DONE, -np.inf, np.inf))
        # A blocked task becomes ready when its last parent finishes: max over parents of fpar
        # (column loop over the short parent axis; a reduction over it is much slower in numpy).
        unblock = np.full(fpar.shape, -np.inf)
        for j in range(self._N):
            np.maximum(unblock, np.where(self._parents[:, :, j], fpar[:, j : j + 1], -np.inf), out=unblock)
        # x_k: when task k changes readiness in this interval (finish if running, ready-time if
        # blocked). One (B, j, k) comparison "x_k <= c_j", bit-packed, then two popcounts give
        # C (finished by c_j) and U (unblocked by c_j).
        x = np.where(running, self._finish, np.where(blocked, unblock, np.inf))
        le = pack_bits(x[:, None, :] <= comps[:, :, None])  # (B, j, Np // 8)
        run_bits = pack_bits(running)[:, None, :]
        blk_bits = pack_bits(blocked)[:, None, :]
        n_comp = np.bitwise_count(le & run_bits).sum(axis=2, dtype=np.int64)  # C at c_j
        n_unbl = np.bitwise_count(le & blk_bits).sum(axis=2, dtype=np.int64)  # U at c_j
        return n_comp, n_unbl

    def _counts_by_bits(self, st: np.ndarray, blocked: np.ndarray, cT: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """C and U at each c_j, ``(j, B)``, with task sets as integer words (same counts).

        For a running c_j (finite): F_j = {running k : finish_k <= c_j} (tasks with comps_k =
        inf never are), C = |F_j|, and a blocked task is unblocked by c_j iff its parents all lie
        in DONE | F_j -- exactly "max over parents of (-inf if done, finish if running, inf if
        blocked) <= c_j" of ``_counts_by_times``. For c_j = inf (no running task j) the counts
        differ, but there cand_j = max(comps_j, .) = inf either way, so the fire time does not.
        """
        w = self._as_word
        word = self._word
        assert word is not None, "_counts_by_bits is only called when task sets fit an integer word"
        F = np.zeros(cT.shape, dtype=word)  # (j, B): F_j as a word, bit k = task k
        for k in range(cT.shape[0]):
            F |= (cT[k] <= cT).view(np.uint8).astype(word) << word(k)
        n_comp = np.bitwise_count(F).astype(np.int64)
        settled = w(pack_bits(st == DONE))[None, :] | F  # (j, B): DONE | F_j
        blk = w(pack_bits(blocked))[None, :]
        if self._ready_table is not None:  # template DAGs: a lookup per (j, env)
            table = self._ready_table
            ready = table.take(self._template[None, :] * table.shape[1] + settled)
        else:
            ok = (self._pb[None, :, :] & ~settled[:, :, None]) == 0  # (j, B, k): parents of k settled
            ready = w(pack_bits(ok))
        n_unbl = np.bitwise_count(ready & blk).astype(np.int64)
        return n_comp, n_unbl

    def _event(self, a: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """Advance the selected sub-envs to their next event; returns rewards (0 elsewhere)."""
        p = self.params
        fire = np.where(sel, self._fire_times(a), self._t)
        finished = sel[:, None] & (self._status == RUNNING) & (self._finish <= fire[:, None])
        self._status = np.where(finished, np.int8(DONE), self._status)
        last = fire - self._t
        self._t = fire
        self._dispatch(sel)
        self._last = np.where(sel, last, self._last)
        self._events += sel
        return np.where(sel, event_reward(p.w_latency, p.c_event, last), 0.0)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        a = np.asarray(actions, dtype=np.int64).reshape(-1)
        if a.shape[0] != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions, got shape {np.shape(actions)}.")
        if a.min() < 0 or a.max() >= self.single_action_space.n:
            raise ValueError(f"actions must be in 0..{self.single_action_space.n - 1}, got {a}.")
        p = self.params
        sel = np.ones(self.num_envs, dtype=bool)
        reward = np.zeros(self.num_envs)
        while True:
            reward += self._event(a, sel)
            term = count_rows(self._status != DONE) == 0
            trunc = ~term & (self._events >= p.max_events)
            if p.action_mode == "per_event":
                break
            sel = sel & ~(term | trunc)
            if not sel.any():
                break
        obs = self._obs()
        info = self._info()
        ended = term | trunc
        if ended.any():
            idx = np.flatnonzero(ended)
            info["final_obs"] = obs.copy()
            info["_final_obs"] = ended
            info["final_info"] = {
                "latency": self._t.copy(),
                "scheduling_events": self._events.copy(),
                "_latency": ended,
                "_scheduling_events": ended,
            }
            self._reset_envs(idx)
            obs[idx] = self._obs(idx)  # only the restarted rows change
            info["latency"] = self._t.copy()
            info["scheduling_events"] = self._events.copy()
        return obs, reward, term, trunc, info

    # ------------------------------------------------------------------ views
    def _obs(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Observation rows of the sub-envs ``idx`` (all by default)."""
        st, t = self._status[idx], self._t[idx]
        age = np.where(st == RUNNING, t[:, None] - self._start[idx], 0.0)
        return featurize_batch(t, self._events[idx], self._last[idx], self._types[idx], st, age)

    def _info(self) -> dict[str, Any]:
        return {
            "latency": self._t.copy(),
            "scheduling_events": self._events.copy(),
            "action_mask": self._mask,
        }

    def action_masks(self) -> np.ndarray:
        """``(num_envs, n_actions)``: every trigger rule is always valid."""
        return self._mask.copy()
