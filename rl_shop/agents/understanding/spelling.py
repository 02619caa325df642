"""Spelling correction against the catalog's vocabulary (not an inverse of any typo rule).

A word of at least five letters that is neither English (pyspellchecker's frequency list) nor a word of the catalog's
titles or of the readers' own lexicons is replaced by its edit-distance-1 neighbour (insert,
delete, substitute, transpose) that the lexicons or at least ten catalog titles use: "loojking" ->
"looking", "tripoid" -> "tripod", "protable" -> "portable". Words with no such neighbour
("tankini", "cosycost") are left alone: an unknown word is more often a product or a brand
than a typo.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from spellchecker import SpellChecker

_WORD = re.compile(r"[A-Za-z]+")


class SpellingCorrector:
    """Corrects words towards ``vocabulary`` (word -> frequency) and ``lexicon`` (cue words)."""

    def __init__(
        self, vocabulary: Counter[str], lexicon: Iterable[str], min_length: int = 5, min_count: int = 10
    ) -> None:
        self.vocab = vocabulary
        self.lexicon = {w.lower() for w in lexicon}
        self.min_length = min_length
        self.min_count = min_count
        self._english = SpellChecker(distance=1)

    def _known(self, word: str) -> bool:
        return word in self.vocab or word in self.lexicon or word in self._english

    def correct_word(self, word: str) -> str:
        low = word.lower()
        if len(low) < self.min_length or self._known(low):
            return word
        cands = [
            c
            for c in (self._english.edit_distance_1(low) or ())
            if c in self.lexicon or self.vocab.get(c, 0) >= self.min_count
        ]
        if not cands:
            return word
        return max(cands, key=lambda c: (c in self.lexicon, self.vocab.get(c, 0), c))

    def correct(self, text: str) -> str:
        """``text`` with its unknown words corrected (case of the rest kept)."""
        return _WORD.sub(lambda m: self.correct_word(m.group(0)), text)
