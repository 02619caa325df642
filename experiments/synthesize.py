"""Synthesize ProductResearch trajectories, filter them, internalize them into SFT data.

    python experiments/synthesize.py                         # 3 filtered trajectories, 2 rounds, embedded model
    python experiments/synthesize.py n_target=20 max_rounds=6 llm=transformers llm.model_path=/models/qwen
    python experiments/synthesize.py supervisor.accept_threshold=0.9 filter.min_score=0.6
    python experiments/synthesize.py shift.enabled=true max_rounds=3       # shoppers change their intent after round 1
    python experiments/synthesize.py refilter=results/research/<run>/trajectories.jsonl filter.min_fact_share=0.8
        # no synthesis: re-apply the filter to saved trajectories, rewrite sft.jsonl (in out_dir)

Writes to ``out_dir`` (default results/research/<timestamp>/): trajectories.jsonl (every
trajectory, with its filter decision), sft.jsonl + README.md (dataset card: the kept ones,
internalized), rounds.csv (supervisor score by round), shifts.csv (with ``shift.enabled=true``: whether each
shifted trajectory ends on the final intent), summary.json. Config mistakes print one
clear message and exit with status 2.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from rl_shop.paths import CONFIG_DIR  # noqa: E402

log = logging.getLogger("synthesize")


def run(cfg: DictConfig) -> dict:
    """The whole synthesis; returns the summary dict."""
    import pandas as pd

    from rl_shop.llm import make_llm
    from rl_shop.research.config import node, results_dir
    from rl_shop.research.evaluate import query_quality
    from rl_shop.research.evaluate import shift_outcomes
    from rl_shop.research.filtering import FilterConfig, filter_trajectory
    from rl_shop.research.intent_shift import ShiftConfig
    from rl_shop.research.internalize import internalize
    from rl_shop.research.pipeline import PersonaConfig, ResearchWorld, synthesize
    from rl_shop.research.research_agent import ResearchAgentConfig
    from rl_shop.research.sft_data import dataset_card, write_sft_jsonl
    from rl_shop.research.supervisor import SupervisorConfig
    from rl_shop.research.tools import ResearchTools, ToolsConfig
    from rl_shop.research.trajectory import Trajectory
    from rl_shop.research.user_agent import UserAgentConfig

    persona = node(PersonaConfig, cfg.persona, "persona")
    user_cfg = node(UserAgentConfig, cfg.user_agent, "user_agent")
    agent_cfg = node(ResearchAgentConfig, cfg.research_agent, "research_agent")
    tools_cfg = node(ToolsConfig, cfg.tools, "tools")
    sup_cfg = node(SupervisorConfig, cfg.supervisor, "supervisor")
    filt_cfg = node(FilterConfig, cfg.filter, "filter")
    shift_cfg = node(ShiftConfig, cfg.shift, "shift")
    if int(cfg.n_target) < 1 or int(cfg.max_attempts) < int(cfg.n_target):
        raise ValueError(f"need 1 <= n_target <= max_attempts, got n_target={cfg.n_target}, max_attempts={cfg.max_attempts}")
    out = results_dir(cfg.out_dir)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    t0 = time.perf_counter()
    if cfg.refilter:
        src = Path(cfg.refilter)
        if not src.is_file():
            raise ValueError(f"refilter={str(src)!r} not found; point it at a trajectories.jsonl of an earlier run")
        saved = [Trajectory.model_validate_json(x) for x in src.read_text(encoding="utf-8").splitlines() if x.strip()]
        model_name = saved[0].model if saved else "?"
        source = iter(saved)
        metrics: dict = {}
    else:
        world = ResearchWorld.load(tools_cfg, web_backend=cfg.web_backend)
        llm = make_llm(cfg.llm)
        model_name = llm.describe()
        source = (synthesize(world, llm, int(cfg.seed) + i, persona_cfg=persona, user_cfg=user_cfg,
                             agent_cfg=agent_cfg, sup_cfg=sup_cfg, max_rounds=int(cfg.max_rounds),
                             stop_on_accept=bool(cfg.stop_on_accept), shift_cfg=shift_cfg)
                  for i in range(int(cfg.max_attempts)))
    kept, rows, reasons, intents, seen = [], [], {}, [], []
    dest = out / ("trajectories.jsonl" if not cfg.refilter else "trajectories.refiltered.jsonl")
    with dest.open("w", encoding="utf-8") as fh:
        for traj in source:
            decision = filter_trajectory(traj, filt_cfg)
            traj.meta["filter"] = {"keep": decision.keep, "reasons": decision.reasons, "details": decision.details}
            fh.write(traj.model_dump_json() + "\n")
            fh.flush()
            for r in decision.reasons:
                reasons[r] = reasons.get(r, 0) + 1
            intents.append({"intent": traj.intent_score})
            seen.append(traj)
            for rnd in traj.rounds:
                rows.append({"trajectory": traj.id, "round": rnd.index, "steps": len(rnd.steps),
                             "score": rnd.feedback.score if rnd.feedback else None,
                             "accept": rnd.feedback.accept if rnd.feedback else None})
            print(f"[{traj.id}] rounds={len(traj.rounds)} score={traj.rounds[-1].feedback.score:.2f} "
                  f"intent={traj.intent_score['mean']:.2f} keep={decision.keep} {decision.reasons} "
                  f"({traj.meta['seconds']:.0f}s)", flush=True)
            if decision.keep:
                kept.append(traj)
            if len(kept) >= int(cfg.n_target) and not cfg.refilter:
                break
    records = [{"id": t.id, "messages": internalize(t, config=agent_cfg), "tools": ResearchTools.openai_tool_specs(),
                "meta": {"seed": t.seed, "rounds": len(t.rounds), "score": t.rounds[-1].feedback.score,
                         "query_type": t.persona["query_type"]}} for t in kept]
    write_sft_jsonl(records, out / "sft.jsonl")
    pd.DataFrame(rows).to_csv(out / "rounds.csv", index=False)
    attempts = len({r["trajectory"] for r in rows})
    intent = pd.DataFrame([t_["intent"] for t_ in intents]).mean().round(3).to_dict() if intents else {}
    catalog = world.catalog if not cfg.refilter else None
    if catalog is None and any(t.shifts for t in seen):
        from rl_shop.catalog import load_catalog

        catalog = load_catalog()
    shifts = shift_outcomes(seen, catalog) if catalog is not None else None
    shift_summary = None
    if shifts is not None and len(shifts):
        shifts.to_csv(out / "shifts.csv", index=False)
        shift_summary = {"trajectories": len(shifts), "ends_on_final_intent": int(shifts["ends_on_final_intent"].sum()),
                         "share_final": round(float(shifts["ends_on_final_intent"].mean()), 3),
                         "ends_on_initial_intent": int(shifts["ends_on_initial_intent"].sum()),
                         "final_need_addressed": int(shifts["final_need_addressed"].sum()),
                         "kinds": shifts["kind"].value_counts().to_dict()}
    summary = {"attempted": attempts, "kept": len(kept), "rejections": reasons, "model": model_name,
               "max_rounds": int(cfg.max_rounds), "seconds": round(time.perf_counter() - t0, 1),
               "intent_inference": intent, "queries": query_quality(seen), "intent_shift": shift_summary, "filter": filt_cfg.model_dump(), "refiltered_from": cfg.refilter,
               "llm_metrics": metrics if cfg.refilter else llm.metrics.snapshot(), "out_dir": str(out)}
    (out / "README.md").write_text(dataset_card(len(kept), {k: v for k, v in summary.items() if k != "llm_metrics"},
                                                {"model": model_name}))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


@hydra.main(config_path=str(CONFIG_DIR), config_name="synthesize", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from rl_shop.llm import LLMError

    try:
        summary = run(cfg)
    except (ValueError, LLMError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"kept {summary['kept']}/{summary['attempted']} trajectories -> {summary['out_dir']}", flush=True)
    if summary["kept"] == 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
