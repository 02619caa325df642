"""Reading and validating the agents' configs (``configs/agents/*.yaml``)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from rl_shop.config_files import read_config
from rl_shop.paths import CONFIG_DIR

M = TypeVar("M", bound=BaseModel)


class AgentConfigError(ValueError):
    """A config file under ``configs/agents/`` is missing or malformed."""


def load_agent_config(name: str, path: str | Path | None = None) -> dict[str, Any]:
    """Read ``configs/agents/<name>.yaml`` (or an explicit path) into a dict.

    Raises :class:`AgentConfigError` saying which file and what was wrong, instead of a YAML or
    OS traceback, because a researcher editing a sweep value needs to know which line broke.
    """
    cfg_path = Path(path) if path is not None else CONFIG_DIR / "agents" / f"{name}.yaml"
    return read_config(cfg_path, what="agent config", error=AgentConfigError)


def validate_config(model: type[BaseModel], data: dict[str, Any], where: str) -> Any:
    """Validate a config dict against a pydantic model with a readable error naming ``where``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise AgentConfigError(f"invalid config {where}: {problems}") from None


def _problem(err: Any) -> str:
    """One validation error as ``key.path: message (got VALUE)``."""
    where = ".".join(str(p) for p in err["loc"]) or "<root>"
    value = err.get("input")
    got = f" (got {value!r})" if isinstance(value, (str, int, float, bool)) else ""
    return f"{where}: {err['msg']}{got}"


def deep_update(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, nested mappings merged key by key (neither is changed)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_update(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


_DEFAULTS_SOURCE: dict[type[BaseModel], str] = {}


@functools.cache
def _agent_config_once(name: str) -> dict[str, Any]:
    """``load_agent_config(name)`` read once per process for the decorators (read only: values are copied)."""
    return load_agent_config(name)


def defaults_from(name: str, section: str | None = None) -> Callable[[type[M]], type[M]]:
    """Class decorator: every field's default is its value in ``configs/agents/<name>.yaml``
    (under the dotted ``section``), nested models included, so the YAML file is the one home of
    each default.

    The model's code declares types and bounds only; a field the file lacks stays required.
    Defaults are validated like given values (``validate_default``), so the file's ``2`` for a
    float field is ``2.0`` either way. A nested model that can be built on its own carries its
    own decorator with its section (the parent's install then finds the same source).
    """

    def install(cls: type[BaseModel], data: Mapping[str, Any], where: str) -> None:
        if _DEFAULTS_SOURCE.setdefault(cls, where) != where:
            raise AgentConfigError(f"{cls.__name__} takes its defaults from {_DEFAULTS_SOURCE[cls]}, not {where}")
        for field_name, value in data.items():
            field = cls.model_fields.get(field_name)
            if field is None:
                continue  # validation reports unknown keys where the model forbids them
            nested = field.annotation
            if isinstance(nested, type) and issubclass(nested, BaseModel) and isinstance(value, Mapping):
                install(nested, value, f"{where}.{field_name}")
                field.default_factory = nested
            else:
                field.default_factory = functools.partial(copy.deepcopy, value)
            field.validate_default = True
        cls.model_rebuild(force=True)

    def decorate(cls: type[M]) -> type[M]:
        data: Any = _agent_config_once(name)
        where = f"configs/agents/{name}.yaml"
        for key in section.split(".") if section else []:
            data = (data or {}).get(key) or {}
            where += f".{key}"
        install(cls, data, where)
        return cls

    return decorate
