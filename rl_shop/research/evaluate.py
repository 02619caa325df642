"""RACE evaluation runs: base vs fine-tuned agent on held-out queries, and RACE by supervisor round."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from rl_shop.research.fact import fact_check
from rl_shop.research.pipeline import PersonaConfig, ResearchWorld, sample_persona, solve
from rl_shop.research.prompt import is_degenerate_query
from rl_shop.research.race import JudgeTask, RaceConfig, score_pair
from rl_shop.research.reference import reference_report
from rl_shop.research.research_agent import ResearchAgentConfig
from rl_shop.research.trajectory import InferredIntent, Trajectory
from rl_shop.research.user_agent import UserAgent, UserAgentConfig
from rl_shop.sim import Intent

if TYPE_CHECKING:
    from rl_shop.llm import LLM
    from rl_shop.research.race import CriteriaJudge, LLMJudge, RubricJudge


def task_of(
    inferred: InferredIntent, persona: Intent, evidence_ids: set[str] | None = None, evidence_text: str = ""
) -> JudgeTask:
    """What the judge is told: the query, the constraints the User Agent put in it, and (for the
    criteria judge) the simulator's intent and the evidence the tools showed."""
    return JudgeTask(
        query=inferred.query,
        category=inferred.category,
        budget=inferred.budget,
        brands=list(inferred.brands),
        query_type=persona.query_type,
        intent=persona,
        evidence_ids=evidence_ids,
        evidence_text=evidence_text,
    )


def intent_at(traj: Trajectory, round_index: int) -> tuple[Intent, InferredIntent]:
    """The latent intent and the User Agent's reading that round ``round_index``'s report must serve
    (a shift after round r applies from round r + 1 on)."""
    persona, inferred = Intent.model_validate(traj.persona), traj.inferred
    for sh in traj.shifts:
        if round_index > int(sh["after_round"]):
            persona, inferred = Intent.model_validate(sh["persona"]), InferredIntent.model_validate(sh["inferred"])
    return persona, inferred


def steps_upto(traj: Trajectory, round_index: int) -> list:
    return [s for r in traj.rounds[: round_index + 1] for s in r.steps]


def evidence_of(steps: list) -> tuple[set[str], str]:
    ok = [s for s in steps if s.result.ok]
    return {p for s in ok for p in s.result.product_ids}, "\n".join(s.result.content for s in ok)


def heldout_tasks(
    world: ResearchWorld,
    query_llm: LLM,
    n: int,
    seed_offset: int,
    persona_cfg: PersonaConfig,
    user_cfg: UserAgentConfig,
) -> list[tuple[int, Intent, InferredIntent]]:
    """``n`` held-out shoppers (seeds ``seed_offset + i``), their queries written once by ``query_llm``."""
    out = []
    for i in range(n):
        seed = seed_offset + i
        persona, events = sample_persona(world, seed, persona_cfg)
        out.append((seed, persona, UserAgent(query_llm, world.catalog, user_cfg).infer(events, seed=seed)))
    return out


def compare_models(
    world: ResearchWorld,
    models: dict[str, Any],
    tasks: list[tuple[int, Intent, InferredIntent]],
    agent_cfg: ResearchAgentConfig,
    race_cfg: RaceConfig,
    judge: RubricJudge | LLMJudge | CriteriaJudge,
    reference_k: int,
) -> pd.DataFrame:
    """One row per (model, query): RACE (final and per dimension), FACT share, steps, reports."""
    rows = []
    for seed, persona, inferred in tasks:
        ref = reference_report(persona, inferred, world.catalog, world.index, k=reference_k)
        for name, llm in models.items():
            steps, rep = solve(world, llm, inferred, agent_cfg, seed=seed)
            ev_ids, ev_text = evidence_of(steps)
            s = score_pair(judge, race_cfg, rep.markdown, ref.markdown, task_of(inferred, persona, ev_ids, ev_text))
            ok = [st for st in steps if st.result.ok]
            fact = fact_check(
                rep.markdown,
                {p for st in ok for p in st.result.product_ids},
                "\n".join(st.result.content for st in ok),
                inferred.query,
            )
            rows.append(
                {
                    "model": name,
                    "seed": seed,
                    "query_type": persona.query_type,
                    "query": inferred.query,
                    **s.to_dict(),
                    "fact_share": round(fact.share, 4),
                    "cited": len(fact.cited),
                    "steps": len(steps),
                    "failed_tools": sum(not st.result.ok for st in steps),
                    "report": rep.markdown,
                    "reference": ref.markdown,
                }
            )
    return pd.DataFrame(rows)


def race_by_round(
    world: ResearchWorld,
    trajectories: list[Trajectory],
    race_cfg: RaceConfig,
    judge: RubricJudge | LLMJudge | CriteriaJudge,
    reference_k: int,
    through_round: int | None = None,
) -> pd.DataFrame:
    """RACE of every intermediate report, per trajectory and round (the paper's 0.43 -> 0.50 curve).

    A trajectory the Supervisor accepted early has no later rounds; with ``through_round`` its last
    report is carried forward to that round (rows marked ``carried``), so every round averages the
    same shoppers: the report each one holds after ``r`` rounds of feedback."""
    rows = []
    for t in trajectories:
        for rnd in t.rounds:
            persona, inferred = intent_at(t, rnd.index)
            ref = reference_report(persona, inferred, world.catalog, world.index, k=reference_k)
            ev_ids, ev_text = evidence_of(steps_upto(t, rnd.index))
            s = score_pair(
                judge, race_cfg, rnd.report.markdown, ref.markdown, task_of(inferred, persona, ev_ids, ev_text)
            )
            rows.append(
                {
                    "trajectory": t.id,
                    "round": rnd.index + 1,
                    **s.to_dict(),
                    "supervisor_score": rnd.feedback.score if rnd.feedback else None,
                    "shifted": any(rnd.index > int(sh["after_round"]) for sh in t.shifts),
                    "kept": bool(t.meta.get("filter", {}).get("keep", False)),
                    "carried": False,
                }
            )
        for r in range(len(t.rounds) + 1, (through_round or 0) + 1) if t.rounds else ():
            rows.append({**rows[-1], "round": r, "carried": True})
    return pd.DataFrame(rows)


def shift_outcomes(trajectories: list[Trajectory], catalog: pd.DataFrame, corpus: Iterable[Any] = ()) -> pd.DataFrame:
    """Per trajectory with an intent shift: whether its final report ends on the FINAL intent (>= 1
    recommendation, every recommended product satisfies every constraint), and on the initial one."""
    from rl_shop.research.scorer import CriteriaScorer, ends_on_intent

    scorer = CriteriaScorer(catalog, corpus)
    rows = []
    for t in trajectories:
        if not t.shifts:
            continue
        final, first = Intent.model_validate(t.final_persona), Intent.model_validate(t.persona)
        md = t.final_report.markdown
        d = scorer.detail(md, final)
        rows.append(
            {
                "trajectory": t.id,
                "kind": t.shifts[-1]["kind"],
                "rounds": len(t.rounds),
                "ends_on_final_intent": ends_on_intent(scorer, md, final),
                "ends_on_initial_intent": ends_on_intent(scorer, md, first),
                "final_need_addressed": bool(
                    d.needs.get(
                        {"budget_drop": "budget", "brand_exclusion": "brand", "new_use_case": "use_case"}[
                            t.shifts[-1]["kind"]
                        ]
                    )
                ),
            }
        )
    return pd.DataFrame(rows)


def paired_interval(diffs: list[float] | Any, level: float = 0.95) -> dict[str, float]:
    """Mean of paired differences with a Student-t ``level`` interval (n >= 2)."""
    import numpy as np
    from scipy import stats

    d = np.asarray(list(diffs), dtype=float)
    n = len(d)
    if n < 2:
        return {"n": n, "mean": float(d.mean()) if n else float("nan"), "low": float("nan"), "high": float("nan")}
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * d.std(ddof=1) / np.sqrt(n))
    return {"n": n, "mean": float(d.mean()), "low": float(d.mean() - half), "high": float(d.mean() + half)}


def query_quality(trajectories: list[Trajectory]) -> dict[str, Any]:
    """Search queries (product_search / web_search arguments) of ``trajectories`` by who chose them,
    and the share of the model's own that are degenerate (:func:`~rl_shop.research.prompt.is_degenerate_query`:
    a tool / field name or an id). Steps recorded before ``AgentStep.source`` existed count as model."""
    rows = [
        (s.source, is_degenerate_query(str(s.call.arguments.get("query", ""))))
        for t in trajectories
        for s in t.all_steps()
        if s.call.name in ("product_search", "web_search")
    ]
    model = [d for src, d in rows if src == "model"]
    return {
        "search_steps": len(rows),
        "model": len(model),
        "seeded": sum(src == "seeded" for src, _ in rows),
        "fallback": sum(src == "fallback" for src, _ in rows),
        "model_degenerate": sum(model),
        "model_degenerate_share": round(sum(model) / len(model), 3) if model else None,
        "degenerate_share_all": round(sum(d for _, d in rows) / len(rows), 3) if rows else None,
        "reflect_steps": sum(s.call.name == "reflect" for t in trajectories for s in t.all_steps()),
        # steps whose model answer was first rejected as degenerate (recorded since the retry existed)
        "rejected_degenerate": sum(
            any("not a search" in e for e in s.call.errors) for t in trajectories for s in t.all_steps()
        ),
    }


def md_table(df: pd.DataFrame) -> str:
    """A GitHub markdown table of ``df`` with its index (no ``tabulate`` dependency)."""
    flat = df.copy()
    if isinstance(flat.columns, pd.MultiIndex):
        flat.columns = ["_".join(str(p) for p in c if p) for c in flat.columns]
    head = [str(flat.index.name or "")] + [str(c) for c in flat.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for idx, row in flat.iterrows():
        cells = [str(idx)] + [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
