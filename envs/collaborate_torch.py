"""``rl_shop/Collaborate-v0`` batched on torch tensors (CPU or CUDA): the TorchRL training path's env.

The dynamics are the formulas of ``envs.collaborate_kernel`` (shared with the numpy
``CollaborateVectorEnv``) run with ``rl_shop.array_ops.TORCH``. Where the per-episode uniforms come
from is the one choice (``uniforms``):

* ``"numpy"``: the numpy env's generators (``envs.dag.BatchedUniforms``, sub-env i seeded
  ``seed + i``) on the host, with ``ndtri`` by scipy, copied to the device at each restart:
  bit-for-bit the trajectories of ``CollaborateVectorEnv`` (tested), at the cost of a host
  round trip per restart;
* ``"torch"``: ``torch.rand`` from a generator on the device and ``torch.special.ndtri``: no
  host round trip, the same distribution (tested statistically), other draws;
* ``"auto"`` (default): ``"numpy"`` on the CPU, ``"torch"`` on a CUDA device.

Stepping: ``step(actions)`` (``autoreset=True``) is gymnasium's SAME_STEP autoreset like
``CollaborateVectorEnv`` (ended rows come back restarted, with ``info["final_obs"]``);
``step(actions, autoreset=False)`` + ``restart(mask)`` is the TorchRL path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

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
from rl_shop.array_ops import TORCH
from rl_shop.policies.features.collaborate import ACTION_NAMES, CLARIFY, N_FEATURES, PRODUCT_SEARCH, TYPE_ONEHOT

INFO_KEYS: tuple[str, ...] = ("clicked", "purchased", "reformulations", "abandoned", "latency", "rounds")


class CollaborateTorchVectorEnv:
    """``num_envs`` Collaborate-v0 episodes as torch tensors on ``device``; see the module docstring."""

    ACTION_NAMES = ACTION_NAMES
    INFO_KEYS = INFO_KEYS
    n_actions = len(ACTION_NAMES)
    n_features = N_FEATURES
    observation_bounds = (0.0, np.inf)

    def __init__(
        self,
        num_envs: int,
        seed: int | None = None,
        *,
        device: str | torch.device = "cpu",
        uniforms: str = "auto",
        **kwargs: object,
    ) -> None:
        if isinstance(num_envs, bool) or int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}.")
        self.num_envs = B = int(num_envs)
        self.device = torch.device(device)
        if uniforms == "auto":
            uniforms = "torch" if self.device.type == "cuda" else "numpy"
        if uniforms not in ("numpy", "torch"):
            raise ValueError(f"uniforms must be 'auto', 'numpy' or 'torch', got {uniforms!r}")
        self.uniforms = uniforms
        self.params = p = parse_collaborate_kwargs(**kwargs)
        self._T = kernel.CollaborateTables.build(p, lambda a: torch.from_numpy(np.array(a)).to(self.device))
        self._eye = torch.tensor(TYPE_ONEHOT, device=self.device)  # a copy: the numpy table is read-only
        self._default_seed = seed
        self._seeded = False
        self._ar = torch.arange(B, device=self.device)
        self._cols = torch.arange(N_STEP_U, device=self.device)
        self._normal_cols = torch.tensor(STEP_NORMAL_COLS, device=self.device)
        D = p.n_uniforms
        self._U = torch.full((B, D), 0.5, dtype=torch.float64, device=self.device)
        self._Z = torch.zeros((B, D), dtype=torch.float64, device=self.device)  # ndtri(U) (normal columns used)
        self._s = kernel.reset_values(TORCH, self._T, self._U, self._Z[:, RESET_CLARITY_NOISE])  # placeholder rows
        self._gen: torch.Generator | None = None

    # ------------------------------------------------------------------ randomness
    def _seed_all(self, seed: int | None) -> None:
        p = self.params
        if self.uniforms == "numpy":
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
            self._uniforms = BatchedUniforms(seeds, p.n_uniforms, p.rng_block_episodes)
        else:
            self._gen = torch.Generator(device=self.device)
            self._gen.manual_seed(int(seed) if seed is not None else int(torch.seed()))
        self._seeded = True

    def _draw(self, mask: torch.Tensor) -> None:
        """New episode uniforms (and their normal transforms) for the rows in ``mask``."""
        if self.uniforms == "numpy":
            from scipy.special import ndtri

            idx = np.flatnonzero(mask.cpu().numpy())
            if idx.size == 0:
                return
            u = np.clip(self._uniforms.take(idx), _U_EPS, 1.0 - _U_EPS)
            ti = torch.from_numpy(idx).to(self.device)
            self._U[ti] = torch.from_numpy(u).to(self.device)
            self._Z[ti] = torch.from_numpy(ndtri(u)).to(self.device)
        else:
            u = torch.rand(self._U.shape, generator=self._gen, dtype=torch.float64, device=self.device)
            u = torch.clamp(u, _U_EPS, 1.0 - _U_EPS)
            m = mask[:, None]
            self._U = torch.where(m, u, self._U)
            self._Z = torch.where(m, torch.special.ndtri(u), self._Z)

    def _restart_rows(self, mask: torch.Tensor) -> None:
        self._draw(mask)
        start = kernel.reset_values(TORCH, self._T, self._U, self._Z[:, RESET_CLARITY_NOISE])
        m2 = mask[:, None]
        self._s = {k: torch.where(m2 if v.dim() == 2 else mask, v, self._s[k]) for k, v in start.items()}

    # ------------------------------------------------------------------ views
    def observe(self) -> torch.Tensor:
        return kernel.featurize(TORCH, self._s, self._T, self._eye)

    def action_masks(self) -> torch.Tensor:
        return kernel.action_masks(TORCH, self._T, self._s)

    def infos(self) -> dict[str, torch.Tensor]:
        st = self._s
        return {
            "clicked": st["clicks"],
            "purchased": st["purchased"].to(torch.int64),
            "reformulations": st["reform"].to(torch.int64),
            "abandoned": st["abandoned"].to(torch.int64),
            "latency": st["elapsed"],
            "rounds": st["n"][:, CLARIFY],
            "steps": st["steps"],
            "action_mask": self.action_masks(),
        }

    # ------------------------------------------------------------------ API
    def reset(self, seed: int | None = None) -> torch.Tensor:
        if seed is not None or not self._seeded:
            self._seed_all(self._default_seed if seed is None else seed)
        self._restart_rows(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        return self.observe()

    def restart(self, mask: torch.Tensor) -> torch.Tensor:
        """Start the next episode of the sub-envs in ``mask``; returns all observations."""
        self._restart_rows(mask.to(device=self.device, dtype=torch.bool).reshape(self.num_envs))
        return self.observe()

    def step(
        self, actions: torch.Tensor, autoreset: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
        """``(obs, reward, terminated, truncated, info)``; out-of-range actions are clamped."""
        if not self._seeded:
            raise RuntimeError("call reset() before step()")
        T = self._T
        a = (
            torch.as_tensor(actions, device=self.device)
            .reshape(self.num_envs)
            .to(torch.int64)
            .clamp(0, self.n_actions - 1)
        )
        b = kernel.step_block_index(TORCH, T, self._s["steps"])
        idx = b[:, None] + self._cols
        Ub = self._U.gather(1, idx)
        if self.uniforms == "numpy":  # scipy's ndtri, computed on the host at the restart
            Zb = self._Z.gather(1, idx).index_select(1, self._normal_cols)
        else:
            Zb = torch.special.ndtri(Ub.index_select(1, self._normal_cols))
        st, reward, decide, gone = kernel.transition(TORCH, T, self._s, a, Ub, Zb)
        # The Decider's shopper reaction, computed on all rows and kept where deciding.
        elapsed = torch.where(decide, st["elapsed"] + T.decide_latency, st["elapsed"])
        o, K = T.reaction_offset, T.max_rank
        res = kernel.decide_outcome(
            TORCH,
            T,
            elapsed,
            st["tol"],
            st["type"],
            st["R"],
            st["W"],
            st["n"][:, PRODUCT_SEARCH],
            self._U[:, o : o + reaction_columns(K)[-1] + 1],
        )
        react = decide & ~res["abandon"]
        st["elapsed"] = elapsed
        st["clicks"] = torch.where(react, res["clicks"], st["clicks"])
        st["purchased"] = torch.where(react, res["buy"].to(st["purchased"].dtype), st["purchased"])
        st["reform"] = torch.where(react, res["reform"].to(st["reform"].dtype), st["reform"])
        st["abandoned"] = st["abandoned"] | (decide & res["abandon"])
        reward = reward + torch.where(decide, res["reward"], torch.zeros_like(reward))
        self._s = st
        term = decide | gone
        trunc = torch.zeros_like(term)
        obs = self.observe()
        info: dict[str, Any] = self.infos()
        if autoreset:
            info["final_obs"] = obs
            info["final_info"] = {k: v for k, v in info.items() if k not in ("action_mask", "final_obs")}
            info["_final_obs"] = term
            obs = self.restart(term)
            info.update({k: v for k, v in self.infos().items()})
        return obs, reward, term, trunc, info
