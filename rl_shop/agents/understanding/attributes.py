"""Attribute slots of real shopping text: size, pack count, material, flavour / scent, audience,
quantities with units (oz, ml, inch, ft, GB, W, ...), colour, capacity and connectivity.

Values are kept as the shopper wrote them (lower case), except pack counts (integers), units
(canonical unit names) and colours / connectivity (the catalog's canonical values).
"""

from __future__ import annotations

import re
from typing import Any

from rl_shop.agents.understanding.config import AttributeConfig
from rl_shop.catalog.vocab import COLOUR_SYNONYMS, CONNECTIVITY_SYNONYMS

_NUM = r"(\d+(?:\.\d+)?|\d+/\d+)"
_SIZE_WORD = r"(?:x{1,3}-?small|x{1,5}-?large|\d?x-?large|\d?xl|small|medium|large|petite|plus|one size|king|queen|twin|full|california king)"


def _alt(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def _word(phrases: list[str] | tuple[str, ...], regex: bool = False) -> re.Pattern[str]:
    body = "|".join(sorted(phrases, key=len, reverse=True)) if regex else _alt(list(phrases))
    return re.compile(r"(?<![\w-])(?:" + body + r")(?![\w])", re.I)


class AttributeReader:
    """Reads the attribute object of ``rl-shop parse`` from text."""

    def __init__(self, cfg: AttributeConfig) -> None:
        self.cfg = cfg
        self._size = re.compile(
            r"\bsize\s*:?\s*(" + _SIZE_WORD + r"|\d+(?:\.\d+)?(?:\s*(?:wide|narrow|x-wide|w|m|us|uk|eu))?"
            r"(?:\s*x\s*\d+(?:\.\d+)?)?)",
            re.I,
        )
        self._size_word = re.compile(r"(?<![\w-])(" + _SIZE_WORD + r")(?:\s+size|\s+sized)\b", re.I)
        self._inch = re.compile(r"(?<![\w.])" + _NUM + r"\s*(?:-\s*)?(?:inch(?:es)?|in\b|\"|'')", re.I)
        self._pack = [
            re.compile(r"\b(?:pack|set|box|case|bundle|lot) of\s+(\d+|" + _alt(list(cfg.pack_words)) + r")\b", re.I),
            re.compile(
                r"\b(\d+|"
                + _alt(list(cfg.pack_words))
                + r")\s*[- ]?\s*(?:pack|pk|packs|count|ct|pcs|pieces|piece set)\b",
                re.I,
            ),
        ]
        self._material = _word(cfg.materials)
        self._flavour = _word(cfg.flavours_scents)
        cue = _alt(cfg.flavour_cues)
        self._flavour_cue = re.compile(
            r"(?:(?<![\w])("
            + r"[a-z][a-z ]{1,20}?"
            + r")\s+(?:"
            + cue
            + r")\b)|(?:\b(?:"
            + cue
            + r")\s*(?:of|:)?\s+([a-z]+(?: [a-z]+)?))",
            re.I,
        )
        self._audience = {canon: _word(words) for canon, words in cfg.audience.items()}
        self._age = re.compile(r"\b(\d{1,2})\s*(?:-\s*)?(?:year|yr)s?(?:\s*-?\s*old)?\b", re.I)
        units = sorted(cfg.units, key=len, reverse=True)
        self._unit = re.compile(
            r"(?<![\w.])" + _NUM + r"\s*-?\s*(" + "|".join(re.escape(u) for u in units) + r")(?![a-z])", re.I
        )
        self._colour = {c: _word(p, regex=True) for c, p in COLOUR_SYNONYMS.items()}
        self._conn = {c: _word(p, regex=True) for c, p in CONNECTIVITY_SYNONYMS.items()}
        self._colour_cue = re.compile(
            r"\b(?:colou?r(?:ed)?|in)\s*:?\s*([a-z]+(?: [a-z]+)?)\s*(?:colou?r(?:ed)?)?", re.I
        )

    def _pack_count(self, text: str) -> int | None:
        for pat in self._pack:
            if (m := pat.search(text)) is not None:
                g = m.group(1).lower()
                return int(g) if g.isdigit() else int(self.cfg.pack_words[g])
        return None

    def _flavours(self, text: str) -> list[str]:
        found = [m.group(0).lower() for m in self._flavour.finditer(text)]
        for m in self._flavour_cue.finditer(text):
            phrase = (m.group(1) or m.group(2) or "").strip().lower()
            words = phrase.split()
            if words and words[-1] not in ("a", "the", "nice", "good", "great", "any", "no"):
                found.append(" ".join(words[-2:]) if m.group(1) else phrase)
        return list(dict.fromkeys(found))

    def read(self, text: str) -> dict[str, Any]:
        low = text.lower()
        out: dict[str, Any] = {}
        if (m := self._size.search(low)) is not None:
            out["size"] = m.group(1).strip()
        elif (m := self._size_word.search(low)) is not None:
            out["size"] = m.group(1)
        elif (m := self._inch.search(low)) is not None:
            out["size"] = f"{m.group(1)} inch"
        if (n := self._pack_count(low)) is not None:
            out["pack_count"] = n
        mats = list(dict.fromkeys(m.group(0).lower() for m in self._material.finditer(low)))
        if mats:
            out["material"] = mats[0] if len(mats) == 1 else mats
        flav = self._flavours(low)
        if flav:
            out["flavour_scent"] = flav[0] if len(flav) == 1 else flav
        aud = [canon for canon, pat in self._audience.items() if pat.search(low)]
        if (m := self._age.search(low)) is not None:
            aud.append(f"{m.group(1)} year old")
        if aud:
            out["audience"] = aud[0] if len(aud) == 1 else aud
        found = [
            (float(eval_frac(m.group(1))), str(self.cfg.units[m.group(2).lower()])) for m in self._unit.finditer(low)
        ]
        if found:
            out["quantities"] = [{"value": value, "unit": unit} for value, unit in found]
            caps = [
                value * {"gb": 1.0, "tb": 1000.0, "mb": 0.001}[unit]
                for value, unit in found
                if unit in ("gb", "tb", "mb")
            ]
            if caps:
                out["capacity_gb"] = max(caps)
        colours = [c for c, pat in self._colour.items() if pat.search(low)]
        if colours:
            out["colour"] = colours[0] if len(colours) == 1 else colours
        conn = [c for c, pat in self._conn.items() if pat.search(low)]
        if conn:
            out["connectivity"] = conn
        return out


def eval_frac(s: str) -> float:
    """ "1/4" -> 0.25, "7.5" -> 7.5."""
    if "/" in s:
        a, b = s.split("/")
        return float(a) / float(b) if float(b) else 0.0
    return float(s)
