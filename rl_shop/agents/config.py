"""Reading and validating the agents' configs (``configs/agents/*.yaml``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from rl_shop.config_files import defaults_from_yaml, read_config
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


def validate_config(model: type[M], data: dict[str, Any], where: str) -> M:
    """Validate a config dict against a pydantic model with a readable error naming ``where``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise AgentConfigError(f"invalid config {where}: {problems}") from None


def _problem(err: ErrorDetails) -> str:
    """One validation error as ``key.path: message (got VALUE)``."""
    where = ".".join(str(p) for p in err["loc"]) or "<root>"
    value = err.get("input")
    got = f" (got {value!r})" if isinstance(value, (str, int, float, bool)) else ""
    return f"{where}: {err['msg']}{got}"


def defaults_from(name: str, section: str | None = None) -> Callable[[type[M]], type[M]]:
    """Class decorator: every field's default is its value in ``configs/agents/<name>.yaml``
    (under the dotted ``section``); see :func:`rl_shop.config_files.defaults_from_yaml`."""
    return defaults_from_yaml(f"agents/{name}.yaml", section, what="agent config", error=AgentConfigError)
