"""``rl_shop/Clarify-v0`` batched on torch tensors (CPU or CUDA): the TorchRL training path's env.

The dynamics are the formulas of ``envs.clarify_kernel`` (shared with the numpy
``ClarifyVectorEnv``), run with ``rl_shop.array_ops.TORCH``; sub-env i with seed ``seed + i`` replays
the numpy env's sub-env i bit for bit (tested). Restarted rows are written back with ``where``
over all rows, so a step on a CUDA device never waits for the host.

Two ways to step:

* ``step(actions)`` (``autoreset=True``, default): gymnasium's NEXT_STEP autoreset, exactly as
  ``ClarifyVectorEnv`` (the step after an end restarts the sub-env, with reward 0);
* ``step(actions, autoreset=False)`` then ``restart(mask)``: the caller restarts ended rows
  itself (TorchRL's ``_reset`` with a ``"_reset"`` mask), with no dummy step in between.
"""

from __future__ import annotations

import numpy as np
import torch

from envs import clarify_kernel as kernel
from envs.clarify import ACTION_NAMES, N_ACTIONS, resolve_params, resolve_pool
from envs.intent_pool import IntentPool
from rl_shop.array_ops import TORCH, signed64
from rl_shop.policies.features.clarify import N_FEATURES

INFO_KEYS: tuple[str, ...] = ("intent_gain", "rounds", "accuracy_at_5")


class ClarifyTorchVectorEnv:
    """``num_envs`` Clarify-v0 shoppers as torch tensors on ``device``.

    Arguments as ``envs.clarify_batched.ClarifyVectorEnv`` plus ``device``. Observations are
    float32 ``(n, 47)``; rewards float64 ``(n,)``; ``terminated`` / ``truncated`` bool ``(n,)``.
    """

    ACTION_NAMES = ACTION_NAMES
    INFO_KEYS = INFO_KEYS
    n_actions = N_ACTIONS
    n_features = N_FEATURES

    def __init__(
        self,
        num_envs: int,
        seed: int | None = None,
        *,
        device: str | torch.device = "cpu",
        intent_pool: IntentPool | None = None,
        **kwargs: object,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.num_envs = n = int(num_envs)
        self.device = torch.device(device)
        self.params = resolve_params(**kwargs)
        self.pool = resolve_pool(self.params, intent_pool)
        self._tb = kernel.make_tables(
            self.pool, self.params.normalize_gain, lambda a: torch.from_numpy(np.array(a)).to(self.device)
        )
        self._default_seed = seed
        z = lambda dt=torch.int64: torch.zeros(n, dtype=dt, device=self.device)  # noqa: E731
        self._keys = z()
        self._episode = z()
        self._s: dict[str, torch.Tensor] = {
            k: z(torch.float64 if k == "h" else torch.int64) for k in kernel.STATE_FIELDS
        }
        self._autoreset = z(torch.bool)
        self._started = False

    # ------------------------------------------------------------------ state
    def _merge_start(self, mask: torch.Tensor) -> None:
        start = kernel.episode_start(TORCH, self._tb, self._keys, self._episode)
        for k, v in start.items():
            self._s[k] = torch.where(mask, v, self._s[k])

    def observe(self) -> torch.Tensor:
        return kernel.featurize(TORCH, self._tb, self._s, self.params.max_rounds)

    def action_masks(self) -> torch.Tensor:
        return kernel.action_masks(self._tb, self._s)

    def infos(self) -> dict[str, torch.Tensor]:
        return {"rounds": self._s["rounds"], "query_type": self._s["qt"], "action_mask": self.action_masks()}

    # ------------------------------------------------------------------ API
    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset every sub-env (sub-env i seeded ``seed + i``); returns the observations."""
        if seed is None and not self._started:
            seed = self._default_seed
        n = self.num_envs
        if seed is None:
            if self._started:
                self._episode += 1
            else:
                base = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> np.uint64(1))
                self._keys = torch.tensor([signed64(base + k) for k in range(n)], device=self.device)
                self._episode.zero_()
        else:
            self._keys = torch.tensor(
                [signed64(int(seed) + k) for k in range(n)], dtype=torch.int64, device=self.device
            )
            self._episode.zero_()
        self._started = True
        self._merge_start(torch.ones(n, dtype=torch.bool, device=self.device))
        self._autoreset.zero_()
        return self.observe()

    def restart(self, mask: torch.Tensor) -> torch.Tensor:
        """Start the next episode of the sub-envs in ``mask`` (bool ``(n,)``); all observations."""
        mask = mask.to(device=self.device, dtype=torch.bool).reshape(self.num_envs)
        self._episode = self._episode + mask.to(torch.int64)
        self._merge_start(mask)
        self._autoreset = self._autoreset & ~mask
        return self.observe()

    def step(
        self, actions: torch.Tensor, autoreset: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Step every sub-env; ``(obs, reward, terminated, truncated, info)`` as tensors.

        ``info`` holds ``intent_gain``, ``accuracy_at_5`` (NaN where no episode ended), ``rounds``,
        ``query_type``, ``action_mask``. Actions are not range-checked on the device (that would
        synchronise); out-of-range actions are clamped to a valid id.
        """
        if not self._started:
            raise RuntimeError("call reset() before step()")
        a = torch.as_tensor(actions, device=self.device).reshape(self.num_envs).to(torch.int64)
        a = torch.clamp(a, 0, N_ACTIONS - 1)
        self._s, out = kernel.transition(TORCH, self._tb, self.params, self._s, a)
        if autoreset:
            reset_now = self._autoreset
            self._episode = self._episode + reset_now.to(torch.int64)
            self._merge_start(reset_now)
            zero = torch.zeros((), dtype=torch.float64, device=self.device)
            for key in ("reward", "intent_gain"):
                out[key] = torch.where(reset_now, zero, out[key])
            out["accuracy_at_5"] = torch.where(reset_now, zero + float("nan"), out["accuracy_at_5"])
            out["terminated"] = out["terminated"] & ~reset_now
            out["truncated"] = out["truncated"] & ~reset_now
            self._autoreset = out["terminated"] | out["truncated"]
        info = self.infos()
        info["intent_gain"] = out["intent_gain"]
        info["accuracy_at_5"] = out["accuracy_at_5"]
        return self.observe(), out["reward"], out["terminated"], out["truncated"], info
