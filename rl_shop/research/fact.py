"""FACT-style grounding check: the share of cited products and stated numbers that the evidence supports.

DeepResearch Bench's FACT counts citations that the cited source supports. Here the sources are
the tool observations of the trajectory: a cited product id is supported when a tool showed it to
the agent (search result or visited record); a number in the report (price, capacity, size,
percentage, count) is supported when the same value occurs in the evidence text (within a relative
tolerance, so "$19.9" matches "$19.90"). Numbers that belong to the query itself (the shopper's
budget) are supported too: restating the request is not a hallucination.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

CITATION = re.compile(r"\[((?:amz|fk|abt|buy)-[A-Za-z0-9]+)\]")
"""A product citation in report markdown: ``[amz-012345]`` (the catalog's id prefixes)."""

_NUMBER = re.compile(r"(?<![A-Za-z0-9-])\$?\d+(?:,\d{3})*(?:\.\d+)?")


def extract_citations(markdown: str) -> list[str]:
    """Cited product ids, in order of first appearance, without repeats."""
    out: list[str] = []
    for m in CITATION.finditer(markdown):
        if m.group(1) not in out:
            out.append(m.group(1))
    return out


def extract_numbers(text: str, ignore_below: float = 0.0) -> list[float]:
    """Numeric values stated in ``text`` (citation ids and markdown list markers excluded)."""
    text = CITATION.sub(" ", text)
    text = re.sub(r"(?m)^\s*\d+\.\s", " ", text)  # "1. " list numbering is not a claim
    values = []
    for m in _NUMBER.finditer(text):
        raw = m.group(0).lstrip("$").replace(",", "")
        try:
            v = float(raw)
        except ValueError:
            continue
        if v > ignore_below:
            values.append(v)
    return values


def _supported(value: float, pool: Iterable[float], rel_tol: float) -> bool:
    return any(abs(value - p) <= rel_tol * max(abs(p), 1.0) for p in pool)


@dataclass
class FactResult:
    """Counts behind the FACT score; ``share`` is 1.0 when nothing checkable was claimed."""

    cited: list[str] = field(default_factory=list)
    unsupported_products: list[str] = field(default_factory=list)
    numbers: list[float] = field(default_factory=list)
    unsupported_numbers: list[float] = field(default_factory=list)

    @property
    def n_claims(self) -> int:
        return len(self.cited) + len(self.numbers)

    @property
    def n_supported(self) -> int:
        return self.n_claims - len(self.unsupported_products) - len(self.unsupported_numbers)

    @property
    def share(self) -> float:
        """Supported claims / claims (Eq.: FACT citation accuracy, here over products and numbers)."""
        return 1.0 if self.n_claims == 0 else self.n_supported / self.n_claims

    def to_dict(self) -> dict[str, object]:
        return {
            "cited": len(self.cited),
            "unsupported_products": list(self.unsupported_products),
            "numbers": len(self.numbers),
            "unsupported_numbers": list(self.unsupported_numbers),
            "share": round(self.share, 4),
        }


def fact_check(
    markdown: str,
    evidence_ids: set[str],
    evidence_text: str,
    query: str = "",
    rel_tol: float = 0.01,
    ignore_below: float = 0.0,
) -> FactResult:
    """Check every cited product and stated number of ``markdown`` against the evidence."""
    cited = extract_citations(markdown)
    pool = extract_numbers(evidence_text) + extract_numbers(query)
    numbers = extract_numbers(markdown, ignore_below)
    return FactResult(
        cited=cited,
        unsupported_products=[p for p in cited if p not in evidence_ids],
        numbers=numbers,
        unsupported_numbers=[v for v in numbers if not _supported(v, pool, rel_tol)],
    )
