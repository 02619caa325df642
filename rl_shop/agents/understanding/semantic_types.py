"""Product type by meaning: the request's sentence embedding against the catalog's categories.

The lexical reader (``product_type.py``) finds the request's head noun and looks it up among the
catalog titles' head nouns; it is precise when the shopper uses the catalog's own words and lost
when a phone is named by its model, a product sits under several noisy leaves, or a compound is a
product of its own. Here each catalog category is the centroid of its products' MiniLM
embeddings (the search index's own matrix, so nothing is trained on requests), the request is
embedded once, and the category score blends the centroid cosine with the lexical reader's share:

    score(c) = cos(e_q, mu_c) + lambda * share_lex(c)

Whether the catalog carries the requested type at all is a logistic gate over a few scores of
that evidence (how close the nearest centroid and products are, how clear the winner is, what the
lexical reader found). ``lambda``, the gate's weights and its threshold are fitted on real_v1 dev
by ``experiments/fit_type_gate.py`` and live in ``configs/agents/type_gate.yaml``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rl_shop.agents.understanding.logistic_gate import LogisticGate
from rl_shop.agents.understanding.product_type import ProductType
from rl_shop.paths import CONFIG_DIR

if TYPE_CHECKING:
    from rl_shop.catalog.index import HybridIndex

TYPE_GATE_PATH = CONFIG_DIR / "agents" / "type_gate.yaml"
FIT_COMMAND = "python experiments/fit_type_gate.py"
GATE_FEATURES = (
    "lexical_carried",
    "log_support",
    "lexical_share",
    "centroid_top",
    "centroid_margin",
    "neighbour_top",
    "neighbour_mean5",
)
N_NEIGHBOURS = 5  # nearest products behind the neighbour features
N_CATEGORIES = 5  # categories kept on a reading, best first


@dataclass
class TypeEvidence:
    """What the embedding says about one request: per-category scores and the gate's inputs."""

    centroid: np.ndarray  # cos(e_q, mu_c) per category
    lexical: np.ndarray  # the lexical reader's share per category (0 where it has none)
    features: dict[str, float]

    def scores(self, lexical_weight: float) -> np.ndarray:
        return self.centroid + lexical_weight * self.lexical


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest values (fewer if there are fewer), largest first."""
    k = min(k, len(values))
    return np.sort(values[np.argpartition(-values, k - 1)[:k]])[::-1]


class SemanticTypes:
    """Category ranking and the carried-or-not decision for a lexical :class:`ProductType`."""

    def __init__(
        self,
        categories: Sequence[str],
        centroids: np.ndarray,
        products: np.ndarray,
        embed: Callable[[Sequence[str]], np.ndarray],
        gate: LogisticGate,
        lexical_weight: float,
    ) -> None:
        self.categories = list(categories)
        self._position = {c: i for i, c in enumerate(self.categories)}
        self.centroids = centroids
        self.products = products
        self.embed = embed
        self.gate = gate
        self.lexical_weight = float(lexical_weight)

    @staticmethod
    def load_gate(path: str | Path = TYPE_GATE_PATH) -> tuple[LogisticGate, float]:
        """The fitted gate and ``lambda`` (the lexical share's weight in the category score)."""
        gate, data = LogisticGate.read(path, GATE_FEATURES, FIT_COMMAND)
        return gate, float(data.get("lexical_weight", 0.0))

    @classmethod
    def from_index(
        cls, index: HybridIndex, gate: LogisticGate | None = None, lexical_weight: float | None = None
    ) -> SemanticTypes:
        """Centroids from a :class:`~rl_shop.catalog.index.HybridIndex`'s product embeddings."""
        if gate is None or lexical_weight is None:
            fitted, weight = cls.load_gate()
            gate, lexical_weight = gate or fitted, weight if lexical_weight is None else lexical_weight
        products = index.embeddings
        cats = index.catalog["category"].astype(str).str.strip().str.lower().to_numpy()
        names, rows = np.unique(cats, return_inverse=True)
        order = np.argsort(rows, kind="stable")  # rows of a category together: one reduceat (np.add.at is 3x slower)
        starts = np.searchsorted(rows[order], np.arange(len(names)))
        sums = np.add.reduceat(products[order].astype(np.float64), starts, axis=0)
        centroids = (sums / np.linalg.norm(sums, axis=1, keepdims=True)).astype(np.float32)
        return cls([str(n) for n in names], centroids, products, index.embed_queries, gate, lexical_weight)

    def evidence(self, text: str, lexical: ProductType) -> TypeEvidence:
        """Scores and gate features of ``text`` given the lexical reading of it."""
        vec = self.embed([text])[0]
        centroid = self.centroids @ vec
        shares = np.zeros(len(self.categories), dtype=np.float32)
        for cat, share in lexical.categories:
            if cat in self._position:
                shares[self._position[cat]] = share
        near = _top(self.products @ vec, N_NEIGHBOURS)
        top2 = _top(centroid, 2)
        second = float(top2[1]) if len(top2) > 1 else 0.0  # a one-category catalog: no runner-up
        features = {
            "lexical_carried": float(lexical.in_catalog),
            "log_support": math.log1p(lexical.support),
            "lexical_share": float(shares.max(initial=0.0)),
            "centroid_top": float(top2[0]),
            "centroid_margin": float(top2[0]) - second,
            "neighbour_top": float(near[0]),
            "neighbour_mean5": float(near.mean()),
        }
        return TypeEvidence(centroid, shares, features)

    def refine(self, text: str, lexical: ProductType) -> ProductType:
        """The lexical reading with categories ranked by meaning and carried decided by the gate.
        A request with no product phrase at all ("a gift for my dad") stays as it is."""
        if lexical.phrase is None:
            return lexical
        ev = self.evidence(text, lexical)
        scores = ev.scores(self.lexical_weight)
        best = np.argsort(-scores, kind="stable")[:N_CATEGORIES]
        cats = [(self.categories[i], float(scores[i])) for i in best]
        return ProductType(lexical.phrase, self.gate.fires(ev.features), cats, lexical.support, lexical.vague)
