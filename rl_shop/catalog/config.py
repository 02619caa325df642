"""Loading the catalog layer's YAML configs (``configs/catalog/``) with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rl_shop.catalog.errors import CatalogError
from rl_shop.paths import CONFIG_DIR

CATALOG_CONFIG_DIR = CONFIG_DIR / "catalog"


def load_yaml(name_or_path: str | Path) -> dict[str, Any]:
    """Reads a YAML mapping; a bare name like ``"index"`` means ``configs/catalog/index.yaml``."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = CATALOG_CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise CatalogError(f"catalog config {path} not found; restore it from the repository or pass an existing file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogError(f"catalog config {path} is not valid YAML ({exc}); fix the syntax") from exc
    if not isinstance(data, dict):
        raise CatalogError(f"catalog config {path} must hold a mapping at top level, got {type(data).__name__}")
    return data
