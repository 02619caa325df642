"""Outputs of an evaluation run: markdown and CSV tables, per-type bar plots, TensorBoard scalars, report.md.

Tables follow the paper's layout: Tables 1 and 2 have the 8 query types as rows and the systems
as columns (Accuracy@5, UDS); Table 3 has one row per system with the relative change of UCTR,
UCVR and ARC against the control, here with bootstrap 95% intervals added to the p-values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, SupportsFloat, cast

import numpy as np
import pandas as pd

from rl_shop.evaluation.ab_test import RelativeChange, format_change
from rl_shop.sim.slots import QUERY_TYPES

TYPE_LABELS: dict[str, str] = {
    "simple": "Simple Queries",
    "negation": "Negation Intent",
    "general_qa": "General Q&A",
    "reasoning": "Reasoning Queries",
    "multi_constraint": "Multi-Constraint Queries",
    "ambiguous": "Ambiguous Intent",
    "comparison": "Product Comparison",
    "product_qa": "Product Q&A",
    "overall": "Overall",
}


def _fmt(v: object, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{float(cast(SupportsFloat, v)):.{digits}f}"


INT_COLUMNS = frozenset({"n", "errors", "judge_missing", "llm fallbacks", "n_sim", "n_agent"})


def markdown_table(df: pd.DataFrame, digits: int = 3, index_name: str | None = None) -> str:
    """A GitHub markdown table of ``df`` (index as the first column; count columns as integers)."""
    cols = [str(c) for c in df.columns]
    head = index_name or (df.index.name or "")
    is_int = [c in INT_COLUMNS or pd.api.types.is_integer_dtype(df[c]) for c in df.columns]
    lines = ["| " + " | ".join([head, *cols]) + " |", "|" + "---|" * (len(cols) + 1)]
    for idx, values in zip(df.index, df.itertuples(index=False, name=None)):
        label = " / ".join(map(str, idx)) if isinstance(idx, tuple) else str(idx)
        cells = [
            v if isinstance(v, str) else _fmt(int(v) if (i and _finite(v)) else v, digits)
            for v, i in zip(values, is_int)
        ]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def _finite(v: object) -> bool:
    try:
        return math.isfinite(float(cast("SupportsFloat | str", v)))  # anything else: TypeError
    except (TypeError, ValueError):
        return False


def wide(table: pd.DataFrame, metric: str, systems: Sequence[str]) -> pd.DataFrame:
    """Query types x systems for one metric (Tables 1 and 2 layout), types in ``QUERY_TYPES`` order + overall."""
    data = table[metric].unstack("system")
    order = [t for t in [*QUERY_TYPES, "overall"] if t in data.index]
    data = data.loc[order, [s for s in systems if s in data.columns]]
    data.index = [TYPE_LABELS.get(t, t) for t in data.index]
    data.index.name = "query type"
    n = table["n"].unstack("system").loc[order].max(axis=1).astype(int).to_numpy()
    data["n"] = n
    return data


def ab_table(results: Mapping[str, Mapping[str, RelativeChange]], control: str, abandon: Mapping[str, float]) -> str:
    """Table 3: relative change (%) of UCTR, UCVR, ARC vs the control, interval and P, plus abandonment."""
    lines = ["| system | UCTR | UCVR | ARC | abandoned before results |", "|---|---|---|---|---|"]
    lines.append(f"| {control} (control) | 0.0% | 0.0% | 0.0% | {100 * abandon.get(control, math.nan):.1f}% |")
    for name, res in results.items():
        cells = [format_change(res[m]) for m in ("UCTR", "UCVR", "ARC")]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {100 * abandon.get(name, math.nan):.1f}% |")
    return "\n".join(lines)


def ab_absolute_table(results: Mapping[str, Mapping[str, RelativeChange]], control: str) -> str:
    """Per-user means behind Table 3 (the relative changes are ratios of these)."""
    lines = ["| system | UCTR | UCVR | ARC | users (kept) |", "|---|---|---|---|---|"]
    first = next(iter(results.values()), None)
    if first is not None:
        lines.append(
            f"| {control} | "
            + " | ".join(f"{first[m].mean_a:.3f}" for m in ("UCTR", "UCVR", "ARC"))
            + f" | {first['UCTR'].n_a} |"
        )
    for name, res in results.items():
        lines.append(
            f"| {name} | "
            + " | ".join(f"{res[m].mean_b:.3f}" for m in ("UCTR", "UCVR", "ARC"))
            + f" | {res['UCTR'].n_b} |"
        )
    return "\n".join(lines)


def _pm(mean: object, half: object, digits: int = 3) -> str:
    if not _finite(mean):
        return "n/a"
    return f"{float(cast(SupportsFloat, mean)):+.{digits}f}" + (
        f" ± {float(cast(SupportsFloat, half)):.{digits}f}" if _finite(half) else ""
    )


def consistency_markdown(df: pd.DataFrame) -> str:
    """Sim-to-agent table: learned minus heuristic, mean ± 95% half-width over queries."""
    lines = [
        "| query type | n (sim / agent) | sim: return | sim: Accuracy@5 | sim: rounds | agent: Accuracy@5 "
        "| agent: rounds | gap (agent - sim), Accuracy@5 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t, r in df.iterrows():
        lines.append(
            f"| {TYPE_LABELS.get(str(t), t)} | {int(r['n_sim'])} / {int(r['n_agent'])} | "
            f"{_pm(r['sim_d_return'], r['sim_d_return_ci95'])} | {_pm(r['sim_d_acc'], r['sim_d_acc_ci95'])} | "
            f"{_pm(r['sim_d_rounds'], r['sim_d_rounds_ci95'], 2)} | {_pm(r['agent_d_acc'], r['agent_d_acc_ci95'])} | "
            f"{_pm(r['agent_d_rounds'], r['agent_d_rounds_ci95'], 2)} | {_pm(r['gap_acc'], r['gap_acc_ci95'])} |"
        )
    return "\n".join(lines)


def bootstrap_mean_ci(values: np.ndarray, rng: np.random.Generator, n_boot: int) -> tuple[float, float]:
    """Percentile-bootstrap 95% interval of the mean of ``values`` (the value itself when there is one)."""
    if values.size < 2:
        return float(values[0]), float(values[0])
    boots = values[rng.integers(0, values.size, (n_boot, values.size))].mean(axis=1)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return float(lo), float(hi)


def per_type_intervals(
    records: Sequence[Mapping[str, Any]], metric: str, systems: Sequence[str], n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Mean and percentile-bootstrap 95% interval per (system, query type) of a per-query metric."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in systems:
        for t in QUERY_TYPES:
            v = np.array(
                [
                    float(r[metric])
                    for r in records
                    if r["system"] == s and r["query_type"] == t and r.get(metric) is not None
                ],
                dtype=float,
            )
            if v.size == 0:
                continue
            lo, hi = bootstrap_mean_ci(v, rng, n_boot)
            rows.append(
                {
                    "system": s,
                    "query_type": t,
                    "mean": float(v.mean()),
                    "lo": lo,
                    "hi": hi,
                    "n": int(v.size),
                }
            )
    return pd.DataFrame(rows)


def paired_differences(
    records: Sequence[Mapping[str, Any]],
    metric: str,
    control: str,
    treatment: str,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """``treatment - control`` per query type and overall, paired on the query (only queries both
    systems answered), with a percentile-bootstrap 95% interval over queries."""
    by: dict[tuple[str, str], float] = {
        (str(r["system"]), str(r["item_id"])): float(r[metric])
        for r in records
        if r.get(metric) is not None and r["system"] in (control, treatment)
    }
    types = {str(r["item_id"]): str(r["query_type"]) for r in records}
    ids = sorted({i for (s, i) in by if s == control} & {i for (s, i) in by if s == treatment})
    rng = np.random.default_rng(seed)
    rows = []
    for t in [*QUERY_TYPES, "overall"]:
        d = np.array([by[(treatment, i)] - by[(control, i)] for i in ids if t == "overall" or types[i] == t])
        if d.size == 0:
            continue
        lo, hi = bootstrap_mean_ci(d, rng, n_boot)
        rows.append({"query_type": t, "diff": float(d.mean()), "lo": lo, "hi": hi, "n": int(d.size)})
    return pd.DataFrame(rows)


def paired_table(diffs: pd.DataFrame) -> str:
    """Markdown of :func:`paired_differences`: ``mean [lo, hi]`` and n per query type."""
    lines = ["| query type | difference [95% CI] | n |", "|---|---|---|"]
    for r in diffs.itertuples():
        label = "Overall" if r.query_type == "overall" else TYPE_LABELS.get(r.query_type, r.query_type)
        lines.append(f"| {label} | {r.diff:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}] | {r.n} |")
    return "\n".join(lines)


def interval_table(intervals: pd.DataFrame, systems: Sequence[str]) -> str:
    """Markdown: one row per query type, ``mean [lo, hi]`` per system (from :func:`per_type_intervals`)."""
    present = [s for s in systems if s in set(intervals["system"])]
    lines = ["| query type | " + " | ".join(present) + " | n |", "|" + "---|" * (len(present) + 2)]
    for t in [t for t in QUERY_TYPES if t in set(intervals["query_type"])]:
        cells, n = [], 0
        for s in present:
            row = intervals[(intervals["system"] == s) & (intervals["query_type"] == t)]
            if row.empty:
                cells.append("n/a")
                continue
            r = row.iloc[0]
            cells.append(f"{r['mean']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}]")
            n = int(r["n"])
        lines.append(f"| {TYPE_LABELS.get(t, t)} | " + " | ".join(cells) + f" | {n} |")
    return "\n".join(lines)


def bar_plot(intervals: pd.DataFrame, metric: str, path: Path, ylim: tuple[float, float] | None = None) -> Path:
    """Grouped bars (query type x system) with 95% interval whiskers, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(dict.fromkeys(intervals["system"]))
    types = [t for t in QUERY_TYPES if t in set(intervals["query_type"])]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(types)), 3.6))
    width = 0.8 / max(1, len(systems))
    x = np.arange(len(types))
    for i, s in enumerate(systems):
        part = intervals[intervals["system"] == s].set_index("query_type").reindex(types)
        mean = part["mean"].to_numpy(dtype=float)
        err = np.vstack([mean - part["lo"].to_numpy(dtype=float), part["hi"].to_numpy(dtype=float) - mean])
        ax.bar(x + (i - (len(systems) - 1) / 2) * width, mean, width, yerr=np.nan_to_num(err), capsize=2, label=s)
    ax.set_xticks(x, [TYPE_LABELS.get(t, t).replace(" ", "\n", 1) for t in types], fontsize=7)
    ax.set_ylabel(metric)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=7, ncol=min(4, len(systems)))
    ax.set_title(f"{metric} per query type (95% bootstrap intervals over queries)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_tensorboard(table: pd.DataFrame, ab: Mapping[str, Mapping[str, RelativeChange]], logdir: Path) -> Path:
    """Scalars ``eval/<system>/<type>/<metric>`` and ``ab/<system>/<metric>_rel`` for the eval run."""
    from torch.utils.tensorboard import SummaryWriter

    logdir.mkdir(parents=True, exist_ok=True)
    with SummaryWriter(log_dir=str(logdir)) as w:
        for (system, qtype), row in table.iterrows():
            for metric, value in row.items():
                if isinstance(value, (int, float, np.number)) and math.isfinite(float(value)):
                    w.add_scalar(f"eval/{system}/{qtype}/{metric}", float(value), 0)
        for system, res in ab.items():
            for metric, rc in res.items():
                if math.isfinite(rc.rel_change):
                    w.add_scalar(f"ab/{system}/{metric}_rel", rc.rel_change, 0)
                    w.add_scalar(f"ab/{system}/{metric}_p", rc.p_value, 0)
    return logdir


__all__ = [
    "TYPE_LABELS",
    "ab_absolute_table",
    "ab_table",
    "bar_plot",
    "consistency_markdown",
    "markdown_table",
    "per_type_intervals",
    "wide",
    "write_tensorboard",
]
