"""Pydantic records of one ProductResearch synthesis run (User -> Research <-> Supervisor).

Why typed records: filtering, reflective internalization, SFT export and RACE scoring all read the
same trajectory; a schema makes a malformed trajectory fail at load time with a field name, and
lets a trajectory round-trip through JSONL exactly (``Trajectory.model_validate_json``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ToolName = Literal["product_search", "visit_product", "web_search", "web_visit"]
TOOL_NAMES: tuple[str, ...] = ("product_search", "visit_product", "web_search", "web_visit")
"""The paper's four tools (Search_Product, Visit_Product, Web_Search, Web_Visit)."""

TOOL_ARGUMENT: dict[str, str] = {
    "product_search": "query",
    "visit_product": "product_id",
    "web_search": "query",
    "web_visit": "url",
}
"""The single argument each tool takes (the Action's ``argument`` is stored under this key)."""


class ToolCall(BaseModel):
    """One tool invocation as the agent emitted it (``name`` may be unknown when malformed)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    malformed: bool = False  # the model's output needed the deterministic fallback / was invalid
    errors: list[str] = Field(default_factory=list)


class ToolResult(BaseModel):
    """What the tool returned: the observation text the agent sees, and the evidence it adds."""

    model_config = ConfigDict(extra="forbid")

    call_id: str
    name: str
    ok: bool
    content: str
    product_ids: list[str] = Field(default_factory=list)  # products whose facts the observation shows
    urls: list[str] = Field(default_factory=list)
    error: str | None = None


class AgentStep(BaseModel):
    """Thought -> tool call -> observation (one ReAct step).

    A ``reflect`` step (``call.name == "reflect"``) runs no tool: its ``thought`` is the agent's own
    reflection and its result is an empty, ok observation that the prompt does not show."""

    model_config = ConfigDict(extra="forbid")

    thought: str = ""
    call: ToolCall
    result: ToolResult
    # who chose the call: the model; a documented deterministic first search from the User Agent's
    # intent ("seeded"); or that query standing in after a degenerate model query failed its retry
    source: Literal["model", "seeded", "fallback"] = "model"


class Recommendation(BaseModel):
    """One recommended product in a report: the id is a citation into the evidence."""

    model_config = ConfigDict(extra="forbid")

    product_id: str
    reason: str = ""


class Report(BaseModel):
    """The research report: what the model wrote (structured) and its rendered markdown."""

    model_config = ConfigDict(extra="forbid")

    summary: str = ""
    recommendations: list[Recommendation] = Field(default_factory=list)
    verdict: str = ""
    markdown: str = ""
    used_fallback: bool = False
    # The evidence products offered as citations (None: not recorded, i.e. every evidence product).
    offered_ids: list[str] | None = None


class Feedback(BaseModel):
    """The Supervisor's review of one intermediate report."""

    model_config = ConfigDict(extra="forbid")

    score: float = Field(ge=0.0, le=1.0)  # the supervisor's overall quality in [0, 1]
    accept: bool
    issues: list[str] = Field(default_factory=list)  # supervisor voice ("The report ...")
    reflections: list[str] = Field(default_factory=list)  # the same points in the agent's voice
    critique: str = ""  # the LLM's free-text critique
    critique_reflection: str = ""  # the critique rewritten in first person


class Round(BaseModel):
    """One Research-Agent pass (tool steps + a report), then the Supervisor's feedback."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    steps: list[AgentStep] = Field(default_factory=list)
    report: Report
    feedback: Feedback | None = None


class InferredIntent(BaseModel):
    """The User Agent's reading of a behaviour history, and the research query it writes."""

    model_config = ConfigDict(extra="forbid")

    category: str
    budget: float | None = None
    brands: list[str] = Field(default_factory=list)
    budget_stated: bool = False  # the shopper said the budget (an update), not inferred from behaviour
    excluded_brands: list[str] = Field(default_factory=list)  # brands the shopper ruled out in words
    # favoured by the history (research/history_profile.py): preferences, not limits
    favoured_brands: list[str] = Field(default_factory=list)
    colour: str | None = None
    features: list[str] = Field(default_factory=list)
    connectivity: list[str] = Field(default_factory=list)
    avoided_brands: list[str] = Field(default_factory=list)  # a large share of the shelf, never viewed
    # said by the shopper (an update): limits, as a stated budget
    stated_features: list[str] = Field(default_factory=list)
    stated_connectivity: list[str] = Field(default_factory=list)
    query: str
    used_fallback: bool = False


class Trajectory(BaseModel):
    """A full multi-agent synthesis trajectory for one simulated shopper."""

    model_config = ConfigDict(extra="forbid")

    id: str
    seed: int
    persona: dict[str, Any]  # the latent Intent (JSON), known to the simulator only
    history: list[dict[str, Any]]  # behaviour events shown to the User Agent
    inferred: InferredIntent
    intent_score: dict[str, float] = Field(default_factory=dict)
    rounds: list[Round] = Field(default_factory=list)
    system_prompt: str = ""
    model: str = ""
    meta: dict[str, Any] = Field(default_factory=dict)
    # shopper turns that changed the intent mid-research (rl_shop.research.intent_shift.IntentShift as JSON)
    shifts: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def final_persona(self) -> dict[str, Any]:
        """The latent intent the final report must serve (after every intent shift)."""
        return self.shifts[-1]["persona"] if self.shifts else self.persona

    @property
    def final_inferred(self) -> InferredIntent:
        """The User Agent's reading after every intent shift."""
        return InferredIntent.model_validate(self.shifts[-1]["inferred"]) if self.shifts else self.inferred

    @property
    def query(self) -> str:
        return self.inferred.query

    @property
    def final_report(self) -> Report:
        if not self.rounds:
            raise ValueError(f"trajectory {self.id} has no rounds")
        return self.rounds[-1].report

    def all_steps(self) -> list[AgentStep]:
        """Every tool step of every round, in order."""
        return [s for r in self.rounds for s in r.steps]

    def evidence_product_ids(self) -> set[str]:
        """Products the tools showed the agent (search results and visited records)."""
        return {pid for s in self.all_steps() if s.result.ok for pid in s.result.product_ids}

    def evidence_text(self) -> str:
        """All successful observations concatenated: what claims may rest on."""
        return "\n".join(s.result.content for s in self.all_steps() if s.result.ok)
