"""Real product catalog, attribute extraction and the hybrid (BM25 + embedding) index.

The lowest layer of rl_shop: it imports nothing from the other rl_shop packages.
"""

from rl_shop.catalog.attributes import extract_attributes
from rl_shop.catalog.errors import CatalogError
from rl_shop.catalog.schema import COLUMNS, DEFAULT_CATALOG_PATH, SCHEMA, load_catalog, validate_catalog
from rl_shop.catalog.vocab import COLOURS, CONNECTIVITY, FEATURES

__all__ = [
    "COLOURS",
    "COLUMNS",
    "CONNECTIVITY",
    "CatalogError",
    "DEFAULT_CATALOG_PATH",
    "FEATURES",
    "SCHEMA",
    "extract_attributes",
    "load_catalog",
    "validate_catalog",
]
