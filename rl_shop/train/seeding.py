"""Seeding and torch device/thread setup, so that the same seed gives the same numbers."""

from __future__ import annotations

import logging
import random
import warnings

import numpy as np
import torch

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch RNGs (SB3 seeds the envs and action spaces itself)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class CudaUnavailableWarning(UserWarning):
    """A GPU was asked for (hardware=gpu / hardware.device=auto|cuda) and training runs on CPU."""


#: The torch version pyproject.toml pins; the CUDA build must be this version too.
PINNED_TORCH = "2.13.0"
_cuda_warning_given = False


def cuda_unavailable_message(device: str) -> str:
    """Why CUDA is not used, naming the installed torch build, and how to get a CUDA build."""
    build = torch.__version__
    if torch.version.cuda is None:
        return (
            f"hardware.device={device} asks for a GPU, but the installed torch {build} is a CPU-only build: "
            "TRAINING RUNS ON CPU. To train on a GPU, install a CUDA build of the pinned torch into this venv, "
            f"e.g. `.venv/bin/pip uninstall -y torch && .venv/bin/pip install 'torch=={PINNED_TORCH}+cu128' "
            "--index-url https://download.pytorch.org/whl/cu128 --extra-index-url https://pypi.org/simple` "
            "(pick the cuXYZ your NVIDIA driver supports), "
            "then check `python -c 'import torch; print(torch.version.cuda, torch.cuda.is_available())'`. "
            "See docs/training.md (GPU)."
        )
    return (
        f"hardware.device={device} asks for a GPU, and torch {build} is a CUDA {torch.version.cuda} build, but no "
        "CUDA device is usable (no GPU, driver too old for this CUDA, or CUDA_VISIBLE_DEVICES hides it): "
        "TRAINING RUNS ON CPU. Check `nvidia-smi`; see docs/training.md (GPU)."
    )


def resolve_device(device: str) -> str:
    """Map auto|cpu|cuda to a torch device string; a missing GPU is a warning, not a crash.

    `auto` (hardware=gpu) and `cuda` fall back to CPU when torch cannot use CUDA, with one
    :class:`CudaUnavailableWarning` (and a log line) per process naming the torch build and the fix.
    """
    if device not in ("auto", "cuda"):
        return device
    if torch.cuda.is_available():
        return "cuda"
    global _cuda_warning_given
    if not _cuda_warning_given:
        _cuda_warning_given = True
        message = cuda_unavailable_message(device)
        log.warning(message)
        warnings.warn(message, CudaUnavailableWarning, stacklevel=2)
    return "cpu"


def configure_torch(threads: int) -> None:
    """Small MLPs are slower with many intra-op threads (and much slower when processes share cores)."""
    torch.set_num_threads(threads)
