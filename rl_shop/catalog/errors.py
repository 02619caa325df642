"""Errors of the catalog layer."""

from __future__ import annotations


class CatalogError(ValueError):
    """A catalog file or catalog config is missing, corrupt or does not match the contract.

    The message always says what was wrong and what to do about it.
    """
