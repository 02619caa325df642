"""Loading the catalog layer's YAML configs (``configs/catalog/``) with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rl_shop.catalog.errors import CatalogError
from rl_shop.config_files import read_config
from rl_shop.paths import CONFIG_DIR

CATALOG_CONFIG_DIR = CONFIG_DIR / "catalog"


def load_yaml(name_or_path: str | Path) -> dict[str, Any]:
    """Reads a YAML mapping; a bare name like ``"index"`` means ``configs/catalog/index.yaml``."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = CATALOG_CONFIG_DIR / f"{name_or_path}.yaml"
    return read_config(path, what="catalog config", error=CatalogError)
