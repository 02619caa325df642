"""Rule-based slot extraction against the closed catalog vocabularies (requests and answers).

The catalog's categories, departments and brands, the ``rl_shop.catalog.vocab`` colour /
connectivity / feature synonyms and the knowledge table's use cases are the only values these
parsers can produce, so a parsed constraint always exists in the catalog. Used by the Leader's
demand reasoning (:mod:`rl_shop.agents.demand`) and by the Guider to read the shopper's answers
(as rendered by ``rl_shop.sim.answer_text`` on the simulator's language face).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rl_shop.catalog.vocab import COLOUR_SYNONYMS, CONNECTIVITY_SYNONYMS, FEATURE_SYNONYMS
from rl_shop.sim.slots import SLOTS

if TYPE_CHECKING:
    import pandas as pd

_NUM = r"(\d+(?:,\d{3})*(?:\.\d+)?)"
_BUDGET_RE = re.compile(
    r"(?:under|below|less than|no more than|not more than|up to|at most|max(?:imum)?(?: price)?(?: of)?|"
    r"cheaper than|within|budget(?: is| of)?|for under|priced under|cost more than|around|about|spend)\s*"
    r"(?:of\s*)?(?:\$|usd\s*)?\s*" + _NUM + r"\s*(?:\$|dollars|usd|bucks)?",
    re.I,
)
_BARE_PRICE_RE = re.compile(r"\$\s*" + _NUM)
# A number in a reply to the budget question that is not a quantity of something else ("at least
# 16gb internal storage" is no $16 budget): whole, and not followed by a unit.
_AMOUNT_RE = re.compile(
    r"(?<![\w.])"
    + _NUM
    + r"(?![\d.,])(?!\s*(?:gb|tb|mb|inch|inches|in\b|mp\b|mah\b|hz\b|mm\b|cm\b|ft\b|oz\b|ml\b|w\b|%|\"))",
    re.I,
)
_CAPACITY_RE = re.compile(_NUM + r"\s*(gb|tb|mb)\b", re.I)
_SIZE_RANGE_RE = re.compile(r"between\s+" + _NUM + r"\s*(?:and|to|-)\s*" + _NUM + r"\s*(?:inch|inches|in\b|\")", re.I)
_SIZE_DASH_RE = re.compile(_NUM + r"\s*(?:-|to)\s*" + _NUM + r"\s*(?:-\s*)?(?:inch|inches|in\b|\")", re.I)
_SIZE_AROUND_RE = re.compile(r"around\s+" + _NUM + r"\s*(?:to|-)\s*" + _NUM + r"\s*(?:inch|inches|in\b|\")", re.I)
_SIZE_MIN_RE = re.compile(r"at least\s+" + _NUM + r"\s*(?:inch|inches|in\b|\")", re.I)
_SIZE_MAX_RE = re.compile(r"(?:at most|up to|no (?:more|bigger) than)\s+" + _NUM + r"\s*(?:inch|inches|in\b|\")", re.I)
_SIZE_RE = re.compile(_NUM + r"\s*(?:-|\s)?(?:inch|inches|\")", re.I)
_NEG_RE = re.compile(
    r"\b(?:not|no|without|except|excluding|avoid|anything but|other than|but not|nothing from|never)\b"
    r"\s+((?:[\w\-&.']+\s*){1,4})",
    re.I,
)
_STATUS_PATTERNS: dict[str, re.Pattern[str]] = {
    "quit": re.compile(r"never mind|look elsewhere|taking too long|\bbye\b|forget it|stop asking", re.I),
    "dont_know": re.compile(r"not sure|no idea|don'?t know|dunno|no clue", re.I),
    "no_preference": re.compile(
        r"don'?t mind|doesn'?t matter|any is fine|no preference|anything is fine|"
        r"whatever|don'?t care|either is fine|any will do|not really|"
        r"(?:no|n'?t have any|not have any) (?:\w+ )?restrictions?",
        re.I,
    ),
}
# Words the parsers key on (negation, budget, size, vagueness, question and request cues). The
# simulator's first queries carry typos (``rl_shop.sim.render``: one adjacent transposition in a
# word of >= 4 letters that is not a constraint value), which silently dropped a negation
# ("otehr than thermaltake") or a vague cue ("reocmmend"); ``normalize_typos`` undoes exactly
# that edit for these words only.
_CUE_WORDS: frozenset[str] = frozenset(
    [
        "without",
        "except",
        "excluding",
        "avoid",
        "other",
        "than",
        "never",
        "nothing",
        "anything",
        "something",
        "under",
        "below",
        "less",
        "more",
        "maximum",
        "price",
        "priced",
        "cheaper",
        "within",
        "budget",
        "around",
        "about",
        "spend",
        "dollars",
        "bucks",
        "inch",
        "inches",
        "between",
        "least",
        "ideas",
        "idea",
        "stuff",
        "suggest",
        "suggestion",
        "suggestions",
        "recommend",
        "recommendation",
        "recommendations",
        "nice",
        "kind",
        "what",
        "which",
        "should",
        "when",
        "looking",
        "find",
        "want",
        "need",
        "would",
        "like",
    ]
)


def normalize_typos(text: str, keep: frozenset[str] | set[str] = frozenset()) -> str:
    """``text`` with every word that is one adjacent transposition away from a parser cue word
    (and is neither a cue word itself nor in ``keep``, e.g. the catalog's brand and category
    words) replaced by the cue word. Lengths are unchanged, so spans stay valid."""

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        low = word.lower()
        if len(low) < 4 or low in _CUE_WORDS or low in keep:
            return word
        for j in range(len(low) - 1):
            cand = low[:j] + low[j + 1] + low[j] + low[j + 2 :]
            if cand in _CUE_WORDS:
                return cand
        return word

    return re.sub(r"[A-Za-z]+", fix, text)


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _compile_synonyms(table: Mapping[str, Iterable[str]]) -> dict[str, re.Pattern[str]]:
    return {
        canon: re.compile(r"(?<![\w-])(?:" + "|".join(phrases) + r")(?![\w-])", re.I)
        for canon, phrases in table.items()
    }


_COLOUR_PAT = _compile_synonyms(COLOUR_SYNONYMS)
_CONN_PAT = _compile_synonyms(CONNECTIVITY_SYNONYMS)
_FEAT_PAT = _compile_synonyms(FEATURE_SYNONYMS)


_IRREGULAR = {"mice": "mouse", "knives": "knife", "shelves": "shelf", "leaves": "leaf"}


def _singulars(name: str) -> set[str]:
    """Singular forms of a (plural) category name's last word: mice -> mouse, batteries ->
    battery, boxes -> box, headphones -> headphone."""
    head, _, last = name.rpartition(" ")
    pre = f"{head} " if head else ""
    out = set()
    if last in _IRREGULAR:
        out.add(pre + _IRREGULAR[last])
    elif last.endswith("ies") and len(last) > 4:
        out.add(pre + last[:-3] + "y")
    elif re.search(r"(x|ch|sh|ss)es$", last):
        out.add(pre + last[:-2])
    elif last.endswith("s") and len(last) > 3 and not last.endswith("ss"):
        out.add(pre + last[:-1])
    return out


def _word_re(phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w])" + re.escape(phrase) + r"(?![\w])", re.I)


# ------------------------------------------------------------------------------------------ vocab


@dataclass
class CatalogVocab:
    """The closed vocabularies the parsers validate against: catalog categories, departments and
    brands, and the knowledge table's use cases (phrasing -> suitable categories + features)."""

    categories: tuple[str, ...]
    departments: tuple[str, ...]
    brands: tuple[str, ...]
    use_cases: list[dict[str, Any]] = field(default_factory=list)
    qa_topics: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Longest names first so "usb flash drives" wins over "drives"; plural-insensitive.
        self._cat_forms: list[tuple[re.Pattern[str], str]] = []
        for cat in sorted(self.categories, key=len, reverse=True):
            forms = {cat, *_singulars(cat)}
            for form in forms:
                self._cat_forms.append((_word_re(form), cat))
        self._brand_forms = [(_word_re(b), b) for b in sorted(self.brands, key=len, reverse=True)]
        self._dept_forms = [(_word_re(d), d) for d in sorted(self.departments, key=len, reverse=True)]
        self.category_set = frozenset(self.categories)
        self.brand_set = frozenset(self.brands)
        # Catalog words a typo fix must never rewrite (a brand that looks like a misspelt cue).
        self.catalog_words = frozenset(
            w
            for name in (*self.categories, *self.brands, *self.departments)
            for w in re.findall(r"[a-z]+", name.lower())
        )

    @classmethod
    def from_catalog(
        cls,
        catalog: pd.DataFrame,
        knowledge: dict[str, Any] | None = None,
        min_brand_products: int = 2,
        stop_brands: tuple[str, ...] = (),
        use_case_min_products: int | None = None,
        use_case_exclude: tuple[str, ...] | None = None,
    ) -> CatalogVocab:
        """Vocabularies of a ``load_catalog()`` frame; brands need ``min_brand_products`` products
        (one-off brand strings are mostly model numbers) and may not be a category word.

        A use case's categories are resolved exactly as the simulator resolves them
        (``rl_shop.sim.sampler.IntentSampler``): catalog categories containing one of the rule's
        keys, among those with at least ``use_case_min_products`` products and not in
        ``use_case_exclude`` (None = the simulator's ``sampler.min_category_size`` /
        ``exclude_categories``). Otherwise the runtime Guider's |C| for a stated use case is
        counted over a different category set than the one the Clarify env trained the policy on.
        """
        if use_case_min_products is None or use_case_exclude is None:
            from rl_shop.sim import load_sim_config

            scfg = load_sim_config().sampler
            use_case_min_products = scfg.min_category_size if use_case_min_products is None else use_case_min_products
            use_case_exclude = tuple(scfg.exclude_categories) if use_case_exclude is None else use_case_exclude
        depts = sorted({str(d).strip().lower() for d in catalog["department"] if str(d).strip()})
        # A leaf named like a department ("electronics") or a stub ("a") would match vague text.
        cats = sorted(
            {
                str(c).strip().lower()
                for c in catalog["category"]
                if len(str(c).strip()) >= 3 and str(c).strip().lower() not in depts
            }
        )
        counts = catalog["brand"].astype(str).str.strip().str.lower().value_counts()
        cat_words = {w for c in cats for w in c.split()} | set(depts)
        stop = {s.lower() for s in stop_brands}
        brands = sorted(
            b
            for b, n in counts.items()
            if n >= min_brand_products and len(b) >= 2 and b not in cat_words and b not in stop and not b.isdigit()
        )
        knowledge = knowledge or {}
        sizes = catalog["category"].astype(str).str.strip().str.lower().value_counts()
        excluded = {c.lower() for c in use_case_exclude}
        uc_cats = [c for c in cats if int(sizes.get(c, 0)) >= int(use_case_min_products) and c not in excluded]
        use_cases = []
        for rule in knowledge.get("reasoning", []):
            keys = [str(k).lower() for k in rule.get("categories", [])]
            matched = [c for c in uc_cats if any(k in c for k in keys)]
            if matched:
                use_cases.append({**rule, "matched": matched})
        topics = []
        for topic in knowledge.get("general_qa", []):
            keys = [str(k).lower() for k in topic.get("categories", [])]
            topics.append({**topic, "matched": [c for c in cats if any(k in c for k in keys)]})
        return cls(tuple(cats), tuple(depts), tuple(brands), use_cases, topics)

    # -------------------------------------------------------------- matching
    def find_category(self, text: str) -> tuple[str | None, tuple[int, int] | None]:
        """The longest catalog category named in ``text`` and its span."""
        best: tuple[str, tuple[int, int]] | None = None
        for pat, cat in self._cat_forms:
            m = pat.search(text)
            if m and (best is None or (m.end() - m.start()) > (best[1][1] - best[1][0])):
                best = (cat, m.span())
        return (best[0], best[1]) if best else (None, None)

    def find_department(self, text: str) -> str | None:
        for pat, dept in self._dept_forms:
            if pat.search(text):
                return dept
        return None

    def find_brands(self, text: str, skip: list[tuple[int, int]] | None = None) -> list[tuple[str, tuple[int, int]]]:
        """Brands named in ``text`` (longest first, non-overlapping, outside ``skip`` spans)."""
        taken = list(skip or [])
        out: list[tuple[str, tuple[int, int]]] = []
        for pat, brand in self._brand_forms:
            for m in pat.finditer(text):
                span = m.span()
                if any(span[0] < b and a < span[1] for a, b in taken):
                    continue
                taken.append(span)
                out.append((brand, span))
        return sorted(out, key=lambda x: x[1][0])

    def find_use_case(self, text: str, bare_name: bool = False) -> dict[str, Any] | None:
        """The knowledge-table use case whose phrasing occurs in ``text`` (``bare_name``: the use
        case's own name counts too, as in an answer "It's for gaming")."""
        return self.find_use_case_span(text, bare_name)[0]

    def find_use_case_span(
        self, text: str, bare_name: bool = False
    ) -> tuple[dict[str, Any] | None, tuple[int, int] | None]:
        """``find_use_case`` and the span of the phrasing that matched (None, None if none)."""
        low = text.lower()
        for rule in self.use_cases:
            phrases = [str(p).lower() for p in rule.get("phrasings", [])]
            if bare_name:
                phrases.append(str(rule.get("use_case", "")).lower())
            for p in phrases:
                if p and (i := low.find(p)) >= 0:
                    return rule, (i, i + len(p))
        return None, None


def _tokens_in(
    text: str, patterns: dict[str, re.Pattern[str]], skip: list[tuple[int, int]] | None = None
) -> list[tuple[str, tuple[int, int]]]:
    """First match of each pattern that does not start inside a ``skip`` span."""
    out = []
    for canon, pat in patterns.items():
        for m in pat.finditer(text):
            if not any(a <= m.start() < b for a, b in skip or ()):
                out.append((canon, m.span()))
                break
    return out


def _inside(span: tuple[int, int], outer: tuple[int, int] | None) -> bool:
    return outer is not None and outer[0] <= span[0] and span[1] <= outer[1]


def extract_slots(text: str, vocab: CatalogVocab, only: str | None = None) -> dict[str, Any]:
    """Every slot value the rule parser finds in ``text`` (``only``: one slot, for answers)."""

    def want(slot: str) -> bool:
        return only is None or only == slot

    out: dict[str, Any] = {}
    neg_spans: list[tuple[int, int]] = [m.span(1) for m in _NEG_RE.finditer(text)]

    def negated(span: tuple[int, int]) -> bool:
        return any(a <= span[0] < b + 1 for a, b in neg_spans)

    # Words of a use-case phrasing ("for gaming", "playing pc games", "travel photos") state the
    # use case only: the simulator's shopper who says them has not stated a feature or category.
    uc_rule, uc_span = vocab.find_use_case_span(text, bare_name=only == "use_case")
    cat_span = _read_category(text, vocab, uc_span, out) if want("category") else None
    if want("budget") and (budget := _read_budget(text)) is not None:
        out["budget"] = budget
    if want("brand"):
        _read_brands(text, vocab, [cat_span] if cat_span else [], negated, out)
    if want("colour"):
        for canon, span in _tokens_in(text, _COLOUR_PAT):
            if not negated(span):
                out.setdefault("colour", canon)
    if want("capacity"):
        caps = [_num(m.group(1)) * _CAPACITY_GB[m.group(2).lower()] for m in _CAPACITY_RE.finditer(text)]
        if caps:
            out["min_capacity_gb"] = max(caps)
    if want("size"):
        _read_size(text, only == "size", out)
    for slot, pats in (("connectivity", _CONN_PAT), ("features", _FEAT_PAT)):
        if want(slot):
            _read_tokens(text, slot, pats, [sp for sp in (cat_span, uc_span) if sp], negated, out)
    if want("use_case"):
        _read_use_case(text, uc_rule, only == "use_case", out)
    return out


_CAPACITY_GB = {"gb": 1.0, "tb": 1000.0, "mb": 0.001}


def _read_category(
    text: str, vocab: CatalogVocab, uc_span: tuple[int, int] | None, out: dict[str, Any]
) -> tuple[int, int] | None:
    """The category (or, without one, the department) into ``out``; returns the category's span."""
    cat, cat_span = vocab.find_category(text)
    if cat and cat_span and _inside(cat_span, uc_span):
        cat, cat_span = None, None
    if cat:
        out["category"] = cat
    elif dept := vocab.find_department(text):
        out["department"] = dept
    return cat_span


def _read_budget(text: str) -> float | None:
    """The first positive money amount (sizes such as "13 inch" or "64gb" are not money)."""
    b = [
        _num(x.group(1))
        for x in _BUDGET_RE.finditer(text)
        if not re.match(r"\s*(?:inch|inches|gb|tb|\")", text[x.end() : x.end() + 8], re.I)
    ]
    if not b:
        b = [_num(x.group(1)) for x in _BARE_PRICE_RE.finditer(text)]
    return b[0] if b and b[0] > 0 else None


def _read_brands(
    text: str,
    vocab: CatalogVocab,
    skip: list[tuple[int, int]],
    negated: Callable[[tuple[int, int]], bool],
    out: dict[str, Any],
) -> None:
    """Preferred and excluded brands into ``out``."""
    low = text.lower()
    prefer: list[str] = []
    exclude: list[str] = []
    for brand, span in vocab.find_brands(text, skip):
        (exclude if negated(span) else prefer).append(brand)
    # "Anything but X or Y": a brand right after an excluded one joined by "or" is excluded too.
    if exclude and prefer and re.search(r"\b(but|not)\b", low):
        for brand in list(prefer):
            if re.search(re.escape(exclude[-1]) + r"\s+(?:or|nor|and)\s+" + re.escape(brand), low):
                prefer.remove(brand)
                exclude.append(brand)
    if prefer:
        out["preferred_brands"] = prefer
    if exclude:
        out["excluded_brands"] = exclude


def _read_size(text: str, answering_size: bool, out: dict[str, Any]) -> None:
    """Screen size bounds into ``out``: a range, "at least", "at most", or (answering) one size."""
    m = _SIZE_RANGE_RE.search(text) or _SIZE_AROUND_RE.search(text) or _SIZE_DASH_RE.search(text)
    if m:
        out["min_size_in"], out["max_size_in"] = sorted((_num(m.group(1)), _num(m.group(2))))
    elif m := _SIZE_MIN_RE.search(text):
        out["min_size_in"] = _num(m.group(1))
    elif m := _SIZE_MAX_RE.search(text):
        out["max_size_in"] = _num(m.group(1))
    elif answering_size and (m := _SIZE_RE.search(text)):
        out["min_size_in"] = out["max_size_in"] = _num(m.group(1))


def _read_tokens(
    text: str,
    slot: str,
    pats: dict[str, re.Pattern[str]],
    skip: list[tuple[int, int]],
    negated: Callable[[tuple[int, int]], bool],
    out: dict[str, Any],
) -> None:
    """Connectivity or feature words into ``out`` (negated ones become ``excluded_features``)."""
    # "usb" in "usb flash drives" is the category (a later "with usb" still counts);
    # "gaming" in "for gaming" is the use case.
    found = _tokens_in(text, pats, skip)
    keep = [c for c, s in found if not negated(s)]
    drop = [c for c, s in found if negated(s)]
    if slot == "features" and "colour" in out:
        keep = [c for c in keep if c != "color"]
    if keep:
        out[slot] = keep
    if drop and slot == "features":
        out["excluded_features"] = drop
    elif drop:
        out.setdefault("excluded_features", []).extend(drop)


def _read_use_case(text: str, rule: Mapping[str, Any] | None, answering_use_case: bool, out: dict[str, Any]) -> None:
    """The use case (and the categories it implies) into ``out``."""
    if rule:
        out["use_case"] = str(rule["use_case"])
        out["use_case_categories"] = list(rule["matched"])
    elif answering_use_case:
        m = re.search(r"for\s+([\w\s]+?)(?:,|\.|$)", text, re.I)
        if m:
            out["use_case"] = m.group(1).strip().lower()


# ------------------------------------------------------------------------------------------ answers


AnswerStatus = Literal["value", "no_preference", "dont_know", "quit"]
ShortlistStatus = Literal["value", "confirmed", "rejected", "quit"]


_AFFIRM = re.compile(
    r"^\W*(?:yes|yeah|yep|yup|sure|ok(?:ay)?|perfect|great|good|looks? good|that works|one of (?:those|these))\b", re.I
)


def parse_shortlist_reply(text: str, vocab: CatalogVocab) -> tuple[ShortlistStatus, dict[str, Any]]:
    """The shopper's reply to a shortlist shown for confirmation -> (status, slot values found).

    ``value``: she says what is missing ("no, i need noise cancelling": any slot); ``confirmed``:
    a plain yes; ``quit``; ``rejected``: a no with nothing usable.
    """
    if _STATUS_PATTERNS["quit"].search(text):
        return "quit", {}
    values = extract_slots(text, vocab)
    if values:
        return "value", values
    return ("confirmed" if _AFFIRM.search(text) else "rejected"), {}


def parse_slot_answer(slot: str, text: str, vocab: CatalogVocab) -> tuple[AnswerStatus, dict[str, Any]]:
    """The shopper's reply to "ask about ``slot``" -> (status, slot values found).

    Values of *other* slots volunteered in the same reply are returned too (a shopper answering
    the category question with "black headphones" also states the colour).
    """
    if slot not in SLOTS:
        raise ValueError(f"unknown slot {slot!r}; valid slots are {list(SLOTS)}")
    for status in ("quit", "dont_know", "no_preference"):
        if _STATUS_PATTERNS[status].search(text):  # what else the reply says is kept ("not really, but red")
            return status, {k: v for k, v in extract_slots(text, vocab).items() if k != slot}
    values = extract_slots(text, vocab, only=slot)
    if slot == "budget" and "budget" not in values:
        m = _AMOUNT_RE.search(text)
        if m:
            values["budget"] = _num(m.group(1))
    others = {k: v for k, v in extract_slots(text, vocab).items() if k not in values}
    if not values:
        return "dont_know", others  # nothing usable about the asked slot
    return "value", {**others, **values}
