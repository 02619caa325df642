"""Rule-based attribute extraction from product text.

One parser for everyone: the catalog build runs it over titles, descriptions and specifications,
and the simulator and agents run it over shoppers' words, so "a black 64gb usb stick" and the
product row that satisfies it end up with the same structured values.

Rules, not a model, because they are inspectable and deterministic; the guards below encode the
mistakes real titles provoke (model numbers that look like capacities, "2-in-1", "black and white"
printers, "ipad 2 in purple").
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from rl_shop.catalog.vocab import (
    COLOUR_SYNONYMS,
    COLOURS,
    CONNECTIVITY,
    CONNECTIVITY_SYNONYMS,
    FEATURE_SYNONYMS,
    FEATURES,
)

__all__ = ["extract_attributes", "parse_capacity_gb", "parse_size_in", "find_colour", "find_terms"]

_LEFT = r"(?<![\w])"
_RIGHT = r"(?![\w])"

# phrases whose colour words do not describe the product's colour
_COLOUR_NOISE = re.compile(
    r"black\s*(?:and|&|/|n)\s*white|\bb\s*&\s*w\b|white[- ]?balance|white[- ]?boards?|"
    r"red[- ]eye|infra[- ]?red|\bblu[- ]?ray|green[- ]tea|black[- ]?berry|blackberry|gold[- ]?plated|"
    r"\bgold\s+(?:contacts?|connectors?)|silver[- ]?plated"
)

_CAPACITY = re.compile(r"(?<![\w.\-])(\d{1,4}(?:\.\d{1,2})?)\s?(tb|gb|mb)(?![\w])")
_CAPACITY_UNITS = {"tb": 1000.0, "gb": 1.0, "mb": 0.001}

_SIZE = re.compile(
    r"(?<![\w./])(\d{1,3}(?:\.\d{1,2})?)\s?(?:-\s?)?"
    r"(?P<unit>inch(?:es)?(?![\w])|in(?![\w\-/])|\"|''|'(?!\s?s\b))"
)
_SIZE_MIN, _SIZE_MAX = 1.0, 200.0

_SPEC_COLOUR_KEYS = ("color", "colour")
_SPEC_CAPACITY_KEYS = ("capacity", "storage", "memory", "ram", "rom")
_SPEC_SIZE_KEYS = ("display size", "screen size", "screen", "display", "size")


def _alternation(phrases: tuple[str, ...]) -> str:
    ordered = sorted(phrases, key=len, reverse=True)
    return _LEFT + "(?:" + "|".join(ordered) + ")" + _RIGHT


@lru_cache(maxsize=1)
def _colour_regex() -> tuple[re.Pattern[str], dict[str, str]]:
    lookup = {phrase: name for name in COLOURS for phrase in COLOUR_SYNONYMS[name]}
    pattern = _alternation(tuple(re.escape(p) for p in lookup))
    return re.compile(pattern), lookup


@lru_cache(maxsize=1)
def _term_regexes() -> dict[str, dict[str, re.Pattern[str]]]:
    return {
        "connectivity": {n: re.compile(_alternation(CONNECTIVITY_SYNONYMS[n])) for n in CONNECTIVITY},
        "features": {n: re.compile(_alternation(FEATURE_SYNONYMS[n])) for n in FEATURES},
    }


def normalize_text(text: object) -> str:
    """Lowercase, collapse whitespace; non-strings (None, NaN) become ""."""
    if not isinstance(text, str):
        return ""
    return re.sub(r"\s+", " ", text.lower()).strip()


def find_colour(text: str) -> str:
    """The first canonical colour named in ``text`` ("" if none), ignoring known false friends."""
    cleaned = _COLOUR_NOISE.sub(" ", normalize_text(text))
    regex, lookup = _colour_regex()
    match = regex.search(cleaned)
    if match is None:
        return ""
    return lookup.get(match.group(0), "")


def find_terms(text: str, kind: str) -> list[str]:
    """Canonical ``connectivity`` or ``features`` terms present in ``text``, in vocabulary order."""
    regexes = _term_regexes().get(kind)
    if regexes is None:
        raise ValueError(f"unknown term kind {kind!r}; use 'connectivity' or 'features'")
    cleaned = normalize_text(text)
    return [name for name, regex in regexes.items() if regex.search(cleaned)]


def parse_capacity_gb(text: str) -> float:
    """Largest storage/memory capacity in ``text`` in decimal GB (1 TB = 1000 GB, 1 MB = 0.001 GB).

    The largest value wins because titles list the product's capacity next to smaller ones
    ("1tb hard drive 32mb cache", "2gb kit (2 x 1gb)"). A number glued to letters on its left
    ("ts32gjf", "ktc-d320") is part of a model number and is not read.
    """
    best = math.nan
    for match in _CAPACITY.finditer(normalize_text(text)):
        value = float(match.group(1)) * _CAPACITY_UNITS[match.group(2)]
        if value > 0 and (math.isnan(best) or value > best):
            best = value
    return best


def parse_size_in(text: str) -> float:
    """First plausible size in inches ("15.6-inch", "15.6\"", "55 in"); NaN if none.

    Rejected: "2-in-1"/"4 in 3" (number followed by another number), "in-dash", dimensions
    ("8.5 x 11 in"), split fractions ("1 2in" for 1/2in), and "ipad 2 in purple" (a bare "in"
    followed by a colour word).
    """
    cleaned = normalize_text(text)
    colour_regex, _ = _colour_regex()
    for match in _SIZE.finditer(cleaned):
        value = float(match.group(1))
        if not _SIZE_MIN <= value <= _SIZE_MAX:
            continue
        before = cleaned[: match.start()]
        after = cleaned[match.end() :]
        if re.search(r"(?:\bx|(?:^|\s)\d{1,2})\s*$", before):
            continue
        if match.group("unit") == "in" and (
            re.match(r"\s*(?:\d(?![\d.]*\s?(?:cm|mm)\b)|one\b|a\b|the\b)", after) or colour_regex.match(after.lstrip())
        ):
            continue
        return value
    return math.nan


def _spec_values(specs: Mapping[str, Any] | None, keys: tuple[str, ...]) -> list[str]:
    if not specs:
        return []
    values = []
    for key, value in specs.items():
        key_norm = normalize_text(key)
        if any(k == key_norm or k in key_norm.split() or key_norm.startswith(k) for k in keys):
            values.append(normalize_text(str(value)))
    return values


def _spec_flags(specs: Mapping[str, Any] | None) -> str:
    """Turns yes/no specification rows into text ("bluetooth: yes" -> "bluetooth")."""
    if not specs:
        return ""
    parts = []
    for key, value in specs.items():
        value_norm = normalize_text(str(value))
        if value_norm in ("yes", "true", "supported"):
            parts.append(normalize_text(key))
        elif value_norm not in ("no", "false", "not supported", "na", "none"):
            parts.append(value_norm)
    return " ; ".join(parts)


def extract_attributes(title: str, description: str = "", specs: dict | None = None) -> dict:
    """Structured attributes of one product (or one shopper utterance).

    Returns ``{"colour": str, "capacity_gb": float, "size_in": float, "connectivity": list[str],
    "features": list[str]}`` with "" / NaN / [] for absent values. Specification rows take
    precedence, then the title, then the description, because that is the order of reliability
    in the sources (descriptions often mention accessories and other products).
    """
    if not isinstance(title, str):
        raise TypeError(f"title must be a string, got {type(title).__name__}")
    description = description if isinstance(description, str) else ""
    specs = dict(specs) if specs else {}

    colour = ""
    for value in _spec_values(specs, _SPEC_COLOUR_KEYS):
        colour = find_colour(value)
        if colour:
            break
    # descriptions name accessories' colours ("gold connectors", "black cable"): title and specs only
    colour = colour or find_colour(title)

    capacity = math.nan
    for value in _spec_values(specs, _SPEC_CAPACITY_KEYS):
        found = parse_capacity_gb(value)
        if not math.isnan(found) and (math.isnan(capacity) or found > capacity):
            capacity = found
    if math.isnan(capacity):
        capacity = parse_capacity_gb(title)
    if math.isnan(capacity):
        capacity = parse_capacity_gb(description)

    size = math.nan
    for value in _spec_values(specs, _SPEC_SIZE_KEYS):
        size = parse_size_in(value)
        if not math.isnan(size):
            break
    if math.isnan(size):
        size = parse_size_in(title)
    if math.isnan(size):
        size = parse_size_in(description)

    text = " ; ".join(part for part in (title, description, _spec_flags(specs)) if part)
    return {
        "colour": colour,
        "capacity_gb": capacity,
        "size_in": size,
        "connectivity": find_terms(text, "connectivity"),
        "features": find_terms(text, "features"),
    }
