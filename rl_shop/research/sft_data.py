"""SFT data: internalized trajectories as JSONL in the chat + tool-call message format.

Each line is ``{"id", "messages", "tools", "meta"}`` where ``messages`` follow the OpenAI /
TRL conversational format (assistant turns with ``tool_calls``, ``tool`` turns with
``tool_call_id``) and ``tools`` holds the JSON function specs, which TRL's SFTTrainer passes to
``apply_chat_template(tools=...)``. A chat template that ignores ``tool_calls`` (SmolLM2's does:
it renders only ``content``) would silently drop every tool call, so :func:`to_text_format`
rewrites the calls into the textual form the Research Agent uses at inference (assistant turn =
compact Action JSON, observation = user turn in ``<tool_response>``); ``experiments/sft.py``
applies it when :func:`template_supports_tools` is false.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rl_shop.research.prompt import action_json, observation_text


class SFTDataError(ValueError):
    """An SFT data file that is missing, empty or not in the expected format."""


def template_supports_tools(tokenizer: object) -> bool:
    """Whether the tokenizer's chat template renders ``tool_calls`` (else they would be dropped)."""
    template = getattr(tokenizer, "chat_template", None) or ""
    return "tool_calls" in template


def to_text_format(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Tool calls as Action JSON in assistant content, tool results as ``<tool_response>`` user turns.

    The turns are rendered by :mod:`rl_shop.research.prompt` (the inference renderer), and reflect
    steps already are Action JSON content, so the result is the inference prompt format."""
    out: list[dict[str, str]] = []
    for m in messages:
        if m["role"] == "assistant" and m.get("tool_calls"):
            if len(m["tool_calls"]) != 1:
                raise SFTDataError("the textual format holds one tool call per assistant turn")
            fn = m["tool_calls"][0]["function"]
            args = json.loads(fn["arguments"]) if isinstance(fn["arguments"], str) else fn["arguments"]
            arg = next(iter(args.values()), "") if args else ""
            out.append({"role": "assistant", "content": action_json(m.get("content") or "", fn["name"], arg)})
        elif m["role"] == "tool":
            out.append({"role": "user", "content": observation_text(m["content"])})
        else:
            out.append({"role": m["role"], "content": m.get("content") or ""})
    return out


def write_sft_jsonl(records: list[dict[str, Any]], path: str | Path) -> int:
    """Write ``records`` (id, messages, tools, meta) one JSON object per line; returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for rec in records:
            missing = {"id", "messages", "tools"} - set(rec)
            if missing:
                raise SFTDataError(f"SFT record lacks {sorted(missing)}")
            fh.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")
    return len(records)


def read_sft_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read and check an SFT JSONL file (clear errors name the file and line)."""
    path = Path(path)
    if not path.is_file():
        raise SFTDataError(f"SFT data file {path} not found; run experiments/synthesize.py first")
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SFTDataError(f"{path}:{i} is not JSON ({exc})") from None
        if not isinstance(rec.get("messages"), list) or not rec["messages"]:
            raise SFTDataError(f"{path}:{i} has no 'messages' list")
        out.append(rec)
    if not out:
        raise SFTDataError(
            f"SFT data file {path} is empty: no trajectory passed the filter; synthesize more "
            "(synthesize.n_target) or relax configs/research/filter.yaml"
        )
    return out


def load_sft_dataset(path: str | Path, text_tool_format: bool = False, completion_only: bool = False) -> Any:
    """A ``datasets.Dataset`` that SFTTrainer reads: ``messages`` (+ ``tools`` as JSON text), or with
    ``completion_only`` TRL's prompt-completion form (``prompt`` = every turn before the last,
    ``completion`` = the last assistant turn), on which the loss covers the answer alone: for
    single-answer tasks a long shared system prompt would otherwise dominate the loss."""
    from datasets import Dataset

    rows = []
    for i, rec in enumerate(read_sft_jsonl(path), 1):
        messages = to_text_format(rec["messages"]) if text_tool_format else rec["messages"]
        row: dict[str, Any] = {} if text_tool_format else {"tools": json.dumps(rec["tools"])}
        if completion_only:
            if messages[-1].get("role") != "assistant" or len(messages) < 2:
                raise SFTDataError(f"{path}:{i}: completion_only needs a prompt and a final assistant turn")
            row.update(prompt=messages[:-1], completion=messages[-1:])
        else:
            row["messages"] = messages
        rows.append(row)
    return Dataset.from_list(rows)


def dataset_card(n: int, stats: dict[str, Any], config: dict[str, Any]) -> str:
    """A Hugging Face style README.md for the SFT data directory."""
    # A plain template filled with str.replace: the card contains literal JSON braces, which an
    # f-string or str.format would read as format fields ("Invalid format specifier").
    return (
        _CARD.replace("@N@", str(n))
        .replace("@MODEL@", str(config.get("model", "?")))
        .replace("@STATS@", json.dumps(stats, sort_keys=True, default=str))
    )


_CARD = """---
license: other
task_categories: [text-generation]
tags: [tool-use, e-commerce, product-research, synthetic, rl_shop]
---
# rl_shop ProductResearch SFT data

@N@ single-role tool-use trajectories synthesized by `experiments/synthesize.py`
(User Agent -> Research Agent <-> Supervisor Agent, then filtering and reflective
internalization, as in ProductResearch, arXiv 2602.23716).

* Format: JSON lines, one conversation per line: `messages` (OpenAI chat format; assistant turns
  carry `tool_calls`, observations are `tool` turns with `tool_call_id`), `tools` (function specs
  of product_search, visit_product, web_search, web_visit), `meta` (seed, rounds, scores).
* The final assistant turn is the report as JSON (`summary`, `recommendations` with product-id
  citations, `verdict`); the markdown rendering is in the trajectory file.
* Supervisor feedback appears only as the agent's own `reflect` steps (an assistant turn whose
  content is the Action JSON `{"thought": "Reflection: ...", "tool": "reflect", "argument": ""}`).
* The first product_search of each example may be the pipeline's deterministic seeded query
  (the inferred category and brands), see docs/research.md.
* Tools observe the rl_shop catalog (real products, see DATA_SOURCES.md) and the shipped web
  corpus; shoppers are simulated (rl_shop.sim), so queries are synthetic.
* Generated by: `@MODEL@`. With the embedded SmolLM2-135M the text is weak
  (short, generic); it is for pipeline testing, not for training a useful model.

Statistics: `@STATS@`
"""
