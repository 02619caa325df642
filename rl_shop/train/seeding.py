"""Seeding and torch device/thread setup, so that the same seed gives the same numbers."""

from __future__ import annotations

import logging
import random

import numpy as np
import torch

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch RNGs (SB3 seeds the envs and action spaces itself)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(device: str) -> str:
    """Map auto|cpu|cuda to a torch device string; a missing GPU is a warning, not a crash."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        log.warning("hardware.device=cuda but CUDA is not available; training on CPU instead")
        return "cpu"
    return device


def configure_torch(threads: int) -> None:
    """Small MLPs are slower with many intra-op threads (and much slower when processes share cores)."""
    torch.set_num_threads(threads)
