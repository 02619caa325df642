"""The assembled MACDF assistant: safety -> Leader (demand reasoning) -> Guider clarification ->
Planner -> Eq. 1 scheduled DAG (ProductSearch || WebSearch || ToolCall) -> Eq. 2 reflection /
re-plan -> Decider (streamed advice) -> output safety -> follow-up.

``MACDFAssistant.from_config`` reads ``configs/agents/{runtime,leader,guider,product_search}.yaml``
(overrides as ``file.key=value``, e.g. ``leader.reflection.threshold=0.8``); the LLM is built
from ``configs/llm`` (embedded by default) unless one is passed. ``runtime.llm_enabled=false``
gives the deterministic path (rule demand parse, template questions and advice, no re-ranking),
labelled ``rules-only (no LLM)`` in the trace.
"""

from __future__ import annotations

import inspect
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, Field

from envs.specs import COLLABORATE
from rl_shop.agents.config import AgentConfigError, load_agent_config, validate_config
from rl_shop.agents.decider import Decider
from rl_shop.agents.decider_config import decider_settings
from rl_shop.agents.demand import CatalogVocab, ParsedDemand
from rl_shop.agents.guider import DialogueTracker, Guider, load_guider_policy
from rl_shop.agents.leader import Leader, LeaderConfig, LearnedPolicies, Team
from rl_shop.agents.llm_protocols import note_discarded
from rl_shop.agents.memory import Memory
from rl_shop.agents.planner import PlanConflict, Planner, category_min_prices
from rl_shop.agents.product_search import ProductSearchAgent, candidates_from
from rl_shop.agents.result import AssistantResult, ClarificationTurn, ProductOut
from rl_shop.agents.safety import SafetyReview
from rl_shop.agents.scheduling import load_schedule_policy
from rl_shop.agents.text import tokens
from rl_shop.agents.trace import Tracer, TraceStep
from rl_shop.agents.types import Decision, IntentSpec, Plan, TaskType, WebSearchResult
from rl_shop.agents.websearch import WebSearchAgent
from rl_shop.llm.metrics import scope_delta
from rl_shop.paths import CHECKPOINT_DIR
from rl_shop.sim.slots import SUGGESTION, QueryType

if TYPE_CHECKING:
    import pandas as pd

    from rl_shop.catalog.index import HybridIndex

__all__ = [
    "AssistantResult",
    "ClarificationTurn",
    "MACDFAssistant",
    "ProductOut",
    "TraceStep",
    "call_budget",
    "load_runtime_config",
]

CONFIG_FILES = ("runtime", "leader", "guider", "product_search")
_BOUNDARY = re.compile(r"[.!?](?=\s)\s*|\n")


#: Roles an exported policy can take at run time (policies="learned"); the rest use their heuristics.
Role = Literal["guider", "scheduler", "collaboration"]
LEARNED_ROLES: tuple[str, ...] = get_args(Role)


#: The shopper's side of one clarification turn: (the slot asked, or ``SUGGESTION`` for a shortlist;
#: the text shown; the product ids shown, empty for a question) -> the reply.
AnswerFn = Callable[[str, str, tuple[str, ...]], str]


def as_answer_fn(fn: Callable[..., str] | None) -> AnswerFn | None:
    """``fn`` as an :data:`AnswerFn`. A callable that takes no third positional argument (or one
    with a default that is not named ``shown``, as in ``lambda slot, q, s=shopper: ...``) is the
    older two-argument protocol (a person at a prompt): it is wrapped and reads a shortlist from
    the question's text alone."""
    if fn is None:
        return None
    try:
        params = list(inspect.signature(fn).parameters.values())
    except ValueError:  # no signature to inspect (some builtins): call it with all three
        return fn
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_shown = any(p.kind == p.VAR_POSITIONAL for p in params) or (
        len(positional) >= 3 and (positional[2].default is inspect.Parameter.empty or positional[2].name == "shown")
    )
    return fn if takes_shown else (lambda slot, question, shown: fn(slot, question))


def load_runtime_config(overrides: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """The four agent configs with ``file.key=value`` overrides applied (OmegaConf dotlist)."""
    from omegaconf import OmegaConf

    base = {name: load_agent_config(name) for name in CONFIG_FILES}
    bad = [o for o in overrides or [] if "=" not in o or o.split(".", 1)[0] not in CONFIG_FILES]
    if bad:
        raise AgentConfigError(
            f"bad override(s) {bad}: use FILE.KEY=VALUE with FILE in {list(CONFIG_FILES)}, "
            "e.g. leader.reflection.threshold=0.8"
        )
    try:
        merged = OmegaConf.merge(OmegaConf.create(base), OmegaConf.from_dotlist(list(overrides or [])))
    except Exception as exc:  # omegaconf's own error types
        raise AgentConfigError(f"cannot apply overrides {overrides}: {exc}") from None
    return OmegaConf.to_container(merged, resolve=True)  # type: ignore[return-value]


class RuntimeConfig(BaseModel):
    """``configs/agents/runtime.yaml``, validated once. The YAML file is the one home of every
    value (no defaults here), so a key missing from it is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")

    open_world: bool
    not_carried_types: list[QueryType]
    llm_enabled: bool
    llm: str
    llm_overrides: list[str]
    planner_llm: bool
    websearch_llm: bool
    llm_call_budget: dict[str, list[str]]
    decider_overrides: dict[str, Any]
    min_brand_products: int = Field(ge=1)
    stop_brands: list[str]
    learned_roles: list[Role] = Field(min_length=1)
    policy_dirs: dict[Role, str | None]
    stream_min_diversity: float = Field(ge=0.0, le=1.0)
    stream_drop_patterns: list[str]
    stream_products_first: bool
    stream_min_words: int = Field(ge=0)


def runtime_settings(cfg: dict[str, dict[str, Any]]) -> RuntimeConfig:
    """The ``runtime`` part of :func:`load_runtime_config`'s result as a :class:`RuntimeConfig`."""
    return validate_config(RuntimeConfig, cfg["runtime"], "agents/runtime")


def call_budget(rt: RuntimeConfig, llm: Any | None) -> list[str]:
    """Agent overrides of ``runtime.llm_call_budget`` for the LLM's backend (e.g. ``embedded``):
    they turn off the agent LLM calls whose answers were measured to be discarded on that model."""
    if llm is None:
        return []
    return list(rt.llm_call_budget.get(str(getattr(llm, "backend", "")), []))


class StreamGate:
    """Pass streamed advice on sentence by sentence, dropping what a small model loops on.

    The Decider streams raw LLM chunks; SmolLM2-135M repeats itself ("Best-of-the-list: Best-of-
    the-list: ..."). A sentence that repeats an earlier one or whose word diversity (distinct /
    total words, for sentences of at least 6 words) is below ``min_diversity`` is not shown.
    """

    def __init__(
        self,
        sink: Callable[[str], None],
        min_diversity: float = 0.5,
        drop_patterns: list[str] | tuple[str, ...] = (),
        min_words: int = 3,
    ) -> None:
        self.sink, self.min_diversity, self.min_words = sink, float(min_diversity), int(min_words)
        self.drop = [re.compile(p) for p in drop_patterns]
        self.buffer, self.dropped = "", 0
        self.seen: set[str] = set()
        self.shown: list[str] = []

    def __call__(self, chunk: str) -> None:
        if len(chunk) > 80:  # a whole paragraph (template advice, preface): a unit of its own
            self.flush()
        self.buffer += chunk
        while True:
            m = _BOUNDARY.search(self.buffer)  # ". " or a newline: "$19.98" is not a boundary
            if m is None:
                return
            piece, self.buffer = self.buffer[: m.end()], self.buffer[m.end() :]
            self._release(piece)

    def flush(self) -> None:
        if self.buffer:
            self._release(self.buffer)
            self.buffer = ""

    def _release(self, piece: str) -> None:
        words = tokens(piece)
        key = " ".join(words)
        if not key.strip():  # whitespace / punctuation only: pass newlines, drop stray bullets
            if piece.strip() == "":
                self.sink(piece)
            return
        if (
            key in self.seen
            or len(words) < self.min_words
            or (len(words) >= 6 and len(set(words)) / len(words) < self.min_diversity)
            or any(p.search(piece) for p in self.drop)
        ):
            self.dropped += 1
            return
        self.seen.add(key)
        self.shown.append(piece)
        self.sink(piece)


class _Counters(NamedTuple):
    """Cumulative LLM counters at the start of a run; the run reports their increase."""

    fallbacks: int
    rejections: int
    scopes: dict[str, dict[str, float]]


def _build_llm(rt: RuntimeConfig, llm: Any | None) -> Any | None:
    """The run's LLM: the one passed in, else ``runtime.llm``; None when ``runtime.llm_enabled`` is false."""
    if not rt.llm_enabled:
        return None
    if llm is not None:
        return llm
    from rl_shop.llm import load_llm_config, make_llm

    return make_llm(load_llm_config(rt.llm, list(rt.llm_overrides)))


def catalog_vocab(catalog: pd.DataFrame, rt: RuntimeConfig) -> CatalogVocab:
    """The catalog vocabulary the runtime reads requests with (brands, categories, attribute words)."""
    from rl_shop.sim import load_sim_config

    return CatalogVocab.from_catalog(
        catalog,
        load_sim_config().knowledge,
        min_brand_products=rt.min_brand_products,
        stop_brands=tuple(rt.stop_brands),
    )


def _load_policies(
    policies: Literal["heuristic", "learned"], rt: RuntimeConfig, leader_cfg: LeaderConfig
) -> tuple[Any | None, LearnedPolicies]:
    """The Guider's exported policy (or None) and the Leader's.

    ``policies="learned"`` loads ``runtime.learned_roles`` from ``runtime.policy_dirs`` (default
    ``checkpoints/<role>``); otherwise only the policy directories the Leader's config names.
    """
    from rl_shop.policies.loader import load_policy

    guider_policy = collab_policy = schedule_policy = None
    grid: tuple = ()
    if policies == "learned":
        dirs = rt.policy_dirs
        roles = set(rt.learned_roles)
        if "guider" in roles:
            guider_policy = load_guider_policy(dirs.get("guider") or CHECKPOINT_DIR / "guider")
        if "scheduler" in roles:
            schedule_policy, grid = load_schedule_policy(dirs.get("scheduler") or CHECKPOINT_DIR / "scheduler")
        if "collaboration" in roles:
            collab_dir = dirs.get("collaboration") or CHECKPOINT_DIR / "collaboration"
            collab_policy = load_policy(collab_dir, expect_env_id=COLLABORATE.id)
    else:
        if leader_cfg.scheduling.policy_dir:
            schedule_policy, grid = load_schedule_policy(leader_cfg.scheduling.policy_dir)
        if leader_cfg.collaboration.policy_dir:
            collab_policy = load_policy(leader_cfg.collaboration.policy_dir, expect_env_id=COLLABORATE.id)
    return guider_policy, LearnedPolicies(collab_policy, schedule_policy, grid)


@dataclass
class _Request:
    """One request in flight, shared by the stages of :meth:`MACDFAssistant.run`.

    ``result`` is filled stage by stage; ``tracer`` records steps and timings; ``base`` holds the
    LLM counters at the start (the result reports their increase).
    """

    result: AssistantResult
    tracer: Tracer
    base: _Counters
    on_token: Callable[[str], None] | None
    user_id: str | None
    shortlist: dict[str, Any] | None = None  # the last shortlist shown (a ProductSearch output)

    @property
    def session(self) -> str:
        return self.result.session_id

    def say(self, text: str) -> None:
        """Show one whole message (not-carried notice, contradiction question) as the answer's first token."""
        self.tracer.mark_token()
        if self.on_token is not None:
            self.on_token(text)


class AnswerStream:
    """What the shopper sees of the answer, in order; the first piece marks the time to first token."""

    def __init__(self, req: _Request) -> None:
        self.req = req
        self.shown: list[str] = []

    def emit(self, text: str) -> None:
        self.req.say(text)
        self.shown.append(text)

    @property
    def text(self) -> str:
        return "".join(self.shown).strip()


class MACDFAssistant:
    """The whole loop over injected components; build it with :meth:`from_config`."""

    def __init__(
        self,
        leader: Leader,
        guider: Guider,
        planner: Planner,
        safety: SafetyReview,
        stream_decider: Decider,
        config: dict[str, Any],
        llm: Any | None = None,
        runtime: RuntimeConfig | None = None,
    ) -> None:
        self.leader, self.guider, self.planner = leader, guider, planner
        self.safety, self.stream_decider = safety, stream_decider
        self.config = config
        self.runtime = runtime if runtime is not None else runtime_settings(config)
        self.llm = llm
        self.advice_rejections = 0  # LLM advice replaced by the template (rejected or empty)

    @classmethod
    def from_config(
        cls,
        overrides: list[str] | None = None,
        *,
        llm: Any | None = None,
        catalog: pd.DataFrame | None = None,
        index: HybridIndex | None = None,
        policies: Literal["heuristic", "learned"] = "heuristic",
        memory_path: str | None = None,
    ) -> MACDFAssistant:
        """Assemble every agent from configs; ``llm=None`` builds ``runtime.llm`` unless disabled."""
        if policies not in ("heuristic", "learned"):
            raise ValueError(f"policies must be 'heuristic' or 'learned', got {policies!r}")
        cfg = load_runtime_config(overrides)
        if index is None:
            from rl_shop.catalog import load_catalog
            from rl_shop.catalog.index import HybridIndex

            index = HybridIndex.load_or_build(catalog if catalog is not None else load_catalog())
        rt = runtime_settings(cfg)
        llm = _build_llm(rt, llm)
        budget = call_budget(rt, llm)
        if budget:  # the backend's call budget first, so that the caller's overrides still win
            cfg = load_runtime_config(budget + list(overrides or []))
            rt = runtime_settings(cfg)
        leader_cfg = LeaderConfig.model_validate(cfg["leader"])
        guider_policy, learned = _load_policies(policies, rt, leader_cfg)
        vocab = catalog_vocab(index.catalog, rt)
        memory = Memory(memory_path) if memory_path else Memory.from_config()
        planner = Planner(
            llm=llm if rt.planner_llm else None,
            memory=memory,
            category_min_price=category_min_prices(index.catalog),
        )
        guider = Guider(index.catalog, vocab, cfg["guider"], llm=llm, policy=guider_policy)
        decider_cfg = decider_settings(**rt.decider_overrides)
        team = Team(
            planner=planner,
            guider=guider,
            product_search=ProductSearchAgent(index, cfg["product_search"], llm=llm),
            websearch=WebSearchAgent.from_config(llm=llm if rt.websearch_llm else None),
            decider=Decider(decider_cfg, llm=None),
            memory=memory,
        )
        understander = None
        if rt.open_world:
            from rl_shop.agents.understanding import Understander

            understander = Understander.from_catalog(index.catalog, index=index)
        leader = Leader(leader_cfg, vocab, team, learned, llm=llm, understander=understander)
        return cls(leader, guider, planner, SafetyReview(), Decider(decider_cfg, llm=llm), cfg, llm, runtime=rt)

    # ------------------------------------------------------------------ one request
    def run(
        self,
        query: str,
        *,
        answer_fn: Callable[..., str] | None = None,
        session_id: str | None = None,
        on_token: Callable[[str], None] | None = None,
        max_rounds: int | None = None,
        user_id: str | None = None,
        printer: Callable[[TraceStep], None] | None = None,
    ) -> AssistantResult:
        """Answer one shopping request: screen, reason, clarify, plan-execute-reflect, answer."""
        result = AssistantResult(
            query=str(query),
            session_id=session_id or f"s-{uuid.uuid4().hex[:12]}",
            llm=self.llm.describe() if self.llm is not None else None,
        )
        req = _Request(result, Tracer(printer), self._counters(), on_token, user_id)
        if not self._screen_input(req, query):
            return self._finish(req)
        demand = self._reason(req, query)
        if self._not_carried(demand):  # open world: no question about a product the catalog lacks
            return self._not_carried_answer(req, demand)
        demand = self._clarify(req, demand, as_answer_fn(answer_fn), max_rounds)
        intent = self._commit_intent(req, demand)
        plan = self._plan(req, intent)
        if plan is None:
            req.say(result.answer)
            return self._finish(req)
        outputs, decision = self._execute_and_reflect(req, intent, plan)
        self._answer(req, demand, intent, outputs, decision)
        return self._finish(req)

    # ------------------------------------------------------------------ stages
    def _screen_input(self, req: _Request, query: str) -> bool:
        """Input safety; a refused request gets the refusal as its answer."""
        with req.tracer.step("Safety", "screen_input") as info:
            verdict = self.safety.screen_input(query)
            info.update(allowed=verdict.allowed, category=verdict.category)
        if not verdict.allowed:
            req.result.refused, req.result.refusal = True, verdict.message or verdict.reason
            req.result.answer = verdict.message
        return verdict.allowed

    def _reason(self, req: _Request, query: str) -> ParsedDemand:
        """The Leader's demand reasoning (query type distribution, slots, open-world reading)."""
        with req.tracer.step("Leader", "demand_reasoning") as info:
            demand, detail = self.leader.reason(query)
            info.update(
                detail,
                query_type=demand.query_type,
                confidence=round(demand.confidence, 3),
                slots=demand.model_dump(exclude_defaults=True, exclude={"query", "type_distribution", "sources"}),
            )
        return demand

    def _clarify(
        self,
        req: _Request,
        demand: ParsedDemand,
        answer_fn: AnswerFn | None,
        max_rounds: int | None,
    ) -> ParsedDemand:
        """Ask the Guider's questions while the Leader wants one more (no questions without ``answer_fn``)."""
        tracker = DialogueTracker()
        max_q = self.guider.config.max_questions if max_rounds is None else int(max_rounds)
        tracer, turns = req.tracer, req.result.clarifications
        while answer_fn is not None:
            with tracer.step("Leader", "clarify_or_plan") as info:
                want, why = self.leader.wants_clarification(demand, tracker, len(turns), max_q, tracer.system_now())
                info.update(why, clarify=want, clarity_hat=demand.clarity_estimate)
            if not want:
                break
            with tracer.step("Guider", "choose_slot") as info:
                slot, detail = self.guider.decide(demand, tracker)
                info.update(detail, slot=slot)
            if slot is None:
                break
            if slot != SUGGESTION:
                demand = self._ask(req, demand, tracker, slot, answer_fn)
                continue
            demand, confirmed = self._show_shortlist(req, demand, tracker, answer_fn)
            if confirmed:
                break
        return demand

    def _show_shortlist(
        self, req: _Request, demand: ParsedDemand, tracker: DialogueTracker, answer_fn: AnswerFn
    ) -> tuple[ParsedDemand, bool]:
        """The Clarify env's ``suggest`` in the loop: show the current top picks for confirmation;
        the shopper confirms them (the dialogue ends) or says what is missing. True = confirmed."""
        tracer = req.tracer
        with tracer.step("ProductSearch", "shortlist") as info:
            intent = self.leader.to_intent(demand, req.user_id)
            params = self.planner.search_params(intent, k=self.guider.config.shortlist_size)
            req.shortlist = self.leader.ps.search(intent.query or demand.query, params)
            products = req.shortlist["products"]
            shown = [str(p["product_id"]) for p in products]
            info.update(shown=shown)
        question = self.guider.shortlist_question(products)
        answer = self._wait_for_reply(req, answer_fn, SUGGESTION, question, tuple(shown))
        with tracer.step("Guider", "parse_shortlist_reply") as info:
            status, values = self.guider.parse_shortlist_reply(answer)
            demand = self.guider.apply_shortlist(demand, status, values, tracker, shown)
            info.update(status=status, values=values)
        req.result.clarifications.append(
            ClarificationTurn(slot=SUGGESTION, question=question, answer=answer, status=status, parsed=values)
        )
        return demand, status == "confirmed"

    def _ask(
        self,
        req: _Request,
        demand: ParsedDemand,
        tracker: DialogueTracker,
        slot: str,
        answer_fn: AnswerFn,
    ) -> ParsedDemand:
        """One clarification turn: word the question, wait for the shopper, read the answer."""
        tracer = req.tracer
        with tracer.step("Guider", "word_question", slot=slot) as info:
            question, source = self.guider.question(slot, demand)
            info.update(question=question, source=source)
        answer = self._wait_for_reply(req, answer_fn, slot, question, ())
        with tracer.step("Guider", "parse_answer", slot=slot) as info:
            status, values, source = self.guider.parse_answer(slot, answer)
            demand = self.guider.apply(demand, slot, status, values, tracker)
            info.update(status=status, values=values, source=source)
        req.result.clarifications.append(
            ClarificationTurn(slot=slot, question=question, answer=answer, status=status, parsed=values)
        )
        return demand

    @staticmethod
    def _wait_for_reply(req: _Request, answer_fn: AnswerFn, slot: str, question: str, shown: tuple[str, ...]) -> str:
        """The shopper's reply to one turn; the wait is hers, not the assistant's (``user_wait_s``)."""
        req.tracer.mark_output()
        t_wait = time.perf_counter()
        answer = str(answer_fn(slot, question, shown))
        req.tracer.user_wait_s += time.perf_counter() - t_wait
        return answer

    def _commit_intent(self, req: _Request, demand: ParsedDemand) -> IntentSpec:
        """The structured intent the rest of the run works on, recorded in the result and Memory."""
        intent = self.leader.to_intent(demand, req.user_id)
        result = req.result
        result.query_type, result.type_distribution = intent.query_type, demand.type_distribution
        result.intent = intent.model_dump(mode="json", exclude_defaults=True)
        self.leader.remember(req.session, "demand", demand.model_dump(mode="json"))
        return intent

    def _plan(self, req: _Request, intent: IntentSpec) -> Plan | None:
        """The Planner's DAG; None when the constraints contradict (the answer then asks which to relax)."""
        with req.tracer.step("Planner", "plan") as info:
            try:
                plan = self.planner.plan(intent, session_id=req.session)
            except PlanConflict as exc:  # contradictions the Planner could not relax: say which
                info["conflicts"] = exc.conflicts
                req.result.answer = (
                    "Your requirements contradict each other ("
                    + "; ".join(f"{k.replace('_', ' ')}: {d}" for k, d in exc.conflicts)
                    + "). Which one should I relax?"
                )
                req.result.follow_up = "Which requirement should I relax?"
                return None
            info.update(tasks=[f"{t.task_id}:{t.type.value}" for t in plan.tasks], source=plan.source, notes=plan.notes)
        return plan

    def _execute_and_reflect(self, req: _Request, intent: IntentSpec, plan: Plan) -> tuple[list[Any], Decision]:
        """Execute the DAG (Eq. 1 scheduling), decide, reflect (Eq. 2) and re-plan until the score passes."""
        tracer, result = req.tracer, req.result
        # a shortlist the shopper confirmed is evidence the Decider chooses from (Leader.decide)
        outputs: list[Any] = [req.shortlist] if intent.confirmed and req.shortlist else []
        dag_wall = 0.0
        while True:
            with tracer.step("Leader", "execute_dag", n_tasks=len(plan.tasks), container=True) as info:
                report, events = self.leader.execute(plan, intent, req.session, tracer)
                info.update(wall_s=round(report.wall_s, 4), failed=report.failed, scheduling_events=events)
            dag_wall += report.wall_s
            outputs += [o for tid, o in report.outputs.items() if plan.task(tid).type != TaskType.DECISION]
            with tracer.step("Decider", "decide") as info:
                decision = self.leader.decide(intent, outputs)
                info.update(
                    recommended=[r.product_id for r in decision.recommendations], excluded=len(decision.excluded)
                )
            with tracer.step("Leader", "reflect") as info:
                refl = self.leader.reflect(intent, decision, outputs, result.replans)
                info.update(refl.model_dump())
            result.reflection_score = round(refl.score, 4)
            if not refl.replan:
                break
            result.replans += 1
            with tracer.step("Planner", "replan", reason=refl.reason) as info:
                plan = self.planner.replan(
                    intent,
                    refl.reason,
                    session_id=req.session,
                    score=refl.score,
                    remedy=self.leader.reflector.remedy_for(intent.query_type),
                )
                info.update(tasks=[f"{t.task_id}:{t.type.value}" for t in plan.tasks], notes=plan.notes)
        result.timings["dag_wall_s"] = round(dag_wall, 4)
        return outputs, decision

    def _answer(
        self, req: _Request, demand: ParsedDemand, intent: IntentSpec, outputs: list[Any], decision: Decision
    ) -> None:
        """Stream the answer, screen it, and fill the result's answer, products and follow-up."""
        stream = AnswerStream(req)
        final = self._stream_advice(req, stream, intent, outputs, decision)
        with req.tracer.step("Safety", "screen_output") as info:
            cleaned, verdict = self.safety.filter_decision(final, intent, candidates_from(outputs))
            info.update(
                allowed=verdict.allowed, category=verdict.category, removed=verdict.details.get("violations", {})
            )
        removed = bool(verdict.details.get("violations")) or not verdict.allowed
        result = req.result
        # The answer is what the shopper saw, unless the output screen had to replace it.
        result.answer = cleaned.advice if removed else stream.text
        result.products = [
            ProductOut(
                product_id=r.product_id,
                title=r.title,
                brand=r.brand,
                price=r.price,
                reason="; ".join(r.reasons),
                score=r.score,
            )
            for r in cleaned.recommendations
        ]
        with req.tracer.step("Guider", "follow_up") as info:
            result.follow_up = self.guider.follow_up(demand, cleaned.follow_up_question)
            info["follow_up"] = result.follow_up
        if self.llm is not None and final.advice_source == "template" and cleaned.recommendations:
            self.advice_rejections += 1  # the LLM advice was rejected (or empty): template shown

    def _stream_advice(
        self, req: _Request, stream: AnswerStream, intent: IntentSpec, outputs: list[Any], decision: Decision
    ) -> Decision:
        """Preface and top picks first, then the Decider's advice through the sentence gate."""
        rt = self.runtime
        gate = StreamGate(stream.emit, rt.stream_min_diversity, rt.stream_drop_patterns, rt.stream_min_words)
        preface = self._preface(intent, outputs)  # deterministic text: shown as is, not gated
        if preface:
            stream.emit(preface + "\n")
        if rt.stream_products_first and decision.recommendations:
            # The ranked list is known before the advice is written: show it first (TTFT).
            picks = "; ".join(
                f"{i}. {r.title}" + (f" (${r.price:.2f})" if r.price is not None else "")
                for i, r in enumerate(decision.recommendations, 1)
            )
            stream.emit(f"Top picks: {picks}\n")
        with req.tracer.step("Decider", "advice") as info:
            final = self.leader.decide(intent, outputs, decider=self.stream_decider, on_token=gate)
            gate.flush()
            if not "".join(gate.shown).strip():  # everything streamed was dropped: show the template
                plain = self.leader.decide(intent, outputs)
                gate(plain.advice)
                gate.flush()
                final = final.model_copy(update={"advice": plain.advice, "advice_source": "template"})
                note_discarded(self.llm)  # every streamed sentence failed the gate
            info.update(source=final.advice_source, stream_sentences_dropped=gate.dropped)
        return final

    def _not_carried(self, demand: ParsedDemand) -> bool:
        """The request names a product type the catalog does not carry. The open-world reading
        decides (its carried-or-not gate is fitted on human requests); the closed rule parse's
        category no longer vetoes it, since that parse mistakes most uncarried types for a
        category. Only the reading's types in ``not_carried_types`` are answered so, and never a
        question: a comparison or a question goes on to the Planner (the web may answer it)."""
        return (
            bool(demand.product_type)
            and demand.in_catalog is False
            and demand.open_type in self.runtime.not_carried_types
            and not demand.open_question
        )

    def _not_carried_answer(self, req: _Request, demand: ParsedDemand) -> AssistantResult:
        """Say plainly that the catalog has no such product, and name the nearest real one."""
        result = req.result
        with req.tracer.step("Leader", "open_world") as info:
            hits = self.leader.ps.index.search(demand.query, k=1)
            nearest = None
            if hits:
                row = self.leader.ps.row(hits[0].product_id)
                nearest = f"{row['title']} (in {row['category']})"
            info.update(product_type=demand.product_type, nearest=nearest)
        result.query_type, result.type_distribution = demand.query_type, demand.type_distribution
        result.answer = (
            f"This catalog does not carry {demand.product_type} (it mostly holds computers, "
            "electronics, office supplies and cameras), so I have nothing to recommend for it."
        )
        if nearest:
            result.answer += f" The closest product it has is {nearest}, if that helps."
        result.follow_up = "Is there something else I can look for?"
        req.say(result.answer)
        return self._finish(req)

    @staticmethod
    def _preface(intent: IntentSpec, outputs: list[Any]) -> str:
        """The factual part of a Q&A answer (catalog facts, comparison table, web summary)."""
        lines: list[str] = []
        for o in outputs:
            if isinstance(o, dict) and o.get("tool") == "product_details" and o.get("product"):
                facts = ", ".join(f"{k}: {v}" for k, v in o["facts"].items())
                lines.append(f"{o['product']['title']}: {facts}.")
            elif isinstance(o, dict) and o.get("tool") == "compare_specs" and o.get("products"):
                for p in o["products"]:
                    price = f"${p['price']:.2f}" if p.get("price") is not None else "no price"
                    lines.append(
                        f"- {p['title']} ({p.get('brand') or 'unknown brand'}, {price}): {p.get('spec_summary', '')}"
                    )
        if intent.query_type in ("general_qa", "product_qa"):
            web = next((o for o in outputs if isinstance(o, WebSearchResult) and o.summary), None)
            if web is not None:
                lines.append(web.summary)
        return "\n".join(lines)

    def _rejections(self) -> int:
        """LLM answers discarded so far by the agents' checks (Guider, searches, advice)."""
        return self.guider.llm_rejections + self.leader.llm_fallbacks + self.advice_rejections

    def _counters(self) -> _Counters:
        if self.llm is None:
            return _Counters(0, self._rejections(), {})
        return _Counters(self.llm.metrics.fallbacks, self._rejections(), self.llm.metrics.scope_snapshot())

    def _finish(self, req: _Request) -> AssistantResult:
        """Timings, trace and the LLM counters' increase over this request."""
        result, tracer, base = req.result, req.tracer, req.base
        total = tracer.system_now()
        result.trace = list(tracer.steps)
        result.timings = {
            "ttft_s": round(tracer.first_token_s if tracer.first_token_s is not None else total, 4),
            "first_output_s": round(tracer.first_output_s if tracer.first_output_s is not None else total, 4),
            "total_s": round(total, 4),
            "user_wait_s": round(tracer.user_wait_s, 4),
            **{k: v for k, v in result.timings.items()},
            **tracer.agent_seconds(),
        }
        fb = (self.llm.metrics.fallbacks - base.fallbacks) if self.llm is not None else 0
        result.llm_fallbacks = int(fb + self._rejections() - base.rejections)
        if self.llm is not None:
            result.llm_calls = scope_delta(self.llm.metrics.scope_snapshot(), base.scopes)
        return result
