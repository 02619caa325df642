"""Text normalisation before any rule reads a query: NFKC, no combining marks, one space."""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
# Typographic look-alikes NFKC keeps: curly quotes and dashes read as their ASCII forms.
_ASCII = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u00a0": " ",
    }
)


def normalize_text(text: str) -> str:
    """NFKC-fold ``text``, strip combining marks (``café`` -> ``cafe``) and format characters
    (zero-width spaces), map typographic quotes / dashes to ASCII and collapse whitespace.
    Case is kept: capitalisation is evidence for brands."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Mn", "Cf"))
    text = unicodedata.normalize("NFKC", text).translate(_ASCII)
    return _SPACE.sub(" ", text).strip()
