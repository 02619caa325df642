"""Exclusions in every common human form: "sulfate and paraben free", "non-dairy", "without
sugar", "no wires", "not sony", "except apple", "anything but samsung", "other than bose".

Each finding is the minimal phrase that names what the shopper does not want, lower case. Words
that only look negative are not exclusions: "hands-free", "free shipping", "no more than $40",
"not too big", "non-slip".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rl_shop.agents.understanding.config import ExclusionConfig

_WORD = r"[a-z0-9][a-z0-9'&+.-]*"


@dataclass(frozen=True)
class Exclusion:
    phrase: str
    span: tuple[int, int]


def _clean(word: str) -> str:
    return word.strip(".,;:!?'\"()").lower()


class ExclusionReader:
    """Finds :class:`Exclusion` phrases with the lexicons of ``ExclusionConfig``."""

    def __init__(self, cfg: ExclusionConfig) -> None:
        self.cfg = cfg
        self._free_skip = {w.lower() for w in cfg.free_not_exclusion}
        self._non_property = {w.lower() for w in cfg.non_property}
        self._not_heads = {w.lower() for w in cfg.not_heads}
        self._stop = {w.lower() for w in cfg.stop_words}
        # "X free" / "X-free" / "X and Y free" / "X, Y & Z free"
        self._free = re.compile(r"((?:" + _WORD + r"(?:\s*(?:,|and|&|or|/)\s*|\s+|-)){1,6}?)-?\s*free\b", re.I)
        self._non = re.compile(r"(?<![a-z])non[- ]?(" + _WORD + r")", re.I)
        cues = sorted((c for c in cfg.cues if c.lower() != "non"), key=len, reverse=True)
        self._cue = re.compile(
            r"(?<![a-z'])("
            + "|".join(re.escape(c) for c in cues)
            + r")\s+((?:"
            + _WORD
            + r"(?:\s*(?:,|or|nor|and|/)\s*|\s+)?){1,6})",
            re.I,
        )

    def _phrase(self, words: list[str]) -> str | None:
        """The excluded phrase from the words after a cue: up to ``max_words`` content words."""
        out: list[str] = []
        for w in words:
            w = _clean(w)
            if not w or w in self._stop:
                break
            out.append(w)
            if len(out) >= self.cfg.max_words:
                break
        return " ".join(out) or None

    def _free_items(self, text: str) -> list[Exclusion]:
        found = []
        for m in self._free.finditer(text):
            chunk = m.group(1)
            # the words right before "free", split on the list joiners; keep the last list only
            parts = [p for p in re.split(r"\s*(?:,|\band\b|&|\bor\b|/)\s*", chunk.strip(" -")) if p.strip()]
            items = []
            for part in reversed(parts):
                words = [w for w in re.split(r"[\s-]+", part.strip()) if w]
                if not words:
                    break
                head = _clean(words[-1])
                if head in self._free_skip or head in self._stop or head.isdigit():
                    break
                multi_word = len(words) > 1 and _clean(words[-2]) not in self._stop
                if multi_word and part is not parts[-1]:
                    break  # "fruit and nut bars, soy free": a noun phrase before the list is not part of it
                items.append(head)
                if multi_word:
                    break  # "vegetarian gluten free" keeps one word; a multi-word last part ends the list
            for head in reversed(items):
                found.append(Exclusion(head, m.span()))
        return found

    def read(self, text: str, brands: frozenset[str] | set[str] = frozenset()) -> list[Exclusion]:
        """Exclusions in ``text`` in order; ``brands`` (catalog brands) let "not X" exclude a brand."""
        found = self._free_items(text)
        for m in self._non.finditer(text):
            word = _clean(m.group(1))
            if word and word not in self._stop and word not in self._not_heads and word not in self._non_property:
                found.append(Exclusion(word, m.span()))
        for m in self._cue.finditer(text):
            cue = m.group(1).lower()
            words = re.split(r"\s+", m.group(2).strip())
            first = _clean(words[0]) if words else ""
            if not first or first in self._not_heads:
                continue
            if cue in ("not", "never", "zero") and first not in brands:
                continue  # "not waterproof", "never fades": a property, unless a brand is named
            # "no sony or bose", "except apple and samsung": a list of items
            items = re.split(r"\s*(?:,|\bor\b|\bnor\b|/)\s*", m.group(2).strip())
            if cue not in ("no", "without") and len(items) == 1:
                items = re.split(r"\s+and\s+", m.group(2).strip())
            for i, item in enumerate(items):
                words = item.split()
                while i > 0 and words and _clean(words[0]) in ("and", cue):
                    words = words[1:]  # "no ram, no ssd, and no wifi": the cue repeated in the list
                phrase = self._phrase(words)
                if phrase is None:
                    break
                if (
                    i > 0
                    and cue not in ("anything but", "other than", "except", "excluding", "not", "no")
                    and phrase.split()[0] not in brands
                ):
                    break
                found.append(Exclusion(phrase, m.span()))
                if len(item.split()) > self.cfg.max_words:
                    break
        seen: set[str] = set()
        out = []
        for ex in sorted(found, key=lambda e: e.span[0]):
            if ex.phrase not in seen:
                seen.add(ex.phrase)
                out.append(ex)
        return out
