"""The systems compared end to end on the ECCD-style benchmark (MACDF section 4.1.2), behind one protocol.

Every system answers one benchmark query for one simulated shopper and returns a
:class:`SystemOutput`: the ranked product ids it shows, its answer text, how many clarification
rounds it spent and its own latency figures. The runner never looks inside a system, so the
retrieval-ranking baseline, the RAG baseline (``rl_shop.evaluation.rag``) and the two MACDF
variants (thin adapters over ``rl_shop.agents.runtime.MACDFAssistant``) are scored by the same code.

Systems measure their own time to first token and total time, because only they know when the
first user-visible token left (the runner's wall clock would also count the LLM judge).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast, runtime_checkable

from envs.specs import CLARIFY
from rl_shop.config_files import env_config
from rl_shop.evaluation.retrieval_baseline import SearchIndex, result_ids
from rl_shop.sim.benchmark import BenchmarkItem
from rl_shop.sim.shopper import Shopper

if TYPE_CHECKING:
    import pandas as pd

    from rl_shop.catalog.index import HybridIndex
    from rl_shop.llm import LLM


@dataclass
class SystemOutput:
    """What one system showed one shopper for one query.

    ``products`` holds display records (``product_id``, ``title``, ``brand``, ``price``,
    ``reason``) where the system has them; ``ranked_ids`` is what Accuracy@K is computed on.
    ``clarifications`` are ``(slot, question, answer)`` triples of the dialogue with the shopper.
    """

    ranked_ids: list[str]
    answer: str = ""
    clarifications: list[tuple[str, str, str]] = field(default_factory=list)
    ttft_s: float = 0.0
    total_s: float = 0.0
    products: list[dict[str, Any]] = field(default_factory=list)
    follow_up: str = ""
    refused: bool = False
    llm_fallbacks: int = 0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rounds(self) -> int:
        """Clarification rounds spent (questions the shopper was asked)."""
        return len(self.clarifications)

    def to_record(self) -> dict[str, Any]:
        """JSON-safe dict (tuples become lists)."""
        rec = asdict(self)
        rec["clarifications"] = [list(c) for c in self.clarifications]
        rec["rounds"] = self.rounds
        return rec


@runtime_checkable
class System(Protocol):
    """A system under evaluation: a stable ``name`` and one call per (query, shopper)."""

    name: str

    def run(self, item: BenchmarkItem, shopper: Shopper) -> SystemOutput: ...


class RetrievalSystem:
    """MACDF's "online system" stand-in: the hybrid index on the raw query text, no LLM.

    Non-streaming, so its time to first token equals its total time (as the paper reports for
    the online baseline, section 4.3).
    """

    def __init__(self, index: SearchIndex, k: int = 10, name: str = "retrieval") -> None:
        if k < 1:
            raise ValueError(f"k must be a positive integer, got {k}")
        self.index, self.k, self.name = index, int(k), name

    def run(self, item: BenchmarkItem, shopper: Shopper) -> SystemOutput:
        start = time.perf_counter()
        ranked = result_ids(self.index.search(item.query, k=self.k))
        elapsed = time.perf_counter() - start
        return SystemOutput(ranked_ids=ranked, ttft_s=elapsed, total_s=elapsed)


# --------------------------------------------------------------------------- MACDF adapter
AssistantFactory = Callable[[], Any]


def clarify_confirm_threshold() -> float:
    """The Accuracy@5 at which a shopper confirms a shortlist: the Clarify env's, so that the loop's
    shopper reacts to a shortlist as the env's does (``configs/env/clarify.yaml``)."""
    return float(env_config(CLARIFY.config)["kwargs"]["confirm_threshold"])


class RunsDialogues(Protocol):
    """``MACDFAssistant.run``'s shape, as the adapter calls it (a test double satisfies it too)."""

    def run(
        self,
        query: str,
        *,
        answer_fn: Callable[..., str] | None = ...,
        session_id: str | None = ...,
        on_token: Callable[[str], None] | None = ...,
    ) -> object: ...


class MACDFSystem:
    """Adapter over ``rl_shop.agents.runtime.MACDFAssistant`` (heuristic or learned policies).

    The Guider's questions and shortlists are answered by the simulator's *language face*
    (``Shopper.reply``), so ambiguous queries are resolved in a real dialogue; the same
    shopper object then reacts to the results. ``assistant`` is any object with the
    ``MACDFAssistant.run`` signature (the tests pass a double).
    """

    def __init__(self, assistant: RunsDialogues, name: str) -> None:
        if not callable(getattr(assistant, "run", None)):
            raise TypeError(
                f"assistant must have a run(query, answer_fn=..., session_id=...) method, got {type(assistant).__name__}"
            )
        self.assistant, self.name = assistant, name
        self.confirm_threshold = clarify_confirm_threshold()

    def run(self, item: BenchmarkItem, shopper: Shopper) -> SystemOutput:
        def answer_fn(slot: str, question: str, shown: tuple[str, ...]) -> str:
            return shopper.reply(slot, shown, self.confirm_threshold)

        start = time.perf_counter()
        res = self.assistant.run(
            item.query, answer_fn=answer_fn, session_id=f"eval:{self.name}:{item.id}", on_token=None
        )
        wall = time.perf_counter() - start
        timings = dict(getattr(res, "timings", {}) or {})
        products = [_product_record(p) for p in (getattr(res, "products", None) or [])]
        clar = [_turn(c) for c in (getattr(res, "clarifications", None) or [])]
        return SystemOutput(
            ranked_ids=[p["product_id"] for p in products],
            answer=str(getattr(res, "answer", "") or ""),
            clarifications=clar,
            ttft_s=float(timings.get("ttft_s", wall)),
            total_s=float(timings.get("total_s", wall)),
            products=products,
            follow_up=str(getattr(res, "follow_up", "") or ""),
            refused=bool(getattr(res, "refused", False)),
            llm_fallbacks=int(getattr(res, "llm_fallbacks", 0) or 0),
            extra={
                "query_type_pred": getattr(res, "query_type", None),
                "replans": int(getattr(res, "replans", 0) or 0),
                "agent_s": {k: float(v) for k, v in timings.items() if str(k).startswith("agent:")},
                "llm_calls": dict(getattr(res, "llm_calls", None) or {}),
                "clarity_hat": leader_clarity_estimates(getattr(res, "trace", None) or []),
            },
        )


def leader_clarity_estimates(trace: list[Any]) -> list[float]:
    """The Leader's clarity estimate at each clarify-or-plan decision (before the first question,
    then after each answer): what the collaboration policy observes as ``clarity_hat``."""
    return [
        float(s.detail["clarity_hat"])
        for s in trace
        if (s.agent, s.action) == ("Leader", "clarify_or_plan") and "clarity_hat" in s.detail
    ]


class _Turn(Protocol):
    slot: str
    question: str
    answer: str


def _turn(c: _Turn | tuple[str, str, str] | list[str]) -> tuple[str, str, str]:
    """``(slot, question, answer)`` from a ``ClarificationTurn`` or a plain triple."""
    if isinstance(c, (tuple, list)):
        return str(c[0]), str(c[1]), str(c[2])
    return str(c.slot), str(c.question), str(c.answer)


def _product_record(p: object) -> dict[str, Any]:
    get = (lambda k: p.get(k)) if isinstance(p, dict) else (lambda k: getattr(p, k, None))
    pid = get("product_id")
    if pid is None:
        raise ValueError(f"assistant returned a product without product_id: {p!r:.120}")
    price = get("price")
    return {
        "product_id": str(pid),
        "title": str(get("title") or ""),
        "brand": str(get("brand") or ""),
        "price": None if price is None else float(price),
        "reason": str(get("reason") or ""),
    }


def make_macdf_system(
    policies: str,
    *,
    llm: LLM | None,
    catalog: pd.DataFrame,
    index: HybridIndex,
    overrides: list[str] | None = None,
    policies_dir: str | Path | None = None,
    memory_path: str | None = ":memory:",
    name: str | None = None,
) -> MACDFSystem:
    """Build ``MACDFAssistant.from_config(..., policies=policies)`` and wrap it.

    ``policies_dir`` (with ``guider/``, ``scheduler/``, ``collaboration/`` exports) is passed as
    ``runtime.policy_dirs.*`` for the learned variant. ``memory_path`` defaults to a private
    in-memory store so that evaluation runs never write into the project's agent memory.
    Raises a clear error when the agent runtime is not available in this checkout.
    """
    if policies not in ("heuristic", "learned"):
        raise ValueError(f"policies must be 'heuristic' or 'learned', got {policies!r}")
    mode = cast(Literal["heuristic", "learned"], policies)  # checked just above
    try:
        from rl_shop.agents.runtime import MACDFAssistant
    except ImportError as exc:
        raise RuntimeError(
            f"the MACDF runtime (rl_shop.agents.runtime.MACDFAssistant) cannot be imported ({exc}); "
            "evaluate only the baselines with systems=[retrieval,rag]"
        ) from exc
    extra = list(overrides or [])
    if policies == "learned" and policies_dir is not None:
        root = Path(policies_dir)
        for role in ("guider", "scheduler", "collaboration"):
            if not (root / role / "policy_card.json").is_file():
                raise FileNotFoundError(
                    f"macdf_learned needs an exported {role} policy in {root / role} (policy_card.json); "
                    "train and export one (make reproduce) or set policies_dir"
                )
            extra.append(f"runtime.policy_dirs.{role}={(root / role).resolve()}")
    assistant = MACDFAssistant.from_config(
        extra or None, llm=llm, catalog=catalog, index=index, policies=mode, memory_path=memory_path
    )
    return MACDFSystem(assistant, name or f"macdf_{policies}")


__all__ = ["MACDFSystem", "RetrievalSystem", "System", "SystemOutput", "make_macdf_system"]
