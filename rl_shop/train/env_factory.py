"""Build training / evaluation environments from the `env` and `hardware` config groups.

One function per job: a single seeded env (evaluation, baselines), and the vectorised training
env in the kind the hardware config asks for (DummyVecEnv, SubprocVecEnv, or our native batched
numpy env behind an SB3 adapter).  Any registered Gymnasium id works; ids in the ``rl_shop/``
namespace are registered by importing the ``envs`` package on demand.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from rl_shop.train.config import EnvSettings, HardwareSettings
from rl_shop.train.errors import TrainConfigError


def ensure_registered(env_id: str) -> None:
    """Make sure `env_id` is registered (importing ``envs`` for our namespace) or explain why not."""
    if env_id.startswith("rl_shop/"):
        try:
            importlib.import_module("envs")
        except ImportError as exc:
            raise TrainConfigError(
                f"env id {env_id!r} needs the `envs` package, which failed to import: {exc}"
            ) from exc
    if env_id not in gym.registry:
        ours = sorted(k for k in gym.registry if k.startswith("rl_shop/"))
        raise TrainConfigError(
            f"unknown environment id {env_id!r}. Registered rl_shop envs: {ours or 'none'}; "
            "pick one with env=clarify|schedule|collaborate, or any Gymnasium id with "
            "`env=gym env.id=<Id>`."
        )


def make_env(env_cfg: EnvSettings, seed: int | None = None, monitor: bool = False) -> gym.Env:
    """One environment instance; reset once with `seed` so its RNG stream is fixed."""
    ensure_registered(env_cfg.id)
    try:
        env = gym.make(env_cfg.id, **env_cfg.kwargs)
    except TypeError as exc:
        raise TrainConfigError(f"env {env_cfg.id!r} rejected env.kwargs={env_cfg.kwargs}: {exc}") from exc
    if monitor:
        env = Monitor(env)
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def _env_thunk(env_cfg: EnvSettings, seed: int) -> Callable[[], gym.Env]:
    def thunk() -> gym.Env:
        return make_env(env_cfg, seed=seed, monitor=True)

    return thunk


def make_vec_env(env_cfg: EnvSettings, hardware: HardwareSettings, seed: int) -> VecEnv:
    """The training VecEnv: env i is seeded with seed + i; episodes are Monitor-recorded."""
    ensure_registered(env_cfg.id)
    n = hardware.n_envs
    if hardware.vec_env == "batched":
        return _make_batched(env_cfg, n, seed)
    thunks = [_env_thunk(env_cfg, seed + i) for i in range(n)]
    if hardware.vec_env == "subproc":
        vec: VecEnv = SubprocVecEnv(thunks, start_method=hardware.start_method)
    else:
        vec = DummyVecEnv(thunks)
    vec.seed(seed)
    return vec


def _make_batched(env_cfg: EnvSettings, n: int, seed: int) -> VecEnv:
    from rl_shop.train.vec_adapter import GymnasiumVectorAdapter

    try:
        envs_pkg = importlib.import_module("envs")
        make_batched: Callable[..., Any] = envs_pkg.make_batched
    except (ImportError, AttributeError) as exc:
        raise TrainConfigError(
            f"hardware.vec_env=batched needs envs.make_batched ({exc}); use hardware=cpu (dummy) instead"
        ) from exc
    try:
        vector_env = make_batched(env_cfg.id, n, seed=seed, **env_cfg.kwargs)
    except (KeyError, ValueError) as exc:
        raise TrainConfigError(
            f"envs.make_batched has no batched version of {env_cfg.id!r} ({exc}); use hardware=cpu"
        ) from exc
    return GymnasiumVectorAdapter(vector_env, seed=seed)
