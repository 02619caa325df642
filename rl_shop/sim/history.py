"""Behaviour histories: time-ordered view / click / add_to_cart / purchase events of a persona.

ProductResearch's User Agent infers intent from such histories, so they must carry the persona's
signal (mostly in-category, the preferred brand over-represented, prices near the budget, products
with the persona's colour, features, connectivity, capacity and size over-represented) plus noise
events on unrelated products, as real logs do. A shopper who wants a black wireless mouse looks at
black and wireless mice more than at others; without that trace no reading of the log could
recover those wishes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from rl_shop.sim.config import SimConfig, load_sim_config
from rl_shop.sim.constraints import CatalogArrays, slot_mask
from rl_shop.sim.errors import UnknownCategoryError
from rl_shop.sim.slots import Intent

EVENT_KINDS: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase")
ATTRIBUTE_SLOTS: tuple[str, ...] = ("colour", "capacity", "size", "connectivity", "features")
"""The persona's product-attribute slots whose satisfying products the history over-represents."""


@dataclass(frozen=True)
class Event:
    """One behaviour event; ``t`` is seconds since the history's start."""

    t: float
    kind: str
    product_id: str
    session: int
    noise: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _weights(
    arr: CatalogArrays, rows: np.ndarray, intent: Intent, brand_w: float, attribute_w: float, width: float
) -> np.ndarray:
    """Persona preference over ``rows``: preferred brands up, products meeting each attribute slot
    the persona constrains up, excluded brands out, log-price near budget."""
    w = np.ones(len(rows))
    if intent.preferred_brands:
        w[np.isin(arr.brand[rows], list(intent.preferred_brands))] *= brand_w
    for slot in ATTRIBUTE_SLOTS:
        if intent.has_constraint(slot):
            w[slot_mask(arr, intent, slot)[rows]] *= attribute_w
    if intent.excluded_brands:
        w[np.isin(arr.brand[rows], list(intent.excluded_brands))] *= 0.05
    if intent.budget:
        price = arr.price[rows]
        known = np.isfinite(price) & (price > 0)
        target = math.log(intent.budget * 0.8)
        w[known] *= np.exp(-((np.log(price[known]) - target) ** 2) / (2 * width**2)) + 0.02
        w[~known] *= 0.1
    return w / w.sum()


def generate_history(
    intent: Intent,
    catalog: pd.DataFrame | CatalogArrays,
    config: SimConfig | None = None,
    seed: int = 0,
) -> list[Event]:
    """A seeded, time-ordered event list consistent with ``intent``'s persona."""
    cfg = (config or load_sim_config()).history
    arr = CatalogArrays.of(catalog)
    rng = np.random.default_rng(seed)
    cat_rows = np.flatnonzero(arr.category == arr.check_category(intent.category))
    pool = cat_rows
    if intent.use_case_categories:
        pool = np.flatnonzero(np.isin(arr.category, list(intent.use_case_categories)))
    if len(pool) == 0:
        raise UnknownCategoryError(
            f"none of the intent's use-case categories {list(intent.use_case_categories)} is in the catalog"
        )
    w = _weights(arr, pool, intent, cfg.brand_preference_weight, cfg.attribute_preference_weight, cfg.price_width)
    events: list[Event] = []
    t = 0.0
    n_sessions = int(rng.integers(int(cfg.n_sessions.low), int(cfg.n_sessions.high) + 1))
    for s in range(n_sessions):
        t += float(rng.uniform(cfg.session_gap_s.low, cfg.session_gap_s.high)) if s else 0.0
        n_views = int(rng.integers(int(cfg.views_per_session.low), int(cfg.views_per_session.high) + 1))
        for _ in range(n_views):
            noise = rng.random() < cfg.p_noise_event or rng.random() > cfg.p_in_category
            row = int(rng.integers(arr.n)) if noise else int(pool[rng.choice(len(pool), p=w)])
            pid = str(arr.ids[row])
            t += float(rng.uniform(cfg.event_gap_s.low, cfg.event_gap_s.high))
            events.append(Event(round(t, 1), "view", pid, s, noise))
            if rng.random() >= cfg.p_click_given_view:
                continue
            t += float(rng.uniform(cfg.event_gap_s.low, cfg.event_gap_s.high))
            events.append(Event(round(t, 1), "click", pid, s, noise))
            if noise or rng.random() >= cfg.p_cart_given_click:
                continue
            t += float(rng.uniform(cfg.event_gap_s.low, cfg.event_gap_s.high))
            events.append(Event(round(t, 1), "add_to_cart", pid, s))
            if rng.random() < cfg.p_purchase_given_cart:
                t += float(rng.uniform(cfg.event_gap_s.low, cfg.event_gap_s.high))
                events.append(Event(round(t, 1), "purchase", pid, s))
    return events


def history_frame(events: list[Event]) -> pd.DataFrame:
    """Events as a DataFrame (columns t, kind, product_id, session, noise)."""
    return pd.DataFrame([e.to_dict() for e in events], columns=["t", "kind", "product_id", "session", "noise"])
