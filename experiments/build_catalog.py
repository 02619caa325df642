"""Builds data/catalog.parquet from the shared raw sources and prints coverage statistics.

Usage: python experiments/build_catalog.py [--config configs/catalog/build.yaml] [--shared DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rl_shop.catalog.build import build_catalog, coverage
from rl_shop.catalog.config import load_yaml
from rl_shop.catalog.errors import CatalogError
from rl_shop.paths import REPO_ROOT, SHARED_DATA_DIR


def main(argv: list[str] | None = None) -> int:
    """Runs the build; returns a process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="build", help="config name under configs/catalog/ or a YAML path")
    parser.add_argument("--shared", default=str(SHARED_DATA_DIR), help="folder holding the raw catalog/ data")
    parser.add_argument("--out", default=None, help="output parquet (default: `output` in the config)")
    args = parser.parse_args(argv)
    try:
        cfg = load_yaml(args.config)
        start = time.perf_counter()
        catalog, report = build_catalog(args.shared, cfg)
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else REPO_ROOT / cfg["output"]
    out.parent.mkdir(parents=True, exist_ok=True)
    catalog.to_parquet(out, index=False)
    print(f"wrote {len(catalog)} products to {out} in {time.perf_counter() - start:.1f} s")
    print(f"raw rows per source: {report.raw_rows}")
    print(f"dropped as duplicates: {report.dropped}; Abt prices filled from Buy matches: {report.filled_from_buy}")
    print(f"products per source: {catalog['source'].value_counts().to_dict()}")
    print(f"unknown price: {int(catalog['price'].isna().sum())} products")
    print("\ncoverage (share of products with a value):")
    for name, share in coverage(catalog).items():
        print(f"  {name:<13} {share:6.1%}")
    print(f"\ndepartments: {catalog['department'].value_counts().to_dict()}")
    print(
        f"distinct leaf categories: {catalog['category'].nunique()}; distinct paths: {catalog['category_path'].nunique()}"
    )
    print(f"top categories: {catalog['category'].value_counts().head(15).to_dict()}")
    print(f"distinct brands: {catalog.loc[catalog['brand'] != '', 'brand'].nunique()}")
    print(f"top brands: {catalog['brand'].value_counts().head(15).to_dict()}")
    print(f"colours: {catalog['colour'].value_counts().to_dict()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
