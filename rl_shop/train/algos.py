"""Algorithm factory: the `algo` config group -> an SB3 (or tabular) model, and back from disk.

Hyperparameters come verbatim from ``algo.kwargs`` / ``algo.policy_kwargs`` so that every number
a researcher sweeps lives in YAML; this module only maps names to classes and explains mistakes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from rl_shop.train.config import AlgoSettings
from rl_shop.train.errors import TrainConfigError
from rl_shop.train.qlearning import QLearning

Model = BaseAlgorithm | QLearning

SB3_CLASSES: dict[str, type[BaseAlgorithm]] = {
    "dqn": DQN,
    "ppo": PPO,
    "a2c": A2C,
    "maskable_ppo": MaskablePPO,
}

_ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU, "gelu": torch.nn.GELU}


def uses_action_masks(algo: AlgoSettings) -> bool:
    """Whether the model takes `action_masks` in predict (and must get them in evaluation)."""
    return algo.algorithm in ("maskable_ppo", "qlearning")


def _policy_kwargs(algo: AlgoSettings) -> dict[str, Any]:
    pk = dict(algo.policy_kwargs)
    act = pk.get("activation_fn")
    if isinstance(act, str):
        if act.lower() not in _ACTIVATIONS:
            raise TrainConfigError(
                f"algo.policy_kwargs.activation_fn={act!r} unknown; use one of {sorted(_ACTIVATIONS)}"
            )
        pk["activation_fn"] = _ACTIVATIONS[act.lower()]
    if "net_arch" in pk and isinstance(pk["net_arch"], (list, tuple)):
        pk["net_arch"] = [int(x) for x in pk["net_arch"]]
    return pk


def build_model(algo: AlgoSettings, env: VecEnv, seed: int, device: str, verbose: int = 0) -> Model:
    """A fresh model for `env`, seeded; unknown hyperparameter names are a config error."""
    kwargs = dict(algo.kwargs)
    if algo.algorithm == "qlearning":
        try:
            return QLearning(env, seed=seed, **kwargs)
        except TypeError as exc:
            raise TrainConfigError(f"algo.kwargs for qlearning: {exc}") from exc
    cls = SB3_CLASSES[algo.algorithm]
    if algo.algorithm == "maskable_ppo":
        try:
            env.env_method("action_masks", indices=[0])
        except AttributeError:
            raise TrainConfigError(
                f"algo=maskable_ppo needs an env with action_masks(); {env} has none. Use algo=ppo."
            ) from None
    if algo.policy is None:
        raise TrainConfigError(f"algo={algo.name} names no policy (algo.policy); set an SB3 policy such as MlpPolicy")
    try:
        return cls(
            algo.policy,
            env,
            policy_kwargs=_policy_kwargs(algo),
            seed=seed,
            device=device,
            verbose=verbose,
            **kwargs,
        )
    except TypeError as exc:
        raise TrainConfigError(
            f"algo {algo.name!r} ({cls.__name__}) rejected its kwargs {sorted(kwargs)}: {exc}. "
            "Check the key names in configs/algo/ against the SB3 docs."
        ) from exc
    except (AssertionError, ValueError) as exc:
        raise TrainConfigError(f"algo {algo.name!r} ({cls.__name__}) cannot train on this env: {exc}") from exc


def load_model(algo: AlgoSettings, path: Path, env: VecEnv, device: str) -> Model:
    """Reload a checkpoint saved by `save_model` (for resume or evaluation)."""
    if algo.algorithm == "qlearning":
        return QLearning.load(path, env=env)
    cls = SB3_CLASSES[algo.algorithm]
    return cls.load(str(path), env=env, device=device)


def save_model(model: Model, path: Path) -> None:
    """Save weights + optimizer state (SB3 zip) or the Q-table (npz + json)."""
    model.save(str(path) if not isinstance(model, QLearning) else path)
