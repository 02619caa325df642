"""``rl-shop chat`` (interactive terminal session) and ``rl-shop ask "QUERY" [--json]``.

Exported as ``COMMANDS`` for the dispatcher ``rl_shop.cli``, which imports this module, so it
imports nothing heavy at module level (the assistant, catalog index and LLM load in ``run``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from rl_shop.commands import Command

if TYPE_CHECKING:  # the assistant loads heavy modules: imported in run, typed here
    from rl_shop.agents.result import AssistantResult
    from rl_shop.agents.runtime import MACDFAssistant
    from rl_shop.agents.trace import TraceStep


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trace", action="store_true", help="print agent steps and timings")
    p.add_argument(
        "--no-llm",
        action="store_true",
        help="deterministic path without an LLM (rule parsing, template questions and advice)",
    )
    p.add_argument("--llm", default=None, metavar="NAME", help="LLM config under configs/llm/ (default: runtime.yaml)")
    p.add_argument(
        "--policies",
        choices=("heuristic", "learned"),
        default="heuristic",
        help="Guider / Leader policies: hand-written heuristics or exported checkpoints/",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FILE.KEY=VALUE",
        help="override an agent config, e.g. --set leader.reflection.threshold=0.8 (repeatable)",
    )
    p.add_argument(
        "--memory", default=None, metavar="PATH", help="Memory SQLite file (default: configs/agents/memory.yaml)"
    )


def _ask_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", help="the shopping request")
    p.add_argument("--json", action="store_true", help="print one machine-readable JSON object")
    p.add_argument(
        "--no-clarify",
        action="store_true",
        help="never ask clarifying questions (default: ask on an interactive terminal only)",
    )
    _common_args(p)


def _build(args: argparse.Namespace) -> MACDFAssistant:
    from rl_shop.agents.runtime import MACDFAssistant

    overrides = list(args.set)
    if args.no_llm:
        overrides.append("runtime.llm_enabled=false")
    if args.llm:
        overrides.append(f"runtime.llm={args.llm}")
    return MACDFAssistant.from_config(overrides, policies=args.policies, memory_path=args.memory)


def _printer(out: TextIO) -> Callable[[TraceStep], None]:
    def show(step: TraceStep) -> None:
        keys = {
            k: v
            for k, v in step.detail.items()
            if k
            in ("query_type", "mode", "slot", "action", "source", "n", "tasks", "score", "replan", "question", "status")
        }
        print(
            f"  [trace {step.start_s:7.2f}s +{step.duration_s:6.2f}s] {step.agent}.{step.action} "
            f"{json.dumps(keys, default=str)[:200]}",
            file=out,
            flush=True,
        )

    return show


def _interactive_answer(out: TextIO) -> Callable[[str, str], str]:
    def answer(slot: str, question: str) -> str:
        print(f"\nGuider: {question}", file=out, flush=True)
        try:
            return input("you (answer)> ")
        except EOFError:
            return "never mind"

    return answer


def _show_result(result: AssistantResult, out: TextIO, trace: bool) -> None:
    if result.refused:
        return
    if result.products:
        print("\nRecommendations:", file=out)
        for i, p in enumerate(result.products, 1):
            price = f"${p.price:.2f}" if p.price is not None else "price n/a"
            print(f"  {i}. {p.title} ({p.brand or 'unknown brand'}, {price}) [{p.product_id}]", file=out)
            if p.reason:
                print(f"     why: {p.reason}", file=out)
    if result.follow_up:
        print(f"\nFollow-up: {result.follow_up}", file=out)
    if trace:
        t = result.timings
        shares = ", ".join(f"{k[6:]} {v:.2f}s" for k, v in t.items() if k.startswith("agent:"))
        print(
            f"\n[timings] ttft {t.get('ttft_s', 0):.2f}s, total {t.get('total_s', 0):.2f}s; {shares}; "
            f"replans {result.replans}, reflection score {result.reflection_score}, "
            f"LLM fallbacks {result.llm_fallbacks}",
            file=out,
        )
        for agent, c in result.llm_calls.items():
            print(
                f"[llm] {agent}: {c['calls']:.0f} call(s), {c['total_s']:.2f}s, {c['completion_tokens']:.0f} tokens, "
                f"{c['discarded']:.0f} discarded, {c['fallbacks']:.0f} fallback(s), {c['errors']:.0f} error(s)",
                file=out,
            )
    out.flush()


def _to_json(result: AssistantResult) -> dict[str, Any]:
    return {
        "query": result.query,
        "refused": result.refused,
        "refusal": result.refusal,
        "query_type": result.query_type,
        "products": [
            {"id": p.product_id, "title": p.title, "brand": p.brand, "price": p.price, "reason": p.reason}
            for p in result.products
        ],
        "answer": result.answer,
        "follow_up": result.follow_up,
        "clarifications": [c.model_dump() for c in result.clarifications],
        "trace": [s.model_dump() for s in result.trace],
        "timings": result.timings,
        "replans": result.replans,
        "reflection_score": result.reflection_score,
        "llm_fallbacks": result.llm_fallbacks,
        "llm_calls": result.llm_calls,
    }


def _guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn configuration / data / policy errors into one readable line and exit status 1."""

    def run(args: argparse.Namespace) -> int:
        from rl_shop.agents.config import AgentConfigError
        from rl_shop.catalog.errors import CatalogError
        from rl_shop.policies.card import PolicyCardError
        from rl_shop.policies.loader import PolicyLoadError

        try:
            return fn(args)
        except (AgentConfigError, CatalogError, PolicyLoadError, PolicyCardError, FileNotFoundError) as exc:
            print(f"rl-shop {args.command}: error: {exc}", file=sys.stderr)
            return 1

    return run


def _screen_first(args: argparse.Namespace) -> int | None:
    """Refuse unsafe or unreadable input before the index and the LLM are loaded (a refusal
    costs milliseconds, not the minute of a cold start); None when the query may go on."""
    from rl_shop.agents.result import AssistantResult
    from rl_shop.agents.safety import SafetyReview
    from rl_shop.agents.understanding import normalize_text

    verdict = SafetyReview().screen_input(normalize_text(args.query))
    if verdict.allowed:
        return None
    result = AssistantResult(
        query=args.query, refused=True, refusal=verdict.message or verdict.reason, answer=verdict.message or ""
    )
    if args.json:
        print(json.dumps(_to_json(result), indent=2, default=str))
    else:
        print(result.answer)
    return 0


def _ask(args: argparse.Namespace) -> int:
    if not args.query.strip():
        print("rl-shop ask: error: the query is empty; pass the shopping request in quotes", file=sys.stderr)
        return 2
    refused = _screen_first(args)
    if refused is not None:
        return refused
    assistant = _build(args)
    interactive = sys.stdin.isatty() and not args.no_clarify
    side = sys.stderr if args.json else sys.stdout
    answer_fn = _interactive_answer(side) if interactive else None
    on_token = None if args.json else (lambda text: print(text, end="", flush=True))
    printer = _printer(sys.stderr) if args.trace and not args.json else None
    result = assistant.run(args.query, answer_fn=answer_fn, on_token=on_token, printer=printer)
    if args.json:
        print(json.dumps(_to_json(result), indent=2, default=str))
    else:
        if result.refused:
            print(result.answer)
        print()
        _show_result(result, sys.stdout, args.trace)
    return 0


def _chat(args: argparse.Namespace) -> int:
    assistant = _build(args)
    out = sys.stdout
    print("rl-shop chat: describe what you are shopping for ('quit' to leave).", file=out, flush=True)
    printer = _printer(sys.stderr) if args.trace else None
    while True:
        try:
            query = input("\nyou> ").strip()
        except EOFError:
            print(file=out)
            return 0
        if query.lower() in ("quit", "exit", ":q"):
            return 0
        if not query:
            continue
        print("assistant> ", end="", file=out, flush=True)
        result = assistant.run(
            query,
            answer_fn=_interactive_answer(out),
            on_token=lambda text: print(text, end="", file=out, flush=True),
            printer=printer,
        )
        if result.refused:
            print(result.answer, file=out)
        _show_result(result, out, args.trace)


COMMANDS = (
    Command(
        "ask",
        "answer one shopping request with the MACDF assistant (--json for machine-readable output)",
        _ask_args,
        _guarded(_ask),
    ),
    Command(
        "chat",
        "interactive shopping session with the MACDF assistant (streamed answers, clarifying questions)",
        _common_args,
        _guarded(_chat),
    ),
)
