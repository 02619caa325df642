"""The catalog contract: column names and types, validation, and loading the shipped file.

Other layers (simulator, agents, evaluation) code against these exact columns, so a file that
does not match is rejected here with a message saying how to regenerate it, rather than failing
later deep inside pandas.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, TypeGuard

import pandas as pd

from rl_shop.catalog.errors import CatalogError
from rl_shop.paths import DATA_DIR

DEFAULT_CATALOG_PATH = DATA_DIR / "catalog.parquet"
REBUILD_HINT = "run `python experiments/build_catalog.py` to (re)generate data/catalog.parquet"

# column -> kind: "str" (no missing values), "float" (float64, NaN allowed), "list" (list of str)
SCHEMA: dict[str, str] = {
    "product_id": "str",
    "source": "str",
    "title": "str",
    "description": "str",
    "category": "str",
    "category_path": "str",
    "department": "str",
    "brand": "str",
    "price": "float",
    "colour": "str",
    "capacity_gb": "float",
    "size_in": "float",
    "connectivity": "list",
    "features": "list",
    "specs": "str",
}
COLUMNS: tuple[str, ...] = tuple(SCHEMA)
SOURCES: tuple[str, ...] = ("amazon", "flipkart", "abt", "buy")


def validate_catalog(df: pd.DataFrame, where: str = "catalog") -> pd.DataFrame:
    """Checks columns, types and invariants; returns ``df`` with columns in contract order.

    List columns come back from parquet as numpy arrays; they are converted to Python lists so
    callers can rely on ``list`` semantics.
    """
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise CatalogError(f"{where} lacks columns {missing}; {REBUILD_HINT}")
    df = df.loc[:, list(COLUMNS)].copy()
    for column, kind in SCHEMA.items():
        series = df[column]
        if kind == "str":
            if series.isna().any():
                raise CatalogError(f'{where}: column {column!r} has missing values (use "" instead); {REBUILD_HINT}')
            if not all(isinstance(v, str) for v in series):
                raise CatalogError(f"{where}: column {column!r} must hold strings; {REBUILD_HINT}")
            df[column] = series.astype(object)
        elif kind == "float":
            try:
                df[column] = pd.to_numeric(series, errors="raise").astype("float64")
            except (TypeError, ValueError) as exc:
                raise CatalogError(f"{where}: column {column!r} must be numeric ({exc}); {REBUILD_HINT}") from exc
        else:
            try:
                df[column] = [[str(x) for x in v] for v in series]
            except TypeError as exc:
                raise CatalogError(f"{where}: column {column!r} must hold lists of strings; {REBUILD_HINT}") from exc
    if not df["product_id"].is_unique:
        dupes = df.loc[df["product_id"].duplicated(), "product_id"].head(3).tolist()
        raise CatalogError(f"{where}: product_id is not unique (e.g. {dupes}); {REBUILD_HINT}")
    bad_source = sorted(set(df["source"]) - set(SOURCES))
    if bad_source:
        raise CatalogError(f"{where}: unknown sources {bad_source}, expected {list(SOURCES)}; {REBUILD_HINT}")
    negative = df["price"].dropna() < 0
    if negative.any():
        raise CatalogError(f"{where}: {int(negative.sum())} negative prices; {REBUILD_HINT}")
    first = df["specs"].iloc[0] if len(df) else "{}"
    if not isinstance(json.loads(first), dict):
        raise CatalogError(f"{where}: column 'specs' must hold JSON objects; {REBUILD_HINT}")
    return df.reset_index(drop=True)


def load_catalog(path: str | Path | None = None) -> pd.DataFrame:
    """Loads and validates a catalog parquet file (default: the shipped ``data/catalog.parquet``).

    Raises :class:`CatalogError` for a missing, unreadable or wrong-schema file.
    """
    file = Path(path) if path is not None else DEFAULT_CATALOG_PATH
    if not file.is_file():
        raise CatalogError(f"catalog file {file} not found; {REBUILD_HINT}")
    try:
        df = pd.read_parquet(file)
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise CatalogError(
            f"catalog file {file} could not be read as parquet ({type(exc).__name__}: {exc}); {REBUILD_HINT}"
        ) from exc
    return validate_catalog(df, where=f"catalog file {file}")


def specs_of(row_specs: str) -> dict:
    """Parses a row's ``specs`` JSON string; a helper so callers need not import json."""
    value = json.loads(row_specs) if row_specs else {}
    return value if isinstance(value, dict) else {}


def is_missing(value: object) -> bool:
    """True for None/NaN, used for the float attribute columns."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def has_value(value: object) -> TypeGuard[Any]:
    """``not is_missing(value)``, telling the type checker that a checked value is not None."""
    return not is_missing(value)
