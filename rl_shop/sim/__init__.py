"""Shopper simulation: intents, constraint satisfaction, the shopper's two faces, histories and
the ECCD-style benchmark. Imports only ``rl_shop.catalog`` below it (and that lazily).

The package re-exports the simulator's core only. The shopper's language face
(``rl_shop.sim.render``, ``rl_shop.sim.answer_text``) and what is built on it
(``rl_shop.sim.shopper``, ``rl_shop.sim.benchmark``) are imported from their modules, so that
``from rl_shop.sim import QUERY_TYPES`` does not load the generator's templates: the agent
runtime must not read requests through them (``tests/test_runtime_independence.py``).
"""

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
from rl_shop.sim.sampler import IntentSampler
from rl_shop.sim.slots import QA_FIELDS, QUERY_TYPES, SLOTS, Intent

__all__ = [
    "QA_FIELDS",
    "QUERY_TYPES",
    "SLOTS",
    "BenchmarkFileError",
    "CatalogArrays",
    "Event",
    "ImpossibleIntentError",
    "Intent",
    "IntentSampler",
    "QueryTextError",
    "SimConfig",
    "SimError",
    "UnknownCategoryError",
    "UnknownProductError",
    "generate_history",
    "gold_ids",
    "gold_mask",
    "load_sim_config",
    "require_satisfiable",
    "slot_mask",
    "subset_candidate_counts",
]
