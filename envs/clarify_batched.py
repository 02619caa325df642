"""``ClarifyVectorEnv``: ``rl_shop/Clarify-v0`` for many shoppers at once, in numpy.

It runs exactly the dynamics of ``envs.clarify.ClarifyEnv`` on arrays and agrees with it step
for step: sub-env i behaves as a ``ClarifyEnv`` reset with ``seed + i`` and then reset without a
seed after each episode. The per-step random numbers come from the counter-based generator of
``envs.clarify_rng`` (a pure function of key, episode, step and draw), which is what makes the
vectorized and the scalar paths produce the same bits.

Autoreset mode: ``gymnasium.vector.AutoresetMode.NEXT_STEP`` (gymnasium's default): the step
after a sub-env ends resets it, returning its first observation with reward 0 and
``terminated = truncated = False``; the action given for it on that step is ignored.
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from envs import clarify_rng as rng
from envs.clarify import (
    KTH_BIT,
    MASK_TABLE,
    N_ACTIONS,
    POPCOUNT,
    STOP,
    SUGGEST,
    entropy_table,
    resolve_params,
    resolve_pool,
)
from envs.intent_pool import N_MASKS, IntentPool
from rl_shop.policies.features.clarify import N_FEATURES, N_SLOTS, featurize_batch


class ClarifyVectorEnv(gym.vector.VectorEnv):
    """Batched ``rl_shop/Clarify-v0`` (see ``ClarifyEnv`` for spaces, rewards and episode end).

    ## Arguments

    ``num_envs``: number of simulated shoppers; ``seed``: default seed of the first ``reset``
    (sub-env i gets ``seed + i``); ``copy``: return a fresh observation array each call (set
    False to reuse one buffer, faster, but the caller must not keep references); the remaining
    keyword arguments are ``ClarifyEnv``'s (``configs/env/clarify.yaml``) and ``intent_pool``.

    ``infos`` hold arrays ``intent_gain``, ``rounds``, ``accuracy_at_5`` (NaN where the sub-env
    did not just end), ``query_type`` (index into ``QUERY_TYPES``), ``action_mask`` ``(n, 11)``,
    each with the gymnasium ``_<key>`` presence mask.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int,
        seed: int | None = None,
        *,
        intent_pool: IntentPool | None = None,
        copy: bool = True,
        **kwargs: Any,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.num_envs = int(num_envs)
        self.params = resolve_params(**kwargs)
        self.pool = resolve_pool(self.params, intent_pool)
        self.copy = bool(copy)
        self._default_seed = seed
        self.single_action_space = gym.spaces.Discrete(N_ACTIONS)
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, (N_FEATURES,), np.float32)
        self.action_space = gym.spaces.MultiDiscrete(np.full(self.num_envs, N_ACTIONS))
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.num_envs, N_FEATURES), np.float32)
        self._H = entropy_table(self.pool, self.params.normalize_gain)
        self._H_flat = self._H.ravel()
        self._acc_flat = self.pool.accuracy.ravel()
        self._log2c_flat = self.pool.log2_candidates.ravel()
        self._pdk_flat = self.pool.p_dont_know.ravel()
        self._pw_flat = self.pool.p_wrong.ravel()
        n = self.num_envs
        self._keys = np.zeros(n, np.uint64)
        self._episode = np.zeros(n, np.uint64)
        self._ekey = np.zeros(n, np.uint64)
        self._i = np.zeros(n, np.int64)
        self._rel = np.zeros(n, np.int64)
        self._revealed = np.zeros(n, np.int64)
        self._known = np.zeros(n, np.int64)
        self._nopref = np.zeros(n, np.int64)
        self._dontknow = np.zeros(n, np.int64)
        self._asked = np.zeros(n, np.int64)
        self._rounds = np.zeros(n, np.int64)
        self._t = np.zeros(n, np.uint64)
        self._h = np.zeros(n, np.float64)  # H(s) of the current state, carried between steps
        self._patience = np.zeros(n, np.int64)
        self._qt = np.zeros(n, np.int64)
        self._autoreset = np.zeros(n, bool)
        self._obs = np.zeros((n, N_FEATURES), np.float32)
        self._all_true = np.ones(n, bool)
        self._all_true.setflags(write=False)
        self._started = False

    # ------------------------------------------------------------------ state
    def _start_episodes(self, idx: np.ndarray) -> None:
        """(Re)start the sub-envs ``idx`` with their current key and episode counter."""
        ek = rng.episode_key_array(self._keys[idx], self._episode[idx])
        self._ekey[idx] = ek
        u = rng.unit53_array(rng.bits_array(ek, np.zeros(len(idx), np.uint64)))
        intent = (u * len(self.pool)).astype(np.int64)
        p = self.pool
        self._i[idx] = intent
        self._rel[idx] = p.relevant[intent]
        self._revealed[idx] = p.stated[intent]
        self._known[idx] = p.stated[intent]
        self._nopref[idx] = 0
        self._dontknow[idx] = 0
        self._asked[idx] = 0
        self._rounds[idx] = 0
        self._t[idx] = 0
        self._patience[idx] = p.patience[intent]
        self._qt[idx] = p.query_type[intent]
        self._h[idx] = self._H_flat[intent * N_MASKS + p.stated[intent]]

    def _observe(self) -> np.ndarray:
        log2c = self._log2c_flat[self._i * N_MASKS + self._revealed]
        featurize_batch(
            self._qt,
            self._known,
            self._nopref,
            self._dontknow,
            self._asked,
            self._rounds,
            self.params.max_rounds,
            log2c,
            self.pool.log2_catalog_size,
            out=self._obs,
        )
        return self._obs.copy() if self.copy else self._obs

    def action_masks(self) -> np.ndarray:
        """Valid actions, bool ``(num_envs, 11)``: no re-asking a known or asked slot."""
        return MASK_TABLE[self._known | self._asked]

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every sub-env; an int seed gives sub-env i the seed ``seed + i``."""
        if seed is None and not self._started:
            seed = self._default_seed
        n = self.num_envs
        if seed is None:
            if self._started:
                self._episode += np.uint64(1)
            else:
                base = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
                self._keys[:] = (base + np.arange(n, dtype=np.uint64)).astype(np.uint64)
                self._episode[:] = 0
        else:
            if isinstance(seed, (int, np.integer)):
                seeds = [int(seed) + k for k in range(n)]
            else:
                seeds = [int(s) for s in seed]
                if len(seeds) != n:
                    raise ValueError(f"got {len(seeds)} seeds for {n} sub-envs")
            self._keys[:] = np.array([s & rng.MASK64 for s in seeds], dtype=np.uint64)
            self._episode[:] = 0
        self._started = True
        self._start_episodes(np.arange(n))
        self._autoreset[:] = False
        infos = self._infos(
            np.zeros(n), np.full(n, np.nan), np.zeros(n, bool)
        )
        return self._observe(), infos

    def _infos(self, gain: np.ndarray, acc: np.ndarray, ended: np.ndarray) -> dict[str, Any]:
        t = self._all_true
        return {
            "intent_gain": gain,
            "_intent_gain": t,
            "rounds": self._rounds.copy(),
            "_rounds": t,
            "accuracy_at_5": acc,
            "_accuracy_at_5": ended,
            "query_type": self._qt.copy(),
            "_query_type": t,
            "action_mask": self.action_masks(),
            "_action_mask": t,
        }

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env (NEXT_STEP autoreset; see the module docstring)."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(actions)
        if a.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {a.shape}")
        a = a.astype(np.int64, copy=False)
        if ((a < 0) | (a >= N_ACTIONS)).any():
            raise ValueError(f"actions must be in 0..{N_ACTIONS - 1}, got {a[(a < 0) | (a >= N_ACTIONS)][:5]}")
        prm = self.params
        i_m = self._i * N_MASKS
        t = self._t + np.uint64(1)
        self._t = t
        z = rng.bits_array(self._ekey, t)
        u_answer = rng.answer_draw_array(z)
        u_volunteer = rng.volunteer_draw_array(z)
        revealed = self._revealed
        h_before = self._h
        acc_before = self._acc_flat[i_m + revealed]

        is_stop = a == STOP
        is_ask = a < N_SLOTS
        leaves = ~is_stop & (self._rounds >= self._patience)
        active = ~is_stop & ~leaves
        slot = np.minimum(a, N_SLOTS - 1)
        bit = np.left_shift(is_ask.astype(np.int64), slot)  # 0 for suggest / stop
        rel = self._rel
        fresh = active & (((self._known | self._asked) & bit) == 0) & is_ask
        fresh_bit = np.where(fresh, bit, 0)
        ans = (rel & fresh_bit) != 0
        p_idx = self._i * N_SLOTS + slot
        pdk = self._pdk_flat[p_idx]
        dk = ans & (u_answer < pdk)
        not_dk = ans & ~dk
        wrong = not_dk & (u_answer < pdk + self._pw_flat[p_idx])
        correct = not_dk & ~wrong
        sugg = active & (a == SUGGEST)
        confirm = sugg & (acc_before >= prm.confirm_threshold)
        reject = sugg & ~confirm
        hidden = rel & ~revealed
        k = (u_volunteer * POPCOUNT[hidden]).astype(np.int64)
        vol = np.where(reject, KTH_BIT[hidden, k], 0)  # KTH_BIT is 0 when nothing is hidden

        correct_bit = np.where(correct, bit, 0)
        new_revealed = revealed | correct_bit | vol
        self._revealed = new_revealed
        self._known = self._known | correct_bit | np.where(wrong, bit, 0) | vol
        self._asked = self._asked | fresh_bit
        self._nopref = self._nopref | (fresh_bit & ~rel)
        self._dontknow = (self._dontknow | np.where(dk, bit, 0)) & ~vol
        rounds_used = (~is_stop).astype(np.int64)
        self._rounds = self._rounds + rounds_used

        h_after = self._H_flat[i_m + new_revealed]
        self._h = h_after
        intent_gain = np.where(leaves, 0.0, h_before - h_after)
        handover = is_stop | confirm
        # stop and confirm reveal nothing, so the hand-over's Accuracy@5 is acc_before
        accuracy = np.where(handover, acc_before, 0.0)
        # MACDF Eq. 3: R(s, a) = alpha * Intent_Gain - beta * Interaction_Rounds,
        # plus the hand-over term w_T * Accuracy@5 and the abandonment penalty.
        reward = (
            prm.alpha * intent_gain
            - prm.beta * rounds_used
            + prm.w_T * accuracy
            - prm.abandon_penalty * leaves
        )
        terminated = handover | leaves
        truncated = ~terminated & (self._rounds >= prm.max_rounds)
        ended = terminated | truncated
        acc_info = np.where(terminated, accuracy, np.nan)
        if truncated.any():
            tr = np.flatnonzero(truncated)
            acc_info[tr] = self._acc_flat[i_m[tr] + new_revealed[tr]]

        # NEXT_STEP autoreset: sub-envs that ended on the previous call restart now.
        reset_now = self._autoreset
        if reset_now.any():
            idx = np.flatnonzero(reset_now)
            self._episode[idx] += np.uint64(1)
            self._start_episodes(idx)  # also resets self._h[idx]
            reward[idx] = 0.0
            terminated[idx] = False
            truncated[idx] = False
            intent_gain[idx] = 0.0
            acc_info[idx] = np.nan
            ended = ended & ~reset_now
        self._autoreset = terminated | truncated
        infos = self._infos(intent_gain, acc_info, ended)
        return self._observe(), reward, terminated, truncated, infos
