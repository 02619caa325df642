"""Multi-seed aggregation: summary.json files -> per-run and per-(env, algo) tables, and a plot.

The interval is a Student-t 95% confidence interval of the mean over seeds (n - 1 degrees of
freedom), the honest choice for the 3-10 seeds a CPU budget allows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from rl_shop.train.summary import SUMMARY_FILE

RUN_COLUMNS = [
    "experiment",
    "env_name",
    "env_id",
    "algo",
    "seed",
    "final_eval_return",
    "best_eval_return",
    "heuristic_return",
    "random_return",
    "num_timesteps",
    "wall_time_s",
    "steps_per_s",
    "run_dir",
]


def find_summaries(roots: list[Path]) -> list[Path]:
    """Every summary.json below the given run roots (or run dirs), sorted."""
    found: set[Path] = set()
    for root in roots:
        if root.is_file() and root.name == SUMMARY_FILE:
            found.add(root)
        elif root.is_dir():
            found.update(root.rglob(SUMMARY_FILE))
    return sorted(found)


def load_runs(paths: list[Path]) -> tuple[pd.DataFrame, dict[str, list[dict[str, float]]]]:
    """One row per run, plus each run's eval history (keyed by run_dir) for the curves."""
    rows, curves = [], {}
    for path in paths:
        data = json.loads(path.read_text())
        rows.append({k: data.get(k) for k in RUN_COLUMNS})
        curves[str(data.get("run_dir"))] = data.get("eval_history") or []
    df = pd.DataFrame(rows, columns=RUN_COLUMNS)
    for col in ("final_eval_return", "best_eval_return", "heuristic_return", "random_return"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df, curves


def normal_half_width(values: np.ndarray) -> float:
    """1.96 standard errors of the mean: the 95% half-width over many episodes or paired
    differences (NaN with fewer than 2 values)."""
    values = np.asarray(values, dtype=float)
    return 1.96 * float(values.std(ddof=1)) / math.sqrt(values.size) if values.size > 1 else math.nan


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """(mean, half-width) of the Student-t interval; half-width is NaN with fewer than 2 values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    mean = float(values.mean())
    if values.size < 2:
        return mean, math.nan
    sem = float(values.std(ddof=1)) / math.sqrt(values.size)
    return mean, float(stats.t.ppf(0.5 + confidence / 2, values.size - 1)) * sem


def aggregate(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per (env, algo, experiment): seeds, mean +- CI of final and best return, baselines."""
    out = []
    for (env, algo, exp), g in df.groupby(["env_name", "algo", "experiment"], sort=True):
        fm, fh = t_interval(g["final_eval_return"].to_numpy(), confidence)
        bm, bh = t_interval(g["best_eval_return"].to_numpy(), confidence)
        out.append(
            {
                "env_name": env,
                "algo": algo,
                "experiment": exp,
                "n_seeds": int(len(g)),
                "final_mean": fm,
                "final_ci": fh,
                "best_mean": bm,
                "best_ci": bh,
                "heuristic_return": float(g["heuristic_return"].mean()),
                "random_return": float(g["random_return"].mean()),
                "final_minus_heuristic": fm - float(g["heuristic_return"].mean()),
                "steps_per_s": float(pd.to_numeric(g["steps_per_s"], errors="coerce").mean()),
            }
        )
    return pd.DataFrame(out)


def plot(df: pd.DataFrame, curves: dict[str, list[dict[str, float]]], path: Path, confidence: float = 0.95) -> Path:
    """One panel per env: mean eval curve per algorithm with its CI band; heuristic as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted(df["env_name"].unique())
    fig, axes = plt.subplots(1, max(1, len(envs)), figsize=(5 * max(1, len(envs)), 3.8), squeeze=False)
    for ax, env in zip(axes[0], envs):
        sub = df[df["env_name"] == env]
        for (_algo, exp), g in sub.groupby(["algo", "experiment"]):
            hist = [curves.get(str(r), []) for r in g["run_dir"]]
            hist = [h for h in hist if h]
            if not hist:
                continue
            grid = np.unique(np.concatenate([[p["step"] for p in h] for h in hist]))
            ys = np.array([np.interp(grid, [p["step"] for p in h], [p["mean_return"] for p in h]) for h in hist])
            stats_ = [t_interval(ys[:, j], confidence) for j in range(len(grid))]
            mean = np.array([m for m, _ in stats_])
            half = np.nan_to_num(np.array([h for _, h in stats_]))
            line = ax.plot(grid, mean, label=f"{exp} (n={len(hist)})")[0]
            ax.fill_between(grid, mean - half, mean + half, color=line.get_color(), alpha=0.2)
        heur = sub["heuristic_return"].dropna()
        if len(heur):
            ax.axhline(float(heur.mean()), color="k", ls="--", label="heuristic")
        rnd = sub["random_return"].dropna()
        if len(rnd):
            ax.axhline(float(rnd.mean()), color="gray", ls=":", label="random")
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
