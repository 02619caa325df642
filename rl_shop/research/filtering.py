"""Trajectory filter: keep only trajectories worth imitating.

The paper filters synthesized trajectories "rigorously" before distillation; fine-tuning on a
malformed tool call, a failed tool or a hallucinated price teaches exactly those. Four rejection
reasons, each checked independently so a report lists all that apply:

* ``malformed_tool_call``: a call that needed the fallback parser, or names no known tool;
* ``failed_tool``: a tool returned an error (bad id, unvisited url, backend down);
* ``unsupported_claims``: the final report cites a product or states a number that no tool showed
  (FACT share below ``min_fact_share``, or any unsupported product citation);
* ``low_score``: the Supervisor's final score is below ``min_score`` (or there was no review).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from rl_shop.config_files import defaults_from_yaml
from rl_shop.research.fact import fact_check
from rl_shop.research.prompt import REFLECT
from rl_shop.research.trajectory import TOOL_NAMES, Trajectory

REASONS: tuple[str, ...] = ("malformed_tool_call", "failed_tool", "unsupported_claims", "low_score", "no_rounds")


@defaults_from_yaml("research/filter.yaml", what="research config")
class FilterConfig(BaseModel):
    """``configs/research/filter.yaml``."""

    model_config = {"extra": "forbid"}

    min_fact_share: float = Field(ge=0.0, le=1.0)
    min_score: float = Field(ge=0.0, le=1.0)
    reject_malformed: bool
    reject_failed_tools: bool
    require_citation: bool  # a report without any cited product is unsupported


@dataclass
class FilterDecision:
    """Whether to keep a trajectory, and every reason it was rejected."""

    keep: bool
    reasons: list[str] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)


def filter_trajectory(traj: Trajectory, cfg: FilterConfig | None = None) -> FilterDecision:
    """Apply the four checks to ``traj``."""
    cfg = cfg or FilterConfig.model_validate({})
    if not traj.rounds:
        return FilterDecision(False, ["no_rounds"])
    reasons: list[str] = []
    details: dict[str, object] = {}
    steps = traj.all_steps()
    bad_calls = [s.call.id for s in steps if s.call.malformed or s.call.name not in (*TOOL_NAMES, REFLECT)]
    if cfg.reject_malformed and (bad_calls or traj.final_report.used_fallback):
        reasons.append("malformed_tool_call")
        details["malformed"] = bad_calls + (["report"] if traj.final_report.used_fallback else [])
    failed = [s.call.id for s in steps if not s.result.ok]
    if cfg.reject_failed_tools and failed:
        reasons.append("failed_tool")
        details["failed"] = failed
    fact = fact_check(
        traj.final_report.markdown, traj.evidence_product_ids(), traj.evidence_text(), traj.final_inferred.query
    )
    details["fact"] = fact.to_dict()
    if fact.unsupported_products or fact.share < cfg.min_fact_share or (cfg.require_citation and not fact.cited):
        reasons.append("unsupported_claims")
    fb = traj.rounds[-1].feedback
    details["score"] = None if fb is None else fb.score
    if fb is None or fb.score < cfg.min_score:
        reasons.append("low_score")
    return FilterDecision(not reasons, reasons, details)
