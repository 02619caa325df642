"""Mine phrasing patterns of real shopping requests into ``configs/sim/lexicon.yaml``.

Query rendering should sound like people, not like one template. Instead of copying real
instructions, this counts *lexical patterns* in them: how requests open ("i am looking for"),
how colours, sizes, negations and budgets are phrased, and how often people type bare keywords.
The counts become sampling weights for ``rl_shop.sim.render``.

Sources (see docs/simulator.md): WebShop human goals and goal->query map (MIT) for openers,
attribute, negation and keyword-style patterns; the ESCI-S constraint queries (Apache-2.0) for
budget phrasings, which the WebShop goals lack. Build-time only: run
``python -m rl_shop.sim.lexicon`` to regenerate; the simulator reads the YAML.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

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
    header = (
        "# GENERATED by `python -m rl_shop.sim.lexicon` - do not edit by hand.\n"
        "# Counts of phrasing patterns in WebShop human goals + goal->query map (MIT,\n"
        "# princeton-nlp/WebShop) and ESCI-S constraint queries (Apache-2.0,\n"
        "# emadsidd/Conversational-Search-Query-Benchmark-Based-on-ESCI-S). Templates are\n"
        "# written by us; only the weights are learned.\n"
    )
    out_path.write_text(header + yaml.safe_dump(lexicon, sort_keys=False), encoding="utf-8")
    return out_path


if __name__ == "__main__":
    print(f"wrote {write_lexicon()}")
