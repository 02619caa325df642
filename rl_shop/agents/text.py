"""Small text helpers shared by the agents' lexical scorers."""

from __future__ import annotations

from collections.abc import Iterable


def tokens(text: str) -> list[str]:
    """Lower-case alphanumeric tokens; shared by the lexical scorers of these modules."""
    out: list[str] = []
    word = []
    for ch in text.lower():
        if ch.isalnum():
            word.append(ch)
        elif word:
            out.append("".join(word))
            word = []
    if word:
        out.append("".join(word))
    return out


def unique(items: Iterable[str]) -> list[str]:
    """Deduplicate preserving order."""
    seen: set[str] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
