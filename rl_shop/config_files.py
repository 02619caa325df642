"""The project's one YAML loader: a config file from ``configs/`` (or anywhere) as plain dicts.

The Hydra apps in ``experiments/`` compose their configs with Hydra; everything the library reads
outside an app (agent, catalog, simulator, env and gate configs) goes through :func:`read_config`,
which parses with OmegaConf (the parser under Hydra), resolves ``${...}`` interpolations and
returns plain Python containers. Every failure says which file and what to do, raised as the
caller's own error type, so a researcher who broke a sweep value sees the file, not a traceback.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticUndefined

from rl_shop.paths import CONFIG_DIR

M = TypeVar("M", bound=BaseModel)


class ConfigFileError(ValueError):
    """A config file is missing, is not valid YAML, or does not hold a mapping."""


class ConfigFileNotFound(ConfigFileError, FileNotFoundError):
    """The config file does not exist (also a ``FileNotFoundError``)."""


@functools.cache
def _config_file_once(name: str) -> DictConfig:
    path = CONFIG_DIR / name
    if not path.is_file():
        raise ConfigFileError(f"${{cfg:{name},...}}: no config file {path}")
    cfg = OmegaConf.load(path)
    if not isinstance(cfg, DictConfig):
        raise ConfigFileError(f"${{cfg:{name},...}}: {path} does not hold a mapping")
    return cfg


def config_value(name: str, key: str) -> Any:
    """The value at dotted ``key`` of ``configs/<name>``: the ``${cfg:NAME,KEY}`` resolver, by which
    a value that must agree with another file's is that file's value, not a copy kept by a comment
    (``configs/agents/leader.yaml``'s Eq. 1 alpha is ``${cfg:env/schedule.yaml,kwargs.paper_alpha}``)."""
    value = OmegaConf.select(_config_file_once(name), key, default=None)
    if value is None:
        raise ConfigFileError(f"${{cfg:{name},{key}}}: configs/{name} has no value at {key!r}")
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig | ListConfig) else value


OmegaConf.register_new_resolver("cfg", config_value, replace=True)


@functools.lru_cache(maxsize=256)
def _parsed(path: Path, mtime_ns: int, size: int) -> DictConfig | ListConfig:
    """``OmegaConf.load(path)``, parsed once per version of the file (its modification time and
    size are part of the key, so an edited file is read again). An env or the simulator reads the
    same files at every construction: a vector env of 16 Collaborate envs parsed them 64 times.
    Callers only select and convert the result, which leaves it unchanged."""
    return OmegaConf.load(path)


def read_config(
    path: str | Path,
    *,
    what: str = "config",
    error: type[Exception] = ConfigFileError,
    resolve: bool = True,
    section: str | None = None,
) -> dict[str, Any]:
    """The mapping in the YAML file ``path``; an empty file is ``{}``.

    ``what`` names the file in messages ("agent config", "env config", ...); ``error`` is the
    exception type raised (the caller's domain error). ``resolve=False`` keeps ``${...}`` as text
    (for data files whose strings are templates, e.g. ``under ${x}`` in the simulator's lexicon).
    ``section`` (dotted) returns only that mapping, resolved on its own: an app config's other
    parts may use resolvers that only Hydra registers (``${now:...}``); a missing section is ``{}``.
    """
    path = Path(path)
    if not path.is_file():
        missing = ConfigFileNotFound if error is ConfigFileError else error
        raise missing(
            f"{what} {path} not found; it ships with the repository (restore it with git) or pass an existing file"
        )
    try:
        stat = path.stat()
        cfg = _parsed(path.resolve(), stat.st_mtime_ns, stat.st_size)
    except Exception as exc:  # yaml / omegaconf parse errors
        raise error(f"{what} {path} is not valid YAML ({exc}); fix the syntax") from None
    if not isinstance(cfg, DictConfig):
        raise error(f"{what} {path} must hold a mapping at top level, got a list")
    node = OmegaConf.select(cfg, section, default=None) if section else cfg
    if node is None:
        return {}
    if not isinstance(node, DictConfig):
        raise error(f"{what} {path}: {section} must be a mapping, got {type(node).__name__}")
    try:
        data = OmegaConf.to_container(node, resolve=resolve)
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


def deep_update(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, nested mappings merged key by key (neither is changed)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class ConfigValue(BaseModel):
    """A small value type of configs (a range, a pair), written whole wherever it is used.

    :func:`defaults_from_yaml` never reaches inside one, so two fields of the same value type may
    default to different values ("patience: {low: 2, high: 6}", "p_wrong: {low: 0, high: 0.1}").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


_DEFAULTS_SOURCE: dict[type[BaseModel], str] = {}
_DEFAULTED_FIELDS: dict[type[BaseModel], frozenset[str]] = {}


@functools.cache
def _section_once(path: str, section: str | None, what: str) -> dict[str, Any]:
    """The values of ``path`` (under ``section``) read once per process (read only: values are
    copied). A whole Hydra app config loses Hydra's own keys (``defaults``, ``hydra``) first: they
    are no config values, and ``hydra.run.dir``'s ``${now:...}`` only resolves inside Hydra."""
    if section:
        return read_config(path, what=what, section=section)
    raw = read_config(path, what=what, resolve=False)
    values = OmegaConf.create({k: v for k, v in raw.items() if k not in ("defaults", "hydra")})
    try:
        data = OmegaConf.to_container(values, resolve=True)
    except Exception as exc:  # omegaconf interpolation errors
        raise ConfigFileError(f"{what} {path}: an interpolation cannot be resolved ({exc})") from None
    assert isinstance(data, dict)
    return {str(k): v for k, v in data.items()}


def yaml_defaults_of(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model`` whose default a :func:`defaults_from_yaml` decorator installed."""
    return _DEFAULTED_FIELDS.get(model, frozenset())


def defaults_from_yaml(
    config: str, section: str | None = None, *, what: str = "config", error: type[Exception] = ConfigFileError
) -> Callable[[type[M]], type[M]]:
    """Class decorator: every field's default is its value in ``configs/<config>`` (under the
    dotted ``section``), nested models included, so the YAML file is the one home of each default.

    The model's code declares types and bounds only; a field the file lacks stays required.
    Defaults are validated like given values (``validate_default``), so the file's ``2`` for a
    float field is ``2.0`` either way. A nested model gets the defaults of its sub-mapping (so a
    partial override keeps the file's other values), except a :class:`ConfigValue`, which is
    only ever written whole. A nested model that can be built on its own carries its own
    decorator with its section (the parent's install then finds the same source).
    """

    def install(cls: type[BaseModel], data: Mapping[str, Any], where: str) -> None:
        if _DEFAULTS_SOURCE.setdefault(cls, where) != where:
            raise error(f"{cls.__name__} takes its defaults from {_DEFAULTS_SOURCE[cls]}, not {where}")
        installed = set()
        for field_name, value in data.items():
            field = cls.model_fields.get(field_name)
            if field is None or value == "???":
                continue  # unknown keys: validation reports them; "???": Hydra's mandatory value
            nested = field.annotation
            if (
                isinstance(nested, type)
                and issubclass(nested, BaseModel)
                and not issubclass(nested, ConfigValue)
                and isinstance(value, Mapping)
            ):
                install(nested, value, f"{where}.{field_name}")
                field.default_factory = nested
            else:
                field.default_factory = functools.partial(copy.deepcopy, value)
            field.default = PydanticUndefined
            field.validate_default = True
            installed.add(field_name)
        _DEFAULTED_FIELDS[cls] = frozenset(installed)
        cls.model_rebuild(force=True)

    def decorate(cls: type[M]) -> type[M]:
        try:
            data = _section_once(str(CONFIG_DIR / config), section, what)
        except ConfigFileError as exc:
            raise error(str(exc)) from None
        install(cls, data, f"configs/{config}" + (f".{section}" if section else ""))
        return cls

    return decorate
