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
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.schedule import parse_schedule_kwargs
from rl_shop.policies.features.schedule import (
    BLOCKED,
    DONE,
    count_rows,
    FEATURE_NAMES,
    LAYOUT_VERSION,
    RUNNING,
    featurize_batch,
)

_KIND_CODE = {"eq1": 0, "periodic": 1, "every_completion": 2}
#: Multiplying 8 bytes that are each 0 or 1 by this constant gathers them into the top byte as
#: 8 bits (task k -> bit k); far cheaper than np.packbits on the (B, N, N) comparison arrays.
_GATHER = np.uint64(0x0102040810204080)
_SHIFT = np.uint64(56)


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

    def __init__(self, num_envs: int, seed: int | None = None, **kwargs: Any) -> None:
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
        self._dd2 = (p.r_done - p.r_ready) ** 2
        self._da2 = (p.r_ready - p.r_blocked) ** 2
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
        self._mask = np.ones((B, len(trig)), dtype=bool)
        self._seed = seed
        self._seeded = False

    # ------------------------------------------------------------------ randomness
    def _seed_all(self, seed: int | None) -> None:
        p = self.params
        K, D = p.rng_block_episodes, p.sampler.n_uniforms
        self._rngs = [seeding.np_random(None if seed is None else seed + i)[0] for i in range(self.num_envs)]
        self._buf = np.empty((self.num_envs, K, D))
        for i, rng in enumerate(self._rngs):
            self._buf[i] = rng.random((K, D))
        self._ptr = np.zeros(self.num_envs, dtype=np.int64)
        self._seeded = True

    def _next_uniforms(self, idx: np.ndarray) -> np.ndarray:
        K = self.params.rng_block_episodes
        for i in idx[self._ptr[idx] == K]:
            self._buf[i] = self._rngs[i].random(self._buf.shape[1:])
            self._ptr[i] = 0
        rows = self._buf[idx, self._ptr[idx]]
        self._ptr[idx] += 1
        return rows

    # ------------------------------------------------------------------ episode setup
    def _reset_envs(self, idx: np.ndarray) -> None:
        dag = self.params.sampler.sample(self._next_uniforms(idx))
        n = self._N
        self._types[idx, :n] = dag.types
        self._parents[idx, :n, :n] = dag.parents
        self._lat[idx, :n] = dag.latency_s
        self._template[idx] = dag.template
        self._status[idx] = np.where(self._types[idx] >= 0, BLOCKED, DONE)
        self._finish[idx] = np.inf
        self._start[idx] = 0.0
        self._t[idx] = 0.0
        self._events[idx] = 0
        self._last[idx] = 0.0
        sel = np.zeros(self.num_envs, dtype=bool)
        sel[idx] = True
        self._dispatch(sel)

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
        """Exact next event time per sub-env under trigger ``a`` (same rules as ScheduleEnv)."""
        p = self.params
        st = self._status
        running = st == RUNNING
        comps = np.where(running, self._finish, np.inf)  # (B, N) candidate change points
        t0 = self._t
        kind = self._kind[a]
        # Parent finish time as seen from this interval: done -> -inf, running -> finish, else inf.
        fpar = np.where(running, self._finish, np.where(st == DONE, -np.inf, np.inf))
        blocked = st == BLOCKED
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
        E = np.sqrt(n_comp * self._dd2 + n_unbl * self._da2)  # ||e(c_j)||
        delta = self._delta[a][:, None]
        alpha = self._alpha[a][:, None]
        origin = np.zeros_like(t0) if p.time_origin == "episode" else t0
        with np.errstate(divide="ignore", invalid="ignore"):
            # Eq. 1 closed form on each piece: t = origin + ln(delta / ||e||) / alpha
            tc = origin[:, None] + np.log(delta / E) / alpha
            tc = np.where(alpha == 0.0, np.where(E > delta, -np.inf, np.inf), tc)
        tc = np.where(E > 0.0, tc, np.inf)
        cand = np.maximum(comps, tc)
        fire_eq1 = np.full(len(t0), np.inf)
        first = np.full(len(t0), np.inf)
        last_comp = np.full(len(t0), -np.inf)
        finite = np.where(np.isfinite(comps), comps, -np.inf)
        for j in range(self._Np):  # column loops beat min/max(axis=1) on short rows
            np.minimum(fire_eq1, cand[:, j], out=fire_eq1)
            np.minimum(first, comps[:, j], out=first)
            np.maximum(last_comp, finite[:, j], out=last_comp)
        fire_eq1 = np.where(np.isinf(fire_eq1), last_comp, fire_eq1)  # idle rule
        fire = np.where(
            kind == 0, fire_eq1, np.where(kind == 1, t0 + self._period[a], first)
        )
        return np.minimum(fire, t0 + p.max_wait_s)  # max-wait safeguard

    def _event(self, a: np.ndarray, sel: np.ndarray) -> np.ndarray:
        """Advance the selected sub-envs to their next event; returns rewards (0 elsewhere)."""
        p = self.params
        fire = np.where(sel, self._fire_times(a), self._t)
        finished = sel[:, None] & (self._status == RUNNING) & (self._finish <= fire[:, None])
        self._status[finished] = DONE
        last = fire - self._t
        self._t = fire
        self._dispatch(sel)
        self._last = np.where(sel, last, self._last)
        self._events += sel
        return np.where(sel, -(p.w_latency * last + p.c_event), 0.0)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
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
            info["final_info"] = {"latency": self._t.copy(), "scheduling_events": self._events.copy(),
                                  "_latency": ended, "_scheduling_events": ended}
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
