"""Supervisor Agent: review an intermediate report against the query and the evidence.

The review has two parts. Deterministic checks name concrete, verifiable defects (a cited
product over the budget, an unsupported number, no product record opened, an empty summary),
each phrased twice: in the supervisor's voice for the Research Agent, and in the agent's own
voice for reflective internalization. An LLM critique adds free-text judgement and a 1-5 rating.
The score blends both; a report is accepted when the score clears the threshold and no blocking
check fails. Check weights and thresholds live in ``configs/research/supervisor.yaml``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from rl_shop.config_files import defaults_from_yaml
from rl_shop.research.fact import fact_check
from rl_shop.research.tools import product_facts
from rl_shop.research.trajectory import AgentStep, Feedback, InferredIntent, Report

if TYPE_CHECKING:
    import pandas as pd

    from rl_shop.llm import LLM, Message


@defaults_from_yaml("research/supervisor.yaml", what="research config")
class SupervisorConfig(BaseModel):
    """``configs/research/supervisor.yaml``."""

    model_config = {"extra": "forbid"}

    use_llm: bool
    critique_max_tokens: int = Field(ge=16)
    critique_max_chars: int = Field(ge=10)
    llm_weight: float = Field(ge=0.0, le=1.0)  # share of the score from the LLM rating
    accept_threshold: float = Field(ge=0.0, le=1.0)
    min_visits: int = Field(ge=0)
    min_summary_words: int = Field(ge=0)
    min_recommendations: int = Field(ge=0)
    require_web: bool
    check_weights: dict[str, float]
    blocking: list[str]
    temperature: float = Field(ge=0.0)


SYSTEM = "You are a strict reviewer of product research reports. Point out the most important flaw."

_FIRST_PERSON = [
    (r"\bThe report\b", "My draft"),
    (r"\bthe report\b", "my draft"),
    (r"\bYour\b", "My"),
    (r"\byour\b", "my"),
    (r"\bYou\b", "I"),
    (r"\byou\b", "I"),
    (r"\bThe agent\b", "I"),
    (r"\bthe agent\b", "I"),
]


def to_first_person(text: str) -> str:
    """Rewrite a reviewer's sentence as the agent's own reflection ("The report ..." -> "My draft ...")."""
    for pattern, repl in _FIRST_PERSON:
        text = re.sub(pattern, repl, text)
    return text


def run_checks(
    report: Report, steps: list[AgentStep], inferred: InferredIntent, catalog: pd.DataFrame, cfg: SupervisorConfig
) -> list[tuple[str, str, str]]:
    """Failed checks as (code, supervisor sentence, reflection sentence)."""
    out: list[tuple[str, str, str]] = []
    recs = report.recommendations
    if len(recs) < cfg.min_recommendations:
        out.append(
            (
                "recommendations",
                f"The report recommends {len(recs)} product(s); compare at least "
                f"{cfg.min_recommendations} from the search results.",
                f"My draft recommends only {len(recs)} product(s); I should compare at least "
                f"{cfg.min_recommendations}.",
            )
        )
    ok_steps = [s for s in steps if s.result.ok]
    evidence_ids = {p for s in ok_steps for p in s.result.product_ids}
    fact = fact_check(report.markdown, evidence_ids, "\n".join(s.result.content for s in ok_steps), inferred.query)
    if fact.unsupported_products or fact.unsupported_numbers:
        bad = fact.unsupported_products + [f"{v:g}" for v in fact.unsupported_numbers]
        out.append(
            (
                "grounded",
                f"The report states things the evidence does not support: {', '.join(bad[:4])}.",
                f"My draft states things my evidence does not support ({', '.join(bad[:4])}); I must only "
                "use facts the tools showed.",
            )
        )
    facts = []
    for r in recs:
        try:
            facts.append((r.product_id, product_facts(catalog, r.product_id)))
        except KeyError:
            continue
    if inferred.budget:
        over = [pid for pid, f in facts if f["price"] is not None and f["price"] > inferred.budget]
        if over:
            out.append(
                (
                    "budget",
                    f"Recommended products {', '.join(over)} cost more than the ${inferred.budget:.0f} budget.",
                    f"Some products I picked ({', '.join(over)}) are over the ${inferred.budget:.0f} budget; "
                    "I should search within the budget.",
                )
            )
    if inferred.brands:
        wanted = {b.lower() for b in inferred.brands}
        if facts and not any(f["brand"].lower() in wanted for _, f in facts):
            out.append(
                (
                    "brand",
                    f"None of the recommended products is from {' or '.join(inferred.brands)}, "
                    "which the shopper prefers.",
                    f"None of my picks is from {' or '.join(inferred.brands)}; I should look for that brand.",
                )
            )
    off = [pid for pid, f in facts if f["category"] != inferred.category]
    if off:
        out.append(
            (
                "category",
                f"Products {', '.join(off)} are not {inferred.category}.",
                f"Products {', '.join(off)} are not {inferred.category}; I should stay in that category.",
            )
        )
    visits = sum(1 for s in ok_steps if s.call.name == "visit_product")
    if visits < cfg.min_visits:
        out.append(
            (
                "visited",
                "The report relies on search snippets only; open product records with visit_product.",
                "I only read search snippets; I should open product records with visit_product.",
            )
        )
    if cfg.require_web and not any(s.call.name in ("web_search", "web_visit") for s in ok_steps):
        out.append(
            (
                "web",
                "The report uses no buying-guide knowledge; use web_search.",
                "I did not consult any buying guide; I should use web_search.",
            )
        )
    if len(report.summary.split()) < cfg.min_summary_words:
        out.append(
            (
                "summary",
                "The summary is too short to explain the choice.",
                "My summary is too short to explain the choice; I should explain it.",
            )
        )
    return out


class Supervisor:
    """Reviews a report: deterministic checks + an LLM critique -> :class:`Feedback`."""

    def __init__(self, llm: LLM, catalog: pd.DataFrame, config: SupervisorConfig | None = None) -> None:
        self.llm = llm
        self.catalog = catalog
        self.config = config or SupervisorConfig.model_validate({})

    def check_score(self, failed: list[str]) -> float:
        """Weighted share of passed checks (weights from the config)."""
        w = self.config.check_weights
        total = sum(w.values())
        return 1.0 if total <= 0 else 1.0 - sum(w.get(c, 0.0) for c in failed) / total

    def review(
        self, query: str, report: Report, steps: list[AgentStep], inferred: InferredIntent, seed: int = 0
    ) -> Feedback:
        """Feedback on ``report``; score = (1 - llm_weight) * checks + llm_weight * (rating - 1) / 4."""
        cfg = self.config
        checks = run_checks(report, steps, inferred, self.catalog, cfg)
        codes = [c for c, _, _ in checks]
        score = self.check_score(codes)
        critique = ""
        if cfg.use_llm and self.llm is not None:
            schema = {
                "type": "object",
                "properties": {
                    "flaw": {"type": "string", "maxLength": cfg.critique_max_chars},
                    "rating": {"type": "integer", "minimum": 1, "maximum": 5},
                },
                "required": ["flaw", "rating"],
                "additionalProperties": False,
            }
            msgs: list[Message] = [
                {"role": "system", "content": SYSTEM},
                {
                    "role": "user",
                    "content": f"Request: {query}\n\nReport:\n{report.markdown[:1500]}\n\n"
                    "Name the report's most important flaw and rate it from 1 (bad) to 5 (excellent).",
                },
            ]
            res = self.llm.structured(
                msgs, schema, max_tokens=cfg.critique_max_tokens, temperature=cfg.temperature, seed=seed
            )
            if res.value is not None:
                critique = " ".join(res.value["flaw"].split())
                score = (1 - cfg.llm_weight) * score + cfg.llm_weight * (int(res.value["rating"]) - 1) / 4
        accept = score >= cfg.accept_threshold and not set(codes) & set(cfg.blocking)
        return Feedback(
            score=round(min(1.0, max(0.0, score)), 4),
            accept=accept,
            issues=[s for _, s, _ in checks],
            reflections=[r for _, _, r in checks],
            critique=critique,
            critique_reflection=to_first_person(critique),
        )

    @staticmethod
    def messages_for_agent(feedback: Feedback) -> list[str]:
        """What the Research Agent is told in the next round (supervisor voice)."""
        return feedback.issues + ([feedback.critique] if feedback.critique else [])
