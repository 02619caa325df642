"""Fine-tuning data for the LLM's reading of shopping requests (issue 14, item 4): training sides only.

    python experiments/build_parser_sft.py                  # -> results/llm_parser/sft.jsonl
    python experiments/sft.py data=results/llm_parser/sft.jsonl out_dir=results/llm_parser/sft \\
        max_length=256 max_steps=0 epochs=2 batch_size=8 learning_rate=1e-3 lora.r=16 lora.alpha=32 \\
        completion_only=true
    python experiments/convert_adapter.py results/llm_parser/sft/adapter  # -> adapter.gguf for llama.cpp
    python experiments/eval_llm_parser.py --adapter results/llm_parser/sft/adapter

Rows (prompt = :func:`rl_shop.agents.understanding.llm_reading.reading_messages`, answer =
:func:`target_reading` written exactly as the grammar-constrained decoder writes JSON,
:func:`rl_shop.llm.structured.grammar_json`; the loss covers the answer only, ``completion_only``):

* every hand-labelled request of real_v1 **dev** (test is never read here);
* the same requests with WebShop's own price suffix (", and price lower than X dollars", the
  benchmark's rule gold) when the label has no budget: budgets are rare in the labels;
* the generated benchmark's shopping requests at positions 50-99 of each type (the evaluation
  slices so far take at most the first 25 per type), gold from the simulator's intent, only for
  the slots the request states.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from rl_shop.agents.understanding.llm_reading import LLMReading, reading_messages, target_reading
from rl_shop.evaluation.real_benchmark import load_real_benchmark
from rl_shop.llm.structured import grammar_json
from rl_shop.paths import REPO_ROOT
from rl_shop.research.sft_data import write_sft_jsonl
from rl_shop.sim.benchmark import DEFAULT_BENCHMARK

ECCD_TYPES = ("simple", "multi_constraint", "negation", "reasoning", "ambiguous")
ECCD_POSITIONS = range(50, 100)  # per type; evaluation slices use the first <= 25


def record(rid: str, query: str, answer: LLMReading, source: str) -> dict:
    messages = reading_messages(query) + [{"role": "assistant", "content": grammar_json(answer)}]
    return {"id": rid, "messages": messages, "tools": [], "meta": {"source": source}}


def real_rows() -> list[dict]:
    out = []
    for r in load_real_benchmark(split="dev"):
        lab = r.get("labels")
        if not lab or not lab.get("shopping", True):
            continue
        target = target_reading(lab)
        out.append(record(r["id"], r["query"], target, "real_v1_dev"))
        variant = (r.get("rule_gold") or {}).get("webshop_price_variant")
        if variant and target.budget_max is None:
            priced = target.model_copy(update={"budget_max": float(variant["budget_max"])})
            out.append(record(r["id"] + "-price", variant["query"], priced, "real_v1_dev_price_suffix"))
    return out


def eccd_rows(path: Path = DEFAULT_BENCHMARK) -> list[dict]:
    by_type: dict[str, list[dict]] = defaultdict(list)
    for line in path.read_text().splitlines():
        item = json.loads(line)
        by_type[item["query_type"]].append(item)
    out = []
    for qt in ECCD_TYPES:
        for item in [by_type[qt][i] for i in ECCD_POSITIONS if i < len(by_type[qt])]:
            it, said = item["intent"], set(item["intent"].get("stated_slots") or [])
            cat = it.get("category") if "category" in said else None
            answer = LLMReading(
                product_type=cat,
                category=cat,
                budget_max=it.get("budget") if "budget" in said else None,
                exclusions=list(it.get("excluded_brands") or [])[:3] if "brand" in said else [],
            )
            out.append(record(item["id"], item["query"], answer, "eccd_v1_train_side"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO_ROOT / "results" / "llm_parser" / "sft.jsonl"))
    args = ap.parse_args(argv)
    rows = real_rows() + eccd_rows()
    n = write_sft_jsonl(rows, args.out)
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        counts[r["meta"]["source"]] += 1
    print(json.dumps({"rows": n, **counts, "out": args.out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
