"""Where the project keeps its shipped data and its caches.

Shipped data (catalog, benchmark) lives in ``data/`` of the repository; caches (index, converted
models, LLM responses) live under ``$RL_SHOP_CACHE`` or ``.cache/`` so they can be wiped freely.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
CONFIG_DIR = REPO_ROOT / "configs"
CHECKPOINT_DIR = REPO_ROOT / "checkpoints"
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


def cache_dir() -> Path:
    """The cache root; created on first use."""
    path = Path(os.environ.get("RL_SHOP_CACHE", REPO_ROOT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path
