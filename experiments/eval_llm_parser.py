"""Does the embedded LLM's reading of a request earn its place? Base vs LoRA-tuned vs the rule parser.

    python experiments/eval_llm_parser.py --adapter results/llm_parser/sft/adapter --split test \\
        --out docs/results/llm_parser.json

On the hand-labelled requests of one real_v1 split (test by default: the tuned model trained on
dev, ``experiments/build_parser_sft.py``), in one run:

* ``parser``: the rule reader (``Understander``, with the search index's semantic step), in charge today;
* ``base`` / ``tuned``: the LLM alone (llama.cpp, grammar-constrained :class:`LLMReading`), its raw
  answer scored field by field (budget, exclusions, catalog category as the product type);
* ``parser+base`` / ``parser+tuned``: the parser with the empty slots filled from the LLM's
  grounded values (:func:`fill_gaps`);
* ``parser+tuned veto``: the same, and "not carried" where the tuned model names a grounded
  product type but no store category (out-of-catalog detection is the parser's weakest figure).

Acceptance: the answer is schema-valid, states something, and every value it states passes the
grounding checks (:func:`check_reading`), i.e. the runtime would use it as given. The WebShop
price-suffix variants are not sent to the LLM (459 more calls on test); the parser's figure for
them is in docs/results/understanding.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from rl_shop.agents.understanding import Understander
from rl_shop.agents.understanding.llm_reading import LLMReading, check_reading, fill_gaps, reading_messages
from rl_shop.catalog import load_catalog
from rl_shop.catalog.index import HybridIndex
from rl_shop.evaluation.real_benchmark import Reading, load_real_benchmark, score_reader
from rl_shop.llm import load_llm_config, make_llm

FIELDS = [
    "budget_recall",
    "budget_exact",
    "exclusion_recall",
    "exclusion_precision",
    "product_type_top1",
    "ooc_detected",
    "false_not_carried",
]


def llm_answers(llm, rows: list[dict], categories: list[str], schema_in_prompt: bool) -> dict[str, dict]:
    """query -> {raw, accepted, notes, valid, seconds} for every labelled row."""
    out = {}
    for r in rows:
        t0 = time.perf_counter()
        res = llm.structured(
            reading_messages(r["query"]), LLMReading, max_tokens=80, schema_in_prompt=schema_in_prompt, retries=0
        )
        seconds = time.perf_counter() - t0
        raw = res.value.model_dump() if res.value is not None else None
        accepted, notes = check_reading(res.value, r["query"], categories) if res.value is not None else ({}, [])
        out[r["query"]] = {
            "raw": raw,
            "accepted": accepted,
            "notes": notes,
            "valid": res.value is not None,
            "seconds": round(seconds, 3),
        }
    return out


def acceptance(answers: dict[str, dict]) -> dict[str, float]:
    vals = list(answers.values())
    stated = [a for a in vals if a["valid"] and any(v not in (None, [], "") for v in a["raw"].values())]
    clean = [a for a in stated if not a["notes"]]
    secs = [a["seconds"] for a in vals]
    return {
        "n": len(vals),
        "valid": round(sum(a["valid"] for a in vals) / len(vals), 3),
        "accepted": round(len(clean) / len(vals), 3),
        "some_value_rejected": round(sum(bool(a["notes"]) for a in vals) / len(vals), 3),
        "median_s": round(statistics.median(secs), 3),
        "total_s": round(sum(secs), 1),
    }


def raw_reader(answers: dict[str, dict], categories: set[str]):
    def read(text: str) -> Reading:
        raw = answers[text]["raw"] or {}
        cat = (raw.get("category") or "").strip().lower() or None
        return Reading(
            budget_max=raw.get("budget_max"),
            exclusions=list(raw.get("exclusions") or []),
            category=cat,
            in_catalog=cat in categories,
        )

    return read


def parser_reader(u: Understander, answers: dict[str, dict] | None = None, veto: bool = False):
    """The rule reader, its gaps filled from ``answers``; with ``veto`` also the "not carried"
    verdict when the model names a grounded product type and explicitly no store category (a rule
    fixed before the test run, not fitted: :func:`fill_gaps` alone never overturns "carried")."""

    def read(text: str) -> Reading:
        q = u.parse(text)
        fields = {
            "budget_max": q.budget_max,
            "exclusions": list(q.exclusions),
            "category": q.category,
            "in_catalog": q.in_catalog,
        }
        if answers is not None:
            a = answers[text]
            fields = fill_gaps(fields, a["accepted"])
            if veto and a["valid"] and a["raw"]["category"] is None and "product_type" in a["accepted"]:
                fields["in_catalog"] = False
        return Reading(
            budget_max=fields["budget_max"],
            exclusions=fields["exclusions"],
            category=fields["category"],
            in_catalog=bool(fields["in_catalog"]),
        )

    return read


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", required=True, help="PEFT adapter dir (converted to adapter.gguf if needed)")
    ap.add_argument("--split", default="test", choices=["dev", "test"])
    ap.add_argument("--limit", type=int, default=None, help="first N labelled rows (a quick look)")
    ap.add_argument("--out", default=None, help="write the figures (and per-query answers beside) as JSON")
    args = ap.parse_args(argv)
    adapter = Path(args.adapter)
    gguf = adapter / "adapter.gguf"
    if not gguf.is_file():
        from rl_shop.llm.embedded import ensure_converted
        from rl_shop.llm.lora_gguf import convert_adapter

        convert_adapter(adapter, ensure_converted(), gguf)
    rows = [
        {k: v for k, v in r.items() if k != "rule_gold"}
        for r in load_real_benchmark(split=args.split)
        if r.get("labels")
    ][: args.limit]
    catalog = load_catalog()
    categories = sorted(catalog["category"].astype(str).str.strip().str.lower().unique())
    u = Understander.from_catalog(catalog, index=HybridIndex.load_or_build(catalog))
    llms = {
        "base": (make_llm(load_llm_config("embedded", ["cache.enabled=false"])), True),
        "tuned": (make_llm(load_llm_config("embedded", ["cache.enabled=false", f"lora_path={gguf}"])), False),
    }
    answers = {name: llm_answers(llm, rows, categories, schema) for name, (llm, schema) in llms.items()}
    readers = {
        "parser": parser_reader(u),
        "base": raw_reader(answers["base"], set(categories)),
        "tuned": raw_reader(answers["tuned"], set(categories)),
        "parser+base": parser_reader(u, answers["base"]),
        "parser+tuned": parser_reader(u, answers["tuned"]),
        "parser+tuned veto": parser_reader(u, answers["tuned"], veto=True),
    }
    scores = {name: score_reader(rows, read) for name, read in readers.items()}
    result = {
        "split": args.split,
        "labelled_rows": len(rows),
        "adapter": str(adapter),
        "acceptance": {name: acceptance(a) for name, a in answers.items()},
        "scores": {
            name: {k: s[k] for k in FIELDS + ["budget_n", "exclusion_n", "in_catalog_n", "ooc_n"]}
            for name, s in scores.items()
        },
    }
    head = f"| figure ({args.split}) | " + " | ".join(readers) + " |"
    print(head + "\n|" + "---|" * (len(readers) + 1))
    for f in FIELDS:
        cells = ["n/a" if scores[n][f] is None else f"{scores[n][f]:.3f}" for n in readers]
        print(f"| {f} | " + " | ".join(cells) + " |")
    for name, acc in result["acceptance"].items():
        print(f"{name}: {acc}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
        Path(args.out).with_suffix(".answers.jsonl").write_text(
            "".join(
                json.dumps({"model": m, "query": q, **a}) + "\n" for m, ans in answers.items() for q, a in ans.items()
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
