"""Evaluation of MACDF section 4: metrics, baselines (retrieval, RAG), the MACDF adapters, the resumable
benchmark runner, UDS (LLM judge + deterministic rubric), the simulated A/B test, sim-to-agent
consistency and the report. Import-light: submodules load their heavy dependencies lazily.
See docs/evaluation.md.
"""

from rl_shop.evaluation.ab_test import RelativeChange, relative_change
from rl_shop.evaluation.metrics import accuracy_at_k, ndcg_at_k, recall_at_k
from rl_shop.evaluation.runner import EvalRunError, EvalRunner, aggregate, select_items, shopper_seed
from rl_shop.evaluation.systems import MACDFSystem, RetrievalSystem, System, SystemOutput
from rl_shop.evaluation.uds import RubricConfig, UDSJudge, rubric_score

__all__ = [
    "EvalRunError",
    "EvalRunner",
    "MACDFSystem",
    "RelativeChange",
    "RetrievalSystem",
    "RubricConfig",
    "System",
    "SystemOutput",
    "UDSJudge",
    "accuracy_at_k",
    "aggregate",
    "ndcg_at_k",
    "recall_at_k",
    "relative_change",
    "rubric_score",
    "select_items",
    "shopper_seed",
]
