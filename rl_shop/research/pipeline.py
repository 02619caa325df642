"""The ProductResearch synthesis loop: persona -> history -> User Agent -> Research <-> Supervisor.

``ResearchWorld`` holds what every run shares (catalog, hybrid index, web backend, tools);
:func:`synthesize` runs one shopper end to end and returns a :class:`Trajectory`;
:func:`solve` runs a Research Agent alone (no supervisor) for evaluation.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel

from rl_shop.config_files import defaults_from_yaml
from rl_shop.research.intent_shift import IntentShift, ShiftConfig, make_shift, shift_note
from rl_shop.research.research_agent import SYSTEM, ResearchAgent, ResearchAgentConfig
from rl_shop.research.supervisor import Supervisor, SupervisorConfig
from rl_shop.research.tools import ResearchTools, ToolsConfig
from rl_shop.research.trajectory import InferredIntent, Report, Round, Trajectory
from rl_shop.research.user_agent import UserAgent, UserAgentConfig, score_intent
from rl_shop.sim import Intent, IntentSampler, generate_history

if TYPE_CHECKING:
    from rl_shop.agents.websearch import WebSearchConfig
    from rl_shop.catalog.index import HybridIndex
    from rl_shop.llm import LLM

log = logging.getLogger(__name__)


@defaults_from_yaml("research/persona.yaml", what="research config")
class PersonaConfig(BaseModel):
    """Which simulated shoppers to synthesize for."""

    model_config = {"extra": "forbid"}

    query_types: list[str]


@dataclass
class ResearchWorld:
    """Catalog, index, web backend and tools shared by all runs."""

    catalog: pd.DataFrame
    index: HybridIndex
    tools: ResearchTools

    @classmethod
    def load(
        cls,
        tools_cfg: ToolsConfig,
        websearch_cfg: WebSearchConfig | dict[str, Any] | None = None,
        web_backend: str | None = None,
    ) -> ResearchWorld:
        """The shipped catalog, its cached hybrid index and the web backend of configs/agents/websearch.yaml
        (``web_backend`` = local | searxng overrides its ``backend``)."""
        from rl_shop.agents.config import load_agent_config
        from rl_shop.agents.websearch import WebSearchConfig, make_backend
        from rl_shop.catalog import load_catalog
        from rl_shop.catalog.index import HybridIndex

        catalog = load_catalog()
        index = HybridIndex.load_or_build(catalog)
        ws = websearch_cfg if websearch_cfg is not None else load_agent_config("websearch")
        ws = ws if isinstance(ws, WebSearchConfig) else WebSearchConfig.model_validate(ws)
        if web_backend:
            ws = ws.model_copy(update={"backend": web_backend})
        return cls(catalog, index, ResearchTools(catalog, index, make_backend(ws), tools_cfg))


def sample_persona(world: ResearchWorld, seed: int, persona_cfg: PersonaConfig) -> tuple[Intent, list[dict[str, Any]]]:
    """A latent intent (type cycled by seed) and its seeded behaviour history."""
    qtype = persona_cfg.query_types[seed % len(persona_cfg.query_types)]
    intent = IntentSampler(world.catalog, seed=seed).sample(qtype)
    events = [e.to_dict() for e in generate_history(intent, world.catalog, seed=seed)]
    return intent, events


def synthesize(
    world: ResearchWorld,
    llm: LLM,
    seed: int,
    *,
    persona_cfg: PersonaConfig,
    user_cfg: UserAgentConfig,
    agent_cfg: ResearchAgentConfig,
    sup_cfg: SupervisorConfig,
    max_rounds: int,
    supervisor_llm: LLM | None = None,
    stop_on_accept: bool = True,
    shift_cfg: ShiftConfig | None = None,
) -> Trajectory:
    """One multi-agent trajectory: up to ``max_rounds`` Research rounds with Supervisor feedback.

    With ``shift_cfg.enabled`` the shopper changes the intent after round ``shift_cfg.after_round``
    (:mod:`rl_shop.research.intent_shift`): the agent is told in a user turn (kept in every later
    round's prompt), the Supervisor reviews against the new reading, and the trajectory records the
    shift; the round of the shift never ends the trajectory by acceptance."""
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
    shift_cfg = shift_cfg or ShiftConfig.model_validate({})
    if shift_cfg.enabled and shift_cfg.after_round >= max_rounds - 1:
        raise ValueError(
            f"shift.after_round={shift_cfg.after_round} needs max_rounds >= {shift_cfg.after_round + 2} "
            f"(a round after the shift), got max_rounds={max_rounds}"
        )
    t0 = time.perf_counter()
    persona, events = sample_persona(world, seed, persona_cfg)
    inferred = UserAgent(llm, world.catalog, user_cfg).infer(events, seed=seed)
    first, start_persona = inferred, persona
    agent = ResearchAgent(llm, world.tools, agent_cfg)
    sup = Supervisor(supervisor_llm if supervisor_llm is not None else llm, world.catalog, sup_cfg)
    rounds: list[Round] = []
    steps_so_far: list = []
    feedback_msgs: list[str] = []
    notes: list[str] = []  # the shopper's shift turns, shown in every later round
    shifts: list[IntentShift] = []
    for r in range(max_rounds):
        steps, report = agent.run_round(
            first.query, steps_so_far, notes + feedback_msgs, seed=seed * 100 + r * 10, intent=inferred
        )
        steps_so_far = steps_so_far + steps
        fb = sup.review(inferred.query, report, steps_so_far, inferred, seed=seed + r)
        rounds.append(Round(index=r, steps=steps, report=report, feedback=fb))
        log.info("seed %d round %d: %d steps, score %.2f, accept %s", seed, r, len(steps), fb.score, fb.accept)
        shift = None
        if shift_cfg.enabled and r == shift_cfg.after_round:
            shift = make_shift(persona, inferred, world.catalog, seed, r, shift_cfg.kinds)
            if shift is not None:
                shifts.append(shift)
                persona, inferred = Intent.model_validate(shift.persona), shift.inferred
                notes = notes + [shift_note(shift)]
        if fb.accept and stop_on_accept and shift is None:
            break
        feedback_msgs = Supervisor.messages_for_agent(fb)
    return Trajectory(
        id=f"traj-{seed}",
        seed=seed,
        persona=start_persona.model_dump(mode="json"),
        history=events,
        inferred=first,
        intent_score=score_intent(first, start_persona),
        rounds=rounds,
        system_prompt=SYSTEM,
        model=llm.describe() if hasattr(llm, "describe") else str(llm),
        meta={"seconds": round(time.perf_counter() - t0, 2), "max_rounds": max_rounds},
        shifts=[s.model_dump(mode="json") for s in shifts],
    )


def solve(
    world: ResearchWorld, llm: LLM, inferred: InferredIntent, agent_cfg: ResearchAgentConfig, seed: int
) -> tuple[list, Report]:
    """The Research Agent alone on a query (one round, no supervisor): what a tuned model must do.

    It gets the inferred intent too (the seeded first search and the degenerate-query stand-in)."""
    return ResearchAgent(llm, world.tools, agent_cfg).run_round(inferred.query, [], [], seed=seed, intent=inferred)
