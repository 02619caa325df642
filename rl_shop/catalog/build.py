"""Building the processed catalog from the raw public sources (used by experiments/build_catalog.py).

Only this module and the build script read the shared raw data; everything else reads the shipped
``data/catalog.parquet`` through :func:`rl_shop.catalog.load_catalog`.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rl_shop.catalog.attributes import extract_attributes, normalize_text
from rl_shop.catalog.brands import BrandNormalizer
from rl_shop.catalog.config import load_yaml
from rl_shop.catalog.errors import CatalogError
from rl_shop.catalog.schema import COLUMNS, validate_catalog
from rl_shop.catalog.taxonomy import PATH_SEP, Taxonomy


@dataclass
class BuildReport:
    """Counts a researcher wants to see after a build (printed by the build script)."""

    raw_rows: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    filled_from_buy: int = 0


def _read(shared_dir: Path, relative: str) -> pd.DataFrame:
    path = shared_dir / relative
    if not path.is_file():
        raise CatalogError(
            f"raw source {path} not found; check `sources` in configs/catalog/build.yaml "
            f"and that the shared data folder is present"
        )
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def _text(value: object) -> str:
    return normalize_text(value) if isinstance(value, str) else ""


def _price(value: object, divisor: float = 1.0) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return round(number / divisor, 2) if number > 0 else math.nan


def parse_flipkart_specs(raw: object) -> dict[str, str]:
    """Flipkart's ``product_specifications`` is a Python literal list of {'key','value'} dicts."""
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        parsed = ast.literal_eval(raw.replace("=>", ":"))
    except (ValueError, SyntaxError):
        return {}
    rows = parsed.get("product_specification", parsed) if isinstance(parsed, dict) else parsed
    if isinstance(rows, dict):
        rows = [rows]
    specs: dict[str, str] = {}
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and row.get("key") and row.get("value") is not None:
            specs[normalize_text(str(row["key"]))] = normalize_text(str(row["value"]))
    return specs


def _amazon(shared: Path, cfg: dict[str, Any]) -> pd.DataFrame:
    raw = _read(shared, cfg["sources"]["amazon"])
    return pd.DataFrame(
        {
            "product_id": [f"amz-{int(i):06d}" for i in raw["_id"]],
            "source": "amazon",
            "title": [_text(t) for t in raw["title"]],
            "description": "",
            "raw_category": [_text(c) for c in raw["category"]],
            "raw_brand": [_text(b) for b in raw["brand"]],
            "price": [_price(p) for p in raw["price"]],
            "spec_dict": [{"model number": _text(m)} if _text(m) else {} for m in raw["modelno"]],
        }
    )


def _flipkart(shared: Path, cfg: dict[str, Any]) -> pd.DataFrame:
    raw = _read(shared, cfg["sources"]["flipkart"])
    field_name = cfg["flipkart_price_field"]
    if field_name not in raw.columns:
        raise CatalogError(
            f"flipkart_price_field {field_name!r} is not a column of the Flipkart file; "
            "use discounted_price or retail_price"
        )
    rate = float(cfg["inr_per_usd"])
    if rate <= 0:
        raise CatalogError(f"inr_per_usd must be positive, got {rate}")
    return pd.DataFrame(
        {
            "product_id": [f"fk-{p}" for p in raw["pid"]],
            "source": "flipkart",
            "title": [_text(t) for t in raw["product_name"]],
            "description": [_text(d) for d in raw["description"]],
            "raw_category": list(raw["product_category_tree"]),
            "raw_brand": [_text(b) for b in raw["brand"]],
            "price": [_price(p, rate) for p in raw[field_name]],
            "spec_dict": [parse_flipkart_specs(s) for s in raw["product_specifications"]],
        }
    )


def _abt_buy(shared: Path, cfg: dict[str, Any], source: str, prefix: str) -> pd.DataFrame:
    raw = _read(shared, cfg["sources"][source])
    return pd.DataFrame(
        {
            "product_id": [f"{prefix}-{int(i):04d}" for i in raw["_id"]],
            "source": source,
            "title": [_text(t) for t in raw["name"]],
            "description": [_text(d) for d in raw["description"]],
            "raw_category": "",
            "raw_brand": "",
            "price": [_price(p) for p in raw["price"]],
            "spec_dict": [{} for _ in range(len(raw))],
        }
    )


def _dedupe_exact(frame: pd.DataFrame) -> pd.DataFrame:
    key = frame["source"] + "|" + frame["title"] + "|" + frame["brand"]
    return frame.loc[~key.duplicated()]


def _dedupe_abt_buy(frame: pd.DataFrame, gold: pd.DataFrame, report: BuildReport) -> pd.DataFrame:
    frame = frame.set_index("product_id", drop=False)
    drop: set[str] = set()
    for id_abt, id_buy in zip(gold["id1"], gold["id2"]):
        abt, buy = f"abt-{int(id_abt):04d}", f"buy-{int(id_buy):04d}"
        if abt not in frame.index or buy not in frame.index or buy in drop:
            continue
        if math.isnan(frame.at[abt, "price"]) and not math.isnan(frame.at[buy, "price"]):
            frame.at[abt, "price"] = frame.at[buy, "price"]
            report.filled_from_buy += 1
        if not frame.at[abt, "description"] and frame.at[buy, "description"]:
            frame.at[abt, "description"] = frame.at[buy, "description"]
        drop.add(buy)
    return frame.loc[~frame.index.isin(drop)].reset_index(drop=True)


def build_catalog(
    shared_dir: str | Path,
    config: dict[str, Any] | str | Path = "build",
    taxonomy: Taxonomy | None = None,
    brands: BrandNormalizer | None = None,
) -> tuple[pd.DataFrame, BuildReport]:
    """Reads the raw sources and returns the validated catalog plus a :class:`BuildReport`."""
    cfg = config if isinstance(config, dict) else load_yaml(config)
    shared = Path(shared_dir)
    if not shared.is_dir():
        raise CatalogError(f"shared data folder {shared} not found; pass the folder that holds catalog/")
    taxonomy = taxonomy or Taxonomy.from_config()
    brands = brands or BrandNormalizer.from_config()
    report = BuildReport()

    frames = [
        _amazon(shared, cfg),
        _flipkart(shared, cfg),
        _abt_buy(shared, cfg, "abt", "abt"),
        _abt_buy(shared, cfg, "buy", "buy"),
    ]
    for f in frames:
        report.raw_rows[str(f["source"].iloc[0])] = len(f)
    frame = pd.concat(frames, ignore_index=True)

    frame["brand"] = [brands.normalize(b) for b in frame["raw_brand"]]
    brands.learn_known(frame["brand"])
    frame["brand"] = [b or brands.infer_from_title(t) for b, t in zip(frame["brand"], frame["title"])]

    placed = [
        taxonomy.place_flipkart(c, t, b) if s == "flipkart" else taxonomy.place(c or None, t)
        for s, c, t, b in zip(frame["source"], frame["raw_category"], frame["title"], frame["brand"])
    ]
    frame["category"] = [leaf for leaf, _ in placed]
    frame["category_path"] = [path for _, path in placed]
    frame["department"] = [path.split(PATH_SEP)[0] for path in frame["category_path"]]

    before = len(frame)
    if cfg["dedupe"]["exact_title_brand"]:
        frame = _dedupe_exact(frame)
    report.dropped["exact_title_brand"] = before - len(frame)
    before = len(frame)
    if cfg["dedupe"]["abt_buy_gold"]:
        frame = _dedupe_abt_buy(frame, _read(shared, cfg["sources"]["abt_buy_gold"]), report)
    report.dropped["abt_buy_gold"] = before - len(frame)

    attrs = [extract_attributes(t, d, s) for t, d, s in zip(frame["title"], frame["description"], frame["spec_dict"])]
    for key in ("colour", "capacity_gb", "size_in", "connectivity", "features"):
        frame[key] = [a[key] for a in attrs]
    frame["specs"] = [json.dumps(s, sort_keys=True, ensure_ascii=False) for s in frame["spec_dict"]]
    frame["price"] = frame["price"].astype("float64")
    out = frame.loc[:, list(COLUMNS)].sort_values("product_id").reset_index(drop=True)
    return validate_catalog(out, where="built catalog"), report


def coverage(catalog: pd.DataFrame) -> dict[str, float]:
    """Share of products with a value, per attribute column (for the build script's printout)."""
    n = max(len(catalog), 1)
    return {
        "brand": float((catalog["brand"] != "").sum() / n),
        "price": float(catalog["price"].notna().sum() / n),
        "description": float((catalog["description"] != "").sum() / n),
        "colour": float((catalog["colour"] != "").sum() / n),
        "capacity_gb": float(catalog["capacity_gb"].notna().sum() / n),
        "size_in": float(catalog["size_in"].notna().sum() / n),
        "connectivity": float(sum(1 for v in catalog["connectivity"] if len(v)) / n),
        "features": float(sum(1 for v in catalog["features"] if len(v)) / n),
        "specs": float((catalog["specs"] != "{}").sum() / n),
    }
