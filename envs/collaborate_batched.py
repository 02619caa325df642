"""Batched numpy version of ``rl_shop/Collaborate-v0``: many shoppers advanced per call.

Same dynamics as :class:`envs.collaborate.CollaborateEnv` over ``(num_envs,)`` arrays. Sub-env
``i`` draws its episodes from a generator seeded ``seed + i`` with the same fixed per-episode
block of uniforms as the single env, so both agree step for step on the same seeds and actions
(tested). Autoreset is SAME_STEP: finished sub-envs return the next episode's first
observation, with ``info["final_obs"]`` / ``info["final_info"]`` (numeric arrays + masks).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from scipy.special import ndtri

from envs import collaborate_kernel as kernel
from envs.collaborate import (
    _U_EPS,
    N_STEP_U,
    RESET_CLARITY_NOISE,
    STEP_NORMAL_COLS,
    parse_collaborate_kwargs,
    reaction_columns,
)
from envs.dag import BatchedUniforms
from rl_shop.array_ops import NUMPY
from rl_shop.policies.features.collaborate import (
    ACTION_NAMES,
    CLARIFY,
    FEATURE_NAMES,
    LAYOUT_VERSION,
    PRODUCT_SEARCH,
    REPLAN,
    WEB_SEARCH,
    featurize_batch,
)
from rl_shop.sim.shopper import abandon_probability

_STEP_COLS = np.arange(N_STEP_U)
_NORMAL_STEP_COLS = np.array(STEP_NORMAL_COLS)  # search noise, Relevance / satisfaction / clarity estimates
_OUTCOME_KEYS = ("clicked", "purchased", "reformulations", "abandoned", "latency", "rounds", "steps")


def abandon_probability_batch(
    latency_s: np.ndarray, tolerance_s: np.ndarray, base_p: float, scale_s: float
) -> np.ndarray:
    """``rl_shop.sim.shopper.abandon_probability`` over numpy arrays."""
    return abandon_probability(np.asarray(latency_s), np.asarray(tolerance_s), base_p, scale_s, ops=NUMPY)


class CollaborateVectorEnv(VectorEnv):
    """``num_envs`` independent Collaborate-v0 episodes in numpy arrays; see ``CollaborateEnv``.

    Arguments: ``num_envs``, ``seed`` (sub-env ``i`` uses ``seed + i``) and the keyword
    arguments of ``CollaborateEnv``. ``info`` holds arrays ``clicked``, ``purchased``,
    ``reformulations``, ``abandoned``, ``latency``, ``rounds``, ``steps``, ``action_mask``.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
    ACTION_NAMES = ACTION_NAMES

    def __init__(self, num_envs: int, seed: int | None = None, **kwargs: object) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}.")
        self.params = p = parse_collaborate_kwargs(**kwargs)
        self.num_envs = B = int(num_envs)
        self.FEATURE_NAMES = FEATURE_NAMES
        self.LAYOUT_VERSION = LAYOUT_VERSION
        self.single_action_space = spaces.Discrete(len(ACTION_NAMES))
        self.single_observation_space = spaces.Box(0.0, np.inf, (len(FEATURE_NAMES),), np.float32)
        self.action_space = batch_space(self.single_action_space, B)
        self.observation_space = batch_space(self.single_observation_space, B)
        self._seed = seed
        self._seeded = False
        self._T = kernel.CollaborateTables.build(p)
        self._U = np.zeros((B, p.n_uniforms))
        # Own arrays per field (reset_values may return one zeros array for several fields).
        placeholder = kernel.reset_values(NUMPY, self._T, np.full((B, p.n_uniforms), 0.5), np.zeros(B))
        self._s: dict[str, np.ndarray] = {k: np.array(v, copy=True) for k, v in placeholder.items()}
        self._ar = np.arange(B)

    # ------------------------------------------------------------------ randomness / reset
    def _seed_all(self, seed: int | None) -> None:
        p = self.params
        seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        self._uniforms = BatchedUniforms(seeds, p.n_uniforms, p.rng_block_episodes)
        self._seeded = True

    def _reset_envs(self, idx: np.ndarray) -> None:
        u = np.clip(self._uniforms.take(idx), _U_EPS, 1.0 - _U_EPS)
        self._U[idx] = u
        # Normal noise is ndtri of a clipped uniform; the step columns are transformed when
        # used (step), so a reset only pays for the clarity-estimate noise of column 8.
        start = kernel.reset_values(NUMPY, self._T, u, ndtri(u[:, RESET_CLARITY_NOISE]))
        for k, v in start.items():
            self._s[k][idx] = v

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None or not self._seeded:
            self._seed_all(self._seed if seed is None else seed)
        self._reset_envs(np.arange(self.num_envs))
        return self._obs(), self._info()

    # ------------------------------------------------------------------ dynamics
    def action_masks(self) -> np.ndarray:
        """``(num_envs, 5)`` valid actions (rules in ``CollaborateEnv``)."""
        return kernel.action_masks(NUMPY, self._T, self._s)

    def _decide(self, sel: np.ndarray) -> np.ndarray:
        """Shopper reaction for the selected sub-envs; returns their reward (0 elsewhere).

        Computed on the selected rows only (about a quarter of them per step): the same
        element-wise formulas as over all rows, at a quarter of the cost.
        """
        st, T = self._s, self._T
        i = np.flatnonzero(sel)
        elapsed = st["elapsed"][i] + T.decide_latency
        st["elapsed"][i] = elapsed
        o, K = T.reaction_offset, T.max_rank
        res = kernel.decide_outcome(
            NUMPY, T, elapsed, st["tol"][i], st["type"][i], st["R"][i], st["W"][i],
            st["n"][i, PRODUCT_SEARCH], self._U[i, o : o + reaction_columns(K)[-1] + 1],
        )  # fmt: skip
        react = ~res["abandon"]
        ir = i[react]
        st["clicks"][ir] = res["clicks"][react]
        st["purchased"][ir] = res["buy"][react]
        st["reform"][ir] = res["reform"][react]
        st["abandoned"][i] |= res["abandon"]
        out = np.zeros(self.num_envs)
        out[i] = res["reward"]
        return out

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        a = np.asarray(actions, dtype=np.int64).reshape(-1)
        if a.shape[0] != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions, got shape {np.shape(actions)}.")
        if a.min() < 0 or a.max() >= 5:
            raise ValueError(f"actions must be in 0..4 {ACTION_NAMES}, got {a}.")
        ar = self._ar
        b = kernel.step_block_index(NUMPY, self._T, self._s["steps"])
        # This step's block of 5 uniforms per sub-env; columns 0, 2, 3, 4 are normal noise.
        Ub = self._U[ar[:, None], b[:, None] + _STEP_COLS]
        Zb = ndtri(Ub[:, _NORMAL_STEP_COLS])
        self._s, reward, decide, gone = kernel.transition(NUMPY, self._T, self._s, a, Ub, Zb)
        if decide.any():
            reward += self._decide(decide)
        term = decide | gone
        trunc = np.zeros(self.num_envs, dtype=bool)
        obs = self._obs()
        info = self._info()
        if term.any():
            final_obs = obs.copy()
            final = {k: info[k].copy() for k in _OUTCOME_KEYS}
            final.update({f"_{k}": term for k in _OUTCOME_KEYS})
            idx = np.flatnonzero(term)
            self._reset_envs(idx)
            obs[idx] = self._obs(idx)  # only the restarted rows change
            info = self._info()
            info["final_obs"], info["_final_obs"], info["final_info"] = final_obs, term, final
        return obs, reward, term, trunc, info

    # ------------------------------------------------------------------ views
    def _obs(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Observation rows of the sub-envs ``idx`` (all by default)."""
        p, st = self.params, self._s
        n = st["n"][idx]
        return featurize_batch(
            st["pred"][idx], st["conf"][idx], st["steps"][idx], p.max_steps, st["elapsed"][idx],
            n[:, CLARIFY], n[:, PRODUCT_SEARCH], n[:, WEB_SEARCH], n[:, REPLAN],
            st["rhat"][idx], st["uhat"][idx], st["chat"][idx], p.gamma, p.replan_threshold,
        )  # fmt: skip

    def _info(self) -> dict[str, Any]:
        st = self._s
        return {
            "clicked": st["clicks"].copy(),
            "purchased": st["purchased"].astype(np.int64),
            "reformulations": st["reform"].astype(np.int64),
            "abandoned": st["abandoned"].astype(np.int64),
            "latency": st["elapsed"].copy(),
            "rounds": st["n"][:, CLARIFY].copy(),
            "steps": st["steps"].copy(),
            "action_mask": self.action_masks(),
        }
