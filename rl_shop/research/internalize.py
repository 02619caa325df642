"""Reflective internalization: a multi-agent trajectory -> one single-role training conversation.

The paper distills User / Research / Supervisor interaction into examples in which ONE agent
researches, notices its own shortcomings and fixes them. Concretely (docs/research.md):

1. ``system``: the Research Agent's system prompt; ``user``: the research query (the User
   Agent's words; the behaviour history and the persona are not part of the example).
2. Every tool step of every round becomes an ``assistant`` turn with ``content`` = the thought
   and one OpenAI ``tool_calls`` entry, followed by a ``tool`` turn with the observation as the
   agent saw it (cut to ``observation_chars``).
3. Where the Supervisor reviewed an intermediate report and another round followed, the
   intermediate report and the supervisor turn disappear; in their place the agent takes a
   ``reflect`` step in its own action format: an ``assistant`` turn whose content is the Action
   JSON ``{"thought": "Reflection: I have drafted a report recommending ... <the supervisor's
   points in first person> I will continue the research to fix this.", "tool": "reflect",
   "argument": ""}`` (cleaned to the reflect grammar's characters, points dropped from the end
   to fit ``reflection_max_chars``). The agent can decode exactly this at inference.
   An intent shift of the shopper (``traj.shifts``) is a ``user`` turn after the round it followed.
4. A ``user`` turn asks for the report (:func:`~rl_shop.research.prompt.report_request_text`,
   over the products the final report was offered: ``Report.offered_ids``), and the final ``assistant`` turn is the last round's report (the JSON the agent decodes).

Turns 2-4 come from the same per-step renderer as the inference prompt
(:mod:`rl_shop.research.prompt`), so in the textual format every assistant turn's prefix is the
prompt the agent gets in that state.
"""

from __future__ import annotations

import re
from typing import Any

from rl_shop.research.prompt import REFLECT, SYSTEM, action_json, report_json, report_request_text, request_text
from rl_shop.research.research_agent import REFLECTION_CHARS, ResearchAgentConfig
from rl_shop.research.tools import tool_call_json
from rl_shop.research.trajectory import AgentStep, Round, ToolCall, ToolResult, Trajectory

_NOT_REFLECTION = re.compile(f"[^{REFLECTION_CHARS}]+")  # the same class as the reflect grammar
_TAIL = "I will continue the research to fix this."


def shift_note_text(message: str) -> str:
    """The shopper's intent-shift turn as the agent sees it (the same text as during synthesis)."""
    from rl_shop.research.research_agent import SHOPPER_PREFIX

    return f"{SHOPPER_PREFIX} {message}"


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", _NOT_REFLECTION.sub(" ", text)).strip()


def reflection_text(rnd: Round, max_chars: int = 240) -> str:
    """The agent's own reflection on round ``rnd``'s draft, from the supervisor's feedback.

    Only the reflect grammar's characters, at most ``max_chars``: the supervisor's points are kept
    in order while they fit (the head and the closing sentence always stay).
    """
    if rnd.feedback is None:
        raise ValueError(f"round {rnd.index} has no feedback to internalize")
    picks = ", ".join(r.product_id for r in rnd.report.recommendations) or "no products"
    points = list(rnd.feedback.reflections)
    if rnd.feedback.critique_reflection:
        points.append(rnd.feedback.critique_reflection)
    points = [_clean(p if p.rstrip().endswith((".", "!", "?")) else p.rstrip() + ".") for p in points]
    head = _clean(f"Reflection: I have drafted a report recommending {picks}.")
    body: list[str] = []
    for p in [p for p in points if p] or ["My draft can be more thorough."]:
        if len(" ".join([head, *body, p, _TAIL])) <= max_chars:
            body.append(p)
    text = " ".join([head, *body, _TAIL])
    if len(text) > max_chars:  # even the head does not fit (many long ids): cut it, keep the tail
        text = head[: max_chars - len(_TAIL) - 1].rstrip() + " " + _TAIL
    return text


def reflection_step(rnd: Round, call_id: str, max_chars: int = 240) -> AgentStep:
    """The reflect step that replaces round ``rnd``'s draft report and the supervisor's review."""
    return AgentStep(
        thought=reflection_text(rnd, max_chars),
        call=ToolCall(id=call_id, name=REFLECT),
        result=ToolResult(call_id=call_id, name=REFLECT, ok=True, content=""),
    )


def single_role_steps(traj: Trajectory, config: ResearchAgentConfig | None = None) -> list[AgentStep]:
    """The steps of the single agent: every round's steps, a reflect step between rounds.

    At most ``max_consecutive_reflections`` reflections in a row (the inference cap): when a round
    made no tool step, its reflection replaces the previous one (the newer feedback wins).
    """
    cfg = config or ResearchAgentConfig.model_validate({})
    if not traj.rounds:
        raise ValueError(f"trajectory {traj.id} has no rounds; nothing to internalize")
    out: list[AgentStep] = []
    run = 0
    for i, rnd in enumerate(traj.rounds):
        for step in rnd.steps:
            out.append(step)
            run = run + 1 if step.call.name == REFLECT else 0
        if i < len(traj.rounds) - 1 and cfg.max_consecutive_reflections > 0:
            refl = reflection_step(rnd, f"reflect_{i}", cfg.reflection_max_chars)
            if run >= cfg.max_consecutive_reflections:
                out[-1] = refl
            else:
                out.append(refl)
                run += 1
    return out


def step_messages(step: AgentStep, observation_chars: int | None = None) -> list[dict[str, Any]]:
    """One step in the OpenAI message format: a tool step as an assistant tool-call turn and a tool
    turn; a reflect step as one assistant turn whose content is its Action JSON (no tool runs)."""
    if step.call.name == REFLECT:
        return [{"role": "assistant", "content": action_json(step.thought, REFLECT, "")}]
    content = step.result.content if observation_chars is None else step.result.content[:observation_chars]
    return [
        {
            "role": "assistant",
            "content": step.thought,
            "tool_calls": [
                {
                    "id": step.call.id,
                    "type": "function",
                    "function": {"name": step.call.name, "arguments": tool_call_json(step.call)},
                }
            ],
        },
        {"role": "tool", "tool_call_id": step.call.id, "name": step.call.name, "content": content},
    ]


def internalize(
    traj: Trajectory, system_prompt: str | None = None, config: ResearchAgentConfig | None = None
) -> list[dict[str, Any]]:
    """The single-role conversation of ``traj`` (see the module docstring for the exact shape)."""
    cfg = config or ResearchAgentConfig.model_validate({})
    steps = single_role_steps(traj, cfg)
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": system_prompt or traj.system_prompt or SYSTEM},
        {"role": "user", "content": request_text(traj.query)},
    ]
    # intent shifts (rl_shop.research.intent_shift): the shopper's turn follows the round it came after
    after: dict[int, list[str]] = {}
    for sh in traj.shifts:
        rnd = traj.rounds[int(sh["after_round"])] if int(sh["after_round"]) < len(traj.rounds) else None
        if rnd is None:
            continue
        mine = {id(x) for x in rnd.steps}
        pos = max(
            [i for i, st in enumerate(steps) if id(st) in mine or st.call.id == f"reflect_{rnd.index}"], default=-1
        )
        after.setdefault(pos, []).append(shift_note_text(sh["message"]))
    for text in after.get(-1, []):
        msgs.append({"role": "user", "content": text})
    for i, step in enumerate(steps):
        msgs.extend(step_messages(step, cfg.observation_chars))
        for text in after.get(i, []):
            msgs.append({"role": "user", "content": text})
    offered = traj.final_report.offered_ids  # as offered during synthesis (None in older trajectories)
    msgs.append({"role": "user", "content": report_request_text(steps, cfg.evidence_products, offered)})
    msgs.append({"role": "assistant", "content": report_json(traj.final_report)})
    return msgs
