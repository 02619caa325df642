"""TorchRL views of the torch-batched env kernels (``envs/*_torch.py``), for ``trainer=torchrl``.

``KernelEnv`` is a ``torchrl.envs.EnvBase`` with ``batch_size=[num_envs]`` whose ``_step`` and
``_reset`` call a kernel's ``step(actions, autoreset=False)`` and ``restart(mask)``: observations,
rewards and done flags stay on the kernel's device; partial resets use TorchRL's ``"_reset"``
mask. End-of-episode info quantities (e.g. ``accuracy_at_5``) ride along as ``info_<key>``
entries (NaN mid-episode) so the trainer can log ``episode/<key>`` like the SB3 path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from envs.specs import SPECS
from rl_shop.train.evaluation import EPISODE_SUM_KEYS


def make_kernel(env_id: str, num_envs: int, seed: int, device: str | torch.device, kwargs: dict[str, Any]) -> Any:
    """The torch-batched kernel of ``env_id`` (``EnvSpec.torch_entry_point``); ``ValueError`` naming the ids that have one."""
    have = sorted(s.id for s in SPECS.values() if s.torch_entry_point)
    spec = SPECS.get(env_id)
    if spec is None or spec.torch_entry_point is None:
        raise ValueError(f"trainer=torchrl needs a torch-batched env; {env_id!r} has none (have: {have})")
    try:
        kernel_cls = cast("Callable[..., Any]", spec.load("torch_entry_point"))
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"the torch kernel of {env_id} ({spec.torch_entry_point}) is not available: {exc}") from exc
    return kernel_cls(num_envs, seed=seed, device=device, **kwargs)


class KernelEnv(EnvBase):
    """A torch kernel as a batched TorchRL env (no host round trip per step)."""

    def __init__(self, kernel: Any, seed: int, info_keys: tuple[str, ...] = ()) -> None:
        n = kernel.num_envs
        super().__init__(device=kernel.device, batch_size=torch.Size([n]))
        self.kernel = kernel
        self._seed_value = int(seed)
        self._fresh = True
        self.info_keys = tuple(k for k in info_keys if k in getattr(kernel, "INFO_KEYS", ()))
        # Keys reported as episode sums (intent_gain: the last Clarify step reveals nothing).
        self._sums = {
            k: torch.zeros(n, dtype=torch.float64, device=kernel.device)
            for k in self.info_keys
            if k in EPISODE_SUM_KEYS
        }
        obs_spec = {"observation": Unbounded(shape=(n, kernel.n_features), dtype=torch.float32, device=self.device)}
        for key in self.info_keys:
            obs_spec[f"info_{key}"] = Unbounded(shape=(n,), dtype=torch.float64, device=self.device)
        self.observation_spec = Composite(obs_spec, shape=(n,), device=self.device)
        self.action_spec = Categorical(kernel.n_actions, shape=(n,), dtype=torch.int64, device=self.device)
        self.reward_spec = Unbounded(shape=(n, 1), dtype=torch.float32, device=self.device)

    def _nan_infos(self) -> dict[str, torch.Tensor]:
        nan = torch.full((self.kernel.num_envs,), float("nan"), dtype=torch.float64, device=self.device)
        return {f"info_{k}": nan for k in self.info_keys}

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs: Any) -> TensorDictBase:
        n = self.kernel.num_envs
        mask = None if tensordict is None else tensordict.get("_reset", None)
        if self._fresh or mask is None:
            obs = self.kernel.reset(seed=self._seed_value if self._fresh else None)
            self._fresh = False
            for total in self._sums.values():
                total.zero_()
        else:
            obs = self.kernel.restart(mask.reshape(n))
            for total in self._sums.values():
                total[mask.reshape(n)] = 0.0
        done = torch.zeros((n, 1), dtype=torch.bool, device=self.device)
        return TensorDict(
            {
                "observation": obs,
                "done": done,
                "terminated": done.clone(),
                "truncated": done.clone(),
                **self._nan_infos(),
            },
            batch_size=self.batch_size,
            device=self.device,
        )

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        obs, reward, terminated, truncated, info = self.kernel.step(tensordict.get("action"), autoreset=False)
        out = {
            "observation": obs,
            "reward": reward.to(torch.float32).unsqueeze(-1),
            "done": (terminated | truncated).unsqueeze(-1),
            "terminated": terminated.unsqueeze(-1),
            "truncated": truncated.unsqueeze(-1),
        }
        ended = terminated | truncated
        for key in self.info_keys:
            value = info[key].to(torch.float64)
            if key in self._sums:
                self._sums[key] += value
                value = self._sums[key].clone()
                self._sums[key][ended] = 0.0
            out[f"info_{key}"] = torch.where(ended, value, torch.full_like(value, float("nan")))
        return TensorDict(out, batch_size=self.batch_size, device=self.device)

    def _set_seed(self, seed: int | None) -> None:
        if seed is not None:
            self._seed_value = int(seed)
            self._fresh = True
