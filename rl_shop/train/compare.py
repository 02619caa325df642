"""Learned policy vs its env's heuristic on the same seeded episodes, and across training seeds.

Two levels of uncertainty, kept apart on purpose:

* within one trained policy, the paired difference over common-random-number episodes (the env
  draws episode ``i`` from ``seed + i`` alike for both policies) says whether *this* network beats
  the heuristic;
* across training seeds, the Student-t interval of the per-seed mean differences says whether the
  *recipe* does. The seed is the unit of replication: episodes of one network are not independent
  evidence about the training procedure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from omegaconf import DictConfig, OmegaConf

from rl_shop.policies.evaluate import RandomPolicy, evaluate_policy
from rl_shop.policies.loader import load_policy
from rl_shop.train.aggregate import normal_half_width, t_interval
from rl_shop.train.baselines import load_heuristic
from rl_shop.train.config import EnvSettings


@dataclass(frozen=True)
class PairedComparison:
    """One exported policy against the heuristic (and a random floor) on identical episodes."""

    role: str
    env: str
    seed: int
    learned: float
    heuristic: float
    random: float
    diff: float  # mean over episodes of learned - heuristic (paired)
    ci95: float  # 1.96 * s.e. of the paired difference
    n_episodes: int
    learned_info: dict[str, float]
    heuristic_info: dict[str, float]

    def as_row(self) -> dict[str, Any]:
        """Flat dict for a CSV row (info means prefixed by the policy)."""
        row = {k: v for k, v in asdict(self).items() if not k.endswith("_info")}
        row.update({f"learned_{k}": v for k, v in self.learned_info.items()})
        row.update({f"heuristic_{k}": v for k, v in self.heuristic_info.items()})
        return row


def env_settings(train_cfg: DictConfig) -> EnvSettings:
    """The validated `env` group of a composed train config."""
    return EnvSettings.model_validate(OmegaConf.to_container(train_cfg.env, resolve=True))


def compare_with_heuristic(
    role: str, env_cfg: EnvSettings, policy_dir: Path, episodes: int, seed: int, train_seed: int = -1
) -> PairedComparison:
    """Exported (ONNX) policy vs the env's heuristic on the same ``episodes`` seeded episodes."""
    import envs  # noqa: F401  (registers the rl_shop/ ids)

    env = gym.make(env_cfg.id, **env_cfg.kwargs)
    policy = load_policy(policy_dir, expect_env_id=env_cfg.id)
    heuristic = load_heuristic(env_cfg, "auto", env)
    if heuristic is None:
        raise ValueError(f"{env_cfg.id} has no heuristic baseline registered to compare the {role} policy with")
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ValueError(f"the random reference needs a Discrete action space, {env_cfg.id} has {env.action_space}")
    learned = evaluate_policy(env, policy, episodes, seed)
    base = evaluate_policy(env, heuristic, episodes, seed)
    rand = evaluate_policy(env, RandomPolicy(env.action_space.n, seed), episodes, seed)
    diff = learned.returns - base.returns
    half = normal_half_width(diff)
    return PairedComparison(
        role=role,
        env=env_cfg.id,
        seed=train_seed,
        learned=learned.mean_return,
        heuristic=base.mean_return,
        random=rand.mean_return,
        diff=float(diff.mean()),
        ci95=half,
        n_episodes=episodes,
        learned_info=learned.final_info_means,
        heuristic_info=base.final_info_means,
    )


def across_seeds(rows: list[PairedComparison], confidence: float = 0.95) -> dict[str, Any]:
    """Recipe-level result: t-interval over training seeds of the per-seed paired differences."""
    if not rows:
        raise ValueError("no comparisons to aggregate")
    diffs = np.array([r.diff for r in rows])
    mean, half = t_interval(diffs, confidence)
    learned, learned_half = t_interval(np.array([r.learned for r in rows]), confidence)
    info_keys = sorted(set.intersection(*(set(r.learned_info) for r in rows)))
    return {
        "role": rows[0].role,
        "env": rows[0].env,
        "n_seeds": len(rows),
        "learned_mean": learned,
        "learned_ci": learned_half,
        "heuristic": float(np.mean([r.heuristic for r in rows])),
        "random": float(np.mean([r.random for r in rows])),
        "diff_mean": mean,
        "diff_ci": half,
        "significant": bool(np.isfinite(half) and abs(mean) > half),
        **{f"learned_{k}": float(np.mean([r.learned_info[k] for r in rows])) for k in info_keys},
        **{
            f"heuristic_{k}": float(np.mean([r.heuristic_info[k] for r in rows]))
            for k in info_keys
            if all(k in r.heuristic_info for r in rows)
        },
    }


def comparison_table(rows: list[PairedComparison]) -> str:
    """Markdown: one line per exported policy, paired difference with its 95% interval."""
    episodes = rows[0].n_episodes if rows else 0
    lines = [
        f"| role | env | seed | learned (ONNX) | heuristic | random | learned - heuristic "
        f"(95% CI, paired, {episodes} episodes) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.role} | {r.env} | {r.seed} | {r.learned:.3f} | {r.heuristic:.3f} | {r.random:.3f} | "
            f"{r.diff:+.3f} ± {r.ci95:.3f} |"
        )
    return "\n".join(lines)


def seed_table(summaries: list[dict[str, Any]], confidence: float = 0.95) -> str:
    """Markdown: one line per role, interval over training seeds."""
    pct = round(confidence * 100)
    lines = [
        f"| role | env | seeds | learned (mean ± {pct}% CI) | heuristic | random | "
        f"learned - heuristic ({pct}% CI over seeds) | excludes 0 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {s['role']} | {s['env']} | {s['n_seeds']} | {s['learned_mean']:.3f} ± {s['learned_ci']:.3f} | "
            f"{s['heuristic']:.3f} | {s['random']:.3f} | {s['diff_mean']:+.3f} ± {s['diff_ci']:.3f} | "
            f"{'yes' if s['significant'] else 'no'} |"
        )
    return "\n".join(lines)
