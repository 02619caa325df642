"""Price limits in every common human form: "under $40", "price lower than 40.00 dollars",
"less then 30 bucks", "between $12 and $25", "$12-$25", "max 50", "up to €80", "30$ or less".

A number is read as money only with a currency, or right after a price cue with nothing that makes
it a quantity after it ("under 5 lbs", "over 1,000 reviews" and "rated above 4" are not budgets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rl_shop.agents.understanding.config import BudgetConfig

_NUM = r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(\s*k\b)?"
_AROUND = re.compile(r"\b(?:around|about|approximately|approx\.?|roughly|close to|near)\s*$", re.I)


@dataclass
class Budget:
    """The price limits found in a text, in US dollars."""

    max: float | None = None
    min: float | None = None
    target: float | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)


def _alt(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


class BudgetReader:
    """Reads :class:`Budget` from text with the cue and currency lexicons of ``BudgetConfig``."""

    def __init__(self, cfg: BudgetConfig) -> None:
        self.cfg = cfg
        cur = _alt(list(cfg.currencies))
        self._cur_after = re.compile(r"^\s*(" + cur + r")(?![a-z])", re.I)
        self._cur_before = re.compile(r"(?<![a-z])(" + cur + r")\s*$", re.I)
        self._num = re.compile(r"(?<![\w.])" + _NUM)
        self._max_cue = re.compile(r"(?<![a-z])(?:" + _alt(cfg.max_cues) + r")\s*(?:of|is|:|at|price|=)?\s*$", re.I)
        self._min_cue = re.compile(r"(?<![a-z])(?:" + _alt(cfg.min_cues) + r")\s*(?:of|is|:)?\s*$", re.I)
        self._or_less = re.compile(r"^\s*(?:or (?:less|under|below|cheaper)|max(?:imum)?\b|tops\b|at most\b)", re.I)
        self._joiner = re.compile(r"^\s*(?:" + _alt(cfg.range_joiners) + r")\s*$", re.I)
        self._followers = {w.lower() for w in cfg.bare_followers}

    def _value(self, m: re.Match[str]) -> float:
        v = float(m.group(1).replace(",", ""))
        return v * 1000 if m.group(2) else v

    def _currency(self, text: str, m: re.Match[str]) -> tuple[float | None, int, int]:
        """(USD rate, start, end) of the money mention around number match ``m`` (rate None: no currency)."""
        before, after = text[: m.start()], text[m.end() :]
        if (c := self._cur_before.search(before[-8:])) is not None:
            return self.cfg.currencies[c.group(1).lower()], m.start() - (len(before[-8:]) - c.start()), m.end()
        if (c := self._cur_after.match(after)) is not None:
            return self.cfg.currencies[c.group(1).lower()], m.start(), m.end() + c.end()
        return None, m.start(), m.end()

    def _bare_ok(self, text: str, end: int) -> bool:
        nxt = re.match(r"\s*([A-Za-z%\"'][\w'%-]*|[^\w\s])?", text[end:])
        word = (nxt.group(1) or "") if nxt else ""
        return word == "" or not word[0].isalnum() and word not in ('"', "'", "%") or word.lower() in self._followers

    def read(self, text: str) -> Budget:
        out = Budget()
        mentions = []  # (value_usd, start, end, has_currency)
        for m in self._num.finditer(text):
            rate, s, e = self._currency(text, m)
            mentions.append((self._value(m) * (rate or 1.0), s, e, rate is not None, m))
        used: set[int] = set()
        # Ranges: "between $12 and $25", "$12-$25", "from 10 to 20 dollars"
        for i in range(len(mentions) - 1):
            a, b = mentions[i], mentions[i + 1]
            if not self._joiner.match(text[a[2] : b[1]]) or not (a[3] or b[3]):
                continue
            lead = text[max(0, a[1] - 12) : a[1]].lower()
            if not (a[3] and b[3]) and not re.search(r"(between|from|range|price|budget|\$)\s*$", lead) and not b[3]:
                continue
            lo, hi = sorted((a[0], b[0] if b[3] or a[3] else b[0]))
            if hi <= self.cfg.max_plausible:
                out.min, out.max = lo, hi
                out.spans.append((a[1], b[2]))
                used.update((i, i + 1))
        for i, (value, s, e, has_cur, _m) in enumerate(mentions):
            if i in used or value <= 0 or value > self.cfg.max_plausible:
                continue
            before = text[max(0, s - 40) : s]
            if self._max_cue.search(before) or (has_cur and self._or_less.match(text[e:])):
                if has_cur or self._bare_ok(text, e):
                    out.max = value if out.max is None else min(out.max, value)
                    out.spans.append((s, e))
            elif self._min_cue.search(before) and has_cur:
                out.min = value if out.min is None else max(out.min, value)
                out.spans.append((s, e))
            elif has_cur and _AROUND.search(before):
                out.target = value
                out.spans.append((s, e))
            elif has_cur:  # "a $50 headset", "headphones for 40 dollars": a price the shopper names
                out.max = value if out.max is None else min(out.max, value)
                out.spans.append((s, e))
        return out
