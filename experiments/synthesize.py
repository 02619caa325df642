"""Synthesize ProductResearch trajectories, filter them, internalize them into SFT data.

    python experiments/synthesize.py                         # 3 filtered trajectories, 2 rounds, embedded model
    python experiments/synthesize.py n_target=20 max_rounds=6 llm=transformers llm.model_path=/models/qwen
    python experiments/synthesize.py supervisor.accept_threshold=0.9 filter.min_score=0.6
    python experiments/synthesize.py shift.enabled=true max_rounds=3       # shoppers change their intent after round 1
    python experiments/synthesize.py refilter=results/research/<run>/trajectories.jsonl filter.min_fact_share=0.8
        # no synthesis: re-apply the filter to saved trajectories, rewrite sft.jsonl (in out_dir)

Resumable and sharded (:mod:`rl_shop.research.synthesis_run`): a rerun on the same ``out_dir``
goes on where it stopped; ``-m hydra/launcher=joblib shard.count=2 shard.index=0,1`` runs shards in
parallel, and a plain run on the same ``out_dir`` merges them (no model calls).

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


# Options that may change between a run and its resume or its shards: where to write, which shard,
# how many trajectories to aim for (a resume with a larger n_target goes on where it stopped) and the
# filter (re-applied to every trajectory on each run).
UNPINNED = ("out_dir", "refilter", "shard", "n_target", "max_attempts", "filter")


def pinned(cfg: DictConfig) -> dict:
    """The configuration a run directory's trajectories were made with."""
    conf = OmegaConf.to_container(cfg, resolve=True)
    return {k: v for k, v in conf.items() if k not in UNPINNED and k != "hydra"}


def trajectories(cfg: DictConfig, out: Path, filt_cfg) -> tuple[list, str, dict, Path]:
    """(attempts, model name, LLM metrics, the directory for this run's dataset) for this mode:
    refilter a saved file, merge shards, or synthesize (resuming what the directory holds)."""
    from rl_shop.research.synthesis_run import (
        SynthesisRunError,
        attempt_seeds,
        decide,
        merge_shards,
        pin,
        read_trajectories,
        run_attempts,
        shard_target,
    )
    from rl_shop.sharding import check_shard, shard_dir

    index, count = check_shard(cfg.shard.index, cfg.shard.count)
    if cfg.refilter:
        src = Path(cfg.refilter)
        if not src.is_file():
            raise ValueError(f"refilter={str(src)!r} not found; point it at a trajectories.jsonl of an earlier run")
        saved = read_trajectories(src)
        return (
            rewrite([decide(t, filt_cfg) for t in saved], out / "trajectories.refiltered.jsonl"),
            saved[0].model if saved else "?",
            {},
            out,
        )
    if count == 1 and (out / "shards").is_dir():
        merged = merge_shards(out, pinned(cfg))
        log.info("merged %d trajectories from %s", len(merged), out / "shards")
        return rewrite([decide(t, filt_cfg) for t in merged], out / "trajectories.jsonl"), merged[0].model, {}, out
    from rl_shop.llm import make_llm
    from rl_shop.research.pipeline import ResearchWorld, synthesize

    work = out if count == 1 else shard_dir(out, index, count)
    pin(work, pinned(cfg))
    world = ResearchWorld.load(cfg_node(cfg, "tools"), web_backend=cfg.web_backend)
    llm = make_llm(cfg.llm)
    nodes = {name: cfg_node(cfg, name) for name in ("persona", "user_cfg", "agent_cfg", "sup_cfg", "shift_cfg")}

    def make(seed: int):
        return synthesize(
            world,
            llm,
            seed,
            max_rounds=int(cfg.max_rounds),
            stop_on_accept=bool(cfg.stop_on_accept),
            persona_cfg=nodes["persona"],
            user_cfg=nodes["user_cfg"],
            agent_cfg=nodes["agent_cfg"],
            sup_cfg=nodes["sup_cfg"],
            shift_cfg=nodes["shift_cfg"],
        )

    seeds = attempt_seeds(int(cfg.seed), int(cfg.max_attempts), index, count)
    attempts = []
    for a in run_attempts(work, seeds, shard_target(int(cfg.n_target), index, count), make, filt_cfg):
        t, d = a.trajectory, a.decision
        print(
            f"[{t.id}] rounds={len(t.rounds)} score={t.rounds[-1].feedback.score:.2f} "
            f"intent={t.intent_score['mean']:.2f} keep={d.keep} {d.reasons} ({t.meta['seconds']:.0f}s"
            f"{', resumed' if a.resumed else ''})",
            flush=True,
        )
        attempts.append(a)
    if not attempts:
        raise SynthesisRunError(f"no seed left to attempt in {work}; raise max_attempts")
    return attempts, llm.describe(), llm.metrics.snapshot(), work


def rewrite(attempts: list, path: Path) -> list:
    """Write the attempts' trajectories (with this run's filter decisions) to ``path``."""
    path.write_text("".join(a.trajectory.model_dump_json() + "\n" for a in attempts), encoding="utf-8")
    return attempts


def cfg_node(cfg: DictConfig, name: str):
    """The validated pydantic model of one config node (``user_cfg`` etc. are the pipeline's names)."""
    from rl_shop.research.config import node
    from rl_shop.research.intent_shift import ShiftConfig
    from rl_shop.research.pipeline import PersonaConfig
    from rl_shop.research.research_agent import ResearchAgentConfig
    from rl_shop.research.supervisor import SupervisorConfig
    from rl_shop.research.tools import ToolsConfig
    from rl_shop.research.user_agent import UserAgentConfig

    model, key = {
        "persona": (PersonaConfig, "persona"),
        "user_cfg": (UserAgentConfig, "user_agent"),
        "agent_cfg": (ResearchAgentConfig, "research_agent"),
        "tools": (ToolsConfig, "tools"),
        "sup_cfg": (SupervisorConfig, "supervisor"),
        "shift_cfg": (ShiftConfig, "shift"),
    }[name]
    return node(model, cfg[key], key)


def run(cfg: DictConfig) -> dict:
    """The whole synthesis (or a shard of it, or the merge of the shards); returns the summary dict."""
    import pandas as pd

    from rl_shop.research.config import node, results_dir
    from rl_shop.research.evaluate import query_quality, shift_outcomes
    from rl_shop.research.filtering import FilterConfig
    from rl_shop.research.internalize import internalize
    from rl_shop.research.sft_data import dataset_card, write_sft_jsonl
    from rl_shop.research.tools import ResearchTools

    for name in ("persona", "user_cfg", "agent_cfg", "tools", "sup_cfg", "shift_cfg"):
        cfg_node(cfg, name)  # every node validated before the model loads
    filt_cfg = node(FilterConfig, cfg.filter, "filter")
    if int(cfg.n_target) < 1 or int(cfg.max_attempts) < int(cfg.n_target):
        raise ValueError(
            f"need 1 <= n_target <= max_attempts, got n_target={cfg.n_target}, max_attempts={cfg.max_attempts}"
        )
    if int(cfg.shard.count) > 1 and not cfg.out_dir:
        raise ValueError("a sharded run needs out_dir=...: every shard and the merge must write under the same one")
    out = results_dir(cfg.out_dir)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    t0 = time.perf_counter()
    attempts, model_name, metrics, sft_dir = trajectories(cfg, out, filt_cfg)
    seen = [a.trajectory for a in attempts]
    kept = [a.trajectory for a in attempts if a.decision.keep]
    reasons: dict[str, int] = {}
    for a in attempts:
        for r in a.decision.reasons:
            reasons[r] = reasons.get(r, 0) + 1
    rows = [
        {
            "trajectory": t.id,
            "round": rnd.index,
            "steps": len(rnd.steps),
            "score": rnd.feedback.score if rnd.feedback else None,
            "accept": rnd.feedback.accept if rnd.feedback else None,
        }
        for t in seen
        for rnd in t.rounds
    ]
    agent_cfg = cfg_node(cfg, "agent_cfg")
    records = [
        {
            "id": t.id,
            "messages": internalize(t, config=agent_cfg),
            "tools": ResearchTools.openai_tool_specs(),
            "meta": {
                "seed": t.seed,
                "rounds": len(t.rounds),
                "score": t.rounds[-1].feedback.score,
                "query_type": t.persona["query_type"],
            },
        }
        for t in kept
    ]
    write_sft_jsonl(records, sft_dir / "sft.jsonl")
    pd.DataFrame(rows).to_csv(sft_dir / "rounds.csv", index=False)
    intent = pd.DataFrame([t.intent_score for t in seen]).mean().round(3).to_dict() if seen else {}
    shift_summary = None
    if any(t.shifts for t in seen):
        from rl_shop.catalog import load_catalog

        shifts = shift_outcomes(seen, load_catalog())
        shifts.to_csv(sft_dir / "shifts.csv", index=False)
        shift_summary = {
            "trajectories": len(shifts),
            "ends_on_final_intent": int(shifts["ends_on_final_intent"].sum()),
            "share_final": round(float(shifts["ends_on_final_intent"].mean()), 3),
            "ends_on_initial_intent": int(shifts["ends_on_initial_intent"].sum()),
            "final_need_addressed": int(shifts["final_need_addressed"].sum()),
            "kinds": shifts["kind"].value_counts().to_dict(),
        }
    summary = {
        "attempted": len(seen),
        "kept": len(kept),
        "rejections": reasons,
        "model": model_name,
        "max_rounds": int(cfg.max_rounds),
        "seconds": round(time.perf_counter() - t0, 1),
        "trajectory_seconds": round(sum(float(t.meta.get("seconds", 0.0)) for t in seen), 1),
        "resumed": sum(a.resumed for a in attempts),
        "shard": dict(cfg.shard),
        "intent_inference": intent,
        "queries": query_quality(seen),
        "intent_shift": shift_summary,
        "filter": filt_cfg.model_dump(),
        "refiltered_from": cfg.refilter,
        "llm_metrics": metrics,
        "out_dir": str(sft_dir),
    }
    (sft_dir / "README.md").write_text(
        dataset_card(len(kept), {k: v for k, v in summary.items() if k != "llm_metrics"}, {"model": model_name})
    )
    (sft_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


@hydra.main(config_path=str(CONFIG_DIR), config_name="synthesize", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from rl_shop.llm import LLMError

    try:
        summary = run(cfg)
    except (ValueError, LLMError) as exc:  # SynthesisRunError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"kept {summary['kept']}/{summary['attempted']} trajectories -> {summary['out_dir']}", flush=True)
    if summary["kept"] == 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
