"""A precomputed pool of shopper intents that turns the clarification env into table lookups.

Why: every step of the Clarify env (``envs.specs.CLARIFY``) needs |C(s)|, the number of catalog products consistent
with what the shopper has revealed. Filtering the catalog each step would cost milliseconds;
instead, for each pool intent and each of the 512 subsets of the 9 slots, the pool stores

* ``n_candidates[i, m]`` = |C| where C = products satisfying the intent's constraints on the
  slots in ``m & relevant[i]`` (the AND of ``rl_shop.sim.constraints.slot_mask``), and
* ``n_hits[i, m]`` = |G ∩ C| with G the intent's gold set,

computed for the 2^r subsets of the r relevant slots only (a subset with irrelevant slots has the
same candidates as its relevant part). ``log2_candidates`` and ``accuracy`` (= |G ∩ C| / |C|, see
``docs/envs.md``) are derived tables. A built pool is cached as ``.npz`` under
``rl_shop.paths.cache_dir()/intent_pools``, keyed by a hash of the catalog, the sim config, the
pool size and the seed.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rl_shop.policies.features.clarify import N_QUERY_TYPES, N_SLOTS, slots_to_mask

if TYPE_CHECKING:
    import pandas as pd

    from rl_shop.sim.config import SimConfig
    from rl_shop.sim.slots import Intent

POOL_FORMAT_VERSION = 1
N_MASKS = 1 << N_SLOTS

_POPCOUNT = np.array([bin(m).count("1") for m in range(N_MASKS)], dtype=np.int64)


class IntentPoolError(ValueError):
    """An intent pool that is empty, inconsistent, or cannot be built / loaded."""


@dataclass(frozen=True)
class PoolRows:
    """A pool's per-intent values as Python lists, the form a single env reads at every reset
    (numpy scalar indexing and ``int()`` conversions were most of a reset's cost). Read only."""

    relevant: list[int]
    stated: list[int]
    patience: list[int]
    query_type: list[int]
    p_dont_know: list[list[float]]
    p_wrong: list[list[float]]


@dataclass(frozen=True)
class IntentPool:
    """Per-intent tables the clarification envs read at every step (all numpy arrays).

    Shapes: ``[N]`` for per-intent values, ``[N, 9]`` per slot, ``[N, 512]`` per slot subset.
    Slot subsets are 9-bit masks, bit i = ``rl_shop.sim.slots.SLOTS[i]``.
    """

    query_type: np.ndarray  # int64 [N], index into QUERY_TYPES
    relevant: np.ndarray  # int64 [N], slots the intent constrains
    stated: np.ndarray  # int64 [N], slots the first query states (subset of relevant)
    n_candidates: np.ndarray  # int64 [N, 512]
    n_hits: np.ndarray  # int64 [N, 512]
    p_dont_know: np.ndarray  # float64 [N, 9]
    p_wrong: np.ndarray  # float64 [N, 9]
    patience: np.ndarray  # int64 [N], rounds the shopper answers before leaving
    catalog_size: int
    log2_candidates: np.ndarray = field(init=False, repr=False)  # float64 [N, 512]
    accuracy: np.ndarray = field(init=False, repr=False)  # float64 [N, 512]

    def __post_init__(self) -> None:
        n = int(np.asarray(self.query_type).shape[0]) if np.ndim(self.query_type) == 1 else -1
        if n <= 0:
            raise IntentPoolError(
                "the intent pool is empty (or query_type is not a 1-d array); build it with at "
                "least one intent (check the pool size in configs/env/clarify.yaml)"
            )
        shapes = {
            "relevant": (n,),
            "stated": (n,),
            "n_candidates": (n, N_MASKS),
            "n_hits": (n, N_MASKS),
            "p_dont_know": (n, N_SLOTS),
            "p_wrong": (n, N_SLOTS),
            "patience": (n,),
        }
        for name, shape in shapes.items():
            arr = np.asarray(getattr(self, name))
            if arr.shape != shape:
                raise IntentPoolError(f"intent pool field {name} has shape {arr.shape}, expected {shape}")
        conv = {
            "query_type": np.int64,
            "relevant": np.int64,
            "stated": np.int64,
            "n_candidates": np.int64,
            "n_hits": np.int64,
            "p_dont_know": np.float64,
            "p_wrong": np.float64,
            "patience": np.int64,
        }
        for name, dtype in conv.items():
            arr = np.ascontiguousarray(np.asarray(getattr(self, name)), dtype=dtype)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if self.catalog_size < 1:
            raise IntentPoolError(f"catalog_size must be >= 1, got {self.catalog_size}")
        if (self.query_type < 0).any() or (self.query_type >= N_QUERY_TYPES).any():
            raise IntentPoolError(f"query_type values must be in 0..{N_QUERY_TYPES - 1}")
        if ((self.relevant < 0) | (self.relevant >= N_MASKS)).any():
            raise IntentPoolError("relevant must hold 9-bit slot masks")
        if (self.stated & ~self.relevant).any():
            raise IntentPoolError("stated slots must be a subset of the relevant slots for every intent")
        if (self.n_candidates < 0).any() or (self.n_candidates > self.catalog_size).any():
            raise IntentPoolError("n_candidates must be in 0..catalog_size")
        if (self.n_hits < 0).any() or (self.n_hits > self.n_candidates).any():
            raise IntentPoolError("n_hits (|G ∩ C|) must be in 0..n_candidates")
        for name in ("p_dont_know", "p_wrong"):
            p = getattr(self, name)
            if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
                raise IntentPoolError(f"{name} must hold probabilities in [0, 1]")
        if (self.p_dont_know + self.p_wrong > 1 + 1e-12).any():
            raise IntentPoolError("p_dont_know + p_wrong must be <= 1 for every intent and slot")
        if (self.patience < 0).any():
            raise IntentPoolError("patience must be >= 0")
        log2c = np.log2(np.maximum(self.n_candidates, 1)).astype(np.float64)
        acc = self.n_hits / np.maximum(self.n_candidates, 1)
        for name, arr in (("log2_candidates", log2c), ("accuracy", acc)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(self.query_type.shape[0])

    @property
    def log2_catalog_size(self) -> float:
        """log2 of the catalog size: the entropy of the belief before anything is known."""
        return float(np.log2(self.catalog_size))

    @functools.cached_property
    def rows(self) -> PoolRows:
        """The per-intent values as lists, built once and shared by every env on this pool: built
        per env, their ~90k Python objects made each ``gym.make`` pay for garbage collections of the
        whole heap (about 49 ms a make against 6 ms with the collector off)."""
        return PoolRows(
            self.relevant.tolist(),
            self.stated.tolist(),
            self.patience.tolist(),
            self.query_type.tolist(),
            self.p_dont_know.tolist(),
            self.p_wrong.tolist(),
        )

    @functools.cached_property
    def log2_candidates_share(self) -> np.ndarray:
        """``log2 |C| / log2 |catalog|`` (float64 ``[N, 512]``, read only), built once per pool: the
        candidate entropy in the unit of a normalized Intent_Gain."""
        share = self.log2_candidates / self.log2_catalog_size
        share.setflags(write=False)
        return share

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write the pool as a compressed ``.npz`` (derived tables are recomputed on load)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(
            tmp,
            format_version=np.int64(POOL_FORMAT_VERSION),
            query_type=self.query_type,
            relevant=self.relevant,
            stated=self.stated,
            n_candidates=self.n_candidates.astype(np.int32),
            n_hits=self.n_hits.astype(np.int32),
            p_dont_know=self.p_dont_know,
            p_wrong=self.p_wrong,
            patience=self.patience,
            catalog_size=np.int64(self.catalog_size),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> IntentPool:
        """Read a pool written by ``save``, with a clear error if it is missing or corrupt."""
        path = Path(path)
        if not path.is_file():
            raise IntentPoolError(f"intent pool file {path} not found; build it with build_intent_pool()")
        try:
            with np.load(path) as data:
                if int(data["format_version"]) != POOL_FORMAT_VERSION:
                    raise IntentPoolError(
                        f"intent pool {path} has format {int(data['format_version'])}, this code "
                        f"reads {POOL_FORMAT_VERSION}; delete the file so it is rebuilt"
                    )
                fields = {k: data[k] for k in data.files if k not in ("format_version", "catalog_size")}
                return cls(catalog_size=int(data["catalog_size"]), **fields)
        except (OSError, KeyError, ValueError, EOFError) as exc:
            if isinstance(exc, IntentPoolError):
                raise
            raise IntentPoolError(f"intent pool file {path} is unreadable ({exc}); delete it so it is rebuilt") from exc


# ---------------------------------------------------------------------- building from masks
def _subset_index(relevant_bits: Sequence[int]) -> np.ndarray:
    """For every 9-bit mask m, the index of ``m & relevant`` among the 2^r relevant subsets."""
    masks = np.arange(N_MASKS)
    sub = np.zeros(N_MASKS, dtype=np.int64)
    for j, b in enumerate(relevant_bits):
        sub |= ((masks >> b) & 1) << j
    return sub


def candidate_counts(
    slot_masks: Mapping[int, np.ndarray], gold: np.ndarray, n_products: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(n_candidates[512], n_hits[512])`` for one intent from per-slot boolean masks.

    ``slot_masks`` maps a slot index to the boolean array of products satisfying the intent's
    constraint on that slot (only relevant slots); ``gold`` is the gold-product boolean array.
    Subsets are ANDed incrementally over bit-packed masks, so an intent costs 2^r word-wise ANDs.
    """
    rel_bits = sorted(slot_masks)
    packed = {b: np.packbits(np.asarray(slot_masks[b], dtype=bool)) for b in rel_bits}
    gold_packed = np.packbits(np.asarray(gold, dtype=bool))
    n_sub = 1 << len(rel_bits)
    sets = np.empty((n_sub, gold_packed.shape[0]), dtype=np.uint8)
    sets[0] = np.packbits(np.ones(n_products, dtype=bool))
    for s in range(1, n_sub):
        low = (s & -s).bit_length() - 1
        sets[s] = sets[s & (s - 1)] & packed[rel_bits[low]]
    cand = np.bitwise_count(sets).sum(axis=1, dtype=np.int64)
    hits = np.bitwise_count(sets & gold_packed).sum(axis=1, dtype=np.int64)
    sub = _subset_index(rel_bits)
    return cand[sub], hits[sub]


@dataclass(frozen=True)
class PoolIntent:
    """One intent reduced to what the pool needs (sim-independent, so tests can hand-build one)."""

    query_type: int
    slot_masks: Mapping[int, np.ndarray]  # slot index -> products satisfying that constraint
    gold: np.ndarray  # bool [n_products]
    stated: Iterable[int] | int = 0  # mask or slot indices
    p_dont_know: float | Sequence[float] = 0.0
    p_wrong: float | Sequence[float] = 0.0
    patience: int = 4


def pool_from_intents(intents: Sequence[PoolIntent], n_products: int) -> IntentPool:
    """Assemble an ``IntentPool`` from reduced intents over a catalog of ``n_products``."""
    if len(intents) == 0:
        raise IntentPoolError("cannot build an intent pool from zero intents")
    n = len(intents)
    qt = np.zeros(n, np.int64)
    rel = np.zeros(n, np.int64)
    stated = np.zeros(n, np.int64)
    cand = np.zeros((n, N_MASKS), np.int64)
    hits = np.zeros((n, N_MASKS), np.int64)
    pdk = np.zeros((n, N_SLOTS))
    pw = np.zeros((n, N_SLOTS))
    pat = np.zeros(n, np.int64)
    for k, it in enumerate(intents):
        for b, m in it.slot_masks.items():
            if not 0 <= int(b) < N_SLOTS:
                raise IntentPoolError(f"slot index {b} out of range 0..{N_SLOTS - 1}")
            if np.asarray(m).shape != (n_products,):
                raise IntentPoolError(
                    f"slot mask for slot {b} has shape {np.asarray(m).shape}, expected ({n_products},)"
                )
        if np.asarray(it.gold).shape != (n_products,):
            raise IntentPoolError(f"gold mask has shape {np.asarray(it.gold).shape}, expected ({n_products},)")
        qt[k] = it.query_type
        rel[k] = sum(1 << int(b) for b in it.slot_masks)
        stated[k] = it.stated if isinstance(it.stated, (int, np.integer)) else sum(1 << int(b) for b in it.stated)
        cand[k], hits[k] = candidate_counts(it.slot_masks, it.gold, n_products)
        pdk[k] = it.p_dont_know
        pw[k] = it.p_wrong
        pat[k] = it.patience
    return IntentPool(
        query_type=qt,
        relevant=rel,
        stated=stated,
        n_candidates=cand,
        n_hits=hits,
        p_dont_know=pdk,
        p_wrong=pw,
        patience=pat,
        catalog_size=n_products,
    )


# ---------------------------------------------------------------------- building from the sim
def reduce_sim_intent(intent: Intent, catalog: pd.DataFrame, hidden_dont_know_bonus: float) -> PoolIntent:
    """Reduce a ``rl_shop.sim`` ``Intent`` to a ``PoolIntent`` through the sim's constraint masks.

    Answer probabilities follow ``rl_shop.sim.shopper.Shopper.answer``: "don't know" with
    ``p_dont_know`` (+ ``hidden_dont_know_bonus`` on hidden slots, capped at 1), otherwise a
    wrong value with ``p_wrong``; the env draws one uniform against the cumulative thresholds,
    so the pool stores the unconditional ``(1 - p_dk) * p_wrong``.
    """
    from rl_shop.policies.features.clarify import query_type_index
    from rl_shop.sim.constraints import slot_mask, target_mask
    from rl_shop.sim.slots import SLOTS

    relevant = intent.constrained_slots()
    masks = {SLOTS.index(s): np.asarray(slot_mask(catalog, intent, s), dtype=bool) for s in relevant}
    # gold_mask(catalog, intent) = target_mask AND every slot_mask, where unconstrained slots are
    # all-True; reusing the relevant masks halves the build time (tests check the equality).
    gold = np.asarray(target_mask(catalog, intent), dtype=bool).copy()
    for m in masks.values():
        gold &= m
    stated = slots_to_mask(s for s in intent.stated_slots if s in relevant)
    p_dk = np.full(N_SLOTS, float(intent.p_dont_know))
    for s in intent.hidden_slots:
        p_dk[SLOTS.index(s)] += hidden_dont_know_bonus
    p_dk = np.minimum(p_dk, 1.0)
    return PoolIntent(
        query_type=query_type_index(intent.query_type),
        slot_masks=masks,
        gold=gold,
        stated=stated,
        p_dont_know=p_dk,
        p_wrong=(1.0 - p_dk) * float(intent.p_wrong),
        patience=int(intent.patience),
    )


def resolve_sim_config(sim_config: Mapping[str, Any] | None) -> SimConfig:
    """The ``SimConfig``: ``configs/sim/default.yaml`` with ``sim_config`` as section overrides."""
    from rl_shop.sim.config import load_sim_config

    if sim_config is not None and not isinstance(sim_config, Mapping):
        raise IntentPoolError(f"sim_config must be a mapping of section overrides or null, got {sim_config!r}")
    return load_sim_config(overrides=dict(sim_config) if sim_config else None)


def catalog_fingerprint(catalog: pd.DataFrame) -> str:
    """A content hash of a catalog DataFrame (changes whenever any cell does)."""
    payload = catalog.to_json(orient="split", default_handler=str).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def build_intent_pool(
    catalog: pd.DataFrame, size: int, seed: int, sim_config: Mapping[str, Any] | None = None
) -> IntentPool:
    """Sample ``size`` intents with ``rl_shop.sim.IntentSampler`` and tabulate them (uncached)."""
    from rl_shop.sim.constraints import CatalogArrays
    from rl_shop.sim.sampler import IntentSampler

    if isinstance(size, bool) or int(size) < 1:
        raise IntentPoolError(f"pool size must be >= 1, got {size}")
    config = resolve_sim_config(sim_config)
    sampler = IntentSampler(catalog, config, seed=int(seed))
    arrays = CatalogArrays.of(catalog)
    bonus = float(config.shopper.p_dont_know_hidden_bonus)
    intents = [reduce_sim_intent(sampler.sample(), arrays, bonus) for _ in range(int(size))]
    return pool_from_intents(intents, arrays.n)


def pool_cache_path(catalog: pd.DataFrame, size: int, seed: int, sim_config: Mapping[str, Any] | None) -> Path:
    """Where the pool for (catalog, resolved sim config, size, seed) is cached."""
    from rl_shop.paths import cache_dir

    key = json.dumps(
        {
            "v": POOL_FORMAT_VERSION,
            "catalog": catalog_fingerprint(catalog),
            "sim_config": resolve_sim_config(sim_config).model_dump(mode="json"),
            "size": int(size),
            "seed": int(seed),
        },
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_dir() / "intent_pools" / f"clarify_{digest}.npz"


_MEMO: dict[tuple[Any, ...], IntentPool] = {}


def load_or_build_intent_pool(
    size: int, seed: int, sim_config: Mapping[str, Any] | None = None, catalog: pd.DataFrame | None = None
) -> IntentPool:
    """The pool for the shipped catalog (or ``catalog``), from memory, the disk cache, or built.

    Memoized per process so that many env copies (vector envs, SB3 ``make_vec_env``) share one
    pool and load the catalog once. Building 4096 intents takes about a minute (mostly the
    simulator's intent sampling and constraint masks); later runs read the ``.npz`` cache.
    """
    memo_key = (
        "shipped" if catalog is None else id(catalog),
        int(size),
        int(seed),
        json.dumps(sim_config, sort_keys=True, default=str),
    )
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    if catalog is None:
        from rl_shop.catalog import load_catalog

        catalog = load_catalog()
    path = pool_cache_path(catalog, size, seed, sim_config)
    pool = None
    if path.is_file():
        try:
            pool = IntentPool.load(path)
        except IntentPoolError:
            pool = None  # stale or corrupt cache: rebuild below
    if pool is None:
        pool = build_intent_pool(catalog, size, seed, sim_config)
        pool.save(path)
    if catalog is not None and memo_key[0] != "shipped":
        _MEMO.clear()  # id() keys of caller catalogs can be reused; keep at most the latest one
    _MEMO[memo_key] = pool
    return pool


def synthetic_intent_pool(
    n_intents: int,
    n_products: int,
    seed: int,
    p_dont_know: float = 0.1,
    p_wrong: float = 0.05,
    patience: tuple[int, int] = (2, 6),
) -> IntentPool:
    """A random pool over a random catalog, for tests and benchmarks that must not need the data.

    Each intent constrains 2-6 random slots, each keeping a random 20-60% of the products, states
    the first of them, and has gold = the AND of its constraints (re-drawn until non-empty).
    """
    if n_intents < 1 or n_products < 1:
        raise IntentPoolError("synthetic_intent_pool needs n_intents >= 1 and n_products >= 1")
    rs = np.random.default_rng(seed)
    intents: list[PoolIntent] = []
    while len(intents) < n_intents:
        rel = rs.choice(N_SLOTS, size=int(rs.integers(2, 7)), replace=False)
        masks = {int(b): rs.random(n_products) < rs.uniform(0.2, 0.6) for b in rel}
        gold = np.logical_and.reduce(list(masks.values()))
        if not gold.any():
            continue
        intents.append(
            PoolIntent(
                query_type=int(rs.integers(N_QUERY_TYPES)),
                slot_masks=masks,
                gold=gold,
                stated=[int(rel[0])],
                p_dont_know=p_dont_know,
                p_wrong=p_wrong,
                patience=int(rs.integers(patience[0], patience[1] + 1)),
            )
        )
    return pool_from_intents(intents, n_products)
