"""Build the WebSearch Agent's local document corpus: data/web_corpus/documents.jsonl.

Why: the project runs offline, so the WebSearch Agent (MACDF 3.6) searches a corpus the repository
ships. Every document is derived from the project's own data, with attribution:

* ``catalog_guide``: one buying guide per catalog category (price quartiles, common brands,
  connectivity / feature shares, capacity and size ranges), computed from data/catalog.parquet;
* ``catalog_attribute``: one explanation per attribute value of the catalog vocabulary (what
  sellers call it, how many products and which categories have it, typical prices);
* ``qulac``: one document per Qulac topic (MIT): its facets and human clarifying Q/A pairs;
* ``mimics``: one document per MIMICS-Manual query (MIT): the refinement options Bing offered.

ClariQ has no licence in its repository, so nothing from it is shipped.

Usage:  .venv/bin/python experiments/build_web_corpus.py [--out data/web_corpus] [--shared PATH]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from rl_shop.agents.config import load_agent_config
from rl_shop.agents.types import WebDocument
from rl_shop.agents.websearch.corpus import write_corpus
from rl_shop.paths import DATA_DIR, SHARED_DATA_DIR

LICENCES = {
    "catalog_guide": "derived statistics of data/catalog.parquet (see DATA_SOURCES.md for its sources)",
    "catalog_attribute": "derived statistics of data/catalog.parquet and rl_shop.catalog.vocab",
    "qulac": "MIT, aliannejadi/qulac @89d1562 (qulac.json)",
    "mimics": "MIT, microsoft/MIMICS @6450e81 (MIMICS-Manual.tsv)",
}


def slug(text: str) -> str:
    """URL-safe lower-case slug."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def load_products(shared: Path) -> pd.DataFrame:
    """The shipped catalog; when it has not been built yet, build it in memory from the shared data."""
    from rl_shop.catalog import CatalogError, load_catalog

    try:
        return load_catalog()
    except CatalogError as exc:
        print(f"[build_web_corpus] {exc}; building the catalog in memory from {shared}", file=sys.stderr)
        from rl_shop.catalog.build import build_catalog

        frame, _ = build_catalog(shared)
        return frame


def _money(x: float) -> str:
    return f"${x:,.2f}"


def _share(counter: Counter[str], n: int, top: int) -> str:
    return ", ".join(f"{k} ({v / n:.0%})" for k, v in counter.most_common(top))


def catalog_guides(products: pd.DataFrame, published: date, min_products: int, max_brands: int) -> list[WebDocument]:
    """One buying guide per category with at least ``min_products`` products."""
    docs = []
    for category, group in sorted(products.groupby("category"), key=lambda kv: str(kv[0])):
        if not category or len(group) < min_products:
            continue
        n = len(group)
        path = str(group["category_path"].iloc[0]) if "category_path" in group else category
        sentences = [f"Buying guide for {category} ({path}). The catalog lists {n} {category} products."]
        prices = group["price"].dropna()
        prices = prices[prices > 0]
        if len(prices) >= 3:
            q1, med, q3 = prices.quantile([0.25, 0.5, 0.75])
            sentences.append(
                f"{category.capitalize()} prices range from {_money(prices.min())} to {_money(prices.max())}; "
                f"the median price is {_money(med)} and half of them cost between {_money(q1)} and {_money(q3)}."
            )
            sentences.append(f"Budget {category} cost under {_money(q1)}, while premium models cost over {_money(q3)}.")
        brands = Counter(b for b in group["brand"] if b)
        if brands:
            listed = ", ".join(f"{b} ({c} product{'s' if c != 1 else ''})" for b, c in brands.most_common(max_brands))
            sentences.append(f"Common {category} brands are {listed}.")
            per_brand = group[group["brand"].isin([b for b, _ in brands.most_common(max_brands)])]
            med_brand = per_brand.dropna(subset=["price"]).groupby("brand")["price"].median().sort_values()
            if len(med_brand) >= 2:
                sentences.append(
                    f"Among them, {med_brand.index[0]} is the cheapest brand (median "
                    f"{_money(med_brand.iloc[0])}) and {med_brand.index[-1]} the most expensive "
                    f"(median {_money(med_brand.iloc[-1])})."
                )
        conn = Counter(c for values in group["connectivity"] for c in values)
        if conn:
            sentences.append(f"Connectivity of {category} (share of products): {_share(conn, n, 5)}.")
        feats = Counter(f for values in group["features"] for f in values)
        if feats:
            sentences.append(f"Frequent {category} features (share of products): {_share(feats, n, 6)}.")
        colours = Counter(c for c in group["colour"] if c)
        if colours:
            sentences.append(f"Popular colours (share of products): {_share(colours, n, 4)}.")
        for col, unit, name in (("capacity_gb", "GB", "storage capacity"), ("size_in", "inch", "size")):
            values = group[col].dropna()
            if len(values) >= 3:
                sentences.append(
                    f"Typical {name} of {category} is {values.median():g} {unit} "
                    f"(from {values.min():g} to {values.max():g} {unit})."
                )
        docs.append(
            WebDocument(
                url=f"rl-shop://guides/{slug(category)}",
                title=f"{category.capitalize()} buying guide",
                text=" ".join(sentences),
                source="catalog_guide",
                authority=0.8,
                published=published,
            )
        )
    return docs


def attribute_docs(products: pd.DataFrame, published: date) -> list[WebDocument]:
    """One explanation per connectivity / feature value that some products carry."""
    from rl_shop.catalog.vocab import CONNECTIVITY_SYNONYMS, FEATURE_SYNONYMS

    docs = []
    for kind, table, column in (
        ("connectivity", CONNECTIVITY_SYNONYMS, "connectivity"),
        ("feature", FEATURE_SYNONYMS, "features"),
    ):
        for value, phrases in table.items():
            mask = products[column].map(lambda vs, v=value: v in vs)
            group = products[mask]
            if group.empty:
                continue
            plain = [p for p in phrases if not re.search(r"[\\\[\](){}?*+|^$]", p) and p != value]
            cats = Counter(group["category"]).most_common(5)
            sentences = [f"What does {value} mean in product listings? It is a {kind} attribute."]
            if plain:
                sentences.append(f"Sellers also write it as {', '.join(repr(p) for p in plain[:6])}.")
            sentences.append(
                f"{len(group)} products in the catalog list {value}; it is most common in "
                + ", ".join(f"{c} ({k})" for c, k in cats)
                + "."
            )
            prices = group["price"].dropna()
            if len(prices) >= 3:
                sentences.append(f"Products with {value} have a median price of {_money(prices.median())}.")
            brands = Counter(b for b in group["brand"] if b).most_common(5)
            if brands:
                sentences.append(f"Brands offering {value}: {', '.join(b for b, _ in brands)}.")
            docs.append(
                WebDocument(
                    url=f"rl-shop://attributes/{kind}/{slug(value)}",
                    title=f"{value} ({kind}) explained",
                    text=" ".join(sentences),
                    source="catalog_attribute",
                    authority=0.8,
                    published=published,
                )
            )
    return docs


def _clean(text: Any) -> str:
    return " ".join(str(text).replace("\\'", "'").replace('\\"', '"').split())


def qulac_docs(path: Path, published: date, max_topics: int) -> list[WebDocument]:
    """One document per Qulac topic: description, facets and clarifying question / answer pairs."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    rows = defaultdict(dict)
    for column, values in raw.items():
        for idx, value in values.items():
            rows[idx][column] = value
    by_topic: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows.values():
        by_topic[int(row["topic_id"])].append(row)
    docs = []
    for topic_id in sorted(by_topic)[:max_topics]:
        items = by_topic[topic_id]
        topic = _clean(items[0]["topic"])
        facets = sorted({_clean(r["facet_desc"]) for r in items})
        qa = []
        seen: set[str] = set()
        for r in sorted(items, key=lambda r: str(r["topic_facet_question_id"])):
            q = _clean(r["question"])
            if q and q not in seen:
                seen.add(q)
                qa.append(f"{q}? {_clean(r['answer'])}.")
        text = (
            f"Searches for {topic}: {_clean(items[0]['topic_desc'])} Aspects people look for: "
            + " ".join(f"{f}" for f in facets[:8])
            + " Clarifying questions and answers: "
            + " ".join(qa[:6])
        )
        docs.append(
            WebDocument(
                url=f"https://github.com/aliannejadi/qulac#topic-{topic_id}",
                title=f"{topic} - facets and clarifications",
                text=text,
                source="qulac",
                authority=0.5,
                published=published,
            )
        )
    return docs


def mimics_docs(path: Path, published: date, max_queries: int, min_label: int) -> list[WebDocument]:
    """One document per MIMICS-Manual query: the refinement options of its clarification panes."""
    options: dict[str, list[str]] = defaultdict(list)
    questions: dict[str, set[str]] = defaultdict(set)
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            label = row.get("options_overall_label") or ""
            if not label.strip().isdigit() or int(label) < min_label:
                continue
            query = _clean(row["query"])
            questions[query].add(_clean(row["question"]))
            for i in range(1, 6):
                opt = _clean(row.get(f"option_{i}") or "")
                if opt and opt not in options[query]:
                    options[query].append(opt)
    docs = []
    for query in sorted(options)[:max_queries]:
        text = (
            f"People searching for {query} often refine their search to: {'; '.join(options[query])}. "
            f"Clarifying prompt shown: {' / '.join(sorted(questions[query]))}."
        )
        docs.append(
            WebDocument(
                url=f"https://github.com/microsoft/MIMICS#q={urllib.parse.quote(query)}",
                title=f"{query} - common refinements",
                text=text,
                source="mimics",
                authority=0.4,
                published=published,
            )
        )
    return docs


def build(out_dir: Path, shared: Path) -> dict[str, int]:
    """Build all documents and write ``documents.jsonl`` and ``manifest.json``; returns counts per source."""
    cfg = load_agent_config("websearch")
    build_cfg = cfg.get("build", {})
    authority = cfg.get("authority_by_source", {})
    dates = {k: date.fromisoformat(str(v)) for k, v in build_cfg.get("published", {}).items()}
    missing = {"catalog_guide", "catalog_attribute", "qulac", "mimics"} - set(dates)
    if missing:
        raise SystemExit(f"configs/agents/websearch.yaml build.published lacks dates for {sorted(missing)}")
    clar = shared / "clarification"
    for needed in (clar / "qulac.json", clar / "MIMICS-Manual.tsv"):
        if not needed.is_file():
            raise SystemExit(f"missing input {needed}; pass --shared pointing at the shared data folder")
    products = load_products(shared)
    docs: list[WebDocument] = []
    docs += catalog_guides(
        products,
        dates["catalog_guide"],
        int(build_cfg.get("min_category_products", 5)),
        int(build_cfg.get("max_brands_listed", 8)),
    )
    docs += attribute_docs(products, dates["catalog_attribute"])
    docs += qulac_docs(clar / "qulac.json", dates["qulac"], int(build_cfg.get("max_qulac_topics", 200)))
    docs += mimics_docs(
        clar / "MIMICS-Manual.tsv",
        dates["mimics"],
        int(build_cfg.get("max_mimics_queries", 1500)),
        int(build_cfg.get("min_mimics_label", 1)),
    )
    docs = [d.model_copy(update={"authority": float(authority.get(d.source, d.authority))}) for d in docs]
    n = write_corpus(docs, out_dir / "documents.jsonl")
    counts = dict(sorted(Counter(d.source for d in docs).items()))
    manifest = {
        "documents": n,
        "by_source": counts,
        "licences": LICENCES,
        "built_from": {
            "catalog": "data/catalog.parquet",
            "qulac": "clarification/qulac.json",
            "mimics": "clarification/MIMICS-Manual.tsv",
        },
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return counts


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR / "web_corpus")
    parser.add_argument("--shared", type=Path, default=SHARED_DATA_DIR)
    args = parser.parse_args(list(argv) if argv is not None else None)
    counts = build(args.out, args.shared)
    print(f"wrote {sum(counts.values())} documents to {args.out}/documents.jsonl: {counts}")


if __name__ == "__main__":
    main()
