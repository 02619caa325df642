"""Research Agent: a ReAct loop over the four tools that ends in a product research report.

Each step is one constrained decode of an :data:`Action` (thought, tool enum, one argument), so
every tool call is well-formed JSON even from the 135M embedded model; the report is a second
constrained decode whose citations are an enum of the products the tools actually showed, and
its markdown is rendered with the catalog's own title / brand / price for each cited product.
What stays free text (summary, reasons, verdict) is exactly what the FACT check and the
Supervisor look at.

The step prompt is rendered by :func:`rl_shop.research.prompt.render_prompt`, the same function the
SFT data is built from, and the action is decoded with ``LLM.chat(json_schema=...)`` (the grammar
enforces the format; no schema text is appended to the prompt), so a fine-tuned adapter sees at
inference exactly what it saw in training. Besides the four tools the agent may ``reflect`` (a
free-text thought, no tool runs: the form reflective internalization trains) and ``finish``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from rl_shop.research.prompt import (  # noqa: F401 - re-exported: the agent's prompt vocabulary
    FINISH,
    REFLECT,
    SEED_THOUGHT,
    SYSTEM,
    action_json,
    action_text,
    evidence_ids,
    is_degenerate_query,
    is_reflection,
    observation_text,
    render_prompt,
    render_report_prompt,
    report_json,
    request_text,
    seed_query,
    step_argument,
)

__all__ = [
    "FINISH",
    "REFLECT",
    "SYSTEM",
    "ResearchAgent",
    "ResearchAgentConfig",
    "action_schema",
    "report_schema",
    "words_pattern",
    "reflection_pattern",
    "decode_json",
    "render_markdown",
    "action_text",
    "observation_text",
    "report_json",
    "request_text",
]
from rl_shop.catalog.filters import SearchFilters
from rl_shop.config_files import defaults_from_yaml
from rl_shop.research.limits import preferred_filters, request_filters
from rl_shop.research.tools import ResearchTools, _fmt_price, product_facts
from rl_shop.research.trajectory import (
    TOOL_ARGUMENT,
    AgentStep,
    InferredIntent,
    Recommendation,
    Report,
    ToolCall,
    ToolResult,
)

if TYPE_CHECKING:
    import pandas as pd

    from rl_shop.llm import LLM, Message

SHOPPER_PREFIX = "The shopper updated the request:"
"""Start of a shopper's intent-shift turn among the notes passed as ``feedback`` (see intent_shift.shift_note)."""


@defaults_from_yaml("research/research_agent.yaml", what="research config")
class ResearchAgentConfig(BaseModel):
    """``configs/research/research_agent.yaml``."""

    model_config = {"extra": "forbid"}

    max_steps: int = Field(ge=1)  # tool steps per round before the report is forced
    min_steps: int = Field(ge=0)  # steps before "finish" is offered
    step_max_tokens: int = Field(ge=16)
    report_max_tokens: int = Field(ge=32)
    thought_max_chars: int = Field(ge=0)
    argument_max_chars: int = Field(ge=4, le=128)  # regex repeat bound (xgrammar)
    summary_max_chars: int = Field(ge=20, le=240)  # <= 240: two regex repeats of <= 120
    reason_max_chars: int = Field(ge=10, le=240)
    verdict_max_chars: int = Field(ge=10, le=240)
    max_recommendations: int = Field(ge=1)
    observation_chars: int = Field(ge=50)  # each observation as shown in later prompts
    evidence_products: int = Field(ge=1)  # products listed in the report prompt
    temperature: float = Field(ge=0.0)
    reflection_max_chars: int = Field(ge=20, le=240)  # <= 240: two regex repeats of <= 120
    reflect_max_tokens: int = Field(ge=16)  # decode budget when reflect is offered
    max_consecutive_reflections: int = Field(ge=0)  # 0: reflect is never offered
    seed_first_search: bool  # round 0 starts with product_search(seed_query(intent))
    reseed_on_update: bool  # so does a round whose reading (a shopper's update) changes that search
    search_within_request: bool  # product searches within the reading's type, stated budget, brand exclusions
    cite_within_request: bool  # citations only of evidence within them (research/limits.py)
    reject_degenerate_queries: bool  # a tool-name / field-name / id query gets one corrective retry


def action_schema(
    cfg: ResearchAgentConfig,
    allow_finish: bool,
    seen_ids: list[str] | None = None,
    seen_urls: list[str] | None = None,
    allow_reflect: bool = False,
) -> dict[str, Any]:
    """The step grammar: one object per tool (``anyOf``), thought first, then tool, then its argument.

    visit_product's argument is an enum of the product ids the tools have shown and web_visit's
    an enum of the urls web_search returned, so the agent cannot open an id it never saw; a tool
    whose enum would be empty is not offered yet. ``reflect`` (when allowed) has an empty argument
    and a longer, plain-words thought of at most ``reflection_max_chars``: the reflection itself.
    """

    def option(tool: str, argument: dict[str, Any], thought: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "thought": thought or {"type": "string", "maxLength": cfg.thought_max_chars},
                "tool": {"const": tool},
                "argument": argument,
            },
            "required": ["thought", "tool", "argument"],
            "additionalProperties": False,
        }

    # search words only (no "_", ":", braces): the tiny model otherwise searches for tool names
    text = {"type": "string", "pattern": f"^[A-Za-z0-9 $.,'&-]{{3,{cfg.argument_max_chars}}}$"}
    options = [option("product_search", text)]
    if seen_ids:
        options.append(option("visit_product", {"enum": list(seen_ids)}))
    options.append(option("web_search", text))
    if seen_urls:
        options.append(option("web_visit", {"enum": list(seen_urls)}))
    if allow_reflect:
        options.append(
            option(
                REFLECT,
                {"type": "string", "maxLength": 0},
                {"type": "string", "pattern": reflection_pattern(cfg.reflection_max_chars)},
            )
        )
    if allow_finish:
        options.append(option(FINISH, {"type": "string", "maxLength": 0}))
    return {"anyOf": options}


_WORDS = "A-Za-z0-9 $.,'&!-"


def words_pattern(low: int, high: int) -> str:
    """A plain-words regex of ``low``..``high`` characters, split in repeats of <= 120 (xgrammar limit).

    Plain words only (no "_", quotes, braces): the 135M model otherwise fills text fields with the
    schema's own keys ("product_id", "reason").
    """
    if high <= 120:
        return f"^[{_WORDS}]{{{low},{high}}}$"
    return f"^[{_WORDS}]{{{low},120}}([{_WORDS}]{{0,{high - 120}}})?$"


REFLECTION_CHARS = "A-Za-z0-9 $.,;:'&!?()%/-"
"""Characters of a reflection (the internalized ones are cleaned to these, see internalize.py)."""


def reflection_pattern(high: int) -> str:
    """The reflect thought's regex: 20..``high`` reflection characters, in repeats of <= 120."""
    c = REFLECTION_CHARS
    return f"^[{c}]{{20,{high}}}$" if high <= 120 else f"^[{c}]{{20,120}}([{c}]{{0,{high - 120}}})?$"


def report_schema(cfg: ResearchAgentConfig, product_ids: list[str]) -> dict[str, Any]:
    """The report grammar; citations are an enum of evidence ids (none offered: no recommendations)."""
    rec = {
        "type": "object",
        "properties": {
            "product_id": {"enum": product_ids} if product_ids else {"type": "string"},
            "reason": {"type": "string", "pattern": words_pattern(10, cfg.reason_max_chars)},
        },
        "required": ["product_id", "reason"],
        "additionalProperties": False,
    }
    n_max = min(cfg.max_recommendations, len(product_ids))
    return {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "pattern": words_pattern(20, cfg.summary_max_chars)},
            "recommendations": {"type": "array", "items": rec, "minItems": 1 if n_max else 0, "maxItems": n_max},
            "verdict": {"type": "string", "pattern": words_pattern(10, cfg.verdict_max_chars)},
        },
        "required": ["summary", "recommendations", "verdict"],
        "additionalProperties": False,
    }


def render_markdown(query: str, report: Report, catalog: pd.DataFrame) -> str:
    """Markdown of a report; each cited product's title, brand and price come from the catalog."""
    lines = [
        f"# Product research: {query}",
        "",
        "## Summary",
        report.summary.strip() or "(none)",
        "",
        "## Recommendations",
    ]
    if not report.recommendations:
        lines.append("(no products recommended)")
    for i, rec in enumerate(report.recommendations, start=1):
        try:
            f = product_facts(catalog, rec.product_id)
            head = f"**{f['title'][:80]}** ({f['brand'] or 'unknown brand'}, {_fmt_price(f['price'])})"
        except KeyError:
            head = "**(unknown product)**"
        lines.append(f"{i}. {head} [{rec.product_id}]")
        if rec.reason.strip():
            lines.append(f"   {rec.reason.strip()}")
    lines += ["", "## Verdict", report.verdict.strip() or "(none)"]
    return "\n".join(lines)


@dataclass
class Decoded:
    """One constrained action decode: the value (None if unusable) and what went wrong on the way."""

    value: dict[str, Any] | None
    errors: list[str] = field(default_factory=list)
    attempts: int = 1
    used_fallback: bool = False


def decode_json(
    llm: LLM,
    messages: list[Message],
    schema: dict[str, Any],
    *,
    max_tokens: int,
    temperature: float,
    seed: int,
    validate: Callable[[Any], str | None] | None = None,
    retries: int | None = None,
) -> Decoded:
    """``LLM.structured`` with the schema text left out of the prompt (``schema_in_prompt=False``):
    the SFT text does not contain it, and the grammar already enforces the format. Constrained
    decode, ``validate``, one corrective turn per retry, then the default fallback parser, all
    counted in ``llm.metrics``.
    """
    res = llm.structured(
        messages,
        schema,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        validate=validate,
        schema_in_prompt=False,
        retries=retries,
    )
    return Decoded(res.value, list(res.errors), res.attempts, res.used_fallback)


class ResearchAgent:
    """Runs rounds of tool steps and writes reports; the Supervisor (or nobody) gives feedback."""

    def __init__(
        self, llm: LLM, tools: ResearchTools, config: ResearchAgentConfig | None = None, system: str = SYSTEM
    ) -> None:
        self.llm = llm
        self.tools = tools
        self.config = config or ResearchAgentConfig.model_validate({})
        self.system = system
        self._last_seed: tuple[str, SearchFilters | None] | None = None  # the last seeded search's query, filters

    # ------------------------------------------------------------------ prompts
    def step_prompt(self, query: str, steps: list[AgentStep], feedback: list[str]) -> list[Message]:
        """:func:`render_prompt` (the single agent's format, as in the SFT text); during synthesis the
        Supervisor's notes follow as a user turn (the multi-agent setting only: internalization
        replaces them by the agent's own ``reflect`` step)."""
        msgs = render_prompt(query, steps, self.config.observation_chars, self.system)
        # the shopper's own turns (intent shifts, rl_shop.research.intent_shift.shift_note) come first, as such
        shopper = [f for f in feedback if f.startswith(SHOPPER_PREFIX)]
        review = [f for f in feedback if not f.startswith(SHOPPER_PREFIX)]
        if shopper:
            msgs.append({"role": "user", "content": "\n".join(shopper)})
        if review:
            msgs.append(
                {
                    "role": "user",
                    "content": "Supervisor feedback on your draft report:\n- "
                    + "\n- ".join(review)
                    + "\nContinue the research to address it.",
                }
            )
        return msgs

    def report_prompt(
        self, query: str, steps: list[AgentStep], feedback: list[str], offered: list[str] | None = None
    ) -> list[Message]:
        """:func:`render_report_prompt` (plus the Supervisor's notes during synthesis)."""
        msgs = self.step_prompt(query, steps, feedback)
        tail = render_report_prompt(
            query, steps, self.config.observation_chars, self.config.evidence_products, self.system, offered
        )[-1]
        return msgs + [tail]

    # ------------------------------------------------------------------ steps
    def seeded_step(self, intent: InferredIntent, steps: list[AgentStep]) -> AgentStep:
        """The documented deterministic first step: product_search(category + brands of the intent)."""
        self._last_seed = self._seed_search(intent)
        call = ToolCall(id=f"call_{len(steps)}", name="product_search", arguments={"query": self._last_seed[0]})
        return AgentStep(thought=SEED_THOUGHT, call=call, result=self.run_tool(call, intent), source="seeded")

    def step(
        self,
        query: str,
        steps: list[AgentStep],
        feedback: list[str],
        n_in_round: int,
        seed: int,
        intent: InferredIntent | None = None,
        allow_reflect: bool = False,
    ) -> AgentStep | None:
        """One action; ``None`` means the agent chose to finish (or only repeated itself)."""
        cfg = self.config
        allow_finish = n_in_round >= cfg.min_steps
        ok = [s for s in steps if s.result.ok and not is_reflection(s)]
        ids = list(dict.fromkeys(p for s in ok for p in s.result.product_ids))[-cfg.evidence_products :]
        urls = list(dict.fromkeys(u for s in ok if s.call.name == "web_search" for u in s.result.urls))
        schema = action_schema(cfg, allow_finish, ids, urls, allow_reflect=allow_reflect)
        made = {(s.call.name, json.dumps(s.call.arguments, sort_keys=True)) for s in steps if not is_reflection(s)}
        fallback_q = seed_query(intent, cfg.argument_max_chars) if intent is not None else None

        def check(v: Mapping[str, Any]) -> str | None:
            if v["tool"] in (FINISH, REFLECT):
                return None
            arg = v["argument"].strip()
            if cfg.reject_degenerate_queries and TOOL_ARGUMENT[v["tool"]] == "query" and is_degenerate_query(arg):
                return (
                    f"{arg!r} is a tool name, field name or id, not a search; write the product words of the "
                    f"request" + (f", e.g. {fallback_q!r}" if fallback_q else "")
                )
            key = (v["tool"], json.dumps({TOOL_ARGUMENT[v["tool"]]: arg}, sort_keys=True))
            return f"{v['tool']}({v['argument']}) was already called; choose another call" if key in made else None

        max_tokens = max(cfg.step_max_tokens, cfg.reflect_max_tokens) if allow_reflect else cfg.step_max_tokens
        res = decode_json(
            self.llm,
            self.step_prompt(query, steps, feedback),
            schema,
            max_tokens=max_tokens,
            temperature=cfg.temperature,
            seed=seed + len(steps),
            validate=check,
        )
        call_id = f"call_{len(steps)}"
        tried = [e for e in res.errors if e.startswith("attempt")]
        if (
            res.value is None
            and tried
            and all("not a search" in e for e in tried[-1:])
            and fallback_q
            and ("product_search", json.dumps({"query": fallback_q})) not in made
        ):
            # the model kept naming its own vocabulary: the intent query stands in (counted as a fallback)
            call = ToolCall(id=call_id, name="product_search", arguments={"query": fallback_q}, errors=list(res.errors))
            return AgentStep(thought=SEED_THOUGHT, call=call, result=self.run_tool(call, intent), source="fallback")
        if res.value is None and tried and all(("already called" in e or "not a search" in e) for e in tried):
            return None  # the agent only repeats itself: end the round (ReAct stall guard)
        if res.value is None:
            call = ToolCall(id=call_id, name="<invalid>", malformed=True, errors=list(res.errors))
            return AgentStep(thought="", call=call, result=self.run_tool(call, intent))
        v = res.value
        if v["tool"] == FINISH:
            return None
        if v["tool"] == REFLECT:
            call = ToolCall(id=call_id, name=REFLECT, malformed=res.used_fallback, errors=list(res.errors))
            return AgentStep(
                thought=v["thought"].strip(),
                call=call,
                result=ToolResult(call_id=call_id, name=REFLECT, ok=True, content=""),
            )
        # errors also keep the rejected attempts of an accepted call (e.g. a degenerate query that the retry fixed)
        call = ToolCall(
            id=call_id,
            name=v["tool"],
            arguments={TOOL_ARGUMENT[v["tool"]]: v["argument"].strip()},
            malformed=bool(res.used_fallback),
            errors=list(res.errors),
        )
        return AgentStep(thought=v["thought"].strip(), call=call, result=self.run_tool(call, intent))

    def evidence_ids(self, steps: list[AgentStep], intent: InferredIntent | None = None) -> list[str]:
        """Products shown by the tools, most recent first (visited records ahead of search hits);
        with ``intent`` and ``cite_within_request``, only those within the request
        (:func:`~rl_shop.research.limits.request_filters`), and of those the ones the history
        favours if there are any (:func:`~rl_shop.research.limits.preferred_filters`)."""
        if intent is None or not self.config.cite_within_request:
            return evidence_ids(steps, self.config.evidence_products)
        shown = evidence_ids(steps, limit=len(self.tools.catalog))
        return self.tools.admitted(shown, request_filters(intent), preferred_filters(intent))[
            : self.config.evidence_products
        ]

    def run_tool(self, call: ToolCall, intent: InferredIntent | None) -> ToolResult:
        """Execute ``call``; with ``intent`` and ``search_within_request`` a product search is kept
        within the request's filters, and first tried within what the history favours."""
        if intent is None or not self.config.search_within_request:
            return self.tools.execute(call)
        return self.tools.execute(call, request_filters(intent), preferred_filters(intent))

    def write_report(
        self, query: str, steps: list[AgentStep], feedback: list[str], seed: int, intent: InferredIntent | None = None
    ) -> Report:
        """The constrained report decode, rendered to markdown; its citations are :meth:`evidence_ids`."""
        cfg = self.config
        ids = self.evidence_ids(steps, intent)
        res = decode_json(
            self.llm,
            self.report_prompt(query, steps, feedback, ids),
            report_schema(cfg, ids),
            max_tokens=cfg.report_max_tokens,
            temperature=cfg.temperature,
            seed=seed + 1000 + len(steps),
        )
        v = res.value or {"summary": "", "recommendations": [], "verdict": ""}
        recs: list[Recommendation] = []
        for r in v["recommendations"]:  # the grammar cannot say "unique": keep a product's first mention
            if r["product_id"] not in {x.product_id for x in recs}:
                recs.append(Recommendation(**r))
        report = Report(
            summary=v["summary"].strip(),
            verdict=v["verdict"].strip(),
            recommendations=recs,
            used_fallback=bool(res.used_fallback),
            offered_ids=ids,
        )
        report.markdown = render_markdown(query, report, self.tools.catalog)
        return report

    def run_round(
        self,
        query: str,
        prior_steps: list[AgentStep],
        feedback: list[str],
        seed: int,
        intent: InferredIntent | None = None,
    ) -> tuple[list[AgentStep], Report]:
        """Up to ``max_steps`` tool steps after ``prior_steps`` (plus at most
        ``max_consecutive_reflections`` reflections in a row, which run no tool), then a report.

        With ``intent`` and ``seed_first_search``, a conversation's first step is the deterministic
        product_search of :func:`seed_query`, and with ``reseed_on_update`` so is the first step of
        a round whose reading (a shopper's update) gives a seed query not yet run; ``intent`` also
        supplies the stand-in query when the model's search stays degenerate after its corrective
        retry, and what the report may cite (:meth:`evidence_ids`).
        """
        cfg = self.config
        steps: list[AgentStep] = []
        n_tools, run = 0, 0  # tool steps this round; reflections in a row
        if intent is not None and cfg.seed_first_search and self._seed_due(intent, prior_steps):
            steps.append(self.seeded_step(intent, prior_steps))
            n_tools = 1
        while n_tools < cfg.max_steps:
            history = prior_steps + steps
            allow_reflect = run < cfg.max_consecutive_reflections and any(not is_reflection(s) for s in history)
            step = self.step(query, history, feedback, n_tools, seed, intent=intent, allow_reflect=allow_reflect)
            if step is None:
                break
            steps.append(step)
            if is_reflection(step):
                run += 1
            else:
                n_tools, run = n_tools + 1, 0
        return steps, self.write_report(query, prior_steps + steps, feedback, seed, intent)

    def _seed_search(self, intent: InferredIntent) -> tuple[str, SearchFilters | None]:
        """What the seeded search of ``intent`` asks the catalog: its query and filters."""
        within = self.config.search_within_request
        return seed_query(intent, self.config.argument_max_chars), request_filters(intent) if within else None

    def _seed_due(self, intent: InferredIntent, prior_steps: list[AgentStep]) -> bool:
        """The conversation's first step, or (``reseed_on_update``) a reading whose seeded search
        (query and filters) differs from the last one run, as after a shopper's update."""
        if not prior_steps:
            return True
        last = self._last_seed
        return self.config.reseed_on_update and last is not None and last != self._seed_search(intent)
