"""The ECCD-style benchmark: build it from a catalog, write it as JSONL + card, load it back.

One JSONL line per query: id, query text, query_type, the hidden intent (serialized), gold product
ids, for Q&A types the gold answer, and the split (a fixed hash of the id; files from before the
field was written get the same split from the id when loaded). The card records version, seed,
counts (per split too) and a hash of the catalog it was built against, so a benchmark silently
evaluated on another catalog is caught.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rl_shop.paths import DATA_DIR
from rl_shop.sim.config import SimConfig
from rl_shop.sim.constraints import CatalogArrays, require_satisfiable
from rl_shop.sim.errors import BenchmarkFileError, ConfigError
from rl_shop.sim.render import QueryRenderer, validate_query_text
from rl_shop.sim.sampler import IntentSampler
from rl_shop.sim.slots import QUERY_TYPES, Intent

DEFAULT_BENCHMARK = DATA_DIR / "benchmark" / "eccd_v1.jsonl"
HASH_COLUMNS: tuple[str, ...] = ("product_id", "category", "brand", "price", "colour", "capacity_gb", "size_in")
#: Share of queries in each split, by a fixed hash of the query id (``split_of``): calibration and any
#: fitting read ``train``, choices are made on ``dev``, reported figures use ``test``.
SPLIT_SHARES: dict[str, float] = {"train": 0.5, "dev": 0.1, "test": 0.4}


def split_of(item_id: str) -> str:
    """The split of a benchmark query: a fixed sha1 hash of its id, so it never depends on order or seed."""
    u = int(hashlib.sha1(f"split|{item_id}".encode()).hexdigest()[:12], 16) / 16**12
    edge = 0.0
    for name, share in SPLIT_SHARES.items():
        edge += share
        if u < edge:
            return name
    return name  # u in the last share (float round-off at 1.0)


@dataclass(frozen=True)
class BenchmarkItem:
    """One benchmark query with its hidden intent and gold labels."""

    id: str
    query: str
    query_type: str
    intent: Intent
    gold_product_ids: tuple[str, ...]
    gold_answer: str | None = None

    @property
    def split(self) -> str:
        """train / dev / test, from the id alone (``split_of``)."""
        return split_of(self.id)

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "query": self.query,
                "query_type": self.query_type,
                "intent": json.loads(self.intent.to_json()),
                "gold_product_ids": list(self.gold_product_ids),
                "gold_answer": self.gold_answer,
                "split": self.split,
            },
            sort_keys=True,
            ensure_ascii=False,
        )


def catalog_hash(catalog: pd.DataFrame) -> str:
    """Short sha256 over the columns gold labels depend on (stable across pandas versions)."""
    h = hashlib.sha256()
    cols = [c for c in HASH_COLUMNS if c in catalog.columns]
    for col in cols:
        h.update(col.encode())
        h.update("\x1f".join(map(str, catalog[col].tolist())).encode())
    for col in ("connectivity", "features"):
        if col in catalog.columns:
            h.update("\x1f".join(",".join(map(str, v)) for v in catalog[col].tolist()).encode())
    return h.hexdigest()[:16]


def type_counts(size: int, composition: str, mix: dict[str, float]) -> dict[str, int]:
    """Queries per type: 'balanced' splits ``size`` evenly, 'mix' follows the paper's mix."""
    if size < 1:
        raise ConfigError(f"benchmark size must be positive, got {size}")
    if composition == "balanced":
        base, extra = divmod(size, len(QUERY_TYPES))
        return {t: base + (1 if i < extra else 0) for i, t in enumerate(QUERY_TYPES)}
    if composition == "mix":
        raw = np.array([mix[t] for t in QUERY_TYPES]) * size
        counts = np.floor(raw).astype(int)
        for i in np.argsort(-(raw - counts))[: size - counts.sum()]:
            counts[i] += 1
        return {t: int(c) for t, c in zip(QUERY_TYPES, counts)}
    raise ConfigError(f"unknown benchmark composition {composition!r}; use 'balanced' or 'mix'")


def build_benchmark(
    catalog: pd.DataFrame,
    config: SimConfig,
    size: int,
    seed: int,
    composition: str = "balanced",
    id_prefix: str = "eccd",
) -> list[BenchmarkItem]:
    """Sample, render and label ``size`` queries; same inputs and seed -> identical items, with ids
    ``<id_prefix>-00000`` ... (a version's own prefix keeps ids, and so splits, apart)."""
    sampler = IntentSampler(catalog, config, seed=seed)
    renderer = QueryRenderer(config)
    text_rng = np.random.default_rng([seed, 1])
    arr = CatalogArrays.of(catalog)
    items: list[BenchmarkItem] = []
    for qtype, n in type_counts(size, composition, config.mix_probabilities()).items():
        for _ in range(n):
            intent = sampler.sample(qtype)
            gold = require_satisfiable(arr, intent)
            items.append(
                BenchmarkItem("", renderer.render(intent, text_rng), qtype, intent, tuple(gold), intent.gold_answer)
            )
    order = np.random.default_rng([seed, 2]).permutation(len(items))
    return [
        BenchmarkItem(f"{id_prefix}-{k:05d}", it.query, it.query_type, it.intent, it.gold_product_ids, it.gold_answer)
        for k, it in enumerate(items[i] for i in order)
    ]


def write_benchmark(items: list[BenchmarkItem], path: Path, card: dict[str, Any]) -> tuple[Path, Path]:
    """Write the JSONL and its ``.card.json`` beside it; returns both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(it.to_json() + "\n" for it in items), encoding="utf-8")
    counts: dict[str, int] = {t: 0 for t in QUERY_TYPES}
    by_split: dict[str, dict[str, int]] = {s: {t: 0 for t in QUERY_TYPES} for s in SPLIT_SHARES}
    for it in items:
        counts[it.query_type] += 1
        by_split[it.split][it.query_type] += 1
    full = {**card, "n_queries": len(items), "counts": counts, "counts_by_split": by_split, "file": path.name}
    card_path = path.with_suffix(".card.json")
    card_path.write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path, card_path


def _parse_line(line: str, lineno: int, path: Path) -> BenchmarkItem:
    where = f"{path}:{lineno}"
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BenchmarkFileError(
            f"{where} is not valid JSON ({exc.msg}); regenerate the file with experiments/make_benchmark.py"
        ) from None
    missing = [k for k in ("id", "query", "query_type", "intent", "gold_product_ids") if k not in rec]
    if missing:
        raise BenchmarkFileError(f"{where} lacks field(s) {missing}; the file is not an rl_shop benchmark")
    if rec["query_type"] not in QUERY_TYPES:
        raise BenchmarkFileError(f"{where} has unknown query_type {rec['query_type']!r}")
    try:
        intent = Intent.from_json(rec["intent"])
        query = validate_query_text(rec["query"], max_chars=10_000)
    except ValueError as exc:
        raise BenchmarkFileError(f"{where}: {exc}") from None
    gold = tuple(str(g) for g in rec["gold_product_ids"])
    if not gold:
        raise BenchmarkFileError(f"{where} has an empty gold set; every benchmark query needs one")
    return BenchmarkItem(str(rec["id"]), query, rec["query_type"], intent, gold, rec.get("gold_answer"))


def benchmark_path(name_or_path: str | Path | None = None) -> Path:
    """A shipped benchmark's file from its name ("eccd_v2" -> ``data/benchmark/eccd_v2.jsonl``),
    any other path as given, ``None`` -> the default ``eccd_v1``."""
    if name_or_path is None:
        return DEFAULT_BENCHMARK
    path = Path(name_or_path)
    shipped = DEFAULT_BENCHMARK.parent / f"{path.name}.jsonl"
    return shipped if path.suffix == "" and path.parent == Path(".") and shipped.is_file() else path


def load_benchmark(path: str | Path | None = None) -> list[BenchmarkItem]:
    """Load a benchmark JSONL by path or shipped name (default: ``data/benchmark/eccd_v1.jsonl``)."""
    path = benchmark_path(path)
    if not path.is_file():
        raise BenchmarkFileError(
            f"benchmark file not found: {path}. Build it with `python experiments/make_benchmark.py`."
        )
    items = [
        _parse_line(line, i, path)
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if line.strip()
    ]
    if not items:
        raise BenchmarkFileError(f"benchmark file {path} is empty; regenerate it")
    return items


def load_card(path: str | Path | None = None) -> dict[str, Any]:
    """The card (version, seed, counts, catalog hash) of a benchmark JSONL (path or shipped name)."""
    path = benchmark_path(path)
    card_path = path.with_suffix(".card.json")
    if not card_path.is_file():
        raise BenchmarkFileError(f"benchmark card not found: {card_path}")
    try:
        return json.loads(card_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BenchmarkFileError(f"benchmark card {card_path} is corrupt: {exc}") from None


def check_catalog_matches(card: dict[str, Any], catalog: pd.DataFrame) -> None:
    """Raise if the benchmark was built against a different catalog than ``catalog``."""
    built, now = card.get("catalog_hash"), catalog_hash(catalog)
    if built != now:
        raise BenchmarkFileError(
            f"benchmark was built against catalog {built}, but this catalog hashes to {now}; "
            "regenerate the benchmark (experiments/make_benchmark.py) for this catalog"
        )
