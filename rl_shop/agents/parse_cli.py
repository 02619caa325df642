"""``rl-shop parse``: what the open-world query understanding reads in each query, as JSON lines.

    rl-shop parse "laptop under \\$500, not apple" "sulfate free shampoo"
    cat queries.txt | rl-shop parse          # one query per line on stdin

The debugging tool for the front end and the stable contract of the real-language evaluation:
one JSON object per query with ``query_type``, ``product_type``, ``in_catalog``, ``budget_max``,
``exclusions``, ``attributes``, ``contradictions`` (and the catalog categories it maps to). It reads
exactly as the runtime does: the catalog and the search index's product embeddings (the product type
is read by meaning too; a first run builds the index, minutes on 2 cores, then it is cached), never
the LLM. ``--lexical-only`` skips the index (catalog only, about 5 s) and reads by words alone.
"""

from __future__ import annotations

import argparse
import json
import sys

from rl_shop.commands import Command

MAX_CHARS = 2000


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("queries", nargs="*", help="queries to parse (none: read one per line from stdin)")
    p.add_argument("--full", action="store_true", help="print every field, defaults included")
    p.add_argument(
        "--lexical-only",
        action="store_true",
        help="read the product type by the catalog's words alone (no search index; faster, less accurate)",
    )


def _run(args: argparse.Namespace) -> int:
    from rl_shop.agents.understanding import Understander
    from rl_shop.catalog import load_catalog
    from rl_shop.catalog.errors import CatalogError

    queries = list(args.queries) if args.queries else [line.rstrip("\n") for line in sys.stdin]
    queries = [q for q in queries if q.strip()]
    if not queries:
        print(
            "rl-shop parse: error: no query given; pass queries as arguments or one per line on stdin", file=sys.stderr
        )
        return 2
    try:
        catalog = load_catalog()
        index = None
        if not args.lexical_only:
            from rl_shop.catalog.index import HybridIndex

            index = HybridIndex.load_or_build(catalog)
        understander = Understander.from_catalog(catalog, index=index)
    except (CatalogError, FileNotFoundError) as exc:
        print(f"rl-shop parse: error: {exc}", file=sys.stderr)
        return 1
    for q in queries:
        if len(q) > MAX_CHARS:
            print(
                json.dumps({"query": q[:80] + "...", "error": f"query longer than {MAX_CHARS} characters; shorten it"})
            )
            continue
        out = understander.parse(q).model_dump()
        keep = (
            "query",
            "query_type",
            "product_type",
            "in_catalog",
            "budget_max",
            "exclusions",
            "attributes",
            "contradictions",
        )
        print(
            json.dumps(
                out
                if args.full
                else {k: out[k] for k in keep}
                | {k: v for k, v in out.items() if k not in keep and v not in (None, [], {}, False, 0.0)}
            )
        )
    return 0


COMMANDS = (Command("parse", "print what the query understanding reads in each query (JSON lines)", _args, _run),)
