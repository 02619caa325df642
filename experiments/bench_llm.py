"""Benchmark of the embedded LLM on this machine (configs/bench/llm.yaml).

Measures: model load cold (GGUF de-quantisation) vs from the converted HF cache; decode tokens/s;
time to first token with and without system-prompt KV reuse; and, per structured-output library
(none / xgrammar / outlines / lm-format-enforcer) on 10 fixed schema tasks, the first-try
validity rate and tokens/s. Every figure is printed with its ratio to the same-run reference.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python experiments/bench_llm.py [key=value ...]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import traceback
from enum import Enum
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from pydantic import BaseModel, Field

from rl_shop.llm.embedded import convert_gguf, ensure_converted, find_packaged_gguf
from rl_shop.llm.hf_backend import TransformersLLM, load_hf_model
from rl_shop.llm.structured import as_schema, with_schema_instruction
from rl_shop.paths import CONFIG_DIR


# ------------------------------------------------------------------ the fixed schema tasks
class IntentName(str, Enum):
    buy = "buy"
    compare = "compare"
    ask_info = "ask_info"
    browse = "browse"


class ScoredIntent(BaseModel):
    intent: IntentName
    confidence: float = Field(ge=0, le=1)


class Slots(BaseModel):
    category: str = Field(max_length=30)
    max_price: float | None = None
    brand: str | None = Field(default=None, max_length=20)


class DemandReasoning(BaseModel):
    intents: list[ScoredIntent] = Field(min_length=1, max_length=2)
    slots: Slots


class Clarify(BaseModel):
    question: str = Field(min_length=5, max_length=80)
    slot: str = Field(pattern="^(budget|brand|size|color|usage)$")


class Ranking(BaseModel):
    ranked_ids: list[int] = Field(min_length=3, max_length=3)


class QueryType(BaseModel):
    query_type: str = Field(pattern="^(simple|reasoning|multi_constraint|negation|ambiguous|product_qa|comparison|general_qa)$")


class Satisfaction(BaseModel):
    score: int = Field(ge=1, le=3)
    reason: str = Field(max_length=60)


class Attributes(BaseModel):
    color: str = Field(max_length=15)
    size: str = Field(max_length=10)
    material: str = Field(max_length=15)


class Comparison(BaseModel):
    winner: str = Field(max_length=20)
    pros: list[str] = Field(max_length=2)


class YesNo(BaseModel):
    answer: bool
    explanation: str = Field(max_length=60)


class PriceRange(BaseModel):
    min_price: float = Field(ge=0)
    max_price: float = Field(ge=0)


class Step(BaseModel):
    id: int = Field(ge=1, le=5)
    action: str = Field(pattern="^(search|clarify|compare|answer)$")


class Plan(BaseModel):
    steps: list[Step] = Field(min_length=1, max_length=3)


TASKS: list[tuple[str, type[BaseModel], str]] = [
    ("demand", DemandReasoning, "I want Sony noise cancelling headphones under 200 dollars."),
    ("clarify", Clarify, "I need a new laptop."),
    ("ranking", Ranking, "Rank products 12, 7 and 31 for a student on a budget (12 is cheapest)."),
    ("query_type", QueryType, "Which is better for gaming, the RTX 4060 or the RX 7600?"),
    ("satisfaction", Satisfaction, "The shopper said: 'great, that is exactly what I wanted'."),
    ("attributes", Attributes, "Red cotton t-shirt, size M."),
    ("comparison", Comparison, "Compare the iPhone 15 and the Galaxy S24 for battery life."),
    ("yes_no", YesNo, "Is the Kindle Paperwhite waterproof?"),
    ("price_range", PriceRange, "Show me TVs between 300 and 500 euros."),
    ("plan", Plan, "Find a running shoe for flat feet and compare the top two."),
]
SYSTEM = "You are a shopping assistant. You extract structured information from shopper requests."


def _log(msg: str) -> None:
    print(f"[bench_llm] {msg}", file=sys.stderr, flush=True)


def _row(name: str, value: float, unit: str, ref: float | None) -> str:
    ratio = f"{value / ref:8.2f}x" if ref else "       -"
    return f"| {name:<46} | {value:10.3f} {unit:<7} | {ratio} |"


def main(argv: list[str]) -> int:
    cfg = OmegaConf.merge(OmegaConf.load(Path(CONFIG_DIR) / "bench" / "llm.yaml"), OmegaConf.from_dotlist(argv))
    import torch

    torch.set_num_threads(int(cfg.threads))
    rows: list[str] = []
    notes: list[str] = []

    # ---- load times
    gguf = find_packaged_gguf()
    directory = ensure_converted()
    t0 = time.perf_counter()
    model, tok = load_hf_model(directory)
    warm_load = time.perf_counter() - t0
    cold_load = None
    if cfg.cold_load:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            convert_gguf(gguf, Path(tmp) / "m")
            model2, _ = load_hf_model(Path(tmp) / "m")
            cold_load = time.perf_counter() - t0
            del model2
    rows.append("| load (reference: load from converted HF cache)    |                    |          |")
    rows.append(_row("load converted HF dir", warm_load, "s", warm_load))
    if cold_load is not None:
        rows.append(_row("load cold: GGUF dequantise + save + load", cold_load, "s", warm_load))

    _log(f"load: converted {warm_load:.1f}s, cold {cold_load}")
    base = TransformersLLM(model, tok, model_id="smollm2-135m", structured_library="none", cache=None)

    # ---- throughput
    prompts = ["Recommend a laptop for a student.", "What should I look for in running shoes?",
               "Suggest a gift for a coffee lover.", "Is a 4K monitor worth it for office work?"]
    speeds, ttfts = [], []
    for i in range(int(cfg.throughput.prompts)):
        msgs = [{"role": "user", "content": prompts[i % len(prompts)]}]
        r = base.generate(msgs, max_tokens=int(cfg.throughput.max_tokens), temperature=0.0, seed=cfg.seed,
                          stop=None, json_schema=None)
        speeds.append(r.completion_tokens / r.total_s)
        ttfts.append(r.ttft_s)
    ref_tps = statistics.mean(speeds)
    _log(f"unconstrained {ref_tps:.1f} tok/s")
    rows.append("| decode (reference: unconstrained greedy tokens/s)  |                    |          |")
    rows.append(_row("unconstrained tokens/s", ref_tps, "tok/s", ref_tps))

    # ---- prefix reuse
    paragraph = ("Our store sells electronics, clothing and home goods. Always respect the shopper's budget, "
                 "never invent products, and ask one clarifying question when the request is vague. ")
    system = paragraph * int(cfg.prefix.system_repeats)
    queries = ["I need headphones.", "Any cheap laptop?", "A gift for my dad?", "Waterproof watch?"]
    n_q = int(cfg.prefix.queries)
    cold = [base.generate([{"role": "system", "content": system}, {"role": "user", "content": queries[i % 4]}],
                          max_tokens=4, temperature=0.0, seed=0, stop=None, json_schema=None,
                          use_prefix_cache=False).ttft_s for i in range(n_q)]
    base.generate([{"role": "system", "content": system}, {"role": "user", "content": "warm up"}],
                  max_tokens=1, temperature=0.0, seed=0, stop=None, json_schema=None)  # fills the prefix cache
    warm = [base.generate([{"role": "system", "content": system}, {"role": "user", "content": queries[i % 4]}],
                          max_tokens=4, temperature=0.0, seed=0, stop=None, json_schema=None).ttft_s
            for i in range(n_q)]
    n_prefix = base.count_tokens([{"role": "system", "content": system}, {"role": "user", "content": "x"}])
    ref_ttft = statistics.mean(cold)
    _log(f"ttft cold {cold} warm {warm}")
    rows.append(f"| TTFT, ~{n_prefix}-token prompt (reference: no reuse)      |                    |          |")
    rows.append(_row("TTFT without prefix reuse", ref_ttft, "s", ref_ttft))
    rows.append(_row("TTFT with system-prompt KV reuse", statistics.mean(warm), "s", ref_ttft))

    # ---- structured output per library
    rows.append("| structured, 10 schema tasks (reference: none = prompt-only, tokens/s) |  |  |")
    tasks = TASKS[: int(cfg.structured.tasks)]
    results: dict[str, dict[str, Any]] = {}
    for lib in cfg.structured.libraries:
        try:
            t0 = time.perf_counter()
            llm = TransformersLLM(model, tok, model_id="smollm2-135m", structured_library=lib, cache=None,
                                  prefix_cache_entries=0)
            _ = llm.constrainer  # index the vocabulary now, so the init cost is reported on its own
            init_s = time.perf_counter() - t0
            valid, toks, secs, failures = 0, 0, 0.0, []
            for name, model_cls, request in tasks:
                spec = as_schema(model_cls)
                msgs = with_schema_instruction([{"role": "system", "content": SYSTEM},
                                                {"role": "user", "content": request}], spec)
                r = llm.generate(msgs, max_tokens=int(cfg.structured.max_tokens), temperature=0.0,
                                 seed=cfg.seed, stop=None, json_schema=None if lib == "none" else spec.json_schema)
                toks += r.completion_tokens
                secs += r.total_s
                try:
                    spec.validate_text(r.text)
                    valid += 1
                except ValueError as exc:
                    failures.append(f"{name}: {str(exc)[:70]}")
            results[lib] = {"valid": valid / len(tasks), "tps": toks / secs, "init": init_s, "fail": failures,
                            "spt": secs / len(tasks), "tpt": toks / len(tasks)}
            _log(f"{lib}: {results[lib]}")
        except Exception as exc:  # a library that cannot run here is itself the measurement
            results[lib] = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
            traceback.print_exc(limit=2)
    ref = results.get("none", {}).get("tps")
    ref_spt = results.get("none", {}).get("spt")
    for lib, res in results.items():
        if "error" in res:
            rows.append(f"| {lib:<46} | FAILED: {res['error'][:60]} |")
            continue
        rows.append(_row(f"{lib}: valid JSON first try (fraction)", res["valid"], "", None))
        rows.append(_row(f"{lib}: tokens/s", res["tps"], "tok/s", ref))
        rows.append(_row(f"{lib}: seconds per task", res["spt"], "s", ref_spt))
        rows.append(_row(f"{lib}: tokens per task", res["tpt"], "tok", None))
        rows.append(_row(f"{lib}: init (vocabulary index)", res["init"], "s", None))
        notes.extend(f"  {lib} invalid -> {f}" for f in res["fail"])

    print(f"\nbench_llm: {gguf.name}, torch threads={cfg.threads}, seed={cfg.seed}")
    print("| measurement                                    | value              | ratio    |")
    print("|------------------------------------------------|--------------------|----------|")
    print("\n".join(rows))
    if notes:
        print("\ninvalid outputs:")
        print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
