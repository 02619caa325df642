"""Errors of the simulator layer, each naming what was wrong and what to do about it.

They subclass ``ValueError`` (or ``FileNotFoundError``) so callers that only know the builtin
exceptions still catch them, while tests and scripts can catch the precise kind.
"""

from __future__ import annotations


class SimError(ValueError):
    """Base class of every simulator error with a user-facing message."""


class ImpossibleIntentError(SimError):
    """No catalog product satisfies the intent's constraints (the gold set would be empty)."""

    def __init__(self, constraints: dict[str, object], message: str | None = None) -> None:
        self.constraints = dict(constraints)
        described = ", ".join(f"{k}={v!r}" for k, v in self.constraints.items()) or "(none)"
        super().__init__(
            message
            or (
                f"no catalog product satisfies all constraints of this intent: {described}. "
                "Relax one of them (raise the budget, drop a required feature or brand) or pick "
                "another category."
            )
        )


class UnknownCategoryError(SimError):
    """A category name that the catalog does not contain."""


class UnknownProductError(SimError):
    """A product id that the catalog does not contain."""


class ConfigError(SimError):
    """A simulator / benchmark configuration that is malformed or inconsistent."""


class QueryTextError(SimError):
    """A query text that is empty, not text, or absurdly long."""


class BenchmarkFileError(SimError):
    """A benchmark file that is missing, empty or corrupt."""
