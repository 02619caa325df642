"""Leader Agent (MACDF 3.2): demand reasoning, clarify-or-plan, Eq. 1 scheduled DAG execution,
Eq. 2 reflection with re-planning.

* Demand reasoning: the LLM's multi-intent distribution (``DemandParse``: types with confidences
  and extracted slots) validated against the catalog vocab and mixed with the rule parser's
  (:mod:`rl_shop.agents.demand`); with the LLM off, the rule parse alone (labelled in the trace).
* Clarify or plan: an exported Collaborate env policy (``envs.specs.COLLABORATE``) when configured (action
  ``clarify`` vs anything else, on the shared ``features.collaborate`` observation), else the
  heuristic: clarify only the types in ``clarify_types`` and only while the Guider's policy wants
  to ask.
* Execution: the Planner's DAG on the asyncio ``DAGExecutor`` with the Eq. 1 trigger
  (:mod:`rl_shop.agents.scheduling`); outputs go to Memory.
* Reflection: Eq. 2 (:mod:`rl_shop.agents.reflection`); below the threshold ``Planner.replan``
  stores the failure case (long-term reflection store read by later planning) and re-plans.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from rl_shop.agents.config import defaults_from
from rl_shop.agents.decider import Decider
from rl_shop.agents.demand import (
    CatalogVocab,
    DemandParse,
    ParsedDemand,
    demand_messages,
    enrich,
    llm_distribution,
    merge,
    rule_parse,
    validate_llm_parse,
)
from rl_shop.agents.executor import DAGExecutor, ExecutionReport, Handler
from rl_shop.agents.guider import DialogueTracker, Guider
from rl_shop.agents.llm_protocols import note_discarded
from rl_shop.agents.memory import Memory
from rl_shop.agents.planner import Planner
from rl_shop.agents.product_search import ProductSearchAgent, candidates_from
from rl_shop.agents.reflection import ReflectionConfig, ReflectionResult, Reflector, evidence_found
from rl_shop.agents.scheduling import Eq1Trigger, SchedulingConfig
from rl_shop.agents.trace import Tracer
from rl_shop.agents.types import Decision, IntentSpec, Plan, Task, TaskType, WebSearchResult
from rl_shop.agents.websearch import WebSearchAgent
from rl_shop.catalog.vocab import CONNECTIVITY
from rl_shop.policies.features.collaborate import CLARIFY, CollaborateState
from rl_shop.policies.features.collaborate import action_mask as collab_action_mask
from rl_shop.policies.features.collaborate import featurize as collab_featurize
from rl_shop.sim.slots import QUERY_TYPES


@defaults_from("leader", "collaboration")
class CollaborationConfig(BaseModel):
    policy_dir: str | None


def collaboration_limits(policy: object) -> dict[str, int]:
    """``max_steps``, ``max_clarify``, ``max_replan`` of the env a collaboration policy was trained on.

    Read from its policy card (the training run's env kwargs), so the observation's step scale and
    the action mask are the ones the policy learned with; a card without them gets the env's
    defaults (``configs/env/collaborate.yaml``).
    """
    keys = ("max_steps", "max_clarify", "max_replan")
    card = getattr(policy, "card", None)
    trained = ((card.training.config.get("env") or {}).get("kwargs") or {}) if card is not None else {}
    if not all(k in trained for k in keys):
        from envs.collaborate import load_default_kwargs

        trained = load_default_kwargs() | trained
    return {k: int(trained[k]) for k in keys}


@defaults_from("leader")
class LeaderConfig(BaseModel):
    """``configs/agents/leader.yaml``."""

    use_llm_reasoning: bool
    reasoning_max_tokens: int = Field(ge=8)
    llm_type_weight: float = Field(ge=0.0, le=1.0)
    rule_residual: float = Field(ge=0.0, lt=1.0)
    clarify_types: list[str]
    collaboration: CollaborationConfig
    max_concurrency: int = Field(ge=1)
    trigger_timeout_s: float = Field(gt=0)
    poll_interval_s: float = Field(gt=0)
    scheduling: SchedulingConfig
    reflection: ReflectionConfig
    time_sensitive_pattern: str
    price_sensitive_pattern: str
    web_reference_date: date | None  # freshness reference of Eq. 4 (null = today)


@dataclass(frozen=True)
class Team:
    """The agents the Leader orchestrates over the shared Memory."""

    planner: Planner
    guider: Guider
    product_search: ProductSearchAgent
    websearch: WebSearchAgent
    decider: Decider
    memory: Memory


@dataclass(frozen=True)
class LearnedPolicies:
    """Exported policies the Leader consults; None keeps the heuristic of that decision."""

    collaboration: Any | None = None  # clarify or plan (Collaborate env)
    schedule: Any | None = None  # Eq. 1 trigger per event (Schedule env)
    schedule_grid: tuple = ()  # the triggers the schedule policy's actions index


class Leader:
    """Orchestrates one request over the other agents (all injected)."""

    def __init__(
        self,
        config: LeaderConfig,
        vocab: CatalogVocab,
        team: Team,
        policies: LearnedPolicies | None = None,
        llm: Any | None = None,
        understander: Any | None = None,
    ) -> None:
        policies = policies or LearnedPolicies()
        self.config = config
        self.understander = understander  # open-world reading (rl_shop.agents.understanding); None: rules only
        self.vocab = vocab
        self.planner = team.planner
        self.guider = team.guider
        self.ps = team.product_search
        self.web = team.websearch
        self.decider = team.decider
        self.memory = team.memory
        self.llm = llm
        self.collaboration_policy = policies.collaboration
        self.schedule_policy = policies.schedule
        self.schedule_grid = policies.schedule_grid
        self.reflector = Reflector(config.reflection)

    @property
    def llm_fallbacks(self) -> int:
        """LLM answers the Leader's searches discarded so far (re-ranking that failed its checks)."""
        return int(self.ps.llm_fallbacks)

    def remember(self, session: str, key: str, value: object) -> None:
        """Put a request-level fact in the shared Memory (under the Leader's name)."""
        self.memory.set_context(session, "Leader", key, value)

    # -------------------------------------------------------------- demand reasoning
    def reason(self, query: str) -> tuple[ParsedDemand, dict[str, Any]]:
        """Rule parse, plus the LLM's distribution and slots validated against the catalog."""
        rules = rule_parse(query, self.vocab, self.config.rule_residual)
        detail: dict[str, Any] = {"rule_type": rules.query_type}
        if self.understander is not None:
            reading = self.understander.parse(query)
            rules = enrich(rules, reading, self.vocab)
            detail["understanding"] = {
                "product_type": reading.product_type,
                "in_catalog": reading.in_catalog,
                "budget_max": reading.budget_max,
                "exclusions": reading.exclusions,
            }
        if self.llm is None or not self.config.use_llm_reasoning:
            detail["mode"] = "rules-only (no LLM)"
            return rules, detail
        try:
            # No caller fallback: the documented default parser rescues a truncated object (the
            # distribution comes first in the schema, so it survives a cut-off slot list).
            res = self.llm.structured(demand_messages(query), DemandParse, max_tokens=self.config.reasoning_max_tokens)
        except Exception as exc:  # noqa: BLE001 - a failing backend leaves the rule parse
            detail.update(mode="rules (LLM error)", llm_error=f"{type(exc).__name__}: {exc}")
            return rules, detail
        if res.value is None:
            note_discarded(self.llm)
            detail.update(mode="rules (LLM output invalid, fallback)", llm_errors=res.errors[:3])
            return rules, detail
        accepted, notes = validate_llm_parse(res.value, query, self.vocab)
        dist = llm_distribution(res.value)
        merged = merge(rules, accepted, dist, self.config.llm_type_weight)
        if not accepted and merged.query_type == rules.query_type:
            note_discarded(self.llm)  # no slot survived the catalog checks, the type is unchanged
        detail.update(
            mode="llm+rules" + (" (LLM JSON rescued by the fallback parser)" if res.used_fallback else ""),
            llm_distribution={k: round(v, 3) for k, v in (dist or {}).items() if v},
            llm_accepted=accepted,
            llm_rejected=notes,
            cached=bool(res.cached),
        )
        return merged, detail

    def to_intent(self, d: ParsedDemand, user_id: str | None = None) -> IntentSpec:
        """The clarified intent as the Planner / Decider see it."""
        req, excl = _attribute_constraints(d)
        preferred = [b for b in d.preferred_brands if b not in d.excluded_brands]
        category = d.category
        if d.query_type in ("comparison", "product_qa") and d.targets:
            # Brands, colours and categories read inside product names ("sony lcs-csvc carrying
            # case", "... sherpa blue") name the targets, they are not the shopper's constraints;
            # the targets are looked up by name across the whole catalog.
            category, preferred, req = None, [], {}
        query = _search_text(d)
        return IntentSpec(
            query=query,
            query_type=d.query_type,
            category=category,
            budget=d.budget,
            budget_min=d.budget_min,
            preferred_brands=preferred,
            excluded_brands=d.excluded_brands,
            required_attributes=req,
            excluded_attributes=excl,
            targets=list(d.targets),
            confirmed=list(d.confirmed),
            user_id=user_id,
            slots={
                "use_case": d.use_case,
                "use_case_categories": list(d.use_case_categories),
                "qa_field": d.qa_field,
                "department": d.department,
            },
            time_sensitive=bool(re.search(self.config.time_sensitive_pattern, d.query, re.I)),
            price_sensitive=d.budget is not None or bool(re.search(self.config.price_sensitive_pattern, d.query, re.I)),
        )

    # -------------------------------------------------------------- clarify or plan
    def wants_clarification(
        self, d: ParsedDemand, t: DialogueTracker, n_asked: int, max_questions: int, elapsed_s: float
    ) -> tuple[bool, dict[str, Any]]:
        """Whether the Leader hands the dialogue to the Guider for one more question."""
        if n_asked >= max_questions or t.quit:
            return False, {"by": "limit", "asked": n_asked, "max_questions": max_questions, "quit": t.quit}
        if self.collaboration_policy is not None:
            limits = collaboration_limits(self.collaboration_policy)
            state = CollaborateState(
                predicted_type=QUERY_TYPES.index(d.query_type),
                type_confidence=d.confidence,
                steps=n_asked,
                max_steps=limits["max_steps"],
                elapsed_s=elapsed_s,
                n_clarify=n_asked,
                n_product_search=0,
                n_web_search=0,
                n_replan=0,
                relevance_hat=0.0,
                satisfaction_hat=0.0,
                clarity_hat=d.clarity_estimate,
                gamma=self.config.reflection.gamma,
                replan_threshold=self.config.reflection.threshold,
            )
            mask = collab_action_mask(state, limits["max_clarify"], limits["max_replan"])
            action = int(self.collaboration_policy.act(collab_featurize(state), mask))
            return action == CLARIFY, {"by": "collaboration policy", "action": int(action)}
        ok = d.query_type in self.config.clarify_types
        return ok, {"by": "heuristic", "query_type": d.query_type, "clarify_types": self.config.clarify_types}

    # -------------------------------------------------------------- execution
    def handlers(self, intent: IntentSpec, tracer: Tracer) -> dict[TaskType | str, Handler]:
        """Executor handlers for the four atomic task types (each traced under its agent)."""
        use_cats = intent.slots.get("use_case_categories") or []

        def product_search(task: Task, inputs: dict[str, Any]) -> dict[str, Any]:
            params = dict(task.params)
            if not params.get("category") and use_cats and not params.get("target"):
                params["categories"] = list(use_cats)
            with tracer.step("ProductSearch", "search", task_id=task.task_id, query=task.query) as info:
                out = self.ps.search(task.query, params, request=intent.query)
                info.update(
                    n=len(out["products"]), relaxed=out["relaxed"], reranked=out["reranked"], filters=out["filters"]
                )
            return out

        def web_search(task: Task, inputs: dict[str, Any]) -> WebSearchResult:
            with tracer.step("WebSearch", "retrieve_filter_integrate", task_id=task.task_id, query=task.query) as info:
                res = self.web.run(
                    task.query,
                    intent,
                    purpose=task.params.get("purpose", "default"),
                    today=self.config.web_reference_date,
                )
                info.update(n_documents=len(res.documents), summary_source=res.summary_source)
            return res

        def tool_call(task: Task, inputs: dict[str, Any]) -> dict[str, Any]:
            tool = task.params.get("tool", "")
            with tracer.step("ToolCall", tool or "tool", task_id=task.task_id) as info:
                if tool == "product_details":
                    out = self.ps.product_details(task, inputs)
                elif tool == "compare_specs":
                    out = self.ps.compare_specs(task, inputs)
                else:
                    raise ValueError(
                        f"unknown tool {tool!r} in task {task.task_id}; known: product_details, compare_specs"
                    )
                info["found"] = bool(out.get("product") or out.get("products"))
            return out

        def decision(task: Task, inputs: dict[str, Any]) -> dict[str, list[str]]:
            return {"inputs": list(inputs)}  # the decision itself is taken after reflection (Leader.decide)

        return {
            TaskType.PRODUCT_SEARCH: product_search,
            TaskType.WEB_SEARCH: web_search,
            TaskType.TOOL_CALL: tool_call,
            TaskType.DECISION: decision,
        }

    def execute(
        self, plan: Plan, intent: IntentSpec, session_id: str, tracer: Tracer, max_concurrency: int | None = None
    ) -> tuple[ExecutionReport, list[dict[str, Any]]]:
        """Run the plan with the Eq. 1 trigger; returns the report and the scheduling events."""
        trigger = Eq1Trigger(plan, self.config.scheduling, self.schedule_policy, self.schedule_grid)
        ex = DAGExecutor(
            self.handlers(intent, tracer),
            memory=self.memory,
            max_concurrency=max_concurrency or self.config.max_concurrency,
            trigger=trigger,
            poll_interval_s=self.config.poll_interval_s,
            trigger_timeout_s=self.config.trigger_timeout_s,
        )
        report = ex.run_sync(plan, session_id)
        return report, trigger.events

    # -------------------------------------------------------------- decide + reflect
    def decide(
        self,
        intent: IntentSpec,
        outputs: list[Any],
        decider: Decider | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Decision:
        """The Decider over every product the run found, with the web evidence and user history."""
        cands = candidates_from(outputs)
        named = {"comparison": "compare_specs", "product_qa": "product_details"}.get(intent.query_type)
        tool_outs = [o for o in outputs if isinstance(o, Mapping) and o.get("tool") == named]
        if named and candidates_from(tool_outs):
            cands = candidates_from(tool_outs)  # decide between the products the shopper named
        said_yes = set(intent.confirmed)
        confirmed = [c for c in cands if c["product_id"] in said_yes]
        if confirmed:
            cands = confirmed  # decide between the products of the shortlist she said yes to
        web = next((o for o in outputs if isinstance(o, WebSearchResult)), None)
        history = self.memory.user_history(intent.user_id) if intent.user_id else None
        return (decider or self.decider).decide(
            intent, cands, web=web, user_history=history, brand_counts=self.ps._brand_counts, on_token=on_token
        )

    def reflect(self, intent: IntentSpec, decision: Decision, outputs: list[Any], replans: int) -> ReflectionResult:
        """Eq. 2 over the decision, checking each recommendation's catalog row."""
        rows: dict[str, Mapping[str, Any]] = {}
        for r in decision.recommendations:
            with contextlib.suppress(KeyError):  # a product the catalog lacks is judged without its row
                rows[r.product_id] = self.ps.row(r.product_id)
        return self.reflector.evaluate(intent, decision, rows, evidence_found(outputs), replans)


def _attribute_constraints(d: ParsedDemand) -> tuple[dict[str, Any], dict[str, Any]]:
    """The required and the excluded product attributes of a demand (an excluded connectivity
    such as "no bluetooth" is a connectivity exclusion, any other excluded word a feature one)."""
    req: dict[str, Any] = {}
    if d.colour:
        req["colour"] = d.colour
    if d.min_capacity_gb:
        req["capacity_gb"] = float(d.min_capacity_gb)
    if d.min_size_in is not None or d.max_size_in is not None:
        req["size_in"] = {k: v for k, v in (("min", d.min_size_in), ("max", d.max_size_in)) if v is not None}
    if d.connectivity:
        req["connectivity"] = list(d.connectivity)
    if d.features:
        req["features"] = list(d.features)
    excl: dict[str, Any] = {}
    conn_excl = [f for f in d.excluded_features if f in CONNECTIVITY]
    feat_excl = [f for f in d.excluded_features if f not in CONNECTIVITY]
    if conn_excl:
        excl["connectivity"] = conn_excl
    if feat_excl:
        excl["features"] = feat_excl
    return req, excl


def _search_text(d: ParsedDemand) -> str:
    """The request text plus the values the shopper gave only in answers ("any ideas for
    electronics stuff?" + "headphones"), so retrieval ranks by them too."""
    answered = {s for s, src in d.sources.items() if src == "answer"}
    words = (
        ([d.category] if "category" in answered and d.category else [])
        + ([d.colour] if "colour" in answered and d.colour else [])
        + (list(d.preferred_brands) if "brand" in answered else [])
        + (list(d.connectivity) if "connectivity" in answered else [])
        + (list(d.features) if "features" in answered else [])
        + ([d.use_case] if "use_case" in answered and d.use_case else [])
    )
    return " ".join([d.query, *[w for w in words if w.lower() not in d.query.lower()]])
