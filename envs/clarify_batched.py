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

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from envs import clarify_kernel as kernel
from envs.clarify import N_ACTIONS, resolve_params, resolve_pool
from envs.intent_pool import N_MASKS, IntentPool
from rl_shop.array_ops import NUMPY, signed64
from rl_shop.policies.features.clarify import N_FEATURES, featurize_batch


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
        **kwargs: object,
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
        self._tb = kernel.make_tables(self.pool, self.params.normalize_gain)
        n = self.num_envs
        self._keys = np.zeros(n, np.int64)  # stream keys as int64 bits (see rl_shop.array_ops)
        self._episode = np.zeros(n, np.int64)
        self._s: dict[str, np.ndarray] = {
            k: np.zeros(n, np.float64 if k == "h" else np.int64) for k in kernel.STATE_FIELDS
        }
        self._autoreset = np.zeros(n, bool)
        self._obs = np.zeros((n, N_FEATURES), np.float32)
        self._all_true = np.ones(n, bool)
        self._all_true.setflags(write=False)
        self._started = False

    # ------------------------------------------------------------------ state
    def _start_episodes(self, idx: np.ndarray) -> None:
        """(Re)start the sub-envs ``idx`` with their current key and episode counter."""
        start = kernel.episode_start(NUMPY, self._tb, self._keys[idx], self._episode[idx])
        for k, v in start.items():
            self._s[k][idx] = v

    def _observe(self) -> np.ndarray:
        s = self._s
        log2c = self._tb.log2c[s["i"] * N_MASKS + s["revealed"]]
        featurize_batch(
            s["qt"],
            s["known"],
            s["nopref"],
            s["dontknow"],
            s["asked"],
            s["rounds"],
            self.params.max_rounds,
            log2c,
            self.pool.log2_catalog_size,
            out=self._obs,
        )
        return self._obs.copy() if self.copy else self._obs

    def action_masks(self) -> np.ndarray:
        """Valid actions, bool ``(num_envs, 11)``: no re-asking a known or asked slot."""
        return kernel.action_masks(self._tb, self._s)

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
                self._episode += 1
            else:
                base = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
                self._keys[:] = [signed64(base + k) for k in range(n)]
                self._episode[:] = 0
        else:
            if isinstance(seed, (int, np.integer)):
                seeds = [int(seed) + k for k in range(n)]
            else:
                seeds = [int(s) for s in seed]
                if len(seeds) != n:
                    raise ValueError(f"got {len(seeds)} seeds for {n} sub-envs")
            self._keys[:] = [signed64(s) for s in seeds]
            self._episode[:] = 0
        self._started = True
        self._start_episodes(np.arange(n))
        self._autoreset[:] = False
        infos = self._infos(np.zeros(n), np.full(n, np.nan), np.zeros(n, bool))
        return self._observe(), infos

    def _infos(self, gain: np.ndarray, acc: np.ndarray, ended: np.ndarray) -> dict[str, Any]:
        t = self._all_true
        return {
            "intent_gain": gain,
            "_intent_gain": t,
            "rounds": self._s["rounds"].copy(),
            "_rounds": t,
            "accuracy_at_5": acc,
            "_accuracy_at_5": ended,
            "query_type": self._s["qt"].copy(),
            "_query_type": t,
            "action_mask": self.action_masks(),
            "_action_mask": t,
        }

    def step(self, actions: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env (NEXT_STEP autoreset; see the module docstring)."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(actions)
        if a.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {a.shape}")
        a = a.astype(np.int64, copy=False)
        if ((a < 0) | (a >= N_ACTIONS)).any():
            raise ValueError(f"actions must be in 0..{N_ACTIONS - 1}, got {a[(a < 0) | (a >= N_ACTIONS)][:5]}")
        self._s, out = kernel.transition(NUMPY, self._tb, self.params, self._s, a)
        reward, terminated, truncated = out["reward"], out["terminated"], out["truncated"]
        intent_gain, acc_info = out["intent_gain"], out["accuracy_at_5"]
        ended = terminated | truncated

        # NEXT_STEP autoreset: sub-envs that ended on the previous call restart now.
        reset_now = self._autoreset
        if reset_now.any():
            idx = np.flatnonzero(reset_now)
            self._episode[idx] += 1
            self._start_episodes(idx)
            reward[idx] = 0.0
            terminated[idx] = False
            truncated[idx] = False
            intent_gain[idx] = 0.0
            acc_info[idx] = np.nan
            ended = ended & ~reset_now
        self._autoreset = terminated | truncated
        infos = self._infos(intent_gain, acc_info, ended)
        return self._observe(), reward, terminated, truncated, infos
