"""Adapter: a Gymnasium 1.x ``VectorEnv`` (our batched numpy envs) seen as an SB3 ``VecEnv``.

Gymnasium and SB3 disagree on three things, which this class reconciles:

* autoreset: SB3 wants the reset observation returned in the same step as ``done`` with the
  last observation in ``info["terminal_observation"]``.  Gymnasium's SAME_STEP mode gives
  exactly that (``info["final_obs"]``); NEXT_STEP mode is handled by resetting the finished
  sub-envs at once through ``reset(options={"reset_mask": done})``.
* infos: Gymnasium returns one dict of arrays (with ``_key`` presence masks); SB3 wants one
  dict per env.
* episode statistics: SB3's logger reads ``info["episode"] = {"r", "l", "t"}`` (Monitor's
  format), which we compute here since a vector env is not wrapped by Monitor.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn


class GymnasiumVectorAdapter(VecEnv):
    """SB3 view of a ``gymnasium.vector.VectorEnv``; ``action_masks()`` passes through."""

    def __init__(self, vector_env: gym.vector.VectorEnv, seed: int | None = None) -> None:
        self.venv = vector_env
        super().__init__(vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space)
        mode = vector_env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        self._mode = AutoresetMode(mode) if not isinstance(mode, AutoresetMode) else mode
        if self._mode not in (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP):
            raise ValueError(f"autoreset mode {self._mode} is not supported; use SAME_STEP or NEXT_STEP")
        self._seed = seed
        self._actions: np.ndarray | None = None
        self._ep_returns = np.zeros(self.num_envs, dtype=np.float64)
        self._ep_lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._t0 = time.time()

    # -- core API ---------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        obs, infos = self.venv.reset(seed=self._seed)
        self._seed = None  # seed once; later resets continue the RNG stream
        self.reset_infos = self._split_infos(infos)
        self._ep_returns[:] = 0.0
        self._ep_lengths[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None, "step_async must be called before step_wait"
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        dones = np.logical_or(terminated, truncated)
        info_list = self._split_infos(infos)
        self._ep_returns += rewards
        self._ep_lengths += 1
        final_obs = None
        if self._mode == AutoresetMode.SAME_STEP and dones.any():
            final_obs = infos.get("final_obs")
        elif self._mode == AutoresetMode.NEXT_STEP and dones.any():
            final_obs = obs.copy()
            reset_obs, reset_infos = self.venv.reset(options={"reset_mask": dones})
            obs = np.where(dones.reshape((-1,) + (1,) * (obs.ndim - 1)), reset_obs, obs)
        for i in np.flatnonzero(dones):
            if final_obs is not None:
                info_list[i]["terminal_observation"] = final_obs[i]
            final_info = infos.get("final_info")
            if isinstance(final_info, dict):  # SAME_STEP: the finished episode's info lives here
                info_list[i].update(self._split_infos(final_info)[i])
            info_list[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            info_list[i]["episode"] = {
                "r": float(self._ep_returns[i]),
                "l": int(self._ep_lengths[i]),
                "t": round(time.time() - self._t0, 6),
            }
            self._ep_returns[i] = 0.0
            self._ep_lengths[i] = 0
        return obs, rewards.astype(np.float32), dones, info_list

    def close(self) -> None:
        self.venv.close()

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        self._seed = seed
        return [None if seed is None else seed + i for i in range(self.num_envs)]

    # -- attribute access -------------------------------------------------------------------
    def action_masks(self) -> np.ndarray:
        """(num_envs, n_actions) validity masks from the batched env."""
        # ``call`` is on Sync/AsyncVectorEnv (and forwarded by wrappers), not on the VectorEnv base
        venv: Any = self.venv
        return np.asarray(venv.call("action_masks") if not hasattr(venv, "action_masks") else venv.action_masks())

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: object, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: object, indices: VecEnvIndices = None, **method_kwargs: object
    ) -> list[Any]:
        idx = list(self._get_indices(indices))
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[i] for i in idx]
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def _split_infos(self, infos: dict[str, Any]) -> list[dict[str, Any]]:
        """Gymnasium's dict-of-arrays (with `_key` masks) -> one dict per env."""
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for key, values in infos.items():
            if key.startswith("_") or key in ("final_obs", "final_info"):
                continue
            present = infos.get(f"_{key}")
            for i in range(self.num_envs):
                if present is None or present[i]:
                    try:
                        out[i][key] = values[i]
                    except (TypeError, IndexError, KeyError):
                        out[i][key] = values
        return out
