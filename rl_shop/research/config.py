"""Typed views of the Hydra config nodes of the research apps, with readable errors."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from rl_shop.paths import REPO_ROOT

if TYPE_CHECKING:
    from omegaconf import DictConfig

M = TypeVar("M", bound=BaseModel)


class ResearchConfigError(ValueError):
    """A research config node that does not validate; the message names the node and field."""


def node(model: type[M], cfg: DictConfig | Mapping[str, Any] | None, name: str) -> M:
    """Validate one config node (a DictConfig or dict) as ``model``."""
    try:
        from omegaconf import DictConfig, OmegaConf

        data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg or {})
    except Exception as exc:  # omegaconf interpolation / missing-value errors
        raise ResearchConfigError(f"config node {name!r} is incomplete: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"{name}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ResearchConfigError(
            f"bad config (configs/research/{name}.yaml or an override):\n  " + "\n  ".join(lines)
        ) from None


def results_dir(out_dir: str | None, prefix: str = "") -> Path:
    """``out_dir`` or ``results/research/<prefix><timestamp>`` (created)."""
    path = (
        Path(out_dir) if out_dir else REPO_ROOT / "results" / "research" / f"{prefix}{datetime.now():%Y-%m-%d_%H-%M-%S}"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path
