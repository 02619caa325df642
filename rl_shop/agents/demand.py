"""Demand reasoning for the Leader: request text -> slots + a distribution over the 8 ECCD types.

Why a deterministic parser next to the LLM: the embedded model (SmolLM2-135M) cannot be trusted
to extract a budget or an excluded brand, and a wrong hard constraint is worse than none. So the
text is parsed twice: by the rule parser of :mod:`rl_shop.agents.slot_parser` against the
*closed* catalog vocabularies, and by the LLM (``DemandParse`` structured output). The Leader
merges both (``merge``): LLM values are accepted only if they exist in the catalog vocab AND are
grounded in the text; the query-type distributions are mixed with a configured weight.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, Field, StringConstraints

from rl_shop.agents.slot_parser import (  # noqa: F401  (re-exported: the parsers' public names)
    _CONN_PAT,
    _FEAT_PAT,
    CatalogVocab,
    _word_re,
    extract_slots,
    normalize_typos,
    parse_shortlist_reply,
    parse_slot_answer,
)
from rl_shop.sim.slots import QA_FIELDS, QUERY_TYPES, SLOTS

if TYPE_CHECKING:
    from rl_shop.agents.understanding.understander import QueryUnderstanding

_VAGUE_RE = re.compile(
    r"\b(something|anything|ideas?|stuff|not sure what|suggest\w*|some kind of|nice|recommend\w*)\b", re.I
)
_QUESTION_RE = re.compile(r"^\s*(what|which|how|is|are|does|do|can|should|will|why|when)\b|\?\s*$", re.I)
# The simulator's request opener "can you find me ..." (configs/sim/lexicon.yaml) is a request,
# not a question, unless it ends with "?".
_REQUEST_RE = re.compile(r"^\s*(?:can|could|would) you (?:please )?(?:find|get|show|buy|pick)\b(?!.*\?\s*$)", re.I)
_COMPARE_RE = re.compile(
    r"\b(vs\.?|versus|compare|comparison|which is better|better:|or the|difference between)\b", re.I
)
_QA_FIELD_WORDS: dict[str, tuple[str, ...]] = {
    "price": ("how much does", "how much is", "price of", "cost", "what does"),
    "brand": ("who makes", "what brand", "which brand", "made by"),
    "capacity": ("storage", "capacity", "how many gb", "how much memory"),
    "size": ("how big", "size of", "in inches", "how large", "screen size", "dimensions"),
    "colour": ("what colour", "what color", "which colour", "which color", "colour is", "color is"),
    "connectivity": ("connect", "connectivity", "ports", "bluetooth", "wireless"),
}
_PERSONA_RE = re.compile(
    r"\bfor (?:my|a|an|our)\s+(dad|father|mom|mother|wife|husband|son|daughter|kid|kids|"
    r"child|friend|boss|grandma|grandpa|teen|student|colleague)\b",
    re.I,
)


# ------------------------------------------------------------------------------------------ parse


#: Sources of values the assistant inferred rather than read in the shopper's words: a value she
#: gives in an answer replaces them ("no, memory" after a guessed "computers accessories").
INFERRED_SOURCES = frozenset({"understanding", "llm"})


class ParsedDemand(BaseModel):
    """The Leader's demand-reasoning result: a distribution over the 8 ECCD types and the slots.

    ``slots`` uses the simulator's slot names (``rl_shop.sim.slots.SLOTS``); ``stated`` lists the
    slots the text gave a value for; ``sources`` says, per slot, where the value came from: the rule
    parser, the open-world reading or the LLM (each after validation), or the shopper's answer.
    """

    query: str
    type_distribution: dict[str, float]
    category: str | None = None
    department: str | None = None
    budget: float | None = None
    budget_min: float | None = None
    preferred_brands: list[str] = Field(default_factory=list)
    excluded_brands: list[str] = Field(default_factory=list)
    colour: str | None = None
    min_capacity_gb: float | None = None
    min_size_in: float | None = None
    max_size_in: float | None = None
    connectivity: list[str] = Field(default_factory=list)
    features: list[str] = Field(default_factory=list)
    excluded_features: list[str] = Field(default_factory=list)
    use_case: str | None = None
    use_case_categories: list[str] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)
    qa_field: str | None = None
    product_type: str | None = None
    in_catalog: bool | None = None  # None: not judged (no open-world reading)
    open_type: str | None = None  # the open-world reading's query type (real-text typing)
    open_question: bool = False  # the open-world reading found a question ("what is ...", "...?")
    confirmed: list[str] = Field(default_factory=list)  # ids of a shortlist the shopper said yes to
    stated: list[str] = Field(default_factory=list)
    sources: dict[str, str] = Field(default_factory=dict)

    @property
    def query_type(self) -> str:
        """The most probable type (ties broken by ``QUERY_TYPES`` order)."""
        return max(QUERY_TYPES, key=lambda t: (self.type_distribution.get(t, 0.0), -QUERY_TYPES.index(t)))

    @property
    def confidence(self) -> float:
        return float(self.type_distribution.get(self.query_type, 0.0))

    @property
    def clarity_estimate(self) -> float:
        """The share of ``SLOTS`` on record: the Leader's clarity estimate (the collaboration
        policy's ``clarity_hat``)."""
        return len(self.known_slots()) / len(SLOTS)

    def known_slots(self) -> list[str]:
        """Slots with a value on record, in ``SLOTS`` order."""
        have = {
            "category": self.category is not None,
            "budget": self.budget is not None,
            "brand": bool(self.preferred_brands or self.excluded_brands),
            "colour": self.colour is not None,
            "capacity": self.min_capacity_gb is not None,
            "size": self.min_size_in is not None or self.max_size_in is not None,
            "connectivity": bool(self.connectivity),
            "features": bool(self.features or self.excluded_features),
            "use_case": self.use_case is not None,
        }
        return [s for s in SLOTS if have[s]]


def _targets(text: str, query_type_hint: str) -> list[str]:
    """Product names in a comparison ("A vs B", "should i buy A, B or C?") or a product question."""
    body = text.strip().rstrip("?").strip()
    if query_type_hint == "comparison":
        body = re.sub(
            r"(?i)^(should i (?:buy|get)|which is better[:,]?|compare|which should i (?:buy|get)[:,]?|"
            r"what'?s the difference between|what is the difference between)\s*",
            "",
            body,
        )
        body = re.sub(r"(?i)[,]?\s*which is better$|[,]?\s*which one\??$", "", body)
        parts = re.split(r"(?i)\s+vs\.?\s+|\s+versus\s+|\s+or\s+|,\s*(?:and\s+)?|\s+and\s+", body)
        return [p.strip(" ,.") for p in parts if len(p.strip(" ,.")) >= 3]
    m = re.search(
        r"(?i)\b(?:the|this|of)\s+(.+?)(?:\s+(?:have|has|come in|cost|support|in inches|weigh|made)\b.*)?$", body
    )
    if m:
        return [m.group(1).strip(" ,.")]
    return []


def _qa_field(text: str) -> str | None:
    low = text.lower()
    for qa_field in QA_FIELDS:
        if any(w in low for w in _QA_FIELD_WORDS[qa_field]):
            return qa_field
    return None


#: Slots that count as stated constraints when the rules tell simple from multi-constraint queries.
_CONSTRAINT_SLOTS = (
    "budget",
    "preferred_brands",
    "colour",
    "min_capacity_gb",
    "min_size_in",
    "max_size_in",
    "connectivity",
    "features",
)


def rule_parse(text: str, vocab: CatalogVocab, residual: float = 0.1) -> ParsedDemand:
    """Deterministic demand reasoning: slots from the vocabularies, type from the surface form.

    The distribution puts ``1 - residual`` on the rule's type and spreads ``residual`` uniformly,
    so the LLM's opinion can still move it when the two are mixed.
    """
    query = text
    text = normalize_typos(text, vocab.catalog_words)  # the query itself is kept as typed
    slots = extract_slots(text, vocab)
    qa_field = _qa_field(text)
    qtype, targets = _rule_type(text, vocab, slots, qa_field)
    dist = {t: residual / len(QUERY_TYPES) for t in QUERY_TYPES}
    dist[qtype] += 1.0 - residual
    stated = list(ParsedDemand(query=query, type_distribution=dist, **slots).known_slots())
    return ParsedDemand(
        query=query,
        type_distribution=dist,
        targets=targets,
        qa_field=qa_field,
        stated=stated,
        sources={s: "rules" for s in stated},
        **slots,
    )


def _rule_type(text: str, vocab: CatalogVocab, slots: dict[str, Any], qa_field: object) -> tuple[str, list[str]]:
    """The query type the surface form suggests, and the named products of a comparison / Q&A."""
    low = text.lower()
    is_question = bool(_QUESTION_RE.search(text)) and not _REQUEST_RE.match(text)
    n_constraints = sum(1 for k in _CONSTRAINT_SLOTS if slots.get(k))
    if _COMPARE_RE.search(text) or (re.match(r"(?i)\s*should i (buy|get)\b", text) and (" or " in low or "," in low)):
        compared = _targets(text, "comparison")
        if len(compared) >= 2:
            return "comparison", compared
        return ("general_qa" if is_question else "simple"), []
    targets: list[str] = []
    if is_question and qa_field:
        targets = _targets(text, "product_qa")  # kept below: the named product of a question
        if targets and vocab.find_category(targets[0])[0] != targets[0].lower() and len(targets[0].split()) >= 2:
            return "product_qa", targets
    if is_question and slots.get("category") and not slots.get("use_case"):
        return "general_qa", targets
    if not slots.get("category") and (slots.get("use_case") or _PERSONA_RE.search(text)):
        return "reasoning", targets
    if not slots.get("category"):
        return ("general_qa" if is_question and not _VAGUE_RE.search(text) else "ambiguous"), targets
    if slots.get("excluded_brands") or slots.get("excluded_features"):
        return "negation", targets
    if n_constraints >= 1 and (n_constraints >= 2 or slots.get("budget") is not None):
        return "multi_constraint", targets
    if _VAGUE_RE.search(text) and n_constraints == 0 and not re.search(r"(?i)\b(i need|looking for|want)\b", text):
        return "ambiguous", targets
    return "simple", targets


def enrich(rules: ParsedDemand, reading: QueryUnderstanding, vocab: CatalogVocab) -> ParsedDemand:
    """Fill what the closed-vocabulary rule parse missed with the open-world reading
    (:class:`~rl_shop.agents.understanding.QueryUnderstanding`): a budget in any human form, the
    excluded catalog brands, the catalog category of the product type, and whether the catalog
    carries that type at all. Rule values stand, except the category: the reading's (by words and
    meaning) is right more often on both the human and the generated queries
    (``docs/results/understanding.md``), so it replaces the rule's when it names a catalog category
    that fits the stated use case (if any)."""
    data = rules.model_dump()
    sources = dict(rules.sources)
    if data["budget"] is None and reading.budget_max is not None:
        data["budget"], sources["budget"] = float(reading.budget_max), "understanding"
    if data["budget_min"] is None and reading.budget_min is not None:
        data["budget_min"] = float(reading.budget_min)
    new_excl = [b for b in reading.excluded_brands if b in vocab.brand_set and b not in data["excluded_brands"]]
    if new_excl:
        data["excluded_brands"] = [*data["excluded_brands"], *new_excl]
        data["preferred_brands"] = [b for b in data["preferred_brands"] if b not in new_excl]
        sources["brand"] = sources.get("brand", "understanding")
    # a stated use case bounds the category: "to keep office documents organized" (printers,
    # shredders, label makers ...) is no request for the reading's "filing & organization", and a
    # category outside the use case's leaves no product that fits both
    fits_use = not data["use_case_categories"] or reading.category in data["use_case_categories"]
    if (
        reading.in_catalog
        and reading.category in vocab.category_set
        and reading.category != data["category"]
        and fits_use
    ):
        data["category"], sources["category"] = reading.category, "understanding"
    data["product_type"], data["in_catalog"], data["sources"] = reading.product_type, bool(reading.in_catalog), sources
    data["open_type"], data["open_question"] = reading.query_type, reading.is_question
    out = ParsedDemand.model_validate(data)
    out.stated = out.known_slots()
    return out


# ------------------------------------------------------------------------------------------ LLM


class IntentGuess(BaseModel):
    """One hypothesis of the multi-intent distribution."""

    type: Literal[
        "simple", "reasoning", "multi_constraint", "negation", "ambiguous", "product_qa", "comparison", "general_qa"
    ]
    confidence: float = Field(ge=0.0, le=1.0)


_Short = Annotated[str, StringConstraints(max_length=32)]


class DemandParse(BaseModel):
    """Structured-output schema of the Leader's LLM demand reasoning (short on purpose: every
    field costs decoding time on the embedded model; string lengths are bounded in the grammar)."""

    intents: list[IntentGuess] = Field(default_factory=list, max_length=2)
    category: _Short | None = None
    budget: float | None = Field(default=None, ge=0)
    brands: list[_Short] = Field(default_factory=list, max_length=2)
    excluded_brands: list[_Short] = Field(default_factory=list, max_length=2)
    features: list[_Short] = Field(default_factory=list, max_length=2)


def demand_messages(text: str) -> list[dict[str, str]]:
    """The prompt of the LLM demand-reasoning call."""
    return [
        {
            "role": "system",
            "content": (
                "You analyse shopping requests. Give up to 2 possible request types with confidences "
                "(simple, reasoning, multi_constraint, negation, ambiguous, product_qa, comparison, general_qa), "
                "the product category, the maximum budget in USD, wanted brands, excluded brands and required features. "
                "Use null or [] when the request does not say."
            ),
        },
        {"role": "user", "content": f"Request: {text}"},
    ]


def validate_llm_parse(parse: DemandParse, text: str, vocab: CatalogVocab) -> tuple[dict[str, Any], list[str]]:
    """Keep only LLM values that exist in the catalog vocab and are grounded in ``text``.

    Returns (accepted slot values, rejection notes). A number must appear in the text; a brand
    or category must be a catalog value that the text names (word-bounded).
    """
    low = text.lower()
    accepted: dict[str, Any] = {}
    notes: list[str] = []
    if parse.category:
        cat = parse.category.strip().lower()
        if cat in vocab.category_set and (
            _word_re(cat).search(low) or (cat.endswith("s") and _word_re(cat[:-1]).search(low))
        ):
            accepted["category"] = cat
        else:
            notes.append(f"category {parse.category!r} not a catalog category named in the text")
    if parse.budget is not None:
        if re.search(r"(?<![\d.])" + re.escape(f"{parse.budget:g}") + r"(?![\d])", text.replace(",", "")):
            accepted["budget"] = float(parse.budget)
        else:
            notes.append(f"budget {parse.budget:g} does not appear in the text")
    for key, values in (("preferred_brands", parse.brands), ("excluded_brands", parse.excluded_brands)):
        ok = []
        for b in values:
            b = str(b).strip().lower()
            if b in vocab.brand_set and _word_re(b).search(low):
                ok.append(b)
            elif b:
                notes.append(f"brand {b!r} not a catalog brand named in the text")
        if ok:
            accepted[key] = ok
    feats = []
    for f in parse.features:
        f = str(f).strip().lower()
        pat = _FEAT_PAT.get(f) or _CONN_PAT.get(f)
        if pat is not None and pat.search(text):
            feats.append(f)
        elif f:
            notes.append(f"feature {f!r} not in the vocabulary or not in the text")
    if feats:
        accepted["features"] = feats
    return accepted, notes


def llm_distribution(parse: DemandParse) -> dict[str, float] | None:
    """The LLM's type distribution (confidences renormalised), None when it gave none."""
    conf = {t: 0.0 for t in QUERY_TYPES}
    for guess in parse.intents:
        conf[guess.type] = max(conf[guess.type], float(guess.confidence))
    total = sum(conf.values())
    if total <= 0:
        return None
    return {t: v / total for t, v in conf.items()}


def merge(
    rules: ParsedDemand, llm_values: dict[str, Any], llm_dist: dict[str, float] | None, llm_weight: float
) -> ParsedDemand:
    """Mix the type distributions (``llm_weight`` on the LLM's) and fill slots the rules left empty
    with validated LLM values; a rule value is never overwritten (and an LLM brand the rules read
    as excluded cannot become preferred)."""
    data = rules.model_dump()
    if llm_dist is not None:
        w = float(np.clip(llm_weight, 0.0, 1.0))
        data["type_distribution"] = {
            t: (1 - w) * rules.type_distribution.get(t, 0.0) + w * llm_dist.get(t, 0.0) for t in QUERY_TYPES
        }
    sources = dict(rules.sources)
    for key, value in llm_values.items():
        if key == "preferred_brands":
            value = [b for b in value if b not in data["excluded_brands"]]
        if data.get(key) in (None, [], {}) and value not in (None, []):
            data[key] = value
            sources[key] = "llm"
    data["sources"] = sources
    merged = ParsedDemand.model_validate(data)
    merged.stated = merged.known_slots()
    return merged
