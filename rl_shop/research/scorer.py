"""Deterministic, criterion-level scorer of research reports against the simulator's intent.

The RACE default offline judge (``race.judge=criteria``). Unlike the feature rubric it reads the
report against what the shopper really wants (the latent :class:`~rl_shop.sim.Intent`, after any
intent shift), the catalog and the web corpus:

comprehensiveness
    ``stated_needs`` / ``latent_needs``: share of the intent's constrained needs (category,
    budget, brand wish or exclusion, colour, capacity, size, connectivity, features, use case)
    that the report's own text (summary, reasons, verdict; not the title, which restates the
    query, nor the catalog-rendered product heads) addresses; "stated" are the intent's
    ``stated_slots``, "latent" every other constrained slot (``hidden_slots`` and the needs the
    history implies). ``coverage``: products compared (vs ``products``, or the gold set's size
    when smaller).
insight
    ``reasons``: recommended products with a reason of >= ``reason_words`` words that names a
    fact of that product (its brand, a price, a feature / connectivity token, its category);
    ``comparison``: comparative language between products; ``verdict``: a verdict section that
    names a cited product or a choice.
instruction_following
    ``constraints``: share of recommended products that satisfy EVERY constraint of the intent
    (``rl_shop.sim.slot_mask`` on the catalog: category / use-case categories, budget, preferred
    and excluded brands, colour, capacity, size, connectivity, features), 0 without products;
    ``citations``: citation validity (FACT against the catalog and the web corpus): the share of
    recommendation items that carry a citation of a real catalog product (and, when the
    trajectory's evidence is given, one a tool showed), times the share of stated numbers that the
    cited products' records, the evidence, the web corpus or the request support, times the share
    of cited urls that exist in the corpus.
readability
    ``structure``: the three sections under their headers and a numbered recommendation list;
    ``no_repetition``: share of distinct sentences.

Every criterion is in [0, 10]; dimensions and the total use the RACE arithmetic of
:mod:`rl_shop.research.race` with the weights of ``configs/research/race.yaml`` (``criteria_judge``).
No model is called: the same report always gets the same score.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import numpy as np

from rl_shop.research.fact import CITATION, extract_citations, extract_numbers
from rl_shop.sim import Intent, gold_ids, slot_mask
from rl_shop.sim.constraints import CatalogArrays

if TYPE_CHECKING:
    import pandas as pd

CRITERIA: dict[str, tuple[str, ...]] = {
    "comprehensiveness": ("stated_needs", "latent_needs", "coverage"),
    "insight": ("reasons", "comparison", "verdict"),
    "instruction_following": ("constraints", "citations"),
    "readability": ("structure", "no_repetition"),
}
"""The scorer's criteria per RACE dimension (weights: ``race.criteria_judge.criteria``)."""

HARD_SLOTS: tuple[str, ...] = (
    "category",
    "budget",
    "brand",
    "colour",
    "capacity",
    "size",
    "connectivity",
    "features",
    "use_case",
)

URL = re.compile(r"(rl-shop://[^\s\])>,;]+|https?://[^\s\])>,;]+)")
_NEG = r"(?:not|no|none|never|avoid(?:s|ed|ing)?|without|exclud(?:e|es|ed|ing)|except|other than|instead of|rather than|skip(?:s|ped|ping)?|non|anything but|steer clear of|rules? out|ruled out)"
_LIMIT = re.compile(
    r"\b(?:under|below|within|less than|more than|at most|max(?:imum)?|up to|no more than|"
    r"cheaper than|limit(?: of)?|cap(?: of)?|spend(?:ing)?)\s+(?:about\s+)?\$?(\d+(?:,\d{3})*(?:\.\d+)?)"
)
_CLAIM = re.compile(
    r"\$\s?(\d+(?:,\d{3})*(?:\.\d+)?)|(\d+(?:\.\d+)?)\s?(?:gb|tb|mb|inch(?:es)?|in\b|\"|%|mah|watts?|w\b|hz|mp\b)", re.I
)
_COMPARE = re.compile(
    r"\b(than|cheaper|pricier|better|worse|while|whereas|however|but|compared|versus|vs|"
    r"trade-?off|unlike|instead|on the other hand|more|less|both)\b",
    re.I,
)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower())


def _section(markdown: str, name: str) -> str | None:
    m = re.search(rf"(?m)^## {name}[ \t]*\n(.*?)(?=\n## |\Z)", markdown, re.S)
    return m.group(1).strip() if m else None


@dataclass
class ParsedReport:
    """The parts of a rendered report the scorer reads (see ``research_agent.render_markdown``)."""

    title: str
    summary: str | None
    recommendations: str | None
    verdict: str | None
    items: list[dict[str, Any]]  # numbered recommendation items: head, citation ids, reason
    body: str  # the report's own words: summary + reasons + verdict (+ loose text)

    @classmethod
    def parse(cls, markdown: str) -> ParsedReport:
        title_m = re.match(r"\s*# [^\n]*", markdown)
        title = title_m.group(0) if title_m else ""
        summary, recs, verdict = (_section(markdown, n) for n in ("Summary", "Recommendations", "Verdict"))
        items: list[dict[str, Any]] = []
        if recs is not None:
            cur: dict[str, Any] | None = None
            for line in recs.splitlines():
                if re.match(r"^\s*\d+\.\s", line):
                    cur = {"head": line, "ids": extract_citations(line), "reason": ""}
                    items.append(cur)
                elif cur is not None and line.strip():
                    cur["reason"] = (cur["reason"] + " " + line.strip()).strip()
                    cur["ids"] += [p for p in extract_citations(line) if p not in cur["ids"]]
        if summary is None and recs is None and verdict is None:
            # no sections: everything but the title is the report's own text (heads are not recognisable)
            body = markdown[len(title) :]
        else:
            body = "\n".join([summary or "", *[it["reason"] for it in items], verdict or ""])
        return cls(title, summary, recs, verdict, items, body)

    def cited_products(self, markdown: str) -> list[str]:
        """The recommended products: ids of the recommendation items when the section exists, else
        every citation in the text (a report whose structure is gone)."""
        if self.recommendations is not None:
            return list(dict.fromkeys(p for it in self.items for p in it["ids"]))
        return extract_citations(markdown)


@dataclass
class Need:
    """One constrained slot of an intent, and how the report can address it."""

    slot: str
    stated: bool
    label: str


def needs_of(intent: Intent) -> list[Need]:
    """The intent's constrained needs (``stated`` = in ``stated_slots``); the category of a
    use-case intent is latent (the shopper names the use, not the product kind)."""
    out = []
    for slot in HARD_SLOTS:
        if not intent.has_constraint(slot):
            continue
        out.append(Need(slot, slot in intent.stated_slots, str(intent.slot_value(slot))))
    return out


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _mentions_phrase(text: str, phrase: str) -> bool:
    """``phrase`` (or its singular) as whole words in ``text`` (both lower-case)."""
    phrase = _norm(phrase).strip()
    if not phrase:
        return False
    alts = {phrase, " ".join(_singular(w) for w in phrase.split())}
    return any(re.search(rf"(?<![a-z0-9]){re.escape(a)}(?:s|es)?(?![a-z0-9])", text) for a in alts if a)


def _negated(text: str, brand: str) -> bool:
    """``brand`` mentioned within a few words after a negation ("not X", "avoid X", "non-X")."""
    b = re.escape(_norm(brand))
    return bool(
        re.search(rf"\b{_NEG}\b[\s-]+(?:[a-z0-9$.,'&-]+\s+){{0,5}}?{b}(?![a-z0-9])", text)
        or re.search(rf"(?<![a-z0-9]){b}\b[^.]{{0,30}}\b(?:excluded|ruled out|is out|are out)\b", text)
    )


def need_addressed(need: Need, intent: Intent, text: str) -> bool:
    """Whether the report's own ``text`` (lower-case) addresses ``need``."""
    s = need.slot
    if s == "category":
        return _mentions_phrase(text, intent.category)
    if s == "budget":
        assert intent.budget is not None
        if re.search(r"\bbudget\b", text):
            return True
        # the budget amount as a limit ("under $50", "at most 50 dollars"); a price that happens to be
        # close to the budget is not a statement about it
        for m in _LIMIT.finditer(text):
            v = float(m.group(1).replace(",", ""))
            if abs(v - intent.budget) <= 0.01 * intent.budget:
                return True
        return False
    if s == "brand":
        ok = True
        if intent.preferred_brands:
            ok = any(_mentions_phrase(text, b) for b in intent.preferred_brands)
        if intent.excluded_brands:
            ok = ok and all(_negated(text, b) for b in intent.excluded_brands)
        return ok
    if s == "colour":
        return _mentions_phrase(text, str(intent.colour))
    if s == "capacity":
        return bool(re.search(r"\b(capacity|storage)\b", text)) or bool(re.search(r"\d+(?:\.\d+)?\s*(?:gb|tb)\b", text))
    if s == "size":
        return bool(re.search(r"\d+(?:\.\d+)?\s*(?:-|\s)?(?:inch|inches|in\b|\")", text)) or bool(
            re.search(r"\b(size|screen size)\b", text)
        )
    if s in ("connectivity", "features"):
        tokens = intent.connectivity if s == "connectivity" else intent.features
        return all(_mentions_phrase(text, t) for t in tokens)
    # use_case
    words = [
        w
        for w in re.findall(r"[a-z]+", _norm(f"{intent.use_case or ''} {intent.recipient or ''}"))
        if len(w) > 2 and w not in {"for", "the", "and", "gift", "family", "daily", "home"}
    ]
    return any(_mentions_phrase(text, w) for w in words) if words else False


def claimed_numbers(text: str) -> list[float]:
    """Numbers stated as facts: dollar amounts and quantities with a unit (GB, inches, %, mAh, W, Hz, MP);
    counts ("3 products") and list numbering are not claims about a product."""
    text = CITATION.sub(" ", text)
    return [float((m.group(1) or m.group(2)).replace(",", "")) for m in _CLAIM.finditer(text)]


@dataclass
class ScoreDetail:
    """Criterion scores and what they rest on (for tables and debugging)."""

    criteria: dict[str, dict[str, float]]
    needs: dict[str, bool] = field(default_factory=dict)
    violating: list[str] = field(default_factory=list)
    invalid_citations: list[str] = field(default_factory=list)
    unsupported_numbers: list[float] = field(default_factory=list)


class DetailOptions(TypedDict, total=False):
    """The keyword options of :meth:`CriteriaScorer.detail` (its defaults apply to what is left out)."""

    query: str
    evidence_ids: set[str] | None
    evidence_text: str


class CriteriaScorer:
    """The deterministic criterion-level scorer (see the module docstring).

    ``catalog``: the product table; ``corpus``: web documents (objects with ``url`` and ``text``)
    whose urls a report may cite and whose numbers support claims; ``targets``: the ``rubric`` block
    of the RACE config (``products``, ``reason_words``)."""

    name = "criteria"

    def __init__(
        self, catalog: pd.DataFrame, corpus: Iterable[Any] = (), targets: dict[str, float] | None = None
    ) -> None:
        self.catalog = catalog
        self.arr = CatalogArrays.of(catalog)
        docs = list(corpus)
        self.corpus_urls = {str(d.url) for d in docs}
        self._corpus_numbers = sorted({v for d in docs for v in extract_numbers(str(d.text))})
        self.targets = {"products": 3.0, "reason_words": 6.0, **(targets or {})}
        self._records: dict[str, str] = {}

    # ------------------------------------------------------------------ catalog facts
    def record(self, pid: str) -> str:
        """The catalog record of ``pid`` as text (title, brand, price, category, attributes)."""
        if pid not in self._records:
            r = self.catalog.iloc[self.arr.index_of(pid)]
            parts = [str(r["title"]), str(r["brand"]), str(r["category"]), str(r["colour"])]
            price = float(r["price"]) if r["price"] == r["price"] else None
            if price is not None:
                parts.append(f"${price:.2f}")
            for col, unit in (("capacity_gb", "GB"), ("size_in", "inches")):
                v = r[col]
                if v == v and v is not None:
                    parts.append(f"{float(v):g} {unit}")
            parts += [str(t) for t in r["connectivity"]] + [str(t) for t in r["features"]]
            parts.append(str(r.get("description", ""))[:400])
            parts.append(str(r.get("specs", ""))[:400])
            self._records[pid] = "\n".join(parts)
        return self._records[pid]

    def satisfies(self, pid: str, intent: Intent) -> bool:
        """Whether product ``pid`` meets every constraint of ``intent`` (per-slot masks)."""
        i = self.arr.id_to_index.get(pid)
        if i is None:
            return False
        return all(bool(slot_mask(self.arr, intent, s)[i]) for s in HARD_SLOTS)

    def _supported(self, v: float, pools: list[list[float]]) -> bool:
        for pool in pools:
            if any(abs(v - p) <= 0.01 * max(abs(p), 1.0) for p in pool):
                return True
        c = self._corpus_numbers
        j = int(np.searchsorted(c, v * 0.99 - 1e-9))
        return j < len(c) and abs(c[j] - v) <= 0.01 * max(abs(v), 1.0) + 1e-9

    # ------------------------------------------------------------------ scoring
    def detail(
        self,
        markdown: str,
        intent: Intent,
        query: str = "",
        evidence_ids: set[str] | None = None,
        evidence_text: str = "",
    ) -> ScoreDetail:
        """Criterion scores in [0, 10] of one report for ``intent`` (the FINAL intent after any shift)."""
        T = self.targets
        rep = ParsedReport.parse(markdown)
        body = _norm(rep.body)
        # ---- needs
        needs = needs_of(intent)
        hit = {n.slot: need_addressed(n, intent, body) for n in needs}
        stated = [hit[n.slot] for n in needs if n.stated]
        latent = [hit[n.slot] for n in needs if not n.stated]
        # ---- products: the cited recommendations (ids in items, else any citation in the text)
        cited = rep.cited_products(markdown)
        known = [p for p in cited if p in self.arr.id_to_index]
        n_gold = len(gold_ids(self.arr, intent))
        want = max(1.0, min(T["products"], float(n_gold))) if n_gold else T["products"]
        n_items = len(rep.items) if rep.items else len(cited)
        coverage = min(10.0, 10.0 * len(known) / want)
        # ---- constraints
        violating = [p for p in known if not self.satisfies(p, intent)]
        constraints = 10.0 * (len(known) - len(violating)) / n_items if n_items and known else 0.0
        # ---- citations (FACT against catalog + evidence + web corpus)
        invalid = [
            p for p in cited if p not in self.arr.id_to_index or (evidence_ids is not None and p not in evidence_ids)
        ]
        if rep.items:
            carried = sum(1 for it in rep.items if it["ids"] and all(p not in invalid for p in it["ids"]))
            item_share = carried / len(rep.items)
        else:
            item_share = (len(cited) - len(invalid)) / len(cited) if cited else 0.0
        urls = URL.findall(markdown)
        url_share = sum(u in self.corpus_urls for u in urls) / len(urls) if urls else 1.0
        intent_values = [
            v for v in (intent.budget, intent.min_capacity_gb, intent.min_size_in, intent.max_size_in) if v
        ]
        pools = [
            extract_numbers("\n".join(self.record(p) for p in known)),
            extract_numbers(evidence_text),
            extract_numbers(query),
            [float(v) for v in intent_values],
        ]
        numbers = claimed_numbers(rep.body)
        unsupported = [v for v in numbers if not self._supported(v, pools)]
        num_share = 1.0 - len(unsupported) / len(numbers) if numbers else 1.0
        citations = 10.0 * item_share * num_share * url_share
        # ---- insight
        reasons_ok = 0
        for it in rep.items:
            words = re.findall(r"[A-Za-z0-9$.']+", it["reason"])
            if len(words) < T["reason_words"] or not it["ids"] or it["ids"][0] not in self.arr.id_to_index:
                continue
            rec = _norm(self.record(it["ids"][0]))
            rtext = _norm(it["reason"])
            r = self.catalog.iloc[self.arr.index_of(it["ids"][0])]
            facts = (
                [str(r["brand"]), str(r["category"])]
                + [str(t) for t in r["connectivity"]]
                + [str(t) for t in r["features"]]
            )
            names_fact = any(f and _mentions_phrase(rtext, f) for f in facts) or any(
                self._supported(v, [extract_numbers(rec)]) for v in extract_numbers(it["reason"])
            )
            reasons_ok += names_fact
        reasons = 10.0 * reasons_ok / len(rep.items) if rep.items else 0.0
        comparison = (
            min(10.0, 10.0 / 3 * len(_COMPARE.findall(rep.body)))
            if len(known) >= 2
            else (5.0 if _COMPARE.search(rep.body) else 0.0)
        )
        vtext = rep.verdict or ""
        verdict = 0.0
        if vtext and vtext != "(none)":
            verdict = (
                10.0
                if (extract_citations(vtext) or re.search(r"\b(buy|choose|pick|go for|get|best)\b", vtext, re.I))
                else 5.0
            )
        # ---- readability
        has = [rep.summary is not None, rep.recommendations is not None, rep.verdict is not None]
        structure = 10.0 * (sum(has) + (1 if rep.items else 0)) / 4
        sentences = [s.strip() for s in re.split(r"[.!?\n]+", body) if len(s.split()) >= 2]
        no_rep = 10.0 * len(set(sentences)) / len(sentences) if sentences else 0.0
        crit = {
            "comprehensiveness": {
                "stated_needs": 10.0 * sum(stated) / len(stated) if stated else 10.0,
                "latent_needs": 10.0 * sum(latent) / len(latent) if latent else 10.0,
                "coverage": coverage,
            },
            "insight": {"reasons": reasons, "comparison": comparison, "verdict": verdict},
            "instruction_following": {"constraints": constraints, "citations": citations},
            "readability": {"structure": structure, "no_repetition": no_rep},
        }
        return ScoreDetail(crit, hit, violating, invalid, unsupported)

    def criteria(self, markdown: str, intent: Intent, **options: Unpack[DetailOptions]) -> dict[str, dict[str, float]]:
        return self.detail(markdown, intent, **options).criteria


def ends_on_intent(scorer: CriteriaScorer, markdown: str, intent: Intent) -> bool:
    """The shift check: the report recommends >= 1 product and every recommended product satisfies ``intent``."""
    d = scorer.detail(markdown, intent)
    cited = ParsedReport.parse(markdown).cited_products(markdown)
    return bool(cited) and not d.violating and all(p in scorer.arr.id_to_index for p in cited)


__all__ = [
    "CRITERIA",
    "CITATION",
    "CriteriaScorer",
    "Need",
    "ParsedReport",
    "ScoreDetail",
    "ends_on_intent",
    "need_addressed",
    "needs_of",
]
