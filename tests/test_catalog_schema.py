"""The catalog contract: the shipped file, schema validation, and clear errors for bad files."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rl_shop.catalog import COLUMNS, CatalogError, load_catalog, validate_catalog
from rl_shop.catalog.brands import BrandNormalizer
from rl_shop.catalog.taxonomy import Taxonomy


@pytest.fixture(scope="module")
def catalog() -> pd.DataFrame:
    return load_catalog()


def test_shipped_catalog_matches_contract(catalog):
    assert list(catalog.columns) == list(COLUMNS)
    assert catalog["product_id"].is_unique
    assert set(catalog["source"]) <= {"amazon", "flipkart", "abt", "buy"}
    # all 22,074 Amazon rows minus exact title+brand duplicates
    assert 21_800 <= (catalog["source"] == "amazon").sum() <= 22_074
    assert (catalog["source"] == "flipkart").sum() == 1002
    assert catalog["price"].dtype == "float64" and catalog["capacity_gb"].dtype == "float64"
    assert all(isinstance(v, list) for v in catalog["connectivity"].head(50))
    assert (catalog["department"] == catalog["category_path"].str.split(" > ").str[0]).all()
    assert all(isinstance(json.loads(s), dict) for s in catalog["specs"].head(200))


def test_known_rows_have_expected_values(catalog):
    row = catalog.set_index("product_id").loc["amz-000001"]  # "kodak black ink cartridge 10b 1163641"
    assert row["title"] == "kodak black ink cartridge 10b 1163641"
    assert row["brand"] == "kodak" and row["colour"] == "black"
    assert row["category"] == "inkjet printer ink"
    assert row["category_path"] == "computers > printers & ink > inkjet printer ink"
    assert row["price"] == pytest.approx(10.28)


def test_flipkart_price_is_converted_to_usd(catalog):
    # first Flipkart row (pid SHOEH4GRSUBJGZXE) sells for 499 INR; config rate 67 INR per USD
    row = catalog.set_index("product_id").loc["fk-SHOEH4GRSUBJGZXE"]
    assert row["price"] == pytest.approx(499 / 67.0, abs=0.01)
    assert row["colour"] == "red"  # from its "Color: Red" specification
    assert row["department"] == "fashion"


def test_missing_file_says_how_to_rebuild(tmp_path):
    with pytest.raises(CatalogError, match="build_catalog.py"):
        load_catalog(tmp_path / "nope.parquet")


def test_corrupt_file(tmp_path):
    bad = tmp_path / "catalog.parquet"
    bad.write_bytes(b"this is not parquet at all")
    with pytest.raises(CatalogError, match="could not be read"):
        load_catalog(bad)


def test_wrong_schema(tmp_path, catalog):
    path = tmp_path / "catalog.parquet"
    catalog.head(5).drop(columns=["colour"]).to_parquet(path)
    with pytest.raises(CatalogError, match="colour"):
        load_catalog(path)
    dup = pd.concat([catalog.head(2), catalog.head(1)])
    with pytest.raises(CatalogError, match="not unique"):
        validate_catalog(dup)
    nulls = catalog.head(3).copy()
    nulls.loc[nulls.index[0], "title"] = None
    with pytest.raises(CatalogError, match="missing values"):
        validate_catalog(nulls)


def test_brand_normalization_and_inference():
    brands = BrandNormalizer.from_config()
    assert brands.normalize("Hewlett Packard") == "hp"
    assert brands.normalize("hewlett-packard") == "hp"
    assert brands.normalize("wd") == "western digital"
    assert brands.normalize("norazza inc.") == "norazza"
    assert brands.normalize(None) == "" and brands.normalize("generic") == ""
    brands.learn_known(["sony", "sony", "bose"])
    assert brands.infer_from_title("sony turntable pslx350h") == "sony"
    assert brands.infer_from_title("bose acoustimass 5") == ""  # seen once: below infer_min_count
    assert brands.infer_from_title("hewlett packard 564 ink") == "hp"


def test_taxonomy_placement():
    taxonomy = Taxonomy.from_config()
    assert taxonomy.place("headphones") == ("headphones", "electronics > headphones")
    assert taxonomy.place("usb flash drives") == ("usb flash drives", "computers > storage > usb flash drives")
    leaf, path = taxonomy.place_flipkart(
        "['footwear', 'womens footwear', 'ballerinas', 'aw bellies']", "aw bellies", "aw"
    )
    assert (leaf, path) == ("ballerinas", "fashion > footwear > ballerinas")


def test_malformed_config_is_a_clear_error(tmp_path):
    bad = tmp_path / "taxonomy.yaml"
    bad.write_text("groups: [1, 2\n")
    with pytest.raises(CatalogError, match="not valid YAML"):
        Taxonomy.from_config(bad)
    bad.write_text("groups: []\n")
    with pytest.raises(CatalogError, match="fallback_path"):
        Taxonomy.from_config(bad)
