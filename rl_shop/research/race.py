"""RACE (DeepResearch Bench): reference-based, adaptive-criteria scoring of research reports.

Arithmetic (pure functions, tested on hand-computed numbers):

* criterion level: the judge gives each report a score s_{d,c} in [0, 10] per criterion c of
  dimension d; within a dimension, S_d(x) = sum_c w_{d,c} s_{d,c}(x) / sum_c w_{d,c};
* task level: S_int(x) = sum_d W_d S_d(x) with the task's dimension weights W_d (normalised
  to sum 1);
* final: S(target) = S_int(target) / (S_int(target) + S_int(reference))  (DeepResearch Bench,
  RACE "relative score"), 0.5 = as good as the reference; the same ratio per dimension.

Dimensions: comprehensiveness, insight (depth), instruction following, readability. Weights per
task (per query type) and per criterion come from ``configs/research/race.yaml``. Judges
(``judge.backend``): ``llm`` (any rl_shop LLM scores every criterion under a JSON schema) or
``rubric`` (deterministic feature scores: cheap, reproducible, and a documented proxy only) or
``criteria`` (the default: the deterministic criterion-level scorer of :mod:`rl_shop.research.scorer`,
which reads the report against the simulator's intent, the catalog and the web corpus).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from rl_shop.config_files import defaults_from_yaml
from rl_shop.research.fact import extract_citations

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

    from rl_shop.llm import LLM, Message
    from rl_shop.sim import Intent

DIMENSIONS: tuple[str, ...] = ("comprehensiveness", "insight", "instruction_following", "readability")


# ====================================================================== arithmetic
def dimension_score(scores: Mapping[str, float], criterion_weights: Mapping[str, float]) -> float:
    """S_d = sum_c w_{d,c} s_{d,c} / sum_c w_{d,c} over the weighted criteria (all must be scored)."""
    missing = [c for c in criterion_weights if c not in scores]
    if missing:
        raise ValueError(f"criteria {missing} have a weight but no score")
    total = sum(float(w) for w in criterion_weights.values())
    if total <= 0:
        raise ValueError("criterion weights must sum to a positive number")
    return sum(float(w) * float(scores[c]) for c, w in criterion_weights.items()) / total


def normalise(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights scaled to sum 1 (negative or all-zero weights are an error)."""
    if any(float(w) < 0 for w in weights.values()):
        raise ValueError(f"weights must be non-negative, got {dict(weights)}")
    total = sum(float(w) for w in weights.values())
    if total <= 0:
        raise ValueError("weights must not all be zero")
    return {k: float(w) / total for k, w in weights.items()}


def intermediate_score(dim_scores: Mapping[str, float], dim_weights: Mapping[str, float]) -> float:
    """S_int = sum_d W_d S_d with W normalised."""
    W = normalise(dim_weights)
    missing = [d for d in W if d not in dim_scores]
    if missing:
        raise ValueError(f"dimensions {missing} have a weight but no score")
    return sum(W[d] * float(dim_scores[d]) for d in W)


def relative(target: float, reference: float) -> float:
    """target / (target + reference); 0.5 when both are 0 (indistinguishable)."""
    if target < 0 or reference < 0:
        raise ValueError("RACE scores must be non-negative")
    return 0.5 if target + reference == 0 else target / (target + reference)


@dataclass
class RaceScore:
    """Final relative score, per-dimension relative scores and the two absolute totals."""

    final: float
    per_dimension: dict[str, float]
    target_total: float
    reference_total: float
    target_dims: dict[str, float] = field(default_factory=dict)
    reference_dims: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "race": round(self.final, 4),
            **{f"race_{d}": round(v, 4) for d, v in self.per_dimension.items()},
            "target_abs": round(self.target_total, 4),
            "reference_abs": round(self.reference_total, 4),
        }


def race_score(
    target: Mapping[str, Mapping[str, float]],
    reference: Mapping[str, Mapping[str, float]],
    dim_weights: Mapping[str, float],
    criterion_weights: Mapping[str, Mapping[str, float]],
) -> RaceScore:
    """RACE of a target report against a reference from criterion scores ``{dim: {criterion: s}}``."""
    t_dims = {d: dimension_score(target[d], criterion_weights[d]) for d in dim_weights}
    r_dims = {d: dimension_score(reference[d], criterion_weights[d]) for d in dim_weights}
    t, r = intermediate_score(t_dims, dim_weights), intermediate_score(r_dims, dim_weights)
    return RaceScore(relative(t, r), {d: relative(t_dims[d], r_dims[d]) for d in dim_weights}, t, r, t_dims, r_dims)


# ====================================================================== config
@defaults_from_yaml("research/race.yaml", what="research config")
class RaceConfig(BaseModel):
    """``configs/research/race.yaml``."""

    model_config = {"extra": "forbid"}

    judge: Literal["criteria", "rubric", "llm"]
    judge_max_tokens: int = Field(ge=8)
    report_chars: int = Field(ge=100)  # report text shown to an LLM judge
    criteria: dict[str, dict[str, float]]  # {dimension: {criterion: weight}}
    criterion_text: dict[str, str]
    dimension_weights: dict[str, dict[str, float]]  # {query_type or "default": {dim: W}}
    rubric: dict[str, float]  # targets of the rubric judge
    # criterion weights of the deterministic criteria judge (rl_shop/research/scorer.py), per dimension
    criteria_judge: dict[str, dict[str, float]]

    def weights_for(self, query_type: str | None) -> dict[str, float]:
        """Per-task dimension weights: the query type's entry, else ``default``."""
        return dict(self.dimension_weights.get(query_type or "", self.dimension_weights["default"]))


# ====================================================================== judges
@dataclass
class JudgeTask:
    """What a judge sees: the query, the constraints stated in it, and the catalog for facts."""

    query: str
    category: str = ""
    budget: float | None = None
    brands: list[str] = field(default_factory=list)
    query_type: str | None = None
    intent: Intent | None = None  # the simulator's (final) Intent: what the criteria judge checks
    evidence_ids: set[str] | None = None  # products the tools showed (None: any catalog product counts)
    evidence_text: str = ""  # observations the report's numbers may rest on


_COMPARE = re.compile(r"\b(than|cheaper|better|while|whereas|however|but|compared|versus|vs|trade-?off)\b", re.I)


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9$.']+", text)


def _section(markdown: str, name: str) -> str:
    m = re.search(rf"## {name}\n(.*?)(?:\n## |\Z)", markdown, re.S)
    return m.group(1).strip() if m else ""


class RubricJudge:
    """Deterministic criterion scores in [0, 10] from report features (a proxy, not a reader).

    comprehensiveness: products compared (vs ``rubric.products``), summary length (vs
    ``rubric.summary_words``), query constraints the report mentions. insight: reasons given per
    product (vs ``rubric.reason_words``), comparative language, a verdict. instruction following:
    share of cited products in the requested category / within budget / of a requested brand.
    readability: the sections present, and the share of non-repeated sentences (small models loop).
    """

    name = "rubric"

    def __init__(self, config: RaceConfig, catalog: pd.DataFrame) -> None:
        self.config = config
        self.catalog = catalog
        self._rows = {str(p): i for i, p in enumerate(catalog["product_id"].astype(str))}

    def _facts(self, pid: str) -> dict[str, Any] | None:
        if pid not in self._rows:
            return None
        r = self.catalog.iloc[self._rows[pid]]
        return {"brand": str(r["brand"]).lower(), "price": float(r["price"]), "category": str(r["category"])}

    def score(self, markdown: str, task: JudgeTask) -> dict[str, dict[str, float]]:
        """{dimension: {criterion: score in [0, 10]}} for one report."""
        R = {"products": 3.0, "summary_words": 30.0, "reason_words": 12.0, **self.config.rubric}
        cited = extract_citations(markdown)
        summary, verdict = _section(markdown, "Summary"), _section(markdown, "Verdict")
        recs = _section(markdown, "Recommendations")
        reason_lines = [ln.strip() for ln in recs.splitlines() if ln.startswith("   ") and ln.strip()]
        low = markdown.lower()
        mentions = [task.category.lower() in low] if task.category else []
        if task.budget:
            mentions.append(f"{task.budget:.0f}" in markdown)
        mentions += [b.lower() in low for b in task.brands]
        facts = [f for f in (self._facts(p) for p in cited) if f is not None]

        def share(pred: Callable[[dict[str, Any]], bool]) -> float:
            return 10.0 * sum(1 for f in facts if pred(f)) / len(facts) if facts else 0.0

        in_budget = (
            share(lambda f: f["price"] == f["price"] and f["price"] <= task.budget)
            if task.budget
            else (10.0 if facts else 0.0)
        )
        wanted = {b.lower() for b in task.brands}
        brand = share(lambda f: f["brand"] in wanted) if wanted else (10.0 if facts else 0.0)
        sentences = [
            s.strip().lower()
            for s in re.split(r"[.!?\n]+", summary + "\n" + "\n".join(reason_lines) + "\n" + verdict)
            if s.strip()
        ]
        unique = len(set(sentences)) / len(sentences) if sentences else 0.0
        reason_w = sum(len(_words(r)) for r in reason_lines) / max(1, len(cited))
        return {
            "comprehensiveness": {
                "coverage": min(10.0, 10.0 * len(cited) / R["products"]),
                "depth_of_summary": min(10.0, 10.0 * len(_words(summary)) / R["summary_words"]),
                "constraints_addressed": 10.0 * sum(mentions) / len(mentions) if mentions else 10.0,
            },
            "insight": {
                "reasons": min(10.0, 10.0 * reason_w / R["reason_words"]) if cited else 0.0,
                "comparison": min(10.0, 5.0 * len(_COMPARE.findall(summary + " " + verdict + " " + recs))),
                "verdict": 10.0 if len(_words(verdict)) >= 5 else 5.0 * len(_words(verdict)) / 5,
            },
            "instruction_following": {
                "category": share(lambda f: f["category"] == task.category) if task.category else 10.0,
                "budget": in_budget,
                "brand": brand,
            },
            "readability": {
                "structure": 10.0 * sum(bool(x) for x in (summary, recs, verdict)) / 3,
                "no_repetition": 10.0 * unique,
            },
        }


class LLMJudge:
    """An LLM scores every criterion of a dimension 0-10 under a JSON schema (one call per dimension)."""

    name = "llm"

    def __init__(self, config: RaceConfig, llm: LLM) -> None:
        self.config = config
        self.llm = llm

    def score(self, markdown: str, task: JudgeTask, seed: int = 0) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for dim, crits in self.config.criteria.items():
            schema = {
                "type": "object",
                "properties": {c: {"type": "integer", "minimum": 0, "maximum": 10} for c in crits},
                "required": list(crits),
                "additionalProperties": False,
            }
            desc = "\n".join(f"- {c}: {self.config.criterion_text.get(c, c.replace('_', ' '))}" for c in crits)
            msgs: list[Message] = [
                {
                    "role": "system",
                    "content": "You grade product research reports strictly, 0 (bad) to 10 (excellent).",
                },
                {
                    "role": "user",
                    "content": f"Request: {task.query}\n\nReport:\n{markdown[: self.config.report_chars]}\n\n"
                    f"Grade the report's {dim.replace('_', ' ')} on these criteria:\n{desc}",
                },
            ]
            res = self.llm.structured(msgs, schema, max_tokens=self.config.judge_max_tokens, seed=seed)
            value = res.value or {c: 0 for c in crits}
            out[dim] = {c: float(value[c]) for c in crits}
        return out


class CriteriaJudge:
    """The deterministic criterion-level scorer (:mod:`rl_shop.research.scorer`) as a RACE judge.

    Needs the simulator's intent (``JudgeTask.intent``); without one it judges against the
    constraints the task states (category, budget, preferred brands)."""

    name = "criteria"

    def __init__(self, config: RaceConfig, catalog: pd.DataFrame, corpus: Iterable[Any] = ()) -> None:
        from rl_shop.research.scorer import CriteriaScorer

        self.config = config
        self.criterion_weights = config.criteria_judge
        self.scorer = CriteriaScorer(catalog, corpus, {"products": config.rubric.get("products", 3.0)})

    def score(self, markdown: str, task: JudgeTask) -> dict[str, dict[str, float]]:
        from rl_shop.sim import Intent

        intent = task.intent
        if intent is None:
            intent = Intent(
                query_type=task.query_type or "simple",
                category=task.category,
                budget=task.budget,
                preferred_brands=tuple(task.brands),
                stated_slots=("category",),
            )
        return self.scorer.criteria(
            markdown, intent, query=task.query, evidence_ids=task.evidence_ids, evidence_text=task.evidence_text
        )


def make_judge(
    config: RaceConfig, catalog: pd.DataFrame, llm: LLM | None = None, corpus: Iterable[Any] = ()
) -> RubricJudge | LLMJudge | CriteriaJudge:
    """The judge named by ``config.judge`` (``corpus``: web documents the criteria judge accepts as sources)."""
    if config.judge == "criteria":
        return CriteriaJudge(config, catalog, corpus)
    if config.judge == "rubric":
        return RubricJudge(config, catalog)
    if config.judge == "llm":
        if llm is None:
            raise ValueError("race.judge=llm needs an LLM (the judge_llm config group)")
        return LLMJudge(config, llm)
    raise ValueError(f"race.judge must be 'criteria', 'rubric' or 'llm', got {config.judge!r}")


def score_pair(
    judge: RubricJudge | LLMJudge | CriteriaJudge,
    config: RaceConfig,
    target_md: str,
    reference_md: str,
    task: JudgeTask,
) -> RaceScore:
    """Judge both reports and combine with the task's weights (the reference is judged without the
    target's evidence restriction: it is built from the catalog, not from the trajectory's tools)."""
    import dataclasses

    weights = getattr(judge, "criterion_weights", None) or config.criteria
    crit = {d: weights[d] for d in DIMENSIONS}
    ref_task = dataclasses.replace(task, evidence_ids=None, evidence_text="")
    return race_score(
        judge.score(target_md, task), judge.score(reference_md, ref_task), config.weights_for(task.query_type), crit
    )
