"""Benchmark of the whole MACDF agent loop: per-query TTFT and total time, the per-agent LLM call
budget (calls, seconds, answers discarded), per-agent time shares, and the parallel-vs-sequential
speedup of the independent search tasks.

Each configured LLM run (``runs`` in the config: by default the embedded model on llama.cpp with
its call budget, the same with every agent call on, and the transformers engine with the budget)
answers the same queries with its response cache off; the same-run reference is the
deterministic no-LLM path (ratio = run / reference), and the paper's figures (MACDF 4.3: 1.8 s
TTFT, ~15 s total) are shown beside ours. Queries come from the shipped ECCD-style benchmark; the
simulator's language face answers the Guider's questions, and the time spent in those answers is
excluded from the latencies.

Usage: python experiments/bench_agent.py [--config configs/bench/agent.yaml] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def pick_queries(items: list[Any], types: list[str], per_type: int) -> list[Any]:
    """The first ``per_type`` benchmark items of each type, in the configured order."""
    out = []
    for t in types:
        of_type = [it for it in items if it.query_type == t][:per_type]
        if not of_type:
            raise SystemExit(f"error: the benchmark has no {t!r} query; edit query_types in the bench config")
        out += of_type
    return out


def run_queries(assistant: Any, items: list[Any], catalog: Any, seed: int) -> list[dict[str, Any]]:
    """One assistant run per item, the simulated shopper answering clarifications."""
    from rl_shop.evaluation.systems import clarify_confirm_threshold
    from rl_shop.sim.shopper import Shopper

    threshold = clarify_confirm_threshold()
    rows = []
    for i, item in enumerate(items):
        shopper = Shopper(item.intent, catalog, seed=seed + i)
        t0 = time.perf_counter()
        res = assistant.run(
            item.query,
            answer_fn=lambda slot, q, shown, s=shopper: s.reply(slot, shown, threshold),
            on_token=lambda t: None,
        )
        agents = {k[6:]: v for k, v in res.timings.items() if k.startswith("agent:")}
        rows.append(
            {
                "id": item.id,
                "type": item.query_type,
                "query": item.query,
                "ttft_s": res.timings["ttft_s"],
                "total_s": res.timings["total_s"],
                "wall_s": time.perf_counter() - t0,
                "questions": len(res.clarifications),
                "replans": res.replans,
                "agents": agents,
                "n_products": len(res.products),
                "llm_fallbacks": res.llm_fallbacks,
                "llm_calls": res.llm_calls,
                "session": res.session_id,
                "intent": res.intent,
            }
        )
        print(
            f"  {item.query_type:16s} ttft {res.timings['ttft_s']:6.2f}s total {res.timings['total_s']:6.2f}s "
            f"q={len(res.clarifications)} products={len(res.products)}  {item.query[:60]}",
            flush=True,
        )
    return rows


def search_speedup(assistant: Any, rows: list[dict[str, Any]], repeats: int, rerank: bool) -> list[dict[str, Any]]:
    """Median wall time of each plan's non-Decision tasks run concurrently vs one at a time."""
    from rl_shop.agents.executor import DAGExecutor
    from rl_shop.agents.trace import Tracer
    from rl_shop.agents.types import IntentSpec, Plan, TaskType

    leader = assistant.leader
    saved = leader.ps.config.rerank.enabled
    leader.ps.config.rerank.enabled = bool(rerank) and saved
    out = []
    try:
        for row in rows:
            plan = Plan.model_validate(leader.memory.get_context(row["session"], "Planner", "plan"))
            # the plan's independent tasks (no dependencies, not the Decision): what may overlap
            work = Plan(tasks=[t for t in plan.tasks if t.type != TaskType.DECISION and not t.depends_on])
            if len(work.tasks) < 2:
                continue
            intent = IntentSpec.model_validate(row["intent"])
            handlers = leader.handlers(intent, Tracer())
            times = {}
            for name, conc in (("parallel", 8), ("sequential", 1)):
                samples = []
                for r in range(repeats):
                    rep = DAGExecutor(handlers, max_concurrency=conc).run_sync(work, f"bench-{name}-{r}")
                    samples.append(rep.wall_s)
                times[name] = statistics.median(samples)
            out.append(
                {
                    "type": row["type"],
                    "tasks": len(work.tasks),
                    **times,
                    "speedup": times["sequential"] / times["parallel"] if times["parallel"] > 0 else float("nan"),
                }
            )
    finally:
        leader.ps.config.rerank.enabled = saved
    return out


def table(rows: list[dict[str, Any]], ref: dict[str, dict[str, Any]], paper: dict[str, float]) -> str:
    """Markdown table: per query, ours with the LLM, the same-run reference and the ratios."""
    lines = [
        "| type | TTFT s | total s | ref TTFT s | ref total s | total / ref | TTFT / paper | total / paper | questions |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b = ref[r["id"]]
        lines.append(
            f"| {r['type']} | {r['ttft_s']:.2f} | {r['total_s']:.2f} | {b['ttft_s']:.2f} | {b['total_s']:.2f} | "
            f"{r['total_s'] / max(b['total_s'], 1e-9):.1f}x | {r['ttft_s'] / paper['ttft_s']:.1f}x | "
            f"{r['total_s'] / paper['total_s']:.1f}x | {r['questions']} |"
        )
    med = lambda key, rs: statistics.median(x[key] for x in rs)  # noqa: E731
    refs = list(ref.values())
    lines.append(
        f"| **median** | {med('ttft_s', rows):.2f} | {med('total_s', rows):.2f} | {med('ttft_s', refs):.2f} | "
        f"{med('total_s', refs):.2f} | {med('total_s', rows) / max(med('total_s', refs), 1e-9):.1f}x | "
        f"{med('ttft_s', rows) / paper['ttft_s']:.1f}x | {med('total_s', rows) / paper['total_s']:.1f}x | |"
    )
    return "\n".join(lines)


def shares_table(rows: list[dict[str, Any]]) -> str:
    """Per-agent share of the summed agent time, over all measured queries."""
    totals: dict[str, float] = {}
    for r in rows:
        for a, v in r["agents"].items():
            totals[a] = totals.get(a, 0.0) + v
    whole = sum(totals.values()) or 1.0
    lines = ["| agent | seconds (all queries) | share |", "|---|---|---|"]
    for a, v in sorted(totals.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {a} | {v:.2f} | {v / whole:.1%} |")
    return "\n".join(lines)


def budget_table(runs: dict[str, list[dict[str, Any]]]) -> str:
    """Per run and agent: LLM calls, seconds and discarded answers per query."""
    lines = [
        "| run | agent | calls / query | LLM s / query | discarded | fallbacks | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, rows in runs.items():
        totals: dict[str, dict[str, float]] = {}
        for r in rows:
            for agent, c in r["llm_calls"].items():
                acc = totals.setdefault(agent, {})
                for k, v in c.items():
                    acc[k] = acc.get(k, 0) + v
        n = max(len(rows), 1)
        for agent, c in sorted(totals.items()):
            lines.append(
                f"| {name} | {agent} | {c['calls'] / n:.2f} | {c['total_s'] / n:.2f} | "
                f"{c['discarded']:.0f} / {c['calls']:.0f} | {c['fallbacks']:.0f} | {c['errors']:.0f} |"
            )
        calls = sum(c["calls"] for c in totals.values())
        lines.append(
            f"| {name} | **all** | {calls / n:.2f} | {sum(c['total_s'] for c in totals.values()) / n:.2f} | "
            f"{sum(c['discarded'] for c in totals.values()):.0f} / {calls:.0f} "
            f"({sum(c['discarded'] for c in totals.values()) / n:.2f} per query) | | |"
        )
    return "\n".join(lines)


def summary_table(runs: dict[str, list[dict[str, Any]]], ref: list[dict[str, Any]], paper: dict[str, float]) -> str:
    """One line per run: median TTFT and total, their ratio to the reference and to the paper."""
    med = lambda key, rs: statistics.median(x[key] for x in rs)  # noqa: E731
    lines = [
        "| run | median TTFT s | median total s | total / no-LLM reference | TTFT / paper | total / paper |",
        "|---|---|---|---|---|---|",
        f"| no-LLM reference | {med('ttft_s', ref):.2f} | {med('total_s', ref):.2f} | 1.0x | "
        f"{med('ttft_s', ref) / paper['ttft_s']:.2f}x | {med('total_s', ref) / paper['total_s']:.2f}x |",
    ]
    for name, rows in runs.items():
        lines.append(
            f"| {name} | {med('ttft_s', rows):.2f} | {med('total_s', rows):.2f} | "
            f"{med('total_s', rows) / max(med('total_s', ref), 1e-9):.1f}x | "
            f"{med('ttft_s', rows) / paper['ttft_s']:.2f}x | {med('total_s', rows) / paper['total_s']:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/bench/agent.yaml")
    parser.add_argument("--out", default=None, help="write all figures as JSON here")
    args = parser.parse_args(argv)
    cfg_path = Path(args.config)
    from rl_shop.config_files import ConfigFileError, read_config

    try:
        cfg = read_config(cfg_path, what="bench config")
    except ConfigFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(int(cfg.get("threads", 1)))
    from rl_shop.agents.runtime import MACDFAssistant
    from rl_shop.catalog import load_catalog
    from rl_shop.catalog.index import HybridIndex
    from rl_shop.sim.benchmark import load_benchmark

    t0 = time.perf_counter()
    catalog = load_catalog()
    index = HybridIndex.load_or_build(catalog)
    items = pick_queries(load_benchmark(cfg.get("benchmark")), list(cfg["query_types"]), int(cfg.get("per_type", 1)))
    print(f"catalog + index loaded in {time.perf_counter() - t0:.1f}s; {len(items)} queries", flush=True)

    t0 = time.perf_counter()
    reference = MACDFAssistant.from_config(
        list(cfg.get("reference_overrides") or []), catalog=catalog, index=index, memory_path=":memory:"
    )
    print(f"reference (no LLM) built in {time.perf_counter() - t0:.1f}s", flush=True)
    ref_rows = run_queries(reference, items, catalog, int(cfg.get("shopper_seed", 0)))
    runs: dict[str, list[dict[str, Any]]] = {}
    first = None
    for run in cfg["runs"]:
        t0 = time.perf_counter()
        assistant = MACDFAssistant.from_config(
            list(run.get("overrides") or []), catalog=catalog, index=index, memory_path=":memory:"
        )
        print(
            f"run {run['name']} ({assistant.llm.describe() if assistant.llm else 'no LLM'}) built in "
            f"{time.perf_counter() - t0:.1f}s",
            flush=True,
        )
        runs[run["name"]] = run_queries(assistant, items, catalog, int(cfg.get("shopper_seed", 0)))
        if first is None:
            first = (run["name"], assistant)
        else:
            assistant.llm.close()  # one model in memory at a time (the first stays for the speedup part)
    sp = cfg.get("speedup") or {}
    speed = search_speedup(first[1], runs[first[0]], int(sp.get("repeats", 3)), bool(sp.get("rerank", False)))

    ref = {r["id"]: r for r in ref_rows}
    paper = {k: float(v) for k, v in (cfg.get("paper") or {"ttft_s": 1.8, "total_s": 15.0}).items()}
    print(
        f"\n## Median latency per run ({len(items)} queries; paper: TTFT {paper['ttft_s']} s, "
        f"total {paper['total_s']} s)\n"
    )
    print(summary_table(runs, ref_rows, paper))
    print("\n## LLM call budget per query (calls whose answer the agent discarded)\n")
    print(budget_table(runs))
    for name, rows in runs.items():
        print(f"\n## Latency per query: {name} vs the same-run no-LLM reference\n")
        print(table(rows, ref, paper))
        print(f"\n## Per-agent time shares: {name}\n")
        print(shares_table(rows))
    print(
        f"\n## Parallel vs sequential search tasks ({first[0]}; same plans, median of "
        f"{sp.get('repeats', 3)}; LLM re-rank {'on' if sp.get('rerank') else 'off'})\n"
    )
    print("| type | tasks | parallel s | sequential s | speedup |\n|---|---|---|---|---|")
    for s in speed:
        print(f"| {s['type']} | {s['tasks']} | {s['parallel']:.3f} | {s['sequential']:.3f} | {s['speedup']:.2f}x |")
    if speed:
        print(
            f"| **median** | | {statistics.median(s['parallel'] for s in speed):.3f} | "
            f"{statistics.median(s['sequential'] for s in speed):.3f} | "
            f"{statistics.median(s['speedup'] for s in speed):.2f}x |"
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(
            json.dumps({"config": cfg, "runs": runs, "reference": ref_rows, "speedup": speed}, indent=2, default=str)
        )
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
