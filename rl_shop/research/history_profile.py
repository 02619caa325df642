"""What a behaviour history favours within a category (brands, colour, features, connectivity), and
the brands it avoids.

The User Agent's LLM sees a dozen of the strongest events; a wish such as "sony", "black" or "wireless"
shows instead in how often the shopper's events land on products that have it, against how common
it is among the category's products. A value is *favoured* when the kind-weighted share of the
category's events on products with it reaches ``min_share`` and exceeds its share of the
category's catalog products by at least ``min_gain`` (in a category of mostly black mice, looking
at black mice says little). A brand is *avoided* when the shopper browsed the category without
once viewing it although it holds so much of the shelf that this is unlikely by chance: with shelf
share ``s`` and ``n`` views in the category, ``(1 - s) ** n <= max_chance``. These are preferences
read from behaviour, not limits the shopper set: :mod:`rl_shop.research.limits` searches within
them first and falls back to the request alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rl_shop.sim.constraints import CatalogArrays

KIND_WEIGHT: Mapping[str, float] = {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 6.0}
"""How much one event says about the shopper (a purchase more than a view)."""


@dataclass(frozen=True)
class Favoured:
    """The attribute values a history favours within one category."""

    brands: tuple[str, ...] = ()
    colour: str | None = None
    features: tuple[str, ...] = ()
    connectivity: tuple[str, ...] = ()

    def words(self) -> list[str]:
        """The values as plain words, brands and colour first (for a prompt or a query)."""
        return [v for v in (*self.brands, self.colour, *self.features, *self.connectivity) if v]


def _event_rows(events: Sequence[Any], arr: CatalogArrays, category: str) -> tuple[np.ndarray, np.ndarray]:
    """Catalog rows and kind weights of the events on products of ``category``."""
    rows, weights = [], []
    for e in events:
        e = e if isinstance(e, dict) else e.to_dict()
        row = arr.id_to_index.get(str(e["product_id"]))
        if row is not None and arr.category[row] == category:
            rows.append(row)
            weights.append(KIND_WEIGHT.get(e["kind"], 1.0))
    return np.array(rows, dtype=int), np.array(weights, dtype=float)


def _favoured_share(
    has: np.ndarray, rows: np.ndarray, w: np.ndarray, base: np.ndarray, min_share: float, min_gain: float
) -> float:
    """The weighted share of the events on products in ``has`` if that share is favoured, else 0."""
    share = float(w[has[rows]].sum() / w.sum())
    return share if share >= min_share and share - float(has[base].mean()) >= min_gain else 0.0


def favoured_attributes(
    events: Sequence[Any],
    catalog: pd.DataFrame | CatalogArrays,
    category: str,
    *,
    min_share: float,
    min_gain: float,
    min_products: int,
) -> Favoured:
    """The brands, colour (at most one), features and connectivity ``events`` favour within ``category``.

    Nothing is favoured when fewer than ``min_products`` distinct products of the category were seen.
    """
    arr = CatalogArrays.of(catalog)
    cat = str(category).strip().lower()
    rows, w = _event_rows(events, arr, cat)
    if len(set(rows.tolist())) < min_products:
        return Favoured()
    base = np.flatnonzero(arr.category == cat)
    colours = {c for c in arr.colour[rows] if c}
    colour_share = {c: _favoured_share(arr.colour == c, rows, w, base, min_share, min_gain) for c in sorted(colours)}
    best = max(colour_share, key=lambda c: colour_share[c], default=None)

    def tokens(column: str) -> tuple[str, ...]:
        lists = arr.feature_lists if column == "features" else arr.connectivity_lists
        seen = sorted({t for r in rows for t in lists[r]})
        return tuple(
            t for t in seen if _favoured_share(arr.token_mask(column, t), rows, w, base, min_share, min_gain) > 0
        )

    brands = sorted({b for b in arr.brand[rows] if b})
    return Favoured(
        brands=tuple(b for b in brands if _favoured_share(arr.brand == b, rows, w, base, min_share, min_gain) > 0),
        colour=best if best is not None and colour_share[best] > 0 else None,
        features=tokens("features"),
        connectivity=tokens("connectivity"),
    )


def avoided_brands(
    events: Sequence[Any], catalog: pd.DataFrame | CatalogArrays, category: str, *, max_chance: float
) -> tuple[str, ...]:
    """The brands of ``category`` that ``events`` never view although shelf-proportional browsing
    would have shown them with probability ``>= 1 - max_chance`` (``max_chance`` 0: none)."""
    arr = CatalogArrays.of(catalog)
    cat = str(category).strip().lower()
    views = [e for e in events if (e if isinstance(e, dict) else e.to_dict())["kind"] == "view"]
    rows, _ = _event_rows(views, arr, cat)
    on_shelf = arr.category == cat
    shelf = [b for b in arr.brand[on_shelf] if b]
    if not len(rows) or not shelf:
        return ()
    seen = set(arr.brand[rows].tolist())
    brands, counts = np.unique(shelf, return_counts=True)
    n_shelf = int(on_shelf.sum())
    return tuple(
        str(b)
        for b, k in zip(brands, counts, strict=True)
        if b not in seen and (1.0 - k / n_shelf) ** len(rows) <= max_chance
    )


__all__ = ["KIND_WEIGHT", "Favoured", "avoided_brands", "favoured_attributes"]
