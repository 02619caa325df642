"""Shopper simulation: intents, constraint satisfaction, the shopper's two faces, histories and
the ECCD-style benchmark. Imports only ``rl_shop.catalog`` below it (and that lazily)."""

from rl_shop.sim.answer_text import SlotAnswer, answer_to_text
from rl_shop.sim.benchmark import BenchmarkItem, build_benchmark, load_benchmark, load_card
from rl_shop.sim.config import SimConfig, load_sim_config
from rl_shop.sim.constraints import (
    CatalogArrays,
    gold_ids,
    gold_mask,
    require_satisfiable,
    slot_mask,
    subset_candidate_counts,
)
from rl_shop.sim.errors import (
    BenchmarkFileError,
    ImpossibleIntentError,
    QueryTextError,
    SimError,
    UnknownCategoryError,
    UnknownProductError,
)
from rl_shop.sim.history import Event, generate_history
from rl_shop.sim.render import QueryRenderer, render_query, validate_query_text
from rl_shop.sim.sampler import IntentSampler
from rl_shop.sim.shopper import Reaction, Shopper
from rl_shop.sim.slots import QA_FIELDS, QUERY_TYPES, SLOTS, Intent

__all__ = [
    "QA_FIELDS",
    "QUERY_TYPES",
    "SLOTS",
    "BenchmarkFileError",
    "BenchmarkItem",
    "CatalogArrays",
    "Event",
    "ImpossibleIntentError",
    "Intent",
    "IntentSampler",
    "QueryRenderer",
    "QueryTextError",
    "Reaction",
    "Shopper",
    "SimConfig",
    "SimError",
    "SlotAnswer",
    "UnknownCategoryError",
    "UnknownProductError",
    "answer_to_text",
    "build_benchmark",
    "generate_history",
    "gold_ids",
    "gold_mask",
    "load_benchmark",
    "load_card",
    "load_sim_config",
    "render_query",
    "require_satisfiable",
    "slot_mask",
    "subset_candidate_counts",
    "validate_query_text",
]
