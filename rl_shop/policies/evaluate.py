"""Roll a ``Policy`` through any of the project's Gymnasium envs and summarize what happened.

Generic on purpose: it only relies on the Gymnasium API, ``info["action_mask"]`` or an
``action_masks()`` method for validity masks, and numeric scalars in the final ``info`` (e.g.
``accuracy_at_5``, ``rounds``), so heuristics, exported networks and random baselines are
compared by the same code on Clarify, Schedule and Collaborate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import gymnasium as gym
import numpy as np

from rl_shop.policies.base import Policy


@dataclass(frozen=True)
class EvalResult:
    """Returns and episode statistics of one evaluation run."""

    n_episodes: int
    mean_return: float
    std_return: float
    mean_length: float
    returns: np.ndarray = field(repr=False)
    final_info_means: dict[str, float] = field(default_factory=dict)

    @property
    def stderr_return(self) -> float:
        """Standard error of the mean return."""
        return self.std_return / math.sqrt(self.n_episodes) if self.n_episodes > 1 else math.nan


class RandomPolicy:
    """Uniform over the valid actions (all actions when no mask is given); the floor baseline."""

    def __init__(self, n_actions: int, seed: int = 0) -> None:
        if n_actions < 1:
            raise ValueError(f"n_actions must be >= 1, got {n_actions}")
        self.n_actions = int(n_actions)
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray, action_mask: np.ndarray | None = None) -> int:
        """A random valid action."""
        if action_mask is None:
            return int(self.rng.integers(self.n_actions))
        valid = np.flatnonzero(np.asarray(action_mask, dtype=bool))
        if valid.size == 0:
            raise ValueError("the action mask allows no action")
        return int(valid[self.rng.integers(valid.size)])


def _mask(env: gym.Env, info: dict[str, Any]) -> np.ndarray | None:
    if "action_mask" in info:
        return np.asarray(info["action_mask"], dtype=bool)
    try:
        method = env.get_wrapper_attr("action_masks")
    except AttributeError:
        return None
    return np.asarray(method(), dtype=bool)


def evaluate_policy(env: gym.Env, policy: Policy, n_episodes: int, seed: int) -> EvalResult:
    """Run ``n_episodes`` episodes; the first reset uses ``seed``, the next ones continue its stream.

    Works with any single (non-vector) Gymnasium env. Numeric scalar entries of each episode's
    final ``info`` are averaged into ``final_info_means`` (NaN entries skipped).
    """
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, int) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive integer, got {n_episodes!r}")
    if isinstance(env, gym.vector.VectorEnv):
        raise TypeError("evaluate_policy takes a single env; step a VectorEnv with its own loop")
    if not callable(getattr(policy, "act", None)):
        raise TypeError(
            f"policy must implement act(obs, action_mask) (rl_shop.policies.base.Policy), got {type(policy).__name__}"
        )
    returns = np.zeros(n_episodes)
    lengths = np.zeros(n_episodes)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for ep in range(n_episodes):
        obs, info = env.reset(seed=seed if ep == 0 else None)
        total, steps, done = 0.0, 0, False
        while not done:
            action = policy.act(obs, _mask(env, info))
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns[ep], lengths[ep] = total, steps
        for key, value in info.items():
            if isinstance(value, (Real, np.number)) and not isinstance(value, (bool, np.bool_)):
                value = float(value)
                if not math.isnan(value):
                    sums[key] = sums.get(key, 0.0) + value
                    counts[key] = counts.get(key, 0) + 1
    return EvalResult(
        n_episodes=n_episodes,
        mean_return=float(returns.mean()),
        std_return=float(returns.std(ddof=1)) if n_episodes > 1 else 0.0,
        mean_length=float(lengths.mean()),
        returns=returns,
        final_info_means={k: sums[k] / counts[k] for k in sorted(sums)},
    )
