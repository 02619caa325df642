"""Render an ``Intent`` (and a shopper's slot answers) as natural query text.

Templates are ours; how often each phrasing is used comes from the mined lexicon
(``configs/sim/lexicon.yaml``), so openers, budget, colour, size and negation phrasings follow
real request statistics. Typos touch only filler words, never the constraint values, so a
stated constraint is always recoverable from the text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rl_shop.sim.config import SimConfig, load_sim_config
from rl_shop.sim.errors import QueryTextError
from rl_shop.sim.lexicon import weighted_choice
from rl_shop.sim.slots import Intent

_FALLBACK_OPENERS: dict[str, float] = {"i am looking for": 3, "i need": 2, "i want": 2, "find me": 1}
_BRAND_NEGATIONS = {  # templates for excluding a brand; weights blend mined negation counts
    "but not {x}": "not_x",
    "but no {x}": "no_x",
    "without {x}": "without_x",
    "anything except {x}": None,
    "other than {x}": None,
    "not made by {x}": "not_x",
}
_VAGUE = [
    "{opener} a gift for someone",
    "{opener} something nice for {department}",
    "any ideas for {department} stuff?",
    "need something, not sure what exactly",
    "what would you recommend in {department}?",
    "{opener} something in {department}, not sure what",
]
_QA = {
    "price": ["how much is the {p}?", "what does the {p} cost?", "price of {p}?"],
    "brand": ["who makes the {p}?", "what brand is the {p}?"],
    "capacity": ["how much storage does the {p} have?", "what is the capacity of the {p}?"],
    "size": ["what is the screen size of the {p}?", "how big is the {p} in inches?"],
    "colour": ["what colour is the {p}?", "which color does the {p} come in?"],
    "connectivity": ["how does the {p} connect?", "what connectivity does the {p} support?"],
}
_COMPARE = [
    "compare {a} and {b}",
    "{a} vs {b}, which is better?",
    "what's the difference between {a} and {b}?",
    "should i buy {a} or {b}?",
]
_REASONING = [
    "{opener} something {phrase}",
    "what should i get {phrase}?",
    "{phrase_raw}, any suggestions?",
    "{opener} a good pick {phrase}",
]


def validate_query_text(text: object, max_chars: int = 500) -> str:
    """Return ``text`` stripped, or raise ``QueryTextError`` for empty / non-text / huge input."""
    if not isinstance(text, str):
        raise QueryTextError(f"query text must be a string, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise QueryTextError("query text is empty; give the shopper's request as text")
    if len(stripped) > max_chars:
        raise QueryTextError(
            f"query text has {len(stripped)} characters, more than the {max_chars} allowed; "
            "shorten it (raise render.max_query_chars in configs/sim if this is intended)"
        )
    return stripped


class QueryRenderer:
    """Seeded-by-argument text rendering of intents; holds the lexicon weights."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or load_sim_config()
        lex = self.config.lexicon or {}
        self.openers: dict[str, float] = lex.get("openers") or _FALLBACK_OPENERS
        self.budget = {v["template"]: v["count"] for v in (lex.get("budget_phrasings") or {}).values()}
        self.budget = self.budget or {"under ${x}": 1}
        self.colour = {v["template"]: v["count"] for v in (lex.get("colour_phrasings") or {}).values()}
        self.colour = self.colour or {"in {x}": 1}
        neg = {k: v["count"] for k, v in (lex.get("negation_phrasings") or {}).items()}
        mean = max(1.0, float(np.mean([neg.get(k, 0) for k in ("no_x", "not_x", "without_x")] or [1])))
        self.negation = {t: float(neg.get(k, mean)) if k else mean for t, k in _BRAND_NEGATIONS.items()}
        self.knowledge = self.config.knowledge

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _weighted(rng: np.random.Generator, table: dict[str, float]) -> str:
        return weighted_choice(rng, table)

    def opener(self, rng: np.random.Generator) -> str:
        return self._weighted(rng, self.openers)

    def _budget(self, rng: np.random.Generator, budget: float) -> str:
        return self._weighted(rng, self.budget).replace("{x}", f"{budget:g}")

    def _size(self, rng: np.random.Generator, lo: float | None, hi: float | None) -> str:
        if lo is not None and hi is not None:
            return str(rng.choice([f"between {lo:g} and {hi:g} inches", f"{lo:g}-{hi:g} inch"]))
        if lo is not None:
            return f"at least {lo:g} inches"
        return f"no bigger than {hi:g} inches"

    def _capacity(self, rng: np.random.Generator, gb: float) -> str:
        size = f"{gb / 1000:g}tb" if gb >= 1000 and gb % 1000 == 0 else f"{gb:g}gb"
        return str(rng.choice([f"with at least {size}", f"{size} or more", f"at least {size} of storage"]))

    def _clauses(self, intent: Intent, rng: np.random.Generator, slots: tuple[str, ...]) -> tuple[str, list[str]]:
        """Pre-noun modifiers and trailing clauses for the stated attribute slots."""
        pre: list[str] = []
        post: list[str] = []
        if "brand" in slots and intent.preferred_brands:
            pre.append(" or ".join(intent.preferred_brands))
        if "colour" in slots and intent.colour:
            tpl = self._weighted(rng, self.colour)
            if rng.random() < 0.4:  # "black mice" as often as "mice in black color"
                pre.append(intent.colour)
            else:
                post.append(tpl.replace("{x}", intent.colour))
        if "capacity" in slots and intent.min_capacity_gb:
            post.append(self._capacity(rng, intent.min_capacity_gb))
        if "size" in slots and (intent.min_size_in is not None or intent.max_size_in is not None):
            post.append(self._size(rng, intent.min_size_in, intent.max_size_in))
        if "connectivity" in slots and intent.connectivity:
            post.append("with " + " and ".join(intent.connectivity))
        if "features" in slots and intent.features:
            post.append(str(rng.choice(["with ", "that has ", "featuring "])) + " and ".join(intent.features))
        if "budget" in slots and intent.budget:
            post.append(self._budget(rng, intent.budget))
        order = rng.permutation(len(post))
        return " ".join(pre), [post[i] for i in order]

    @staticmethod
    def _typos(text: str, rng: np.random.Generator, rate: float, protected: set[str]) -> str:
        if rate <= 0:
            return text
        words = text.split(" ")
        for i, w in enumerate(words):
            if len(w) >= 4 and w.isalpha() and w.lower() not in protected and rng.random() < rate:
                j = int(rng.integers(len(w) - 1))
                words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
        return " ".join(words)

    # ------------------------------------------------------------------ per type
    def _product_request(self, intent: Intent, rng: np.random.Generator, slots: tuple[str, ...]) -> str:
        pre, post = self._clauses(intent, rng, slots)
        noun = f"{pre} {intent.category}".strip()
        return f"{self.opener(rng)} {noun} {' '.join(post)}".strip()

    def render(self, intent: Intent, rng: np.random.Generator) -> str:
        """The shopper's first query text for ``intent`` (varied by ``rng``)."""
        t = intent.query_type
        stated = intent.stated_slots
        if t == "simple":
            pre, _ = self._clauses(intent, rng, stated)
            if rng.random() < self.config.render.p_keyword_simple:
                text = f"{pre} {intent.category}".strip()
            else:
                text = self._product_request(intent, rng, stated)
        elif t == "multi_constraint":
            text = self._product_request(intent, rng, stated)
        elif t == "negation":
            text = self._product_request(intent, rng, tuple(s for s in stated if s != "brand"))
            neg = self._weighted(rng, self.negation)
            text = f"{text} {neg.replace('{x}', ' or '.join(intent.excluded_brands))}"
        elif t == "ambiguous":
            tpl = str(rng.choice(_VAGUE))
            text = tpl.format(opener=self.opener(rng), department=intent.department or "the home")
        elif t == "reasoning":
            rule: dict[str, Any] = next(
                (r for r in self.knowledge.get("reasoning", []) if r.get("use_case") == intent.use_case), {}
            )
            phrase = str(rng.choice(rule.get("phrasings") or [f"for {intent.use_case}"]))
            tpl = str(rng.choice(_REASONING))
            if phrase.startswith(("a ", "something")):
                tpl = "{opener} {phrase_raw}"
            text = tpl.format(opener=self.opener(rng), phrase=phrase, phrase_raw=phrase)
        elif t == "product_qa":
            text = str(rng.choice(_QA[intent.qa_field or "price"])).format(p=intent.target_names[0])
        elif t == "comparison":
            names = list(intent.target_names)
            a = ", ".join(names[:-1])
            text = str(rng.choice(_COMPARE)).format(a=a, b=names[-1])
        else:  # general_qa
            text = self._general_question(intent, rng)
        protected = {w.lower() for v in intent.constraints().values() for w in str(v).replace("'", " ").split()}
        protected |= {w.lower() for n in intent.target_names for w in n.split()}
        protected |= set(intent.category.lower().split())
        text = self._typos(" ".join(text.split()), rng, intent.typo_rate, protected)
        if rng.random() >= self.config.render.p_lowercase:
            text = text[0].upper() + text[1:]
        return validate_query_text(text, self.config.render.max_query_chars)

    def _general_question(self, intent: Intent, rng: np.random.Generator) -> str:
        if intent.qa_topic == "price_statistics":
            stats = self.knowledge.get("price_statistics", {})
            qs = stats.get("questions") or ["how much does {category} usually cost?"]
            return str(rng.choice(qs)).format(category=intent.category)
        topic = next((t for t in self.knowledge.get("general_qa", []) if t.get("topic") == intent.qa_topic), None)
        if topic is None:
            raise QueryTextError(f"general_qa topic {intent.qa_topic!r} is not in the knowledge table")
        return str(rng.choice(topic["questions"]))


_DEFAULT: QueryRenderer | None = None


def render_query(intent: Intent, rng: np.random.Generator, config: SimConfig | None = None) -> str:
    """Render ``intent`` as query text; uses the default config unless one is given."""
    global _DEFAULT
    if config is not None:
        return QueryRenderer(config).render(intent, rng)
    if _DEFAULT is None:
        _DEFAULT = QueryRenderer()
    return _DEFAULT.render(intent, rng)
