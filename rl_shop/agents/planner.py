"""Planner Agent (MACDF 3.4): turn a clarified intent into the task graph ``G=(V,E)``.

Two steps as in the paper: Semantic Parsing & Atomic Task Generation (ProductSearch, WebSearch,
ToolCall, Decision vertices) and Dependency Construction (edges). Feasibility comes from the
dual-constraint mechanism:

* Hard Constraints are symbolic and checked by :func:`validate_plan` (comparison needs >= 2
  ProductSearch tasks; time-sensitive questions need a WebSearch; exactly one Decision that
  depends on every leaf; acyclic). Contradictory intents raise :class:`PlanConflict`, which
  :meth:`Planner.plan` answers by relaxing the conflicting constraint and re-planning.
* Soft Constraints are penalty terms of :func:`score_plan` (weights in
  ``configs/agents/planner.yaml``) used to choose between candidate plans.

An injected LLM may propose a plan (structured output); it is validated, repaired where possible
and otherwise replaced by the symbolic plan, so a weak model can never produce an infeasible DAG.
The reflection knowledge base in Memory (failure cases of this query type) adds remedies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import networkx as nx
from pydantic import BaseModel, Field

from rl_shop.agents.config import defaults_from, load_agent_config, validate_config
from rl_shop.agents.llm_protocols import SupportsStructured
from rl_shop.agents.memory import Memory
from rl_shop.agents.text import tokens, unique
from rl_shop.agents.types import IntentLike, IntentSpec, Plan, Task, TaskType

if TYPE_CHECKING:
    import pandas as pd

REMEDIES = ("add_web_search", "add_product_rewrite")


@defaults_from("planner", "soft_constraints")
class SoftConstraintWeights(BaseModel):
    """Weights of the Soft-Constraint plan score."""

    call_penalty: float
    depth_penalty: float
    duplicate_query_penalty: float
    price_priority_penalty: float
    coverage_reward: float


@defaults_from("planner", "reflection")
class ReflectionConfig(BaseModel):
    """How failure cases from the reflection knowledge base change a plan."""

    min_similarity: float
    min_cases: int
    default_remedy: dict[str, Literal["add_web_search", "add_product_rewrite"]]


class _TaskList:
    """The tasks of a plan being built; ``add`` numbers them t1, t2, ..."""

    def __init__(self) -> None:
        self.tasks: list[Task] = []

    def add(
        self,
        type_: TaskType,
        query: str,
        params: dict[str, Any] | None = None,
        depends_on: list[str] | None = None,
        priority: float = 0.5,
    ) -> str:
        tid = f"t{len(self.tasks) + 1}"
        self.tasks.append(
            Task(
                task_id=tid,
                type=type_,
                query=query,
                params=params or {},
                depends_on=depends_on or [],
                priority=priority,
            )
        )
        return tid


@defaults_from("planner")
class PlannerConfig(BaseModel):
    """``configs/agents/planner.yaml``."""

    use_llm_proposal: bool
    llm_max_tokens: int = Field(ge=16)
    max_replans: int = Field(ge=0)
    product_search_k: int = Field(ge=1)
    max_product_rewrites: int = Field(ge=0)
    min_comparison_targets: int = Field(ge=2)
    soft_constraints: SoftConstraintWeights
    reflection: ReflectionConfig
    tools: dict[str, str]


class PlanConflict(ValueError):
    """The intent's constraints contradict each other; ``conflicts`` names each one (kind, detail)."""

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        self.conflicts = conflicts
        super().__init__("plan conflict: " + "; ".join(f"{k}: {d}" for k, d in conflicts))


class InvalidPlan(ValueError):
    """A plan breaks a Hard Constraint; ``errors`` lists every violation."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("invalid plan: " + "; ".join(errors))


# ------------------------------------------------------------------------------------------ conflicts


def find_conflicts(intent: IntentSpec, category_min_price: Mapping[str, float] | None = None) -> list[tuple[str, str]]:
    """Contradictions in an intent (empty list when it is satisfiable as far as we can tell)."""
    conflicts: list[tuple[str, str]] = []
    both = sorted(set(intent.preferred_brands) & set(intent.excluded_brands))
    for brand in both:
        conflicts.append(("brand_preferred_and_excluded", brand))
    if intent.budget is not None and intent.budget <= 0:
        conflicts.append(("non_positive_budget", f"budget {intent.budget:g}"))
    if intent.budget is not None and intent.budget_min is not None and intent.budget_min > intent.budget:
        conflicts.append(("budget_range_inverted", f"min {intent.budget_min:g} > max {intent.budget:g}"))
    if intent.budget is not None and intent.category and category_min_price:
        cheapest = category_min_price.get(intent.category)
        if cheapest is not None and intent.budget < cheapest:
            conflicts.append(
                (
                    "budget_below_category_minimum",
                    f"budget {intent.budget:g} < cheapest {intent.category!r} at {cheapest:g}",
                )
            )
    for key, value in intent.required_attributes.items():
        if key in intent.excluded_attributes:
            excl = intent.excluded_attributes[key]
            req_vals = {str(v).lower() for v in (value if isinstance(value, list) else [value])}
            excl_vals = {str(v).lower() for v in (excl if isinstance(excl, list) else [excl])}
            if req_vals & excl_vals:
                conflicts.append(("attribute_required_and_excluded", f"{key}={sorted(req_vals & excl_vals)}"))
    return conflicts


def resolve_conflicts(
    intent: IntentSpec, conflicts: list[tuple[str, str]], category_min_price: Mapping[str, float] | None = None
) -> tuple[IntentSpec, list[str]]:
    """Relax each conflicting constraint (the re-planning step) and say what was relaxed.

    Exclusions win over preferences (never recommend what the user ruled out); an impossible
    budget is dropped (the Decider then reports prices against the stated budget).
    """
    data = intent.model_dump()
    notes: list[str] = []
    for kind, detail in conflicts:
        if kind == "brand_preferred_and_excluded":
            data["preferred_brands"] = [b for b in data["preferred_brands"] if b != detail]
            notes.append(f"relaxed: brand {detail!r} was both preferred and excluded; kept the exclusion")
        elif kind == "budget_range_inverted":
            data["budget"], data["budget_min"] = data["budget_min"], data["budget"]
            notes.append("relaxed: swapped an inverted budget range")
        elif kind in ("budget_below_category_minimum", "non_positive_budget"):
            data["budget"] = None
            data["budget_min"] = None
            data["price_sensitive"] = True
            notes.append(f"relaxed: dropped the budget ({detail}); ranking stays price-sensitive")
        elif kind == "attribute_required_and_excluded":
            key = detail.split("=", 1)[0]
            data["excluded_attributes"].pop(key, None)
            notes.append(f"relaxed: attribute {key!r} was both required and excluded; kept the requirement")
    return IntentSpec.model_validate(data), notes


def category_min_prices(products: pd.DataFrame) -> dict[str, float]:
    """Cheapest price per category from a catalog DataFrame (columns ``category``, ``price``)."""
    missing = {"category", "price"} - set(getattr(products, "columns", []))
    if missing:
        raise ValueError(f"category_min_prices needs a DataFrame with columns {sorted(missing)}")
    frame = products.dropna(subset=["price"])
    return {str(k): float(v) for k, v in frame.groupby("category")["price"].min().items()}


# ------------------------------------------------------------------------------------------ validator


def validate_plan(plan: Plan, intent: IntentSpec, min_comparison_targets: int = 2) -> list[str]:
    """Every Hard-Constraint violation of ``plan`` for ``intent`` (empty list when valid)."""
    errors: list[str] = []
    ids = [t.task_id for t in plan.tasks]
    if len(ids) != len(set(ids)):
        errors.append(f"duplicate task ids: {sorted({i for i in ids if ids.count(i) > 1})}")
    known = set(ids)
    for t in plan.tasks:
        for dep in t.depends_on:
            if dep not in known:
                errors.append(f"task {t.task_id} depends on unknown task {dep!r}")
            if dep == t.task_id:
                errors.append(f"task {t.task_id} depends on itself")
    g = plan.graph()
    if not nx.is_directed_acyclic_graph(g):
        errors.append("the task graph has a cycle")
    decisions = plan.by_type(TaskType.DECISION)
    if len(decisions) != 1:
        errors.append(f"a plan needs exactly one Decision task, found {len(decisions)}")
    work = [t for t in plan.tasks if t.type != TaskType.DECISION]
    if not work:
        errors.append("a plan needs at least one ProductSearch, WebSearch or ToolCall task")
    if len(decisions) == 1:
        d = decisions[0]
        non_decision_sinks = {t.task_id for t in work if not any(t.task_id in o.depends_on for o in plan.tasks)}
        missing = non_decision_sinks - set(d.depends_on)
        if missing:
            errors.append(f"Decision {d.task_id} must depend on every leaf; missing {sorted(missing)}")
        if any(d.task_id in t.depends_on for t in plan.tasks):
            errors.append("the Decision task must be the final task (nothing may depend on it)")
    n_ps = len(plan.by_type(TaskType.PRODUCT_SEARCH))
    if intent.query_type == "comparison" and n_ps < min_comparison_targets:
        errors.append(f"comparison needs >= {min_comparison_targets} ProductSearch tasks, found {n_ps}")
    if intent.time_sensitive and not plan.by_type(TaskType.WEB_SEARCH):
        errors.append("a time-sensitive question needs a WebSearch task")
    return errors


def check_plan(plan: Plan, intent: IntentSpec, min_comparison_targets: int = 2) -> None:
    """Raise :class:`InvalidPlan` listing every Hard-Constraint violation."""
    errors = validate_plan(plan, intent, min_comparison_targets)
    if errors:
        raise InvalidPlan(errors)


# ------------------------------------------------------------------------------------------ score


def _is_price_task(task: Task) -> bool:
    p = task.params
    return bool(
        p.get("max_price") is not None
        or p.get("min_price") is not None
        or p.get("sort") == "price"
        or p.get("tool") == "price_compare"
    )


def constraint_coverage(plan: Plan, intent: IntentSpec) -> float:
    """Fraction of the intent's constraints expressed by at least one ProductSearch task.

    Questions (product_qa, general_qa) are answered, not filtered: their coverage is 1."""
    if intent.query_type in ("product_qa", "general_qa"):
        return 1.0
    wanted: list[tuple[str, Any]] = []
    if intent.budget is not None:
        wanted.append(("max_price", intent.budget))
    if intent.budget_min is not None:
        wanted.append(("min_price", intent.budget_min))
    wanted += [("brands", b) for b in intent.preferred_brands]
    wanted += [("exclude_brands", b) for b in intent.excluded_brands]
    wanted += [("attributes", k) for k in intent.required_attributes]
    if intent.category:
        wanted.append(("category", intent.category))
    if not wanted:
        return 1.0
    searches = plan.by_type(TaskType.PRODUCT_SEARCH)
    covered = 0
    for key, value in wanted:
        for t in searches:
            v = t.params.get(key)
            if key in ("brands", "exclude_brands") and v and value in v:
                covered += 1
                break
            if key == "attributes" and isinstance(v, dict) and value in v:
                covered += 1
                break
            if key in ("max_price", "min_price", "category") and v == value:
                covered += 1
                break
    return covered / len(wanted)


def score_plan(plan: Plan, intent: IntentSpec, weights: SoftConstraintWeights) -> float:
    """Soft-Constraint score (higher is better): coverage reward minus call, depth, duplicate and
    price-priority penalties."""
    work = [t for t in plan.tasks if t.type != TaskType.DECISION]
    g = plan.graph()
    depth = nx.dag_longest_path_length(g) if nx.is_directed_acyclic_graph(g) and g.number_of_nodes() else 0
    queries = [" ".join(tokens(t.query)) for t in plan.by_type(TaskType.PRODUCT_SEARCH)]
    duplicates = len(queries) - len(set(queries))
    price_misorder = 0
    if intent.price_sensitive or intent.budget is not None:
        top = max((t.priority for t in work), default=0.0)
        price_misorder = sum(1 for t in work if _is_price_task(t) and t.priority < top)
    return (
        weights.coverage_reward * constraint_coverage(plan, intent)
        - weights.call_penalty * len(work)
        - weights.depth_penalty * depth
        - weights.duplicate_query_penalty * duplicates
        - weights.price_priority_penalty * price_misorder
    )


# ------------------------------------------------------------------------------------------ LLM schema


class ProposedTask(BaseModel):
    """One task of an LLM plan proposal (structured output schema)."""

    id: str
    type: Literal["ProductSearch", "WebSearch", "ToolCall", "Decision"]
    query: str = ""
    depends_on: list[str] = Field(default_factory=list)


class PlanProposal(BaseModel):
    """Structured-output schema the LLM fills when it proposes a plan."""

    tasks: list[ProposedTask]


# ------------------------------------------------------------------------------------------ planner


class Planner:
    """Symbolic planner with optional LLM proposals, a Hard-Constraint validator and Soft-Constraint scoring."""

    def __init__(
        self,
        config: PlannerConfig | dict[str, Any] | None = None,
        llm: SupportsStructured | None = None,
        memory: Memory | None = None,
        category_min_price: Mapping[str, float] | None = None,
    ) -> None:
        if config is None:
            config = load_agent_config("planner")
        self.config: PlannerConfig = (
            config if isinstance(config, PlannerConfig) else validate_config(PlannerConfig, config, "agents/planner")
        )
        self.llm = llm
        self.memory = memory
        self.category_min_price = dict(category_min_price or {})

    # ------------------------------------------------------------------ public API
    def plan(self, intent: IntentLike, session_id: str | None = None, replan: bool = True) -> Plan:
        """The best valid plan for ``intent``; stored in Memory's graph tables when a session is given.

        A :class:`PlanConflict` is resolved by relaxing the conflicting constraints and re-planning
        (at most ``max_replans`` times); with ``replan=False`` it propagates to the caller.
        """
        spec = IntentSpec.from_intent(intent)
        notes: list[str] = []
        for attempt in range(self.config.max_replans + 1):
            conflicts = find_conflicts(spec, self.category_min_price)
            if not conflicts:
                break
            if not replan or attempt == self.config.max_replans:
                raise PlanConflict(conflicts)
            spec, relaxed = resolve_conflicts(spec, conflicts, self.category_min_price)
            notes += relaxed
        remedies = self._remedies(spec)
        candidates = self.symbolic_candidates(spec, remedies)
        llm_plan = self._llm_plan(spec, remedies) if (self.llm is not None and self.config.use_llm_proposal) else None
        if llm_plan is not None:
            candidates.append(llm_plan)
        valid = []
        for cand in candidates:
            if not validate_plan(cand, spec, self.config.min_comparison_targets):
                cand.score = score_plan(cand, spec, self.config.soft_constraints)
                valid.append(cand)
        if not valid:  # the symbolic planner guarantees validity; this is a programming error
            raise InvalidPlan(validate_plan(candidates[0], spec, self.config.min_comparison_targets))
        best = max(valid, key=lambda p: (p.score, p.source == "symbolic"))
        best.notes = notes + [f"remedy from reflection knowledge base: {r}" for r in remedies] + best.notes
        if session_id is not None and self.memory is not None:
            self.memory.save_graph(session_id, best.graph())
            self.memory.set_context(session_id, "Planner", "intent", spec.model_dump(mode="json"))
            self.memory.set_context(session_id, "Planner", "plan", best.model_dump(mode="json"))
        return best

    def replan(
        self,
        intent: IntentLike,
        reason: str,
        session_id: str | None = None,
        score: float | None = None,
        remedy: str | None = None,
    ) -> Plan:
        """Record a failure case (Leader reflection below threshold) and plan again with it in view."""
        spec = IntentSpec.from_intent(intent)
        if self.memory is None:
            raise ValueError("replan needs a Memory to record the failure case in; pass memory= to Planner")
        if remedy is not None and remedy not in REMEDIES:
            raise ValueError(f"unknown remedy {remedy!r}; known: {REMEDIES}")
        self.memory.record_failure(spec.query_type, spec.query, reason, score=score, remedy=remedy)
        return self.plan(spec, session_id=session_id)

    # ------------------------------------------------------------------ symbolic planning
    def symbolic_candidates(self, intent: IntentSpec, remedies: list[str] | None = None) -> list[Plan]:
        """Valid candidate plans from the symbolic rules: a merged-call plan and a split plan."""
        remedies = remedies or []
        out = []
        for variant in ("merged", "split"):
            plan = self._symbolic(intent, variant, remedies)
            if not validate_plan(plan, intent, self.config.min_comparison_targets):
                out.append(plan)
        return out

    def search_params(self, intent: IntentSpec, **extra: object) -> dict[str, Any]:
        """ProductSearch params of ``intent`` (category, price range, brands, attributes), ``extra`` on top."""
        params: dict[str, Any] = {"k": self.config.product_search_k}
        if intent.category:
            params["category"] = intent.category
        if "target" in extra:  # a named product: the user's filters must not hide it from the lookup
            params.update(extra)
            return params
        if intent.budget is not None:
            params["max_price"] = intent.budget
        if intent.budget_min is not None:
            params["min_price"] = intent.budget_min
        if intent.preferred_brands:
            params["brands"] = list(intent.preferred_brands)
        if intent.excluded_brands:
            params["exclude_brands"] = list(intent.excluded_brands)
        if intent.required_attributes:
            params["attributes"] = dict(intent.required_attributes)
        if intent.excluded_attributes:
            params["exclude_attributes"] = dict(intent.excluded_attributes)
        params.update(extra)
        return params

    @staticmethod
    def _rewrite(intent: IntentSpec) -> str:
        """A keyword rewrite of the request from its slots (category, brands, attribute values)."""
        parts: list[str] = []
        parts += intent.preferred_brands[:1]
        units = {"capacity_gb": "GB", "size_in": "inch"}
        for key, value in intent.required_attributes.items():
            if isinstance(value, dict):  # numeric range: not expressible as keywords
                continue
            values = value if isinstance(value, list) else [value]
            for v in values:
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    parts.append(f"{v:g} {units.get(key, key.replace('_', ' '))}")
                else:
                    parts.append(str(v))
        if intent.category:
            parts.append(intent.category)
        text = " ".join(unique(parts)).strip()
        return text or intent.query

    def _symbolic(self, intent: IntentSpec, variant: str, remedies: list[str]) -> Plan:
        """The rule plan of the intent's query type (``variant="split"`` adds the optional searches)."""
        b = _TaskList()
        price_first = intent.price_sensitive or intent.budget is not None
        prio = 1.0 if price_first else 0.5
        query = intent.query or self._rewrite(intent)
        split = variant == "split"
        if intent.query_type == "comparison":
            self._comparison_tasks(b, intent, query, split, prio)
        elif intent.query_type == "product_qa":
            target = intent.targets[0] if intent.targets else query
            b.add(
                TaskType.TOOL_CALL,
                query,
                {"tool": self.config.tools.get("product_qa", "product_details"), "target": target},
            )
            if split:
                b.add(TaskType.PRODUCT_SEARCH, target, self.search_params(intent, target=target, k=5))
            if split or intent.time_sensitive:
                b.add(TaskType.WEB_SEARCH, query, {"purpose": "product_qa", "target": target})
        elif intent.query_type == "general_qa":
            b.add(TaskType.WEB_SEARCH, query, {"purpose": "general_qa"})
            if split:
                b.add(TaskType.PRODUCT_SEARCH, self._rewrite(intent), self.search_params(intent))
        else:  # simple, reasoning, multi_constraint, negation, ambiguous
            self._product_tasks(b, intent, query, split, prio)
        if intent.time_sensitive and not any(t.type == TaskType.WEB_SEARCH for t in b.tasks):
            b.add(TaskType.WEB_SEARCH, query, {"purpose": "time_sensitive"}, priority=prio)
        self._apply_remedies(intent, remedies, b.tasks, b.add)
        self._close_with_decision(b.tasks)
        return Plan(tasks=b.tasks, source="symbolic", notes=[f"variant={variant}"])

    def _comparison_tasks(self, b: _TaskList, intent: IntentSpec, query: str, split: bool, prio: float) -> None:
        """One search per named product (alternatives when too few are named), then the comparison tool."""
        targets = unique([t for t in intent.targets if t.strip()])
        searches = [
            b.add(TaskType.PRODUCT_SEARCH, t, self.search_params(intent, target=t, k=5), priority=prio) for t in targets
        ]
        while len(searches) < self.config.min_comparison_targets:
            # Too few named targets: search alternatives so there is something to compare with.
            alt = f"alternative to {targets[0]}" if targets else self._rewrite(intent)
            alt = alt if alt not in [t.query for t in b.tasks] else f"{alt} option {len(searches) + 1}"
            searches.append(b.add(TaskType.PRODUCT_SEARCH, alt, self.search_params(intent), priority=prio))
        b.add(
            TaskType.TOOL_CALL,
            f"compare {' vs '.join(t.query for t in b.tasks)}",
            {"tool": self.config.tools.get("comparison", "compare_specs"), "targets": targets},
            depends_on=list(searches),
            priority=prio,
        )
        if split or intent.time_sensitive:
            b.add(
                TaskType.WEB_SEARCH, f"{' vs '.join(targets or [query])} review comparison", {"purpose": "comparison"}
            )

    def _product_tasks(self, b: _TaskList, intent: IntentSpec, query: str, split: bool, prio: float) -> None:
        """A product search (and its rewrite when split); a buying guide for reasoning queries."""
        b.add(TaskType.PRODUCT_SEARCH, query, self.search_params(intent), priority=prio)
        if split:
            rewrite = self._rewrite(intent)
            if rewrite and " ".join(tokens(rewrite)) != " ".join(tokens(query)):
                b.add(TaskType.PRODUCT_SEARCH, rewrite, self.search_params(intent), priority=prio)
        if intent.query_type == "reasoning":  # needs knowledge of what fits the need: a buying guide
            b.add(TaskType.WEB_SEARCH, f"{intent.category or query} buying guide", {"purpose": "buying_guide"})

    def _apply_remedies(
        self, intent: IntentSpec, remedies: list[str], tasks: list[Task], add: Callable[..., str]
    ) -> None:
        query = intent.query or self._rewrite(intent)
        if "add_web_search" in remedies and not any(t.type == TaskType.WEB_SEARCH for t in tasks):
            add(TaskType.WEB_SEARCH, query, {"purpose": "reflection_remedy"})
        if "add_product_rewrite" in remedies and self.config.max_product_rewrites > 0:
            # One extra ProductSearch rewrite per planning round: the first candidate wording that
            # differs from every existing search.
            existing = {" ".join(tokens(t.query)) for t in tasks if t.type == TaskType.PRODUCT_SEARCH}
            for candidate in (self._rewrite(intent), f"{intent.category or ''} {query}".strip(), f"best {query}"):
                key = " ".join(tokens(candidate))
                if key and key not in existing:
                    add(TaskType.PRODUCT_SEARCH, candidate, self.search_params(intent), priority=0.5)
                    break

    @staticmethod
    def _close_with_decision(tasks: list[Task]) -> None:
        """Add the single final Decision task depending on every leaf."""
        depended = {d for t in tasks for d in t.depends_on}
        leaves = [t.task_id for t in tasks if t.task_id not in depended]
        ids = {t.task_id for t in tasks}
        tid = f"t{len(tasks) + 1}"
        while tid in ids:
            tid += "_"
        tasks.append(Task(task_id=tid, type=TaskType.DECISION, query="decide", depends_on=leaves))

    # ------------------------------------------------------------------ reflection
    def _remedies(self, intent: IntentSpec) -> list[str]:
        if self.memory is None:
            return []
        cfg = self.config.reflection
        cases = [
            c
            for c in self.memory.similar_failures(intent.query_type, intent.query)
            if c.similarity >= cfg.min_similarity
        ]
        if len(cases) < cfg.min_cases:
            return []
        remedies = []
        for c in cases:
            remedy = c.remedy if c.remedy in REMEDIES else cfg.default_remedy.get(intent.query_type)
            if remedy:
                remedies.append(remedy)
        return unique(remedies)

    # ------------------------------------------------------------------ LLM proposal
    def _llm_plan(self, intent: IntentSpec, remedies: list[str]) -> Plan | None:
        messages = [
            {
                "role": "system",
                "content": (
                    "You are the Planner of a shopping assistant. Decompose the request into atomic tasks of types "
                    "ProductSearch, WebSearch, ToolCall and Decision. Give each task an id, a query and the ids it "
                    "depends_on. End with exactly one Decision task that depends on all other leaf tasks."
                ),
            },
            {"role": "user", "content": intent.model_dump_json(exclude_defaults=True)},
        ]
        if self.llm is None:
            return None
        try:
            result = self.llm.structured(messages, PlanProposal, max_tokens=self.config.llm_max_tokens)
        except Exception:  # noqa: BLE001 - a failing backend must not stop planning
            return None
        value = getattr(result, "value", result)
        if getattr(result, "used_fallback", False) or not isinstance(value, PlanProposal) or not value.tasks:
            return None
        return self.repair(self._from_proposal(value, intent), intent, remedies)

    def _from_proposal(self, proposal: PlanProposal, intent: IntentSpec) -> Plan:
        tasks = []
        for i, p in enumerate(proposal.tasks):
            type_ = TaskType(p.type)
            params: dict[str, Any] = {}
            if type_ == TaskType.PRODUCT_SEARCH:
                params = self.search_params(intent)
            tasks.append(
                Task(
                    task_id=p.id.strip() or f"llm{i + 1}",
                    type=type_,
                    query=p.query or intent.query,
                    params=params,
                    depends_on=list(p.depends_on),
                )
            )
        return Plan(tasks=tasks, source="llm")

    def repair(self, plan: Plan, intent: IntentSpec, remedies: list[str] | None = None) -> Plan | None:
        """Fix what can be fixed in a proposed plan (unknown deps, duplicate ids, missing or extra
        Decision, missing Hard-Constraint tasks); None when it stays invalid (e.g. a cycle)."""
        if not validate_plan(plan, intent, self.config.min_comparison_targets):
            return plan
        seen: set[str] = set()
        tasks: list[Task] = []
        for t in plan.tasks:
            if t.task_id in seen or t.type == TaskType.DECISION:
                continue
            seen.add(t.task_id)
            tasks.append(t.model_copy(deep=True))
        for t in tasks:
            t.depends_on = [d for d in unique(t.depends_on) if d in seen and d != t.task_id]
        n = len(tasks)

        def add(
            type_: TaskType,
            query: str,
            params: dict[str, Any] | None = None,
            depends_on: list[str] | None = None,
            priority: float = 0.5,
        ) -> str:
            tid = f"r{len(tasks) + 1 - n}"
            while tid in seen:
                tid += "_"
            seen.add(tid)
            tasks.append(
                Task(
                    task_id=tid,
                    type=type_,
                    query=query,
                    params=params or {},
                    depends_on=depends_on or [],
                    priority=priority,
                )
            )
            return tid

        query = intent.query or self._rewrite(intent)
        if intent.query_type == "comparison":
            have = [t.query for t in tasks if t.type == TaskType.PRODUCT_SEARCH]
            for target in intent.targets:
                if len(have) >= self.config.min_comparison_targets:
                    break
                if target not in have:
                    add(TaskType.PRODUCT_SEARCH, target, self.search_params(intent, target=target, k=5))
                    have.append(target)
            if len(have) < self.config.min_comparison_targets:
                return None
        if intent.time_sensitive and not any(t.type == TaskType.WEB_SEARCH for t in tasks):
            add(TaskType.WEB_SEARCH, query, {"purpose": "time_sensitive"})
        if not tasks:
            return None
        self._apply_remedies(intent, remedies or [], tasks, add)
        self._close_with_decision(tasks)
        repaired = Plan(tasks=tasks, source="llm_repaired", notes=["repaired LLM proposal"])
        return None if validate_plan(repaired, intent, self.config.min_comparison_targets) else repaired
