"""Sim-to-agent consistency: does the learned Guider's advantage in the Clarify env survive the full LLM loop?

The same benchmark intents are measured twice:

* **in simulation**: each intent becomes a one-intent pool of the Clarify env (``envs.specs.CLARIFY``)
  (``envs.intent_pool.reduce_sim_intent``), and the learned Guider (exported ONNX) and the
  heuristic ``AskUntilConfident`` each play ``episodes`` seeded dialogues on it (the same seeds
  for both). Per intent: mean episode return (Eq. 3 plus hand-over and abandonment terms), the
  env's hand-over Accuracy@5 and clarification rounds.
* **in the agent loop**: the records of the ``macdf_learned`` and ``macdf_heuristic`` systems on
  those same items (real LLM, real search, the simulator's language face answering).

The table puts the learned-minus-heuristic differences side by side per query type, with 95%
normal intervals over intents. Note that the two Accuracy@5 are not the same quantity: the env's
is the expected share of gold products in a uniform draw of 5 from the candidate set the
dialogue narrowed down to; the agent loop's is measured on the products actually shown. A large
gap between the two columns is a finding about the sim-to-agent transfer, reported as measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rl_shop.policies.base import Policy
from rl_shop.policies.evaluate import evaluate_policy
from rl_shop.sim.benchmark import BenchmarkItem
from rl_shop.sim.constraints import CatalogArrays
from rl_shop.sim.slots import QUERY_TYPES


@dataclass(frozen=True)
class SimOutcome:
    """Mean outcome of one policy's seeded dialogues on one intent."""

    mean_return: float
    accuracy_at_5: float
    rounds: float


def _z(alpha: float = 0.05) -> float:
    from scipy import stats

    return float(stats.norm.ppf(1 - alpha / 2))


def sim_outcomes(
    items: Sequence[BenchmarkItem],
    policies: Mapping[str, Policy],
    arr: CatalogArrays,
    env_kwargs: Mapping[str, Any],
    episodes: int,
    seed: int,
    hidden_dont_know_bonus: float,
) -> dict[tuple[str, str], SimOutcome]:
    """``(policy name, item id) -> SimOutcome`` on one-intent pools of the Clarify env, same seeds per policy."""
    from envs.clarify import ClarifyEnv
    from envs.intent_pool import pool_from_intents, reduce_sim_intent

    out: dict[tuple[str, str], SimOutcome] = {}
    kwargs = {k: v for k, v in env_kwargs.items() if k not in ("pool_size", "pool_seed", "sim_config")}
    for j, item in enumerate(items):
        pool = pool_from_intents([reduce_sim_intent(item.intent, arr, hidden_dont_know_bonus)], arr.n)
        env = ClarifyEnv(intent_pool=pool, **kwargs)
        for name, policy in policies.items():
            res = evaluate_policy(env, policy, episodes, seed + 1000 * j)
            info = res.final_info_means
            out[(name, item.id)] = SimOutcome(
                res.mean_return, float(info.get("accuracy_at_5", math.nan)), float(info.get("rounds", res.mean_length))
            )
    return out


def _mean_ci(values: Sequence[float]) -> tuple[float, float, int]:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan, 0
    half = _z() * v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else math.nan
    return float(v.mean()), float(half), int(v.size)


def item_differences(
    items: Sequence[BenchmarkItem],
    sim: Mapping[tuple[str, str], SimOutcome],
    records: Sequence[Mapping[str, Any]],
    learned: str = "learned",
    heuristic: str = "heuristic",
    agent_learned: str = "macdf_learned",
    agent_heuristic: str = "macdf_heuristic",
    k: int = 5,
) -> list[tuple[str, dict[str, float | None]]]:
    """Per query, (its type, learned-minus-heuristic in the env and in the loop); None where a
    side was not measured (a crash in the loop measures nothing)."""
    by = {(r["system"], r["item_id"]): r for r in records if r.get("error") is None}
    per_item: list[tuple[str, dict[str, float | None]]] = []
    for it in items:
        sl, sh = sim.get((learned, it.id)), sim.get((heuristic, it.id))
        al, ah = by.get((agent_learned, it.id)), by.get((agent_heuristic, it.id))
        d: dict[str, float | None] = {
            "sim_d_return": None if sl is None or sh is None else sl.mean_return - sh.mean_return,
            "sim_d_acc": None if sl is None or sh is None else sl.accuracy_at_5 - sh.accuracy_at_5,
            "sim_d_rounds": None if sl is None or sh is None else sl.rounds - sh.rounds,
            "agent_d_acc": None
            if al is None or ah is None
            else float(al[f"accuracy@{k}"]) - float(ah[f"accuracy@{k}"]),
            "agent_d_rounds": None if al is None or ah is None else float(al["rounds"]) - float(ah["rounds"]),
        }
        d["gap_acc"] = None if d["agent_d_acc"] is None or d["sim_d_acc"] is None else d["agent_d_acc"] - d["sim_d_acc"]
        per_item.append((it.query_type, d))
    return per_item


def retained_share(
    per_item: Sequence[tuple[str, Mapping[str, float | None]]], seed: int = 0, n_boot: int = 2000
) -> dict[str, Any]:
    """The loop's share of the env's Accuracy@5 difference on the same queries (issue 13's
    sim-to-agent ratio): mean agent difference / mean env difference over the queries measured on
    both sides, with a percentile-bootstrap 95% interval over queries (resamples whose env mean is
    0 are dropped). ``retained`` is None when the env shows no difference."""
    pairs = np.array(
        [(d["sim_d_acc"], d["agent_d_acc"]) for _, d in per_item if None not in (d["sim_d_acc"], d["agent_d_acc"])],
        dtype=float,
    ).reshape(-1, 2)
    n = len(pairs)
    out: dict[str, Any] = {"n": n, "sim_delta": None, "loop_delta": None, "retained": None, "retained_ci95": None}
    if n == 0:
        return out
    sim_mean, loop_mean = (float(v) for v in pairs.mean(axis=0))
    out.update(sim_delta=sim_mean, loop_delta=loop_mean, same_sign=bool(np.sign(sim_mean) == np.sign(loop_mean)))
    if sim_mean == 0:
        return out
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    sims, loops = pairs[idx, 0].mean(axis=1), pairs[idx, 1].mean(axis=1)
    ratios = loops[sims != 0] / sims[sims != 0]
    out["retained"] = loop_mean / sim_mean
    out["retained_ci95"] = [float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))]
    return out


def consistency_table(per_item: Sequence[tuple[str, Mapping[str, float | None]]]) -> pd.DataFrame:
    """Per query type (and overall) of :func:`item_differences`: learned-minus-heuristic in the
    Clarify env and in the agent loop, each with its interval and n.

    ``gap_acc`` is averaged over the queries measured in both (agent minus sim, per query).
    """
    rows: list[dict[str, Any]] = []
    for label in [*[t for t in QUERY_TYPES if any(q == t for q, _ in per_item)], "overall"]:
        part = [d for q, d in per_item if label == "overall" or q == label]
        row: dict[str, Any] = {"query_type": label}
        for key in ("sim_d_return", "sim_d_acc", "sim_d_rounds", "agent_d_acc", "agent_d_rounds", "gap_acc"):
            mean, half, n = _mean_ci([d[key] for d in part if d[key] is not None])  # type: ignore[misc]
            row[key], row[key + "_ci95"] = mean, half
            if key != "gap_acc":
                row["n_" + key.split("_")[0]] = max(row.get("n_" + key.split("_")[0], 0), n)
        rows.append(row)
    return pd.DataFrame(rows).set_index("query_type")


__all__ = ["SimOutcome", "consistency_table", "sim_outcomes"]
