"""Simulated online A/B test (MACDF section 4.2.2, Table 3) on the systems' recorded benchmark outputs.

Each simulated user ``u`` draws one benchmark query (the same one whatever the arm: the user is a
function of ``(seed, u)`` only), is bucketed into arm A or B at random, and sees that system's
recorded result list for the query after that system's recorded latency (time to first token by
default, since MACDF streams; ``latency_scale`` maps this machine's latency to a deployment's).
A fresh :class:`~rl_shop.sim.shopper.Shopper` then reacts: latency-driven abandonment, clicks by
the position-based click model, purchase, reformulation. A reformulating user re-issues the query
and, since systems are deterministic on the same text, sees the same list again, up to
``max_views`` times: ARC counts those reformulations.

Per user: clicks (UCTR = clicks / UV_search), orders (UCVR = orders / UV_search) and
reformulations (ARC). As in the paper, users who left before results arrived are excluded from
the three metrics (``exclude_abandoned``) and their share is reported per arm.

The replay is an approximation worth stating: a real reformulation would change the query and
the results; here it only re-rolls the shopper's reaction to the same list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rl_shop.config_files import defaults_from_yaml
from rl_shop.evaluation.ab_test import PMethod, RelativeChange, relative_change
from rl_shop.sim.benchmark import BenchmarkItem
from rl_shop.sim.config import SimConfig
from rl_shop.sim.constraints import CatalogArrays
from rl_shop.sim.shopper import Shopper

AB_METRICS: tuple[str, ...] = ("UCTR", "UCVR", "ARC")


@defaults_from_yaml("evaluate.yaml", "ab", what="evaluation config")
class ABConfig(BaseModel):
    """Knobs of the simulated A/B test (``configs/evaluate.yaml`` ``ab:``)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    n_users: int = Field(ge=4)
    seed: int
    top_k: int = Field(ge=1)  # the paper compares the top-10 results
    max_views: int = Field(ge=1)
    latency_source: str = Field(pattern="^(ttft|total)$")
    latency_scale: float = Field(ge=0)
    exclude_abandoned: bool
    share_b: float = Field(gt=0, lt=1)
    n_boot: int = Field(ge=100)
    alpha: float = Field(gt=0, lt=1)
    p_method: PMethod
    control: str
    treatments: list[str]  # empty = every other evaluated system


@dataclass
class ArmOutcome:
    """Per-user outcome arrays of one arm (abandoned users flagged, not yet excluded)."""

    clicks: np.ndarray
    orders: np.ndarray
    reformulations: np.ndarray
    abandoned: np.ndarray

    def metric(self, name: str, exclude_abandoned: bool) -> np.ndarray:
        keep = ~self.abandoned if exclude_abandoned else np.ones_like(self.abandoned)
        values = {"UCTR": self.clicks, "UCVR": self.orders, "ARC": self.reformulations}[name]
        return values[keep].astype(float)


def user_seed(seed: int, user: int) -> list[int]:
    """Seed sequence of one simulated user (independent of the arm and of system order)."""
    return [int(seed), int(user), 0xAB]


def simulate_session(
    shopper: Shopper, ranked_ids: list[str], latency_s: float, max_views: int, top_k: int
) -> tuple[int, int, int, bool]:
    """``(clicks, orders, reformulations, abandoned)`` of one user's session on one result list."""
    clicks = orders = reforms = 0
    for _ in range(max_views):
        r = shopper.react(list(ranked_ids)[:top_k], latency_s)
        if r.abandon:  # left before the results arrived (first view) or while waiting again
            return clicks, orders, reforms, True
        clicks += len(r.clicks)
        orders += int(r.purchased is not None)
        if r.purchased is not None or not r.reformulate:
            break
        reforms += 1
    return clicks, orders, reforms, False


def simulate_ab(
    outputs_a: Mapping[str, Mapping[str, Any]],
    outputs_b: Mapping[str, Mapping[str, Any]],
    items: Sequence[BenchmarkItem],
    arr: CatalogArrays,
    sim_config: SimConfig,
    cfg: ABConfig,
) -> tuple[ArmOutcome, ArmOutcome]:
    """Users bucketed into A / B over the items both systems answered; per-user outcomes per arm.

    ``outputs_x`` maps item id -> record with ``ranked_ids``, ``ttft_s`` and ``total_s``.
    """
    pool = [it for it in items if it.id in outputs_a and it.id in outputs_b]
    if not pool:
        raise ValueError("the two systems have no evaluated benchmark query in common; run the benchmark first")
    arms: dict[str, list[tuple[int, int, int, bool]]] = {"A": [], "B": []}
    key = "ttft_s" if cfg.latency_source == "ttft" else "total_s"
    for u in range(cfg.n_users):
        rng = np.random.default_rng(user_seed(cfg.seed, u))
        item = pool[int(rng.integers(len(pool)))]
        arm = "B" if rng.random() < cfg.share_b else "A"
        shopper_seed = int(rng.integers(0, 2**63 - 1))
        rec = (outputs_b if arm == "B" else outputs_a)[item.id]
        shopper = Shopper(item.intent, arr, sim_config, seed=shopper_seed)
        latency = float(rec.get(key) or 0.0) * cfg.latency_scale
        arms[arm].append(
            simulate_session(shopper, list(rec.get("ranked_ids") or []), latency, cfg.max_views, cfg.top_k)
        )

    def pack(rows: list[tuple[int, int, int, bool]]) -> ArmOutcome:
        a = np.array(rows, dtype=float).reshape(-1, 4)
        return ArmOutcome(a[:, 0], a[:, 1], a[:, 2], a[:, 3].astype(bool))

    return pack(arms["A"]), pack(arms["B"])


def compare_arms(a: ArmOutcome, b: ArmOutcome, cfg: ABConfig) -> dict[str, RelativeChange]:
    """Relative change, bootstrap interval and p-value of UCTR, UCVR and ARC (B vs A)."""
    out: dict[str, RelativeChange] = {}
    for i, m in enumerate(AB_METRICS):
        out[m] = relative_change(
            a.metric(m, cfg.exclude_abandoned),
            b.metric(m, cfg.exclude_abandoned),
            metric=m,
            n_boot=cfg.n_boot,
            alpha=cfg.alpha,
            seed=cfg.seed + i,
            p_method=cfg.p_method,
        )
    return out


__all__ = ["AB_METRICS", "ABConfig", "ArmOutcome", "compare_arms", "simulate_ab", "simulate_session", "user_seed"]
