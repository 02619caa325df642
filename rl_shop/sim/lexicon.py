"""Mine phrasing patterns of real shopping requests into ``configs/sim/lexicon.yaml``.

Query rendering should sound like people, not like one template. Instead of copying real
instructions, this counts *lexical patterns* in them: how requests open ("i am looking for"),
how colours, sizes, negations and budgets are phrased, and how often people type bare keywords.
The counts become sampling weights for ``rl_shop.sim.render``.

Sources (see docs/simulator.md): WebShop human goals and goal->query map (MIT) for openers,
attribute, negation and keyword-style patterns; the ESCI-S constraint queries (Apache-2.0) for
budget phrasings, which the WebShop goals lack; for how people *answer* a clarifying question,
the answers of Qulac (MIT) and ClariQ (single- and multi-turn) and the shopper replies of
MG-ShopDial that follow an assistant's clarify / elicit turn (``mine_answers``). Build-time only:
run ``python -m rl_shop.sim.lexicon`` to regenerate; the simulator reads the YAML.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

_DETERMINERS = {"a", "an", "some", "the"}
_OPENER_VERBS = {"looking", "need", "want", "like", "find", "get", "buy", "searching", "show"}

# pattern name -> (regex, template with {x} as the slot value)
COLOUR_PATTERNS: dict[str, tuple[str, str]] = {
    "in_x_color": (r"\bin (?:the )?\w+ colou?r\b", "in {x} color"),
    "in_color_x": (r"\bin (?:the )?colou?r:? \w+", "in the color {x}"),
    "x_colored": (r"\b\w+[- ]colou?red\b", "{x} colored"),
    "color_x": (r"(?<!in )(?<!the )\bcolou?r:? (?!and)\w+", "color {x}"),
}
NEGATION_PATTERNS: dict[str, tuple[str, str]] = {
    "without_x": (r"\bwithout\b", "without {x}"),
    "no_x": (r"\bno\b", "no {x}"),
    "not_x": (r"\bnot\b", "not {x}"),
    "x_free": (r"\b\w+[- ]free\b", "{x}-free"),
}
SIZE_PATTERNS: dict[str, tuple[str, str]] = {
    "in_size_x": (r"\bin (?:a )?size\b", "in size {x}"),
    "size_x": (r"(?<!in )\bsize:? \w+", "size {x}"),
    "x_inch": (r"\b\d+(?:\.\d+)?[- ]?(?:inch|in\b|\")", "{x} inch"),
}
BUDGET_PATTERNS: dict[str, tuple[str, str]] = {
    "under": (r"(?<!priced )(?<!for )\bunder \$", "under ${x}"),
    "less_than": (r"\bless than \$", "for less than ${x}"),
    "priced_under": (r"\bpriced (?:under|below) \$", "priced under ${x}"),
    "for_under": (r"\bfor under \$", "for under ${x}"),
    "not_more_than": (r"\b(?:not|n't) cost more than \$", "that doesn't cost more than ${x}"),
    "below": (r"(?<!priced )\bbelow \$", "below ${x}"),
    "max_price": (r"\bmaximum price\b", "with a maximum price of ${x}"),
}


# How a reply to a clarifying question opens before its value ("i would like ...", "just ...").
# A leading yes / no / ok is not part of the lead-in: a slot question is not a yes-no question.
_ANSWER_ACK = r"(?:(?:yes|yeah|yep|no|nope|ok|okay|sure|hmm+|well)\b[ ,]*)*"
_ANSWER_LEAD = re.compile(
    "^" + _ANSWER_ACK + r"(i am looking for|im looking for|i want|i need|i would like|id like|i would prefer|"
    r"i prefer|looking for|preferably|just|only|i am interested in|im interested in|something)\b"
)
_DONT_KNOW = re.compile(r"\b(?:not sure|dont know|no idea|unsure|not certain|no clue)\b")
# A question asking for a preference: the replies that carry "no preference" answer these.
_PREFERENCE_QUESTION = re.compile(r"\b(?:any|specific|particular|prefer\w*|in mind|budget|price range)\b")
# Words a reply that states no preference is made of ("no", "not really", "any is fine").
_NO_PREFERENCE_WORDS = frozenset(
    [
        "no",
        "not",
        "really",
        "nope",
        "nah",
        "none",
        "any",
        "anything",
        "is",
        "fine",
        "doesnt",
        "matter",
        "i",
        "dont",
        "mind",
        "care",
        "preference",
        "particular",
        "specific",
        "in",
        "mind",
        "exactly",
        "all",
        "whatever",
        "either",
        "will",
        "do",
        "thanks",
    ]
)
# Words a reply that says "I don't know" is made of ("i dont know yet", "im not sure").
_DONT_KNOW_WORDS = frozenset(
    [
        "i",
        "im",
        "am",
        "dont",
        "do",
        "not",
        "know",
        "sure",
        "unsure",
        "certain",
        "no",
        "idea",
        "clue",
        "have",
        "yet",
        "really",
        "honestly",
    ]
)
_MONEY = re.compile(r"(?:\$\s*\d[\d,]*(?:\.\d+)?|\d[\d,]*(?:\.\d+)?\s*(?:\$|dollars?|bucks|usd))")
_BUDGET_QUESTION = re.compile(r"\b(?:budget|price|spend|cost|afford)\b", re.I)


def _norm_answer(text: str) -> str:
    """Lower-case words of a reply, apostrophes dropped ("I'm" -> "im"), punctuation as spaces."""
    return " ".join(re.sub(r"[^a-z0-9$ ]", " ", text.lower().replace("'", "").replace("\u2019", "")).split())


def mine_answers(pairs: list[tuple[str, str]], min_count: int = 2, max_words: int = 5) -> dict[str, Any]:
    """Count how people answer clarifying questions: (question, answer) pairs -> phrasing tables.

    * ``lead_ins``: how a reply that gives a value opens, after any yes / no ("i would like",
      "just"; "" for a bare value);
    * ``dont_know`` / ``no_preference``: whole short replies (at most ``max_words`` words) that
      say so, made only of the words such replies are made of ("i dont know yet", "not really");
      a no-preference reply also answers a preference question ("any particular brand?");
    * ``budget_frames``: replies to a budget question with the amount cut out ("{x} max",
      "my budget would be {x}"), where ``{x}`` stands for "$15" / "15 dollars".

    Phrasings seen fewer than ``min_count`` times are dropped, as for the openers.
    """
    lead: Counter[str] = Counter()
    dont_know: Counter[str] = Counter()
    no_pref: Counter[str] = Counter()
    budget: Counter[str] = Counter()
    for question, answer in pairs:
        a = _norm_answer(answer)
        if not a:
            continue
        words = a.split()
        if _DONT_KNOW.search(a):
            if len(words) <= max_words and set(words) <= _DONT_KNOW_WORDS:
                dont_know[a] += 1
            continue
        if _PREFERENCE_QUESTION.search(question.lower()) and set(words) <= _NO_PREFERENCE_WORDS:
            if len(words) <= max_words:
                no_pref[a] += 1
            continue
        if _BUDGET_QUESTION.search(question):
            money = _MONEY.search(answer.lower())
            if money and len(words) <= 12:
                frame = _norm_answer(answer.lower()[: money.start()] + " XAMOUNTX " + answer.lower()[money.end() :])
                budget[frame.replace("xamountx", "{x}")] += 1
                continue
        m = _ANSWER_LEAD.match(a)
        lead[m.group(1) if m else ""] += 1
    keep = lambda c: {k: v for k, v in c.most_common() if v >= min_count}  # noqa: E731
    return {
        "n_pairs": len(pairs),
        "lead_ins": keep(lead),
        "dont_know": keep(dont_know),
        "no_preference": keep(no_pref),
        "budget_frames": dict(budget.most_common()),  # rare by nature (MG-ShopDial only): all kept
    }


def answer_pairs(data_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """(question, answer) pairs per source from the shared clarification and dialogue data."""
    import csv

    clar, dial = data_dir / "clarification", data_dir / "dialogues" / "MGShopDial.json"
    for p in (
        clar / "qulac.json",
        clar / "train.tsv",
        clar / "dev.tsv",
        clar / "multi_turn_human_generated_data.tsv",
        dial,
    ):
        if not p.is_file():
            raise FileNotFoundError(f"answer-phrasing source {p} not found; is the shared data mounted?")
    qulac = json.loads((clar / "qulac.json").read_text())
    out: dict[str, list[tuple[str, str]]] = {
        "qulac": [(qulac["question"][k], qulac["answer"][k]) for k in qulac["question"]],
        "clariq": [],
        "mgshopdial": [],
    }
    for name in ("train.tsv", "dev.tsv"):
        with open(clar / name, newline="", encoding="utf-8") as f:
            out["clariq"] += [
                (r["question"], r["answer"]) for r in csv.DictReader(f, delimiter="\t") if r.get("answer")
            ]
    with open(clar / "multi_turn_human_generated_data.tsv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            out["clariq"] += [(r[f"question{i}"], r[f"answer{i}"]) for i in (1, 2, 3) if r.get(f"answer{i}")]
    for dialogue in json.loads(dial.read_text()):
        turns = dialogue["utterances"]
        for ask, reply in zip(turns, turns[1:]):
            asks = any(name in ("clarify", "elicit") for name, _ in ask["intents"])
            if ask["participant"] == "Wizard" and reply["participant"] == "Client" and asks:
                out["mgshopdial"].append((ask["utterance"], reply["utterance"]))
    return out


def weighted_choice(rng: np.random.Generator, table: Mapping[str, float]) -> str:
    """A key of ``table`` drawn with probability proportional to its count + 1 (+1: a phrasing
    with a zero count still appears now and then)."""
    keys = list(table)
    w = np.array([max(float(table[k]), 0.0) + 1.0 for k in keys])
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


def _count(texts: list[str], patterns: dict[str, tuple[str, str]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, (regex, template) in patterns.items():
        compiled = re.compile(regex)
        n = sum(1 for t in texts if compiled.search(t))
        out[name] = {"template": template, "count": n}
    return out


def mine_openers(goals: list[str], min_count: int = 5, top: int = 20) -> dict[str, int]:
    """Count request openers: the words before the first determiner, if they hold a verb.

    "i am looking for a usb cable" -> "i am looking for". Openers rarer than ``min_count`` are
    dropped, so one-off phrasings (and any single person's wording) never become templates.
    """
    counts: Counter[str] = Counter()
    for goal in goals:
        tokens = goal.lower().replace("'", "").split()[:7]
        for i, tok in enumerate(tokens):
            if tok in _DETERMINERS:
                head = tokens[:i]
                if 1 <= len(head) <= 5 and _OPENER_VERBS & set(head):
                    counts[" ".join(head)] += 1
                break
    return {k: v for k, v in counts.most_common(top) if v >= min_count}


def keyword_style_share(query_map: dict[str, list[str]]) -> float:
    """Share of typed search queries that are bare keywords (no opener verb, no question)."""
    typed = [q.lower() for qs in query_map.values() for q in qs]
    if not typed:
        return 0.0
    bare = sum(1 for q in typed if not (_OPENER_VERBS & set(q.split())) and "?" not in q)
    return round(bare / len(typed), 4)


def mine_lexicon(goals: list[str], query_map: dict[str, list[str]], constraint_queries: list[str]) -> dict[str, Any]:
    """All lexical statistics as one YAML-ready mapping (counts, not copied sentences)."""
    goals_l = [g.lower() for g in goals]
    cq = [q.lower() for q in constraint_queries]
    return {
        "n_goals": len(goals),
        "n_typed_queries": sum(len(v) for v in query_map.values()),
        "n_constraint_queries": len(cq),
        "openers": mine_openers(goals_l),
        "keyword_query_share": keyword_style_share(query_map),
        "lowercase_share": round(sum(1 for q in constraint_queries if q == q.lower()) / max(1, len(cq)), 4),
        "colour_phrasings": _count(goals_l, COLOUR_PATTERNS),
        "size_phrasings": _count(goals_l, SIZE_PATTERNS),
        "negation_phrasings": _count(goals_l, NEGATION_PATTERNS),
        "budget_phrasings": _count(cq, BUDGET_PATTERNS),
        "mention_rates": {
            "colour": round(sum("color" in g or "colour" in g for g in goals_l) / max(1, len(goals)), 4),
            "size": round(sum("size" in g for g in goals_l) / max(1, len(goals)), 4),
            "negation": round(
                sum(bool(re.search(r"\b(without|no|not)\b|-free\b| free\b", g)) for g in goals_l) / max(1, len(goals)),
                4,
            ),
        },
    }


def write_lexicon(out_path: Path | None = None, data_dir: Path | None = None) -> Path:
    """Read the shared real data (build time only) and write the lexicon YAML."""
    import pandas as pd

    from rl_shop.paths import CONFIG_DIR, SHARED_DATA_DIR

    data_dir = data_dir or SHARED_DATA_DIR
    out_path = out_path or CONFIG_DIR / "sim" / "lexicon.yaml"
    goals_path = data_dir / "intents" / "webshop_human_goals.json"
    map_path = data_dir / "intents" / "webshop_goal_query_map.json"
    esci_path = data_dir / "relevance" / "emadsidd_queries_cell_phones_accessories.csv"
    for p in (goals_path, map_path, esci_path):
        if not p.is_file():
            raise FileNotFoundError(f"lexicon source {p} not found; is the shared data mounted?")
    goals = json.loads(goals_path.read_text())
    query_map = json.loads(map_path.read_text())
    cq = pd.read_csv(esci_path).drop_duplicates("query_id")["query"].astype(str).tolist()
    lexicon = mine_lexicon(goals, query_map, cq)
    sources = answer_pairs(data_dir)
    lexicon["answers"] = {
        "pairs_by_source": {k: len(v) for k, v in sources.items()},
        **mine_answers([p for pairs in sources.values() for p in pairs]),
    }
    header = (
        "# GENERATED by `python -m rl_shop.sim.lexicon` - do not edit by hand.\n"
        "# Counts of phrasing patterns in WebShop human goals + goal->query map (MIT,\n"
        "# princeton-nlp/WebShop) and ESCI-S constraint queries (Apache-2.0,\n"
        "# emadsidd/Conversational-Search-Query-Benchmark-Based-on-ESCI-S). Templates are\n"
        "# written by us; only the weights are learned. `answers`: short reply phrasings\n"
        "# and their counts from Qulac (MIT, aliannejadi/qulac), ClariQ (aliannejadi/ClariQ)\n"
        "# and MG-ShopDial (iai-group/MG-ShopDial) replies to clarifying questions.\n"
    )
    out_path.write_text(header + yaml.safe_dump(lexicon, sort_keys=False), encoding="utf-8")
    return out_path


if __name__ == "__main__":
    print(f"wrote {write_lexicon()}")
