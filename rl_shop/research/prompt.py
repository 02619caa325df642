"""The single Research Agent's prompt format, rendered by ONE function for inference and SFT alike.

Why one renderer: a LoRA adapter learns the exact token sequence of its training text. If the
inference prompt carries anything the training text lacked (a JSON schema, a "calls so far"
reminder) or lacks anything it had, the tuned model is asked to continue a text it never saw.
So :func:`render_prompt` builds the step prompt at inference (``ResearchAgent.step_prompt``) and
:func:`~rl_shop.research.internalize.internalize` builds the training conversation from the very
same per-step turns, so that every assistant turn of an SFT example is preceded by exactly the
prompt the agent would get in that state (tested in ``tests/test_research_core.py``).

Format (textual tool-call form, for chat templates without tool support):

* ``system``: :data:`SYSTEM`; ``user``: ``Research request: <query>``;
* each step: ``assistant`` = compact Action JSON ``{"thought","tool","argument"}``; a tool step is
  followed by a ``user`` turn ``<tool_response>\\n<observation[:observation_chars]>\\n</tool_response>``;
  a ``reflect`` step (the agent's own reflection, no tool runs) by nothing;
* before the report: a ``user`` turn :func:`report_request_text` listing the evidence products
  offered as citations, each line taken from the observations; which products were offered (the
  agent may leave out those beyond the shopper's stated limits) is recorded in the report's
  ``offered_ids``, so the SFT data rebuilds the turn without the catalog.

The action grammar is enforced by constrained decoding, not described in the prompt, so the
prompt holds no JSON schema (``ResearchAgent`` decodes through ``LLM.chat(json_schema=...)``).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from rl_shop.research.trajectory import TOOL_ARGUMENT, AgentStep, InferredIntent

if TYPE_CHECKING:
    from rl_shop.llm import Message
    from rl_shop.research.trajectory import Report

FINISH = "finish"
REFLECT = "reflect"

SYSTEM = (
    "You are a product research agent for an online shop. Research the shopper's request with tools, "
    "then write a report.\nTools:\n"
    "- product_search(query): search the catalog; returns product ids, titles, brands, prices\n"
    "- visit_product(product_id): the full record of one product id\n"
    "- web_search(query): buying guides and explanations; returns urls\n"
    "- web_visit(url): read a url returned by web_search\n"
    "- reflect: no tool; write in thought what your research still lacks and what you will do next\n"
    "- finish: stop researching and write the report\n"
    "Example: for 'quiet wireless headphones under $100' a first action is "
    '{"thought":"find candidates","tool":"product_search","argument":"quiet wireless headphones"}; '
    'for a buying guide {"thought":"learn what matters","tool":"web_search",'
    '"argument":"headphones buying guide"}.\n'
    "A search argument is the product words of the request (kind, brand, feature), never a tool name or a "
    "product id. A good plan: product_search; visit_product on the most promising id; web_search for a "
    "buying guide of the category; then finish. Never repeat a call.\n"
    'Answer each turn with one JSON action: {"thought": ..., "tool": ..., "argument": ...}.'
)

REPORT_REQUEST = (
    "Now write the research report. Evidence products:\n{digest}\n"
    "Recommend products by id and say why; summarise and give a verdict."
)

SEED_THOUGHT = "search the catalog for the requested kind of product and brands"
"""The thought of the deterministic first search (:func:`seed_query`)."""

# Words that make up tool names and the action / report schema's keys: a query made only of these
# (``product-search``, ``visit_product``, ``query``) searches for the agent's own vocabulary.
_TOOL_WORDS = frozenset(
    w
    for name in (
        *TOOL_ARGUMENT,
        *TOOL_ARGUMENT.values(),
        FINISH,
        REFLECT,
        "thought",
        "tool",
        "argument",
        "summary",
        "recommendations",
        "reason",
        "verdict",
        "id",
        "action",
        "none",
    )
    for w in re.split(r"[^a-z0-9]+", name.lower())
    if w
)
_ID_RE = re.compile(r"\b(amz|fk)-[a-z0-9]+", re.IGNORECASE)
_URL_RE = re.compile(r"[a-z][a-z0-9+.-]*://\S*")


def request_text(query: str) -> str:
    """The first user turn of a research conversation (inference and SFT data alike)."""
    return f"Research request: {query}"


def action_json(thought: str, tool: str, argument: str) -> str:
    """The compact Action JSON of one step (what the agent decodes under its grammar)."""
    return json.dumps(
        {"thought": thought, "tool": tool, "argument": argument}, ensure_ascii=False, separators=(",", ":")
    )


def step_argument(step: AgentStep) -> str:
    """The single argument of a step ('' for reflect / finish)."""
    return str(next(iter(step.call.arguments.values()), "")) if step.call.arguments else ""


def action_text(step: AgentStep) -> str:
    """A step's assistant turn in the textual tool-call format."""
    return action_json(step.thought, step.call.name, step_argument(step))


def observation_text(content: str, limit: int | None = None) -> str:
    """A tool observation as a user turn (textual format), cut to what the agent is shown."""
    body = content if limit is None else content[:limit]
    return f"<tool_response>\n{body}\n</tool_response>"


def is_reflection(step: AgentStep) -> bool:
    return step.call.name == REFLECT


def step_turns(step: AgentStep, observation_chars: int | None) -> list[Message]:
    """The turns one step adds: the action, then (tool steps only) the observation."""
    turns: list[Message] = [{"role": "assistant", "content": action_text(step)}]
    if not is_reflection(step):
        turns.append({"role": "user", "content": observation_text(step.result.content, observation_chars)})
    return turns


def render_prompt(
    query: str, steps: list[AgentStep], observation_chars: int | None, system: str = SYSTEM
) -> list[Message]:
    """THE prompt of the single agent after ``steps``: used at inference and to build SFT text."""
    msgs: list[Message] = [{"role": "system", "content": system}, {"role": "user", "content": request_text(query)}]
    for step in steps:
        msgs.extend(step_turns(step, observation_chars))
    return msgs


def evidence_ids(steps: list[AgentStep], limit: int) -> list[str]:
    """Products shown by the tools, most recent first (visited records ahead of search hits)."""
    ordered: list[str] = []
    for s in reversed(steps):
        if s.result.ok and s.call.name == "visit_product":
            ordered += [p for p in s.result.product_ids if p not in ordered]
    for s in reversed(steps):
        if s.result.ok:
            ordered += [p for p in s.result.product_ids if p not in ordered]
    return ordered[:limit]


def evidence_digest(steps: list[AgentStep], ids: list[str]) -> str:
    """One line per evidence product, taken from the observations (a search hit line, else the
    first three lines of its visited record joined by ' | ')."""
    lines = []
    for pid in ids:
        line = None
        for s in steps:
            if not s.result.ok or pid not in s.result.product_ids:
                continue
            rows = s.result.content.split("\n")
            if s.call.name == "visit_product":
                line = line or " | ".join(rows[:3])
            else:
                hit = next((r for r in rows if r.startswith(f"[{pid}]")), None)
                line = hit or line
                if hit:
                    break
        lines.append(line or f"[{pid}]")
    return "\n".join(lines) or "(no products found)"


def report_request_text(steps: list[AgentStep], evidence_products: int, offered: list[str] | None = None) -> str:
    """The user turn that asks for the report (inference and the SFT example's last prompt): the
    ``offered`` products (a report's ``offered_ids``), else the first ``evidence_products`` shown."""
    ids = offered if offered is not None else evidence_ids(steps, evidence_products)
    return REPORT_REQUEST.format(digest=evidence_digest(steps, ids))


def render_report_prompt(
    query: str,
    steps: list[AgentStep],
    observation_chars: int | None,
    evidence_products: int,
    system: str = SYSTEM,
    offered: list[str] | None = None,
) -> list[Message]:
    """The report prompt of the single agent: :func:`render_prompt` plus the report request."""
    return render_prompt(query, steps, observation_chars, system) + [
        {"role": "user", "content": report_request_text(steps, evidence_products, offered)}
    ]


def is_degenerate_query(text: str) -> bool:
    """A search argument that names the agent's own vocabulary, not a product: once product ids
    (``amz-018259``) and urls are removed, nothing is left, or every word is part of a tool name or
    schema key (``product-search``, ``visit product``, ``query``). Such a query retrieves unrelated
    products (or, for a list of ids, whatever BM25 matches on digits)."""
    t = _URL_RE.sub(" ", _ID_RE.sub(" ", text.strip().lower()))
    words = [w for w in re.split(r"[^a-z0-9]+", t) if w]
    return not words or all(w in _TOOL_WORDS for w in words)


_ARG_CHARS = re.compile(r"[^A-Za-z0-9 $.,'&-]+")


def seed_query(intent: InferredIntent, max_chars: int) -> str:
    """The deterministic first product_search query: the User Agent's inferred category and brands
    (plain words, at most ``max_chars``). Documented in docs/research.md; marked ``source='seeded'``."""
    words = " ".join([intent.category.replace("_", " "), *intent.brands])
    q = re.sub(r"\s+", " ", _ARG_CHARS.sub(" ", words)).strip()[:max_chars].strip()
    return q if len(q) >= 3 else (q + " products")[:max_chars]


def report_json(report: Report) -> str:
    """The report as the model emits it (the final assistant turn of the SFT data)."""
    return json.dumps(
        {
            "summary": report.summary,
            "recommendations": [r.model_dump() for r in report.recommendations],
            "verdict": report.verdict,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
