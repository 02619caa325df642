"""Hard search filters, evaluated as boolean masks over the catalog before any truncation.

Why before: a shopper's budget or excluded brand must never cost a relevant product its place in
the top-k because filtered-out products filled the candidate list first.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rl_shop.catalog.taxonomy import PATH_SEP
from rl_shop.catalog.vocab import COLOURS, CONNECTIVITY, FEATURES


class FilterError(ValueError):
    """A filter names something the catalog or the vocabularies do not know."""


def _norm_set(values: Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    return frozenset(" ".join(str(v).lower().split()) for v in values)


def _check_vocab(values: Iterable[str], vocab: tuple[str, ...], what: str) -> None:
    for value in values:
        if value not in vocab:
            close = difflib.get_close_matches(value, vocab, n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise FilterError(f"unknown {what} {value!r}{hint} Known values: {list(vocab)}")


@dataclass(frozen=True)
class SearchFilters:
    """Constraints every returned product must satisfy (None / empty = no constraint).

    ``categories`` entries match a leaf category, a full category path, a path prefix (e.g.
    ``"electronics > headphones"``) or a department. Products with unknown price are excluded as
    soon as a price bound is set; products without a capacity fail ``min_capacity_gb``.
    """

    max_price: float | None = None
    min_price: float | None = None
    brands: frozenset[str] | None = None
    exclude_brands: frozenset[str] = field(default_factory=frozenset)
    categories: frozenset[str] | None = None
    colour: str | None = None
    min_capacity_gb: float | None = None
    connectivity: frozenset[str] = field(default_factory=frozenset)
    features: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for name in ("brands", "categories"):
            object.__setattr__(self, name, _norm_set(getattr(self, name)))
        for name in ("exclude_brands", "connectivity", "features"):
            object.__setattr__(self, name, _norm_set(getattr(self, name)) or frozenset())
        for name in ("max_price", "min_price", "min_capacity_gb"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or math.isnan(value) or value < 0):
                raise FilterError(f"{name} must be a non-negative number or None, got {value!r}")
        if self.colour is not None:
            object.__setattr__(self, "colour", self.colour.strip().lower())
            _check_vocab([self.colour], COLOURS, "colour")
        _check_vocab(self.connectivity, CONNECTIVITY, "connectivity")
        _check_vocab(self.features, FEATURES, "feature")

    def is_empty(self) -> bool:
        """True when no constraint is set (the index can skip masking)."""
        return self == SearchFilters()


class FilterColumns:
    """Column arrays of a catalog prepared once for fast masking."""

    def __init__(self, catalog: pd.DataFrame) -> None:
        self.size = len(catalog)
        self.price = catalog["price"].to_numpy(dtype="float64")
        self.brand = catalog["brand"].to_numpy(dtype=object)
        self.category = catalog["category"].to_numpy(dtype=object)
        self.path = catalog["category_path"].to_numpy(dtype=object)
        self.department = catalog["department"].to_numpy(dtype=object)
        self.colour = catalog["colour"].to_numpy(dtype=object)
        self.capacity = catalog["capacity_gb"].to_numpy(dtype="float64")
        self.connectivity = [frozenset(v) for v in catalog["connectivity"]]
        self.features = [frozenset(v) for v in catalog["features"]]
        names: set[str] = set(self.category) | set(self.department)
        for path in set(self.path):
            parts = path.split(PATH_SEP)
            names.update(PATH_SEP.join(parts[: i + 1]) for i in range(len(parts)))
        self.category_names = frozenset(names)
        self._category_masks: dict[str, np.ndarray] = {}

    def category_mask(self, name: str) -> np.ndarray:
        """Rows whose leaf, department, full path or path prefix equals ``name``."""
        if name not in self.category_names:
            close = difflib.get_close_matches(name, sorted(self.category_names), n=5, cutoff=0.5)
            hint = f" Close matches: {close}." if close else ""
            raise FilterError(
                f"unknown category {name!r} in filters.{hint} Use a leaf category, a department "
                f"or a ' > '-joined path prefix from the catalog's category_path column."
            )
        if name not in self._category_masks:
            prefix = name + PATH_SEP
            self._category_masks[name] = np.fromiter(
                (
                    c == name or d == name or p == name or p.startswith(prefix)
                    for c, d, p in zip(self.category, self.department, self.path)
                ),
                dtype=bool,
                count=self.size,
            )
        return self._category_masks[name]

    def mask(self, filters: SearchFilters | None) -> np.ndarray | None:
        """Boolean mask of allowed rows, or None when nothing is filtered."""
        if filters is None or filters.is_empty():
            return None
        keep = np.ones(self.size, dtype=bool)
        with np.errstate(invalid="ignore"):
            if filters.max_price is not None:
                keep &= self.price <= filters.max_price  # NaN compares False: unknown price excluded
            if filters.min_price is not None:
                keep &= self.price >= filters.min_price
            if filters.min_capacity_gb is not None:
                keep &= self.capacity >= filters.min_capacity_gb
        if filters.brands is not None:
            keep &= np.isin(self.brand, list(filters.brands))
        if filters.exclude_brands:
            keep &= ~np.isin(self.brand, list(filters.exclude_brands))
        if filters.categories is not None:
            allowed = np.zeros(self.size, dtype=bool)
            for name in filters.categories:
                allowed |= self.category_mask(name)
            keep &= allowed
        if filters.colour is not None:
            keep &= self.colour == filters.colour
        if filters.connectivity:
            keep &= np.fromiter((filters.connectivity <= c for c in self.connectivity), dtype=bool, count=self.size)
        if filters.features:
            keep &= np.fromiter((filters.features <= f for f in self.features), dtype=bool, count=self.size)
        return keep
