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

from envs.dag import BatchedUniforms
from envs.collaborate import _U_EPS, N_RESET_U, N_STEP_U, parse_collaborate_kwargs
from rl_shop.policies.features.collaborate import (
    ACTION_NAMES,
    CLARIFY,
    DECIDE,
    FEATURE_NAMES,
    LAYOUT_VERSION,
    PRODUCT_SEARCH,
    REPLAN,
    WEB_SEARCH,
    featurize_batch,
)
from rl_shop.sim.slots import QUERY_TYPES

_STEP_COLS = np.arange(N_STEP_U)
_NORMAL_STEP_COLS = np.array([0, 2, 3, 4])  # search noise, Relevance / satisfaction / clarity estimates
_OUTCOME_KEYS = ("clicked", "purchased", "reformulations", "abandoned", "latency", "rounds", "steps")


def abandon_probability_batch(
    latency_s: np.ndarray, tolerance_s: np.ndarray, base_p: float, scale_s: float
) -> np.ndarray:
    """Vectorised ``rl_shop.sim.shopper.abandon_probability`` (same formula, tested equal)."""
    over = np.maximum(latency_s - tolerance_s, 0.0)
    return np.where(latency_s <= tolerance_s, base_p, 1.0 - (1.0 - base_p) * np.exp(-over / scale_s))


class CollaborateVectorEnv(VectorEnv):
    """``num_envs`` independent Collaborate-v0 episodes in numpy arrays; see ``CollaborateEnv``.

    Arguments: ``num_envs``, ``seed`` (sub-env ``i`` uses ``seed + i``) and the keyword
    arguments of ``CollaborateEnv``. ``info`` holds arrays ``clicked``, ``purchased``,
    ``reformulations``, ``abandoned``, ``latency``, ``rounds``, ``steps``, ``action_mask``.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
    ACTION_NAMES = ACTION_NAMES

    def __init__(self, num_envs: int, seed: int | None = None, **kwargs: Any) -> None:
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
        self._cost = p.c_latency * p.latency + p.c_compute * p.compute
        ranks = np.arange(1, p.max_rank + 1, dtype=np.float64)
        exam = 1.0 / ranks**p.examination_eta
        self._ea_rel = exam * p.attr_relevant
        self._ea_irr = exam * p.attr_irrelevant
        D = p.n_uniforms
        self._U = np.zeros((B, D))
        f = lambda dt=np.float64: np.zeros(B, dtype=dt)  # noqa: E731
        self._type, self._pred, self._patience = f(np.int64), f(np.int64), f(np.int64)
        self._c, self._tol, self._conf, self._R, self._W = f(), f(), f(), f(), f()
        self._bad = f(bool)
        self._steps = f(np.int64)
        self._elapsed = f()
        self._n = np.zeros((B, 5), dtype=np.int64)
        self._rhat, self._uhat, self._chat = f(), f(), f()
        self._clicks, self._purchased, self._reform = f(np.int64), f(np.int64), f(np.int64)
        self._abandoned = f(bool)
        self._ar = np.arange(B)

    # ------------------------------------------------------------------ randomness / reset
    def _seed_all(self, seed: int | None) -> None:
        p = self.params
        seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        self._uniforms = BatchedUniforms(seeds, p.n_uniforms, p.rng_block_episodes)
        self._seeded = True

    def _reset_envs(self, idx: np.ndarray) -> None:
        p = self.params
        u = np.clip(self._uniforms.take(idx), _U_EPS, 1.0 - _U_EPS)
        self._U[idx] = u
        # Normal noise is ndtri of a clipped uniform; the step columns are transformed when
        # used (step), so a reset only pays for the clarity-estimate noise of column 8.
        z8 = ndtri(u[:, 8])
        t = np.minimum(np.searchsorted(p.type_cum, u[:, 0], side="right"), len(QUERY_TYPES) - 1)
        self._type[idx] = t
        self._c[idx] = p.clarity_lo[t] + u[:, 1] * (p.clarity_hi[t] - p.clarity_lo[t])
        span = p.patience_hi - p.patience_lo + 1
        self._patience[idx] = p.patience_lo + np.minimum((u[:, 2] * span).astype(np.int64), span - 1)
        self._tol[idx] = p.tolerance_lo + u[:, 3] * (p.tolerance_hi - p.tolerance_lo)
        self._bad[idx] = u[:, 4] < p.p_bad_plan[t]
        correct = u[:, 5] < p.type_accuracy[t]
        k = np.minimum((u[:, 6] * 7).astype(np.int64), 6)
        self._pred[idx] = np.where(correct, t, np.where(k < t, k, k + 1))
        lo = np.where(correct, p.conf_correct[0], p.conf_wrong[0])
        hi = np.where(correct, p.conf_correct[1], p.conf_wrong[1])
        self._conf[idx] = lo + u[:, 7] * (hi - lo)
        self._R[idx] = 0.0
        self._W[idx] = 0.0
        self._steps[idx] = 0
        self._elapsed[idx] = 0.0
        self._n[idx] = 0
        self._rhat[idx] = 0.0
        self._uhat[idx] = 0.0
        self._chat[idx] = np.clip(self._c[idx] + p.predict_noise_sd * z8, 0.0, 1.0)
        self._clicks[idx] = 0
        self._purchased[idx] = 0
        self._reform[idx] = 0
        self._abandoned[idx] = False

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
        p, n, s = self.params, self._n, self._steps
        searched = (n[:, PRODUCT_SEARCH] + n[:, WEB_SEARCH]) > 0
        early = s <= p.max_steps - 3
        can_search = s <= p.max_steps - 2
        return np.stack(
            [
                early & (n[:, CLARIFY] < p.max_clarify),
                can_search,
                can_search,
                early & searched & (n[:, REPLAN] < p.max_replan),
                searched | (s >= p.max_steps - 1),
            ],
            axis=1,
        )

    def _relevance(self) -> np.ndarray:
        return self._R * np.minimum(1.0, self._n[:, PRODUCT_SEARCH] / self.params.min_ps[self._type])

    def _satisfaction(self, rel: np.ndarray) -> np.ndarray:
        wn = self.params.web_need[self._type]
        return (1.0 - wn) * rel + wn * self._W

    def _decide(self, sel: np.ndarray) -> np.ndarray:
        """Shopper reaction for the selected sub-envs; returns their reward (0 elsewhere).

        Computed on the selected rows only (about a quarter of them per step): the same
        element-wise formulas as over all rows, at a quarter of the cost.
        """
        p = self.params
        i = np.flatnonzero(sel)
        elapsed = self._elapsed[i] + p.latency[DECIDE]
        self._elapsed[i] = elapsed
        o, K = p.reaction_offset, p.max_rank
        R = self._U[i, o : o + 2 + 3 * K]  # the reaction block of the deciding sub-envs
        p_ab = abandon_probability_batch(elapsed, self._tol[i], p.abandon_base_p, p.abandon_scale_s)
        abandon = R[:, 0] < p_ab
        react = ~abandon
        t = self._type[i]
        relevance = self._R[i] * np.minimum(1.0, self._n[i, PRODUCT_SEARCH] / p.min_ps[t])
        wn = p.web_need[t]
        q = (1.0 - wn) * relevance + wn * self._W[i]  # _satisfaction on these rows
        rel = R[:, 1 : 1 + K] < q[:, None]
        click = R[:, 1 + K : 1 + 2 * K] < np.where(rel, self._ea_rel, self._ea_irr)
        buy = (click & rel & (R[:, 1 + 2 * K : 1 + 3 * K] < p.p_purchase)).any(axis=1)
        n_rel_top = rel[:, : p.reformulate_top_k].sum(axis=1)
        reform = ~buy & (n_rel_top == 0) & (R[:, 1 + 3 * K] < p.p_reformulate)
        clicks = click.sum(axis=1)
        ir = i[react]
        self._clicks[ir] = clicks[react]
        self._purchased[ir] = buy[react]
        self._reform[ir] = reform[react]
        self._abandoned[i] |= abandon
        gain = p.w_click * clicks + p.w_purchase * buy - p.w_reformulation * reform
        out = np.zeros(self.num_envs)
        out[i] = -self._cost[DECIDE] + np.where(abandon, -p.w_abandon, gain)
        return out

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        a = np.asarray(actions, dtype=np.int64).reshape(-1)
        if a.shape[0] != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions, got shape {np.shape(actions)}.")
        if a.min() < 0 or a.max() >= 5:
            raise ValueError(f"actions must be in 0..4 {ACTION_NAMES}, got {a}.")
        p = self.params
        ar = self._ar
        valid = self.action_masks()[ar, a]
        s = self._steps.copy()
        self._steps += 1
        searched_before = (self._n[:, PRODUCT_SEARCH] + self._n[:, WEB_SEARCH]) > 0
        self._n[ar, a] += valid
        reward = np.where(valid, 0.0, -p.c_invalid)
        # invalid actions that use up the last step: forced decide, or abandonment if no search
        out_of_steps = ~valid & (self._steps >= p.max_steps)
        forced_quit = out_of_steps & ~searched_before
        decide = (valid & (a == DECIDE)) | (out_of_steps & searched_before)
        act = valid & (a != DECIDE)
        reward -= np.where(act, self._cost[a], 0.0)
        self._elapsed = np.where(act, self._elapsed + p.latency[a], self._elapsed)
        b = N_RESET_U + N_STEP_U * np.minimum(s, p.max_steps - 1)
        U = self._U
        # This step's block of 5 uniforms per sub-env; columns 0, 2, 3, 4 are normal noise.
        Ub = U[ar[:, None], b[:, None] + _STEP_COLS]
        Zb = ndtri(Ub[:, _NORMAL_STEP_COLS])
        t = self._type
        quit_ = act & (a == CLARIFY) & (self._n[:, CLARIFY] > self._patience)
        clar = act & (a == CLARIFY) & ~quit_
        self._c = np.where(clar, self._c + p.clarify_gain[t] * (1.0 - self._c), self._c)
        z_b = Zb[:, 0]
        ps = act & (a == PRODUCT_SEARCH)
        mean = p.rel_max[t] * (p.clarity_floor + (1.0 - p.clarity_floor) * self._c)
        mean = np.where(self._bad, mean * p.bad_plan_factor, mean)
        new = np.clip(mean + p.search_noise_sd * z_b, 0.0, 1.0)
        self._R = np.where(ps & (new > self._R), new, self._R)
        ws = act & (a == WEB_SEARCH)
        gain = np.clip(p.web_gain[t] + p.search_noise_sd * z_b, 0.0, 1.0)
        self._W = np.where(ws, self._W + gain * (1.0 - self._W), self._W)
        rp = act & (a == REPLAN) & self._bad & (Ub[:, 1] < p.p_replan_fix)
        self._bad &= ~rp
        upd = act & ~quit_
        rel = self._relevance()
        sd = p.predict_noise_sd
        searched = upd & ((self._n[:, PRODUCT_SEARCH] + self._n[:, WEB_SEARCH]) > 0)
        self._rhat = np.where(searched, np.clip(rel + sd * Zb[:, 1], 0.0, 1.0), self._rhat)
        sat = self._satisfaction(rel)
        self._uhat = np.where(searched, np.clip(sat + sd * Zb[:, 2], 0.0, 1.0), self._uhat)
        self._chat = np.where(upd, np.clip(self._c + sd * Zb[:, 3], 0.0, 1.0), self._chat)
        gone = quit_ | forced_quit
        self._abandoned |= gone
        reward -= np.where(gone, p.w_abandon, 0.0)
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
        p, n = self.params, self._n[idx]
        return featurize_batch(
            self._pred[idx], self._conf[idx], self._steps[idx], p.max_steps, self._elapsed[idx],
            n[:, CLARIFY], n[:, PRODUCT_SEARCH], n[:, WEB_SEARCH], n[:, REPLAN],
            self._rhat[idx], self._uhat[idx], self._chat[idx], p.gamma, p.replan_threshold,
        )  # fmt: skip

    def _info(self) -> dict[str, Any]:
        return {
            "clicked": self._clicks.copy(),
            "purchased": self._purchased.copy(),
            "reformulations": self._reform.copy(),
            "abandoned": self._abandoned.astype(np.int64),
            "latency": self._elapsed.copy(),
            "rounds": self._n[:, CLARIFY].copy(),
            "steps": self._steps.copy(),
            "action_mask": self.action_masks(),
        }
