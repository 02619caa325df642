"""The project's one YAML loader: a config file from ``configs/`` (or anywhere) as plain dicts.

The Hydra apps in ``experiments/`` compose their configs with Hydra; everything the library reads
outside an app (agent, catalog, simulator, env and gate configs) goes through :func:`read_config`,
which parses with OmegaConf (the parser under Hydra), resolves ``${...}`` interpolations and
returns plain Python containers. Every failure says which file and what to do, raised as the
caller's own error type, so a researcher who broke a sweep value sees the file, not a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rl_shop.paths import CONFIG_DIR


class ConfigFileError(ValueError):
    """A config file is missing, is not valid YAML, or does not hold a mapping."""


class ConfigFileNotFound(ConfigFileError, FileNotFoundError):
    """The config file does not exist (also a ``FileNotFoundError``)."""


def read_config(
    path: str | Path,
    *,
    what: str = "config",
    error: type[Exception] = ConfigFileError,
    resolve: bool = True,
) -> dict[str, Any]:
    """The mapping in the YAML file ``path``; an empty file is ``{}``.

    ``what`` names the file in messages ("agent config", "env config", ...); ``error`` is the
    exception type raised (the caller's domain error). ``resolve=False`` keeps ``${...}`` as text
    (for data files whose strings are templates, e.g. ``under ${x}`` in the simulator's lexicon).
    """
    path = Path(path)
    if not path.is_file():
        missing = ConfigFileNotFound if error is ConfigFileError else error
        raise missing(
            f"{what} {path} not found; it ships with the repository (restore it with git) or pass an existing file"
        )
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:  # yaml / omegaconf parse errors
        raise error(f"{what} {path} is not valid YAML ({exc}); fix the syntax") from None
    if not isinstance(cfg, DictConfig):
        raise error(f"{what} {path} must hold a mapping at top level, got a list")
    try:
        data = OmegaConf.to_container(cfg, resolve=resolve)
    except Exception as exc:  # omegaconf interpolation errors
        raise error(f"{what} {path}: an interpolation cannot be resolved ({exc})") from None
    assert isinstance(data, dict)  # the container of a DictConfig
    return {str(k): v for k, v in data.items()}


def env_config(name: str) -> dict[str, Any]:
    """``configs/env/<name>.yaml`` (``kwargs`` and the env's extra blocks, e.g. ``heuristic``)."""
    return read_config(CONFIG_DIR / "env" / f"{name}.yaml", what="env config")


def env_kwargs(path: str | Path) -> dict[str, Any]:
    """The ``kwargs`` block of an env config file: the single source of the env's defaults."""
    cfg = read_config(path, what="env config")
    if not isinstance(cfg.get("kwargs"), dict):
        raise ConfigFileError(f"env config {path} must be a mapping with a 'kwargs' mapping")
    return dict(cfg["kwargs"])
