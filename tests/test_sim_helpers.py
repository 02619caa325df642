"""Hand-built tiny catalog shared by the simulator tests (no tests of its own).

Small enough that every gold set in the tests can be checked by reading the table below.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

NaN = float("nan")

# product_id, category, brand, price, colour, capacity_gb, size_in, connectivity, features
ROWS = [
    ("h1", "headphones", "sony", 50.0, "black", NaN, NaN, ["bluetooth"], ["noise cancelling"]),
    (
        "h2",
        "headphones",
        "sony",
        120.0,
        "white",
        NaN,
        NaN,
        ["bluetooth"],
        ["noise cancelling", "water resistant", "wireless"],
    ),
    ("h3", "headphones", "bose", 300.0, "black", NaN, NaN, ["bluetooth"], ["noise cancelling"]),
    ("h4", "headphones", "koss", 20.0, "black", NaN, NaN, [], []),
    ("h5", "headphones", "jbl", 40.0, "blue", NaN, NaN, ["bluetooth"], ["water resistant", "wireless"]),
    ("h6", "headphones", "sony", 30.0, "", NaN, NaN, [], []),
    ("h7", "headphones", "", NaN, "black", NaN, NaN, [], []),
    ("u1", "usb flash drives", "sandisk", 8.0, "red", 16.0, NaN, ["usb"], []),
    ("u2", "usb flash drives", "sandisk", 15.0, "black", 64.0, NaN, ["usb"], []),
    ("u3", "usb flash drives", "kingston", 25.0, "black", 128.0, NaN, ["usb"], []),
    ("u4", "usb flash drives", "kingston", 12.0, "", 32.0, NaN, ["usb"], []),
    ("u5", "usb flash drives", "pny", 9.0, "blue", 32.0, NaN, ["usb"], []),
    ("u6", "usb flash drives", "sandisk", 40.0, "black", 256.0, NaN, ["usb"], []),
    ("l1", "laptops", "dell", 600.0, "black", 512.0, 15.6, ["wifi", "bluetooth"], ["backlit keyboard"]),
    ("l2", "laptops", "dell", 450.0, "silver", 256.0, 14.0, ["wifi"], []),
    ("l3", "laptops", "hp", 800.0, "silver", 1000.0, 13.3, ["wifi", "bluetooth"], ["backlit keyboard"]),
    ("l4", "laptops", "lenovo", 350.0, "black", 128.0, 11.6, ["wifi"], []),
    ("l5", "laptops", "hp", 1200.0, "black", 1000.0, 17.3, ["wifi", "bluetooth"], []),
    ("l6", "laptops", "apple", 999.0, "silver", 256.0, 13.3, ["wifi", "bluetooth"], ["backlit keyboard"]),
    ("m1", "mice", "logitech", 25.0, "black", NaN, NaN, ["wireless-2.4ghz"], ["wireless"]),
    ("m2", "mice", "logitech", 15.0, "grey", NaN, NaN, ["usb"], []),
    ("m3", "mice", "microsoft", 30.0, "black", NaN, NaN, ["bluetooth"], ["wireless"]),
    ("m4", "mice", "kensington", 24.0, "black", NaN, NaN, ["wireless-2.4ghz"], ["wireless"]),
    ("m5", "mice", "logitech", 60.0, "black", NaN, NaN, ["wireless-2.4ghz"], ["wireless", "ergonomic"]),
]
DEPARTMENTS = {"headphones": "audio", "usb flash drives": "computers", "laptops": "computers", "mice": "computers"}


def tiny_catalog() -> pd.DataFrame:
    """The table above in the rl_shop.catalog schema."""
    cols = ["product_id", "category", "brand", "price", "colour", "capacity_gb", "size_in", "connectivity", "features"]
    df = pd.DataFrame(ROWS, columns=cols)
    df["source"] = "fixture"
    df["title"] = [f"{b} {c} model {pid}".strip() for pid, c, b in zip(df.product_id, df.category, df.brand)]
    df["description"] = ""
    df["category_path"] = df["category"]
    df["department"] = df["category"].map(DEPARTMENTS)
    df["specs"] = [json.dumps({}) for _ in range(len(df))]
    df["price"] = df["price"].astype(float)
    return df


SMALL_SAMPLER = {"sampler": {"min_category_size": 5, "min_value_count": 2, "min_gold_size": {}}}
"""Sampler overrides that let the tiny catalog's categories qualify."""


def ids_where(df: pd.DataFrame, mask: np.ndarray) -> set[str]:
    return set(df.product_id[mask])
