"""Benchmark of the embedded LLM on this machine (configs/bench/llm.yaml).

Part 1, the two engines on the same GGUF file (always run): llama.cpp (``llama-cpp-python``) vs
transformers (the GGUF de-quantised into a HF checkpoint): load time, decode tokens/s, time to
first token cold (whole prompt prefilled) and with the system prompt's KV reused; then, on
llama.cpp, the 10 fixed schema tasks under each grammar library (none / xgrammar / gbnf =
llama.cpp's own grammar): first-try validity, tokens/s, seconds per task.

Part 2, the transformers engine in detail (skipped by ``--quick``): load cold (GGUF
de-quantisation) vs from the converted HF cache, TTFT with and without KV reuse, and the
constrained-decoding libraries (none / xgrammar / outlines / lm-format-enforcer) on the same tasks.

Every figure is printed with its ratio to the same-run reference. The last line is
``decode_ratio=<llama.cpp decode tokens/s / transformers decode tokens/s>``.

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python experiments/bench_llm.py [--quick] [key=value ...]
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

from rl_shop.config_files import read_config
from rl_shop.llm.embedded import convert_gguf, ensure_converted, find_packaged_gguf
from rl_shop.llm.hf_backend import TransformersLLM, load_hf_model
from rl_shop.llm.llamacpp_backend import LlamaCppConstrainer, LlamaCppLLM
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
    query_type: str = Field(
        pattern="^(simple|reasoning|multi_constraint|negation|ambiguous|product_qa|comparison|general_qa)$"
    )


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


# Overrides applied by --quick (before the command line's own key=value pairs).
QUICK = [
    "cold_load=false",
    "engines.prompts=2",
    "engines.max_tokens=48",
    "engines.ttft_queries=2",
    "structured.tasks=4",
    "transformers_detail=false",
]

PROMPTS = [
    "Recommend a laptop for a student and explain why in a few sentences.",
    "What should I look for in running shoes? Give me a short checklist.",
    "Suggest three gifts for a coffee lover and say what each costs roughly.",
    "Is a 4K monitor worth it for office work? Explain the trade-offs.",
]
PARAGRAPH = (
    "Our store sells electronics, clothing and home goods. Always respect the shopper's budget, "
    "never invent products, and ask one clarifying question when the request is vague. "
)
QUERIES = ["I need headphones.", "Any cheap laptop?", "A gift for my dad?", "Waterproof watch?"]


def decode_stats(llm: Any, cfg: Any) -> dict[str, float]:
    """Greedy decode of the fixed prompts: decode tokens/s (after the first token) and end to end.

    Wall clock, and process CPU time: on a machine shared with other jobs the wall-clock rate
    measures the share of the CPU this process got as much as the engine; the CPU-time rate
    (decode CPU = CPU of an N-token answer minus CPU of the same prompt's 1-token answer) does not.
    """
    decode, decode_cpu, e2e, ttft, n_tok = [], [], [], [], []
    for i in range(int(cfg.engines.prompts)):
        msgs = [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]
        kw = {"temperature": 0.0, "seed": int(cfg.seed), "stop": None, "json_schema": None, "use_prefix_cache": False}
        c0 = time.process_time()
        llm.generate(msgs, max_tokens=1, **kw)
        c1 = time.process_time()
        r = llm.generate(msgs, max_tokens=int(cfg.engines.max_tokens), **kw)
        c2 = time.process_time()
        if r.completion_tokens > 1 and r.total_s > r.ttft_s:
            decode.append((r.completion_tokens - 1) / (r.total_s - r.ttft_s))
            decode_cpu.append((r.completion_tokens - 1) / max(1e-9, (c2 - c1) - (c1 - c0)))
        e2e.append(r.completion_tokens / r.total_s)
        ttft.append(r.ttft_s)
        n_tok.append(r.completion_tokens)
    return {
        "decode_tps": statistics.mean(decode) if decode else 0.0,
        "decode_cpu_tps": statistics.mean(decode_cpu) if decode_cpu else 0.0,
        "e2e_tps": statistics.mean(e2e),
        "ttft": statistics.mean(ttft),
        "tokens": statistics.mean(n_tok),
    }


def ttft_stats(llm: Any, cfg: Any) -> dict[str, float]:
    """TTFT of a long system prompt + short user turn: cold (no reuse) vs the system prompt's KV reused."""
    system = PARAGRAPH * int(cfg.engines.system_repeats)
    n_q = int(cfg.engines.ttft_queries)
    msgs = [[{"role": "system", "content": system}, {"role": "user", "content": QUERIES[i % 4]}] for i in range(n_q)]
    cold = [
        llm.generate(
            m, max_tokens=2, temperature=0.0, seed=0, stop=None, json_schema=None, use_prefix_cache=False
        ).ttft_s
        for m in msgs
    ]
    llm.generate(
        [{"role": "system", "content": system}, {"role": "user", "content": "warm up"}],
        max_tokens=1,
        temperature=0.0,
        seed=0,
        stop=None,
        json_schema=None,
    )  # fills the prefix cache
    # Another system prompt in between, as when agents take turns: the saved prefix must be restored.
    other = [{"role": "system", "content": "You rank products. " * 20}, {"role": "user", "content": "rank"}]
    cached = []
    for m in msgs:
        llm.generate(other, max_tokens=1, temperature=0.0, seed=0, stop=None, json_schema=None)
        cached.append(llm.generate(m, max_tokens=2, temperature=0.0, seed=0, stop=None, json_schema=None).ttft_s)
    return {
        "cold": statistics.mean(cold),
        "cached": statistics.mean(cached),
        "prompt_tokens": llm.count_tokens(msgs[0]),
    }


def grammar_stats(llm: Any, cfg: Any) -> dict[str, Any]:
    """The fixed schema tasks under ``llm``'s constraint: first-try validity, tokens/s, time per task."""
    tasks = TASKS[: int(cfg.structured.tasks)]
    valid, toks, secs, failures = 0, 0, 0.0, []
    for name, model_cls, request in tasks:
        spec = as_schema(model_cls)
        msgs = with_schema_instruction(
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": request}], spec
        )
        r = llm.generate(
            msgs,
            max_tokens=int(cfg.structured.max_tokens),
            temperature=0.0,
            seed=int(cfg.seed),
            stop=None,
            json_schema=None if llm.structured_library == "none" else spec.json_schema,
        )
        toks += r.completion_tokens
        secs += r.total_s
        try:
            spec.validate_text(r.text)
            valid += 1
        except ValueError as exc:
            failures.append(f"{name}: {str(exc)[:70]}")
    return {
        "valid": valid / len(tasks),
        "tps": toks / secs,
        "spt": secs / len(tasks),
        "tpt": toks / len(tasks),
        "fail": failures,
    }


def engines_part(cfg: Any, rows: list[str], notes: list[str]) -> float:
    """Part 1; returns decode_ratio (llama.cpp / transformers)."""
    threads = int(cfg.threads)
    gguf = find_packaged_gguf()
    t0 = time.perf_counter()
    lcpp = LlamaCppLLM(gguf, num_threads=threads, structured_library="none", cache=None)
    lcpp_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    directory = ensure_converted()  # a no-op once converted
    convert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model, tok = load_hf_model(directory)
    hf = TransformersLLM(model, tok, model_id=gguf.stem, structured_library="none", cache=None)
    hf_load = time.perf_counter() - t0
    _log(f"loaded: llama.cpp {lcpp_load:.2f}s, transformers {hf_load:.2f}s (+ conversion {convert_s:.1f}s)")

    stats = {}
    for name, llm in (("llama.cpp", lcpp), ("transformers", hf)):
        stats[name] = decode_stats(llm, cfg) | ttft_stats(llm, cfg)
        _log(f"{name}: {stats[name]}")
    ref = stats["transformers"]
    rows.append(f"| engines on {gguf.name}, {threads} thread(s) (reference: transformers) |  |  |")
    rows.append(_row("load: llama.cpp (GGUF directly)", lcpp_load, "s", hf_load))
    rows.append(_row("load: transformers (converted HF dir)", hf_load, "s", hf_load))
    for name in ("llama.cpp", "transformers"):
        st = stats[name]
        rows.append(_row(f"{name}: decode tokens/s (after 1st token)", st["decode_tps"], "tok/s", ref["decode_tps"]))
        rows.append(_row(f"{name}: decode tokens per CPU-second", st["decode_cpu_tps"], "tok/s", ref["decode_cpu_tps"]))
        rows.append(_row(f"{name}: end-to-end tokens/s incl. prefill", st["e2e_tps"], "tok/s", ref["e2e_tps"]))
        rows.append(_row(f"{name}: tokens per answer", st["tokens"], "tok", None))
        rows.append(_row(f"{name}: TTFT cold, {st['prompt_tokens']}-token prompt", st["cold"], "s", ref["cold"]))
        rows.append(_row(f"{name}: TTFT, system-prompt KV reused", st["cached"], "s", ref["cold"]))
    del hf, model

    # Grammar libraries on the llama.cpp engine.
    rows.append("| llama.cpp, structured: 10 schema tasks (reference: none = prompt only) |  |  |")
    results: dict[str, dict[str, Any]] = {}
    for lib in cfg.grammar.libraries:
        try:
            lcpp.structured_library = lib
            lcpp.constrainer = None if lib == "none" else LlamaCppConstrainer(lib, lcpp.llama)
            t0 = time.perf_counter()
            if lcpp.constrainer is not None:
                lcpp.constrainer.prepare()
            init_s = time.perf_counter() - t0
            results[lib] = grammar_stats(lcpp, cfg) | {"init": init_s}
            _log(f"llama.cpp grammar {lib}: {results[lib]}")
        except Exception as exc:  # a library that cannot run here is itself the measurement
            results[lib] = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
            traceback.print_exc(limit=2)
    _grammar_rows(results, rows, notes, "llama.cpp")
    cpu = stats["llama.cpp"]["decode_cpu_tps"] / ref["decode_cpu_tps"] if ref["decode_cpu_tps"] else float("nan")
    notes.append(f"decode ratio by CPU time (llama.cpp / transformers): {cpu:.2f}")
    return stats["llama.cpp"]["decode_tps"] / ref["decode_tps"] if ref["decode_tps"] else float("nan")


def _grammar_rows(results: dict[str, dict[str, Any]], rows: list[str], notes: list[str], engine: str) -> None:
    ref = results.get("none", {}).get("tps")
    ref_spt = results.get("none", {}).get("spt")
    for lib, res in results.items():
        if "error" in res:
            rows.append(f"| {engine} {lib:<36} | FAILED: {res['error'][:60]} |")
            continue
        rows.append(_row(f"{lib}: valid JSON first try (fraction)", res["valid"], "", None))
        rows.append(_row(f"{lib}: tokens/s", res["tps"], "tok/s", ref))
        rows.append(_row(f"{lib}: seconds per task", res["spt"], "s", ref_spt))
        rows.append(_row(f"{lib}: tokens per task", res["tpt"], "tok", None))
        rows.append(_row(f"{lib}: init (vocabulary index)", res["init"], "s", None))
        notes.extend(f"  {engine} {lib} invalid -> {f}" for f in res["fail"])


def transformers_part(cfg: Any, rows: list[str], notes: list[str]) -> None:
    """Part 2: the transformers engine in detail (load paths, KV reuse, constrained-decoding libraries)."""
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
    rows.append("| transformers: load (reference: load from converted HF cache) |  |  |")
    rows.append(_row("load converted HF dir", warm_load, "s", warm_load))
    if cold_load is not None:
        rows.append(_row("load cold: GGUF dequantise + save + load", cold_load, "s", warm_load))
    _log(f"load: converted {warm_load:.1f}s, cold {cold_load}")

    rows.append("| transformers, structured: 10 schema tasks (reference: none = prompt only) |  |  |")
    results: dict[str, dict[str, Any]] = {}
    for lib in cfg.structured.libraries:
        try:
            t0 = time.perf_counter()
            llm = TransformersLLM(
                model, tok, model_id="smollm2-135m", structured_library=lib, cache=None, prefix_cache_entries=0
            )
            _ = llm.constrainer  # index the vocabulary now, so the init cost is reported on its own
            init_s = time.perf_counter() - t0
            results[lib] = grammar_stats(llm, cfg) | {"init": init_s}
            _log(f"transformers {lib}: {results[lib]}")
        except Exception as exc:  # a library that cannot run here is itself the measurement
            results[lib] = {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
            traceback.print_exc(limit=2)
    _grammar_rows(results, rows, notes, "transformers")


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    argv = [a for a in argv if a != "--quick"]
    cfg = OmegaConf.merge(
        OmegaConf.create(read_config(Path(CONFIG_DIR) / "bench" / "llm.yaml", what="bench config")),
        OmegaConf.from_dotlist(QUICK if quick else []),
        OmegaConf.from_dotlist(argv),
    )
    import torch

    torch.set_num_threads(int(cfg.threads))
    t_start = time.perf_counter()
    rows: list[str] = []
    notes: list[str] = []
    ratio = engines_part(cfg, rows, notes)
    if cfg.transformers_detail:
        transformers_part(cfg, rows, notes)

    print(
        f"\nbench_llm{' --quick' if quick else ''}: {find_packaged_gguf().name}, threads={cfg.threads}, "
        f"seed={cfg.seed}, {time.perf_counter() - t_start:.0f}s"
    )
    print("| measurement                                    | value              | ratio    |")
    print("|------------------------------------------------|--------------------|----------|")
    print("\n".join(rows))
    if notes:
        print("\nnotes:")
        print("\n".join(notes))
    print(f"decode_ratio={ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
