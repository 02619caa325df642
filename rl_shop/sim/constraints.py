"""Constraint satisfaction of an ``Intent`` against a catalog, one slot at a time.

The RL environments precompute candidate-set sizes for every subset of revealed slots, so
``slot_mask`` must be cheap: the catalog's columns are turned once into numpy arrays (category
and brand codes, numeric attributes, one boolean column per connectivity / feature token) held
by a ``CatalogArrays`` cache, and each slot is then a few vectorized comparisons.

Semantics worth knowing: an unknown attribute value (NaN price, empty colour, NaN capacity or
size) never satisfies a constraint on that attribute, because the shop cannot promise it; a
product with an unknown brand does satisfy a brand *exclusion*.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

import numpy as np
import pandas as pd

from rl_shop.sim.errors import ImpossibleIntentError, UnknownCategoryError, UnknownProductError
from rl_shop.sim.slots import SLOTS, Intent

REQUIRED_COLUMNS: tuple[str, ...] = (
    "product_id",
    "category",
    "brand",
    "price",
    "colour",
    "capacity_gb",
    "size_in",
    "connectivity",
    "features",
)


def _norm(value: object) -> str:
    """Lower-case, stripped text; NaN / None become ''."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip().lower()


def _tokens(value: object) -> list[str]:
    """A list-like cell (list, tuple, numpy array, JSON-ish string) as normalized tokens."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.strip("[]").replace("'", "").replace('"', "").split(",")
    if isinstance(value, float):
        return []
    if isinstance(value, Iterable):
        return [t for t in (_norm(v) for v in value) if t]
    return []


class CatalogArrays:
    """Column arrays of one catalog, precomputed for fast vectorized slot masks.

    Build it once per catalog (``CatalogArrays.of(df)`` caches it by DataFrame identity) and
    pass it instead of the DataFrame wherever speed matters.
    """

    def __init__(self, catalog: pd.DataFrame) -> None:
        missing = [c for c in REQUIRED_COLUMNS if c not in catalog.columns]
        if missing:
            raise ValueError(
                f"catalog is missing column(s) {missing}; expected the rl_shop.catalog schema "
                f"({list(REQUIRED_COLUMNS)}). Load it with rl_shop.catalog.load_catalog()."
            )
        self.n = len(catalog)
        self.ids = np.array([str(x) for x in catalog["product_id"]], dtype=object)
        self.id_to_index: dict[str, int] = {pid: i for i, pid in enumerate(self.ids)}
        self.category = np.array([_norm(x) for x in catalog["category"]], dtype=object)
        self.brand = np.array([_norm(x) for x in catalog["brand"]], dtype=object)
        self.colour = np.array([_norm(x) for x in catalog["colour"]], dtype=object)
        self.price = pd.to_numeric(catalog["price"], errors="coerce").to_numpy(dtype=float)
        self.capacity_gb = pd.to_numeric(catalog["capacity_gb"], errors="coerce").to_numpy(dtype=float)
        self.size_in = pd.to_numeric(catalog["size_in"], errors="coerce").to_numpy(dtype=float)
        self.connectivity_lists = [_tokens(x) for x in catalog["connectivity"]]
        self.feature_lists = [_tokens(x) for x in catalog["features"]]
        self.categories: frozenset[str] = frozenset(self.category.tolist())
        # integer codes: comparing ints is ~10x faster than comparing Python strings
        self.category_code, cat_uniques = pd.factorize(self.category)
        self.brand_code, brand_uniques = pd.factorize(self.brand)
        self.colour_code, colour_uniques = pd.factorize(self.colour)
        self._cat_index = {v: i for i, v in enumerate(cat_uniques)}
        self._brand_index = {v: i for i, v in enumerate(brand_uniques)}
        self._colour_index = {v: i for i, v in enumerate(colour_uniques)}
        self._token_masks: dict[tuple[str, str], np.ndarray] = {}

    # ------------------------------------------------------------------ cache
    _cache: dict[int, tuple[weakref.ref[pd.DataFrame], CatalogArrays]] = {}

    @classmethod
    def of(cls, catalog: pd.DataFrame | CatalogArrays) -> CatalogArrays:
        """The (cached) arrays of ``catalog``; an existing ``CatalogArrays`` passes through."""
        if isinstance(catalog, CatalogArrays):
            return catalog
        if not isinstance(catalog, pd.DataFrame):
            raise TypeError(f"expected a catalog DataFrame or CatalogArrays, got {type(catalog)}")
        key, n_rows = id(catalog), len(catalog)
        hit = cls._cache.get(key)
        if hit is not None and hit[0]() is catalog and hit[1].n == n_rows:
            return hit[1]
        arrays = cls(catalog)
        cls._cache = {k: v for k, v in cls._cache.items() if v[0]() is not None}
        cls._cache[key] = (weakref.ref(catalog), arrays)
        return arrays

    # ------------------------------------------------------------------ lookups
    def token_mask(self, column: str, token: str) -> np.ndarray:
        """Products whose ``column`` ('connectivity' or 'features') list contains ``token``."""
        key = (column, _norm(token))
        mask = self._token_masks.get(key)
        if mask is None:
            lists = self.connectivity_lists if column == "connectivity" else self.feature_lists
            mask = np.fromiter((key[1] in lst for lst in lists), dtype=bool, count=self.n)
            self._token_masks[key] = mask
        return mask

    def codes(self, kind: str, values: Iterable[str]) -> list[int]:
        """Integer codes of ``values`` in column ``kind`` (-2 for values the catalog lacks)."""
        table = {"category": self._cat_index, "brand": self._brand_index, "colour": self._colour_index}[kind]
        return [table.get(_norm(v), -2) for v in values]

    def index_of(self, product_id: str) -> int:
        """Row index of a product id, with a clear error for unknown ids."""
        try:
            return self.id_to_index[str(product_id)]
        except KeyError:
            raise UnknownProductError(
                f"product id {product_id!r} is not in the catalog ({self.n} products); "
                "use an id from the catalog's product_id column"
            ) from None

    def check_category(self, category: str) -> str:
        """The normalized category, or an error listing a few close known categories."""
        norm = _norm(category)
        if norm not in self.categories:
            words = set(norm.split())
            close = sorted(c for c in self.categories if words & set(c.split()))[:5]
            raise UnknownCategoryError(
                f"unknown category {category!r}; the catalog has {len(self.categories)} "
                f"categories{', e.g. ' + ', '.join(map(repr, close)) if close else ''}"
            )
        return norm


def slot_mask(catalog: pd.DataFrame | CatalogArrays, intent: Intent, slot: str) -> np.ndarray:
    """Boolean mask of products satisfying the intent's constraint on ONE slot.

    All-True when the intent does not constrain ``slot``.
    """
    arr = CatalogArrays.of(catalog)
    if slot not in SLOTS:
        raise ValueError(f"unknown slot {slot!r}; valid slots are {list(SLOTS)}")
    ones = np.ones(arr.n, dtype=bool)
    if slot == "category":
        if not intent.category:
            return ones
        return arr.category_code == arr.codes("category", [arr.check_category(intent.category)])[0]
    if slot == "budget":
        if intent.budget is None:
            return ones
        with np.errstate(invalid="ignore"):
            return arr.price <= intent.budget
    if slot == "brand":
        mask = ones
        if intent.preferred_brands:
            mask = np.isin(arr.brand_code, arr.codes("brand", intent.preferred_brands))
        if intent.excluded_brands:
            mask = mask & ~np.isin(arr.brand_code, arr.codes("brand", intent.excluded_brands))
        return mask
    if slot == "colour":
        if not intent.colour:
            return ones
        return arr.colour_code == arr.codes("colour", [intent.colour])[0]
    if slot == "capacity":
        if intent.min_capacity_gb is None:
            return ones
        with np.errstate(invalid="ignore"):
            return arr.capacity_gb >= intent.min_capacity_gb
    if slot == "size":
        if intent.min_size_in is None and intent.max_size_in is None:
            return ones
        mask = ~np.isnan(arr.size_in)
        with np.errstate(invalid="ignore"):
            if intent.min_size_in is not None:
                mask &= arr.size_in >= intent.min_size_in
            if intent.max_size_in is not None:
                mask &= arr.size_in <= intent.max_size_in
        return mask
    if slot in ("connectivity", "features"):
        tokens = intent.connectivity if slot == "connectivity" else intent.features
        mask = ones.copy()
        for token in tokens:
            mask &= arr.token_mask(slot, token)
        return mask
    # use_case: the knowledge table maps a use case to a set of suitable categories
    if not intent.use_case_categories:
        return ones
    return np.isin(arr.category_code, arr.codes("category", intent.use_case_categories))


def target_mask(catalog: pd.DataFrame | CatalogArrays, intent: Intent) -> np.ndarray:
    """Mask of the intent's target products (all-True when it names none)."""
    arr = CatalogArrays.of(catalog)
    if not intent.target_product_ids:
        return np.ones(arr.n, dtype=bool)
    mask = np.zeros(arr.n, dtype=bool)
    for pid in intent.target_product_ids:
        mask[arr.index_of(pid)] = True
    return mask


def gold_mask(catalog: pd.DataFrame | CatalogArrays, intent: Intent) -> np.ndarray:
    """Products satisfying every slot constraint (and, if any are named, being a target)."""
    arr = CatalogArrays.of(catalog)
    mask = target_mask(arr, intent)
    for slot in SLOTS:
        mask = mask & slot_mask(arr, intent, slot)
    return mask


def gold_ids(catalog: pd.DataFrame | CatalogArrays, intent: Intent) -> list[str]:
    """Product ids of the gold set, in catalog order."""
    arr = CatalogArrays.of(catalog)
    return arr.ids[gold_mask(arr, intent)].tolist()


def require_satisfiable(catalog: pd.DataFrame | CatalogArrays, intent: Intent) -> list[str]:
    """Gold ids, or ``ImpossibleIntentError`` naming the constraints when none exist."""
    ids = gold_ids(catalog, intent)
    if not ids:
        arr = CatalogArrays.of(catalog)
        counts = {s: int(slot_mask(arr, intent, s).sum()) for s in intent.constrained_slots()}
        detail = ", ".join(f"{s} alone keeps {n}" for s, n in counts.items())
        raise ImpossibleIntentError(
            intent.constraints(),
            message=(
                f"no catalog product satisfies all constraints {intent.constraints()} "
                f"({detail}). Relax a constraint or choose another category."
            ),
        )
    return ids


def subset_candidate_counts(
    catalog: pd.DataFrame | CatalogArrays, intent: Intent, slots: tuple[str, ...] = SLOTS
) -> np.ndarray:
    """Candidate-set size for every subset of revealed ``slots``, indexed by bitmask.

    Entry ``m`` counts products satisfying the constraints of every slot ``slots[i]`` with bit
    ``i`` set in ``m`` (entry 0 = the whole catalog). Target products, when the intent names
    some, are not applied: they are not revealed through slots. Computed by packing each
    product's satisfied slots into one integer, a histogram over the 2^n codes, and a superset-sum
    transform, so all 2^n counts cost O(n 2^n + N) instead of 2^n mask ANDs.
    """
    arr = CatalogArrays.of(catalog)
    n = len(slots)
    if n > 16:
        raise ValueError(f"at most 16 slots are supported, got {n}")
    code = np.zeros(arr.n, dtype=np.int64)
    for i, slot in enumerate(slots):
        code |= slot_mask(arr, intent, slot).astype(np.int64) << i
    counts = np.bincount(code, minlength=1 << n).astype(np.int64)
    for i in range(n):  # superset sums: counts[S] = sum of hist[C] over C containing S
        bit = 1 << i
        idx = np.arange(1 << n)
        without = idx[(idx & bit) == 0]
        counts[without] += counts[without | bit]
    return counts
