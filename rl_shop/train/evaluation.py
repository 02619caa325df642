"""Episode rollouts for evaluation: learned models, heuristic baselines and random policies alike.

All three go through `run_episodes` on the same seeded env with the same per-episode seeds, so
their returns are directly comparable (the reference lines in TensorBoard and summary.json).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, SupportsFloat, cast

import gymnasium as gym
import numpy as np

ActFn = Callable[[np.ndarray, "np.ndarray | None"], int]

#: Info quantities that are per-step increments, logged as their sum over the episode (Clarify's
#: info["intent_gain"] is the entropy reduction of that step alone; the last step reveals nothing).
#: Every other info key is an end-of-episode value (counter, flag, accuracy) and is read at the end.
EPISODE_SUM_KEYS: tuple[str, ...] = ("intent_gain",)


@dataclass
class EvalResult:
    """Returns and end-of-episode info quantities of a batch of evaluation episodes."""

    returns: list[float]
    lengths: list[int]
    info_means: dict[str, float] = field(default_factory=dict)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns)) if self.returns else math.nan

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns)) if self.returns else math.nan


def action_mask_of(env: gym.Env, info: dict[str, Any]) -> np.ndarray | None:
    """The current validity mask: info["action_mask"] if present, else env.action_masks()."""
    if "action_mask" in info:
        return np.asarray(info["action_mask"], dtype=bool)
    try:
        return np.asarray(env.get_wrapper_attr("action_masks")(), dtype=bool)
    except AttributeError:
        return None


def run_episodes(
    env: gym.Env,
    act: ActFn,
    n_episodes: int,
    seed: int,
    info_keys: list[str] | tuple[str, ...] = (),
    sum_keys: list[str] | tuple[str, ...] = EPISODE_SUM_KEYS,
) -> EvalResult:
    """Play `n_episodes`; episode k is reset with seed + k so every policy sees the same shoppers.

    `info_means[key]` is the mean over episodes of the episode's value of `info[key]`: the sum
    over its steps for keys in `sum_keys`, the end-of-episode value for the others.
    """
    returns: list[float] = []
    lengths: list[int] = []
    per_episode: dict[str, list[float]] = {k: [] for k in info_keys}
    summed = [k for k in info_keys if k in sum_keys]
    for k in range(n_episodes):
        obs, info = env.reset(seed=seed + k)
        total, steps, done = 0.0, 0, False
        step_sums = dict.fromkeys(summed, 0.0)
        seen: set[str] = set()
        while not done:
            action = act(obs, action_mask_of(env, info))
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            steps += 1
            done = terminated or truncated
            for key in summed:
                value = finite_float(info.get(key))
                if value is not None:
                    step_sums[key] += value
                    seen.add(key)
        returns.append(total)
        lengths.append(steps)
        for key in info_keys:
            if key in step_sums:
                if key in seen:
                    per_episode[key].append(step_sums[key])
            else:
                value = finite_float(info.get(key))
                if value is not None:
                    per_episode[key].append(value)
    means = {k: float(np.mean(v)) for k, v in per_episode.items() if v}
    return EvalResult(returns=returns, lengths=lengths, info_means=means)


def finite_float(value: object) -> float | None:
    """float(value) when it is a finite number, else None (missing, NaN, non-numeric)."""
    if value is None:
        return None
    try:
        out = float(cast("SupportsFloat | str", value))  # anything else: TypeError
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def model_act_fn(model: Any, deterministic: bool, masked: bool) -> ActFn:
    """Wrap an SB3 / tabular model's predict() as an ActFn."""

    def act(obs: np.ndarray, mask: np.ndarray | None) -> int:
        if masked and mask is not None:
            action, _ = model.predict(obs, deterministic=deterministic, action_masks=mask)
        else:
            action, _ = model.predict(obs, deterministic=deterministic)
        return int(np.asarray(action).item())

    return act


def random_act_fn(action_space: gym.spaces.Discrete, seed: int) -> ActFn:
    """Uniform over valid actions: the floor every learned policy must clear."""
    rng = np.random.default_rng(seed)

    def act(obs: np.ndarray, mask: np.ndarray | None) -> int:
        if mask is not None and mask.any():
            return int(rng.choice(np.flatnonzero(mask)))
        return int(rng.integers(action_space.n))

    return act
