"""Shared data types of the MACDF agent runtime (tasks, plans, candidates, web evidence, decisions).

Why one module: the Planner, the executor, WebSearch, the Decider, the safety review and the
Memory all exchange these objects; keeping them in one place (pydantic models, JSON-serializable)
means Memory can store any of them and a later session (Leader, Guider, ProductSearch) can build
them without importing the modules that consume them.

The LLM protocols live in ``rl_shop.agents.llm_protocols``, config reading in
``rl_shop.agents.config``, the text helpers in ``rl_shop.agents.text``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import date
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, TypeGuard, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rl_shop.sim.slots import Intent, QueryType  # one definition of the ECCD types

if TYPE_CHECKING:
    import networkx as nx

# --------------------------------------------------------------------------------------------
# Intent, as the Planner and Decider see it
# --------------------------------------------------------------------------------------------


class IntentSpec(BaseModel):
    """The clarified user intent the Planner decomposes and the Decider scores against.

    It mirrors ``rl_shop.sim.Intent`` (query type, budget, brands, required attributes, targets)
    plus what the runtime infers: whether the question is time-sensitive or price-sensitive.
    ``required_attributes`` maps an attribute name (``colour``, ``capacity_gb``,
    ``connectivity``, ``features``...) to the required value.
    """

    model_config = ConfigDict(extra="ignore")

    query: str = ""
    query_type: QueryType = "simple"
    category: str | None = None
    budget: float | None = Field(default=None, description="maximum price in USD")
    budget_min: float | None = None
    preferred_brands: list[str] = Field(default_factory=list)
    excluded_brands: list[str] = Field(default_factory=list)
    required_attributes: dict[str, Any] = Field(default_factory=dict)
    excluded_attributes: dict[str, Any] = Field(default_factory=dict)
    targets: list[str] = Field(default_factory=list, description="product ids / names for Q&A and comparison")
    confirmed: list[str] = Field(
        default_factory=list, description="ids of a shortlist the shopper confirmed: the answer chooses among them"
    )
    slots: dict[str, Any] = Field(default_factory=dict)
    time_sensitive: bool = False
    price_sensitive: bool = False
    user_id: str | None = None

    @field_validator("preferred_brands", "excluded_brands", mode="before")
    @classmethod
    def _lower_brands(cls, value: object) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        return [str(v).strip().lower() for v in cast("Iterable[object]", value) if str(v).strip()]

    @field_validator("required_attributes", "excluded_attributes", mode="before")
    @classmethod
    def _attrs_as_dict(cls, value: object) -> dict[str, Any]:
        # A bare list of attribute words ("waterproof", "bluetooth") means "features must mention it".
        if value is None:
            return {}
        if isinstance(value, (list, tuple, set)):
            return {"features": [str(v) for v in value]}
        return dict(cast("Mapping[str, Any]", value))

    @classmethod
    def from_intent(cls, intent: IntentLike, **overrides: object) -> IntentSpec:
        """Adapt an :data:`IntentLike`: a mapping is read as fields, the simulator's ``Intent``
        attribute by attribute (with the aliases below)."""
        if isinstance(intent, IntentSpec):
            data = intent.model_dump()
        elif isinstance(intent, Mapping):
            data = dict(intent)
        else:
            data = {}
            for name in cls.model_fields:
                if hasattr(intent, name):
                    data[name] = getattr(intent, name)
            for alias, name in (
                ("text", "query"),
                ("initial_query", "query"),
                ("target_product_ids", "targets"),
                ("max_price", "budget"),
                ("min_price", "budget_min"),
            ):
                if name not in data and getattr(intent, alias, None):
                    data[name] = getattr(intent, alias)
            if "required_attributes" not in data:
                data["required_attributes"] = _sim_required_attributes(intent)
            if not data.get("targets") and getattr(intent, "target_names", None):
                data["targets"] = list(intent.target_names)
            data = {k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items()}
        data.update(overrides)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"cannot read an intent from {type(intent).__name__}: {exc}") from None


#: What the agents accept as an intent: their own ``IntentSpec``, the simulator's ``Intent``
#: (benchmark gold) or a plain mapping of ``IntentSpec`` fields.
IntentLike = IntentSpec | Intent | Mapping[str, Any]


def _sim_required_attributes(intent: Intent) -> dict[str, Any]:
    """Required attributes from the simulator's slot fields (colour, capacity, size, connectivity,
    features), in the catalog's column names; ranges become ``{"min": a, "max": b}``."""
    attrs: dict[str, Any] = {}
    if getattr(intent, "colour", None):
        attrs["colour"] = intent.colour
    if getattr(intent, "min_capacity_gb", None):
        attrs["capacity_gb"] = float(cast(float, intent.min_capacity_gb))  # set: checked above
    lo, hi = getattr(intent, "min_size_in", None), getattr(intent, "max_size_in", None)
    if lo is not None or hi is not None:
        attrs["size_in"] = {k: float(v) for k, v in (("min", lo), ("max", hi)) if v is not None}
    if getattr(intent, "connectivity", None):
        attrs["connectivity"] = list(intent.connectivity)
    if getattr(intent, "features", None):
        attrs["features"] = list(intent.features)
    return attrs


# --------------------------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------------------------


class TaskType(str, Enum):
    """The four atomic task types of MACDF 3.4."""

    PRODUCT_SEARCH = "ProductSearch"
    WEB_SEARCH = "WebSearch"
    TOOL_CALL = "ToolCall"
    DECISION = "Decision"


class Task(BaseModel):
    """One vertex of the task graph ``G=(V,E)``; ``depends_on`` lists the sources of its in-edges."""

    task_id: str
    type: TaskType
    query: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    priority: float = 0.0


class Plan(BaseModel):
    """A candidate task DAG with where it came from and its soft-constraint score."""

    tasks: list[Task]
    source: Literal["symbolic", "llm", "llm_repaired"] = "symbolic"
    score: float = 0.0
    notes: list[str] = Field(default_factory=list)

    def task(self, task_id: str) -> Task:
        """The task with this id (KeyError naming the known ids otherwise)."""
        for t in self.tasks:
            if t.task_id == task_id:
                return t
        raise KeyError(f"unknown task id {task_id!r}; plan has {[t.task_id for t in self.tasks]}")

    def by_type(self, task_type: TaskType) -> list[Task]:
        """All tasks of one atomic type, in plan order."""
        return [t for t in self.tasks if t.type == task_type]

    def graph(self) -> nx.DiGraph:
        """The plan as a ``networkx.DiGraph`` (edge u -> v means v depends on u)."""
        import networkx as nx

        g = nx.DiGraph()
        for t in self.tasks:
            g.add_node(t.task_id, type=t.type.value, query=t.query, params=t.params, priority=t.priority)
        for t in self.tasks:
            for dep in t.depends_on:
                g.add_edge(dep, t.task_id)
        return g


TaskStatus = Literal["pending", "running", "done", "failed", "skipped"]


class TaskState(BaseModel):
    """Runtime state of one task of one session (stored in Memory's Task States)."""

    session_id: str
    task_id: str
    status: TaskStatus = "pending"
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        """Wall time of the task, when it ran."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


# --------------------------------------------------------------------------------------------
# Products (Decider input)
# --------------------------------------------------------------------------------------------


class Candidate(BaseModel):
    """A candidate product as the Decider scores it (from a catalog row or ProductSearch output)."""

    model_config = ConfigDict(extra="ignore")

    product_id: str
    title: str = ""
    brand: str = ""
    price: float | None = None
    category: str = ""
    description: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict)
    features: list[str] = Field(default_factory=list)
    rating: float | None = None
    retrieval_score: float | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Candidate:
        """Build from a ``rl_shop.catalog.load_catalog()`` row (dict or pandas Series).

        Catalog columns: product_id, title, description, category, brand, price, colour,
        capacity_gb, size_in, connectivity (list), features (list), specs (JSON string).
        """
        row = dict(row)
        if "product_id" not in row:
            raise ValueError(f"catalog row has no product_id (keys: {sorted(row)})")
        attrs: dict[str, Any] = {}
        specs = row.get("specs")
        if isinstance(specs, str) and specs.strip():
            try:
                parsed = json.loads(specs)
                if isinstance(parsed, dict):
                    attrs.update({str(k).lower(): v for k, v in parsed.items()})
            except json.JSONDecodeError:
                pass
        elif isinstance(specs, dict):
            attrs.update({str(k).lower(): v for k, v in specs.items()})
        for key in ("colour", "capacity_gb", "size_in", "connectivity", "department", "category_path"):
            value = row.get(key)
            if _present(value):
                attrs[key] = list(value) if _is_listlike(value) else value
        features = row.get("features")
        price = row.get("price")
        rating = row.get("rating")
        return cls(
            product_id=str(row["product_id"]),
            title=str(row.get("title") or ""),
            brand=str(row.get("brand") or "").strip().lower(),
            price=float(price) if _present(price) else None,
            category=str(row.get("category") or ""),
            description=str(row.get("description") or ""),
            attributes=attrs,
            features=[str(f) for f in features] if _is_listlike(features) else [],
            rating=float(rating) if _present(rating) else None,
            retrieval_score=row.get("score") if _present(row.get("score")) else None,
        )


def _is_listlike(value: object) -> TypeGuard[Iterable[Any]]:
    return value is not None and not isinstance(value, (str, bytes, dict)) and hasattr(value, "__iter__")


def _present(value: object) -> TypeGuard[Any]:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    if _is_listlike(value):
        return len(list(value)) > 0
    if isinstance(value, str):
        return value.strip() != ""
    return True


# --------------------------------------------------------------------------------------------
# Web evidence (WebSearch output)
# --------------------------------------------------------------------------------------------


class WebDocument(BaseModel):
    """A retrieved web document: url, title, text, source, authority in [0, 1], published date."""

    url: str
    title: str
    text: str
    source: str
    authority: float = Field(default=0.5, ge=0.0, le=1.0)
    published: date | None = None


class ScoredDocument(BaseModel):
    """A document with the three Eq. 4 terms and its combined score."""

    document: WebDocument
    relevance: float
    authority: float
    freshness: float
    score: float


class WebSearchResult(BaseModel):
    """Output of Retrieve-Filter-Integrate: queries issued, kept documents, integrated summary."""

    queries: list[str]
    documents: list[ScoredDocument]
    dropped: int = 0
    summary: str = ""
    summary_source: Literal["llm", "extractive", "none"] = "none"


# --------------------------------------------------------------------------------------------
# Decisions (Decider output)
# --------------------------------------------------------------------------------------------


class Recommendation(BaseModel):
    """One recommended product with its criterion scores and human-readable reasons."""

    product_id: str
    title: str
    brand: str = ""
    price: float | None = None
    score: float
    criteria: dict[str, float]
    pareto_optimal: bool
    reasons: list[str]


class Decision(BaseModel):
    """The Decider's output (MACDF 3.7): advice, recommendations with reasons, a follow-up question."""

    advice: str
    recommendations: list[Recommendation]
    follow_up_question: str
    weights: dict[str, float]
    consistency_ratio: float
    excluded: dict[str, str] = Field(default_factory=dict, description="product_id -> violated hard constraint")
    advice_source: Literal["llm", "template"] = "template"
    relaxed: list[str] = Field(
        default_factory=list, description="stated attributes no candidate meets; the recommendations miss them"
    )


class SafetyVerdict(BaseModel):
    """Result of a safety screen: allowed or not, which category matched, the user-facing message."""

    allowed: bool
    category: str | None = None
    reason: str = ""
    message: str = ""
    matched: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
