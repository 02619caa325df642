"""RACE of the Research Agent: base vs LoRA-tuned on held-out queries, and by supervisor round.

    python experiments/race.py adapter=results/research/<run>/sft/adapter trajectories=results/research/<run>/trajectories.jsonl
    python experiments/race.py race.judge=llm n_queries=20          # LLM judge (the llm config), more queries
    python experiments/race.py race.judge=rubric                    # the old feature rubric (default: criteria)

Writes to out_dir (default results/research/race-<timestamp>/): base_vs_tuned.csv / .md,
by_round.csv / .md, race.png, summary.json. Config mistakes print one message and exit 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from rl_shop.paths import CONFIG_DIR  # noqa: E402

DIMS = ["race", "race_comprehensiveness", "race_insight", "race_instruction_following", "race_readability"]


def tuned_llm(cfg: DictConfig, adapter: str):
    """The base LLM config with the adapter on top (transformers backend over the same weights)."""
    from rl_shop.llm import load_llm_config, make_llm
    from rl_shop.research.sft import embedded_base_path

    base = OmegaConf.to_container(cfg.llm, resolve=True)
    model_path = str(embedded_base_path()) if base["backend"] == "embedded" else base.get("model_path")
    if base["backend"] == "openai" or not model_path:
        raise ValueError("adapter= needs a local base model (llm=embedded or llm=transformers)")
    keep = {k: v for k, v in base.items() if k in ("seed", "structured_retries", "cache", "dtype", "top_p",
                                                   "structured_library", "prefix_cache", "num_threads")}
    over = [f"model_path={model_path}", f"adapter_path={Path(adapter).resolve()}"]
    tcfg = load_llm_config("transformers", over)
    tcfg.update(keep)
    return make_llm(tcfg)


def plot(base_vs: "pd.DataFrame", by_round: "pd.DataFrame | None", path: Path) -> None:  # noqa: F821
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 2 if by_round is not None and len(by_round) else 1
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 3.8))
    axes = [axes] if n == 1 else list(axes)
    means = base_vs.groupby("model")[DIMS].mean()
    means.T.plot.bar(ax=axes[0], rot=30)
    axes[0].axhline(0.5, color="grey", lw=0.8, ls="--")
    axes[0].set_title("RACE vs reference (held-out)")
    axes[0].set_ylim(0, 1)
    if n == 2:
        g = by_round.groupby("round")["race"].agg(["mean", "count"])
        axes[1].plot(g.index, g["mean"], marker="o")
        for r, row in g.iterrows():
            axes[1].annotate(f"n={int(row['count'])}", (r, row["mean"]), textcoords="offset points", xytext=(0, 6))
        axes[1].set_xlabel("supervisor round")
        axes[1].set_ylabel("RACE")
        axes[1].set_title("RACE by supervisor round")
        axes[1].set_xticks(list(g.index))
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def run(cfg: DictConfig) -> dict:
    import pandas as pd

    from rl_shop.llm import make_llm
    from rl_shop.research.config import node, results_dir
    from rl_shop.research.evaluate import compare_models, heldout_tasks, md_table, paired_interval, race_by_round
    from rl_shop.research.pipeline import PersonaConfig, ResearchWorld
    from rl_shop.research.race import RaceConfig, make_judge
    from rl_shop.research.research_agent import ResearchAgentConfig
    from rl_shop.research.tools import ToolsConfig
    from rl_shop.research.trajectory import Trajectory
    from rl_shop.research.user_agent import UserAgentConfig

    race_cfg = node(RaceConfig, cfg.race, "race")
    agent_cfg = node(ResearchAgentConfig, cfg.research_agent, "research_agent")
    world = ResearchWorld.load(node(ToolsConfig, cfg.tools, "tools"), web_backend=cfg.web_backend)
    out = results_dir(cfg.out_dir, "race-")
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    base = make_llm(cfg.llm)
    models = {"base": base}
    if cfg.adapter:
        if not (Path(cfg.adapter) / "adapter_config.json").is_file():
            raise ValueError(f"adapter={cfg.adapter!r} is not a PEFT adapter directory (run experiments/sft.py)")
        models["tuned"] = tuned_llm(cfg, str(cfg.adapter))
    judge = make_judge(race_cfg, world.catalog, base, corpus=getattr(world.tools.web, "documents", []) or [])
    tasks = heldout_tasks(world, base, int(cfg.n_queries), int(cfg.seed_offset),
                          node(PersonaConfig, cfg.persona, "persona"), node(UserAgentConfig, cfg.user_agent, "user_agent"))
    table = compare_models(world, models, tasks, agent_cfg, race_cfg, judge, int(cfg.reference_k))
    table.to_csv(out / "base_vs_tuned.csv", index=False)
    cols = DIMS + ["fact_share", "cited", "steps", "failed_tools"]
    means = table.groupby("model")[cols].mean().round(3)
    md = [f"# RACE, {len(tasks)} held-out queries, judge={race_cfg.judge}", "", md_table(means), ""]
    for _, r in table.iterrows():
        md += [f"## {r['model']} / seed {r['seed']} ({r['query_type']}): RACE {r['race']:.3f}", "", r["report"], ""]
    (out / "base_vs_tuned.md").write_text("\n".join(md))
    by_round = None
    summary: dict = {"judge": race_cfg.judge, "n_queries": len(tasks), "models": {k: m.describe() for k, m in models.items()},
                     "base_vs_tuned": means.to_dict(orient="index")}
    if "tuned" in models:
        wide = table.pivot(index="seed", columns="model", values="race")
        summary["tuned_minus_base"] = {k: round(v, 4) if isinstance(v, float) else v
                                       for k, v in paired_interval((wide["tuned"] - wide["base"]).tolist()).items()}
        md += ["", f"tuned - base RACE, paired over {len(wide)} held-out intents: "
               f"{summary['tuned_minus_base']} (mean, 95% t interval)"]
        (out / "base_vs_tuned.md").write_text("\n".join(md))
    if cfg.trajectories:
        path = Path(cfg.trajectories)
        if not path.is_file():
            raise ValueError(f"trajectories={str(path)!r} not found (experiments/synthesize.py writes trajectories.jsonl)")
        trajs = [Trajectory.model_validate_json(line) for line in path.read_text().splitlines() if line.strip()]
        by_round = race_by_round(world, trajs, race_cfg, judge, int(cfg.reference_k))
        by_round.to_csv(out / "by_round.csv", index=False)
        g = by_round.groupby("round")[["race", "supervisor_score"]].agg(["mean", "count"]).round(3)
        (out / "by_round.md").write_text(f"# RACE by supervisor round (judge={race_cfg.judge})\n\n{md_table(g)}\n")
        summary["by_round"] = {int(k): float(v) for k, v in by_round.groupby("round")["race"].mean().round(4).items()}
        # round r vs round 1 of the same trajectories (paired), with 95% intervals
        first = by_round[by_round["round"] == 1].set_index("trajectory")["race"]
        summary["by_round_vs_round1"] = {
            int(r): {k: round(v, 4) if isinstance(v, float) else v for k, v in
                     paired_interval((g.set_index("trajectory")["race"] - first.reindex(g["trajectory"]).values).tolist()).items()}
            for r, g in by_round.groupby("round") if r > 1}
    plot(table, by_round, out / "race.png")
    summary["out_dir"] = str(out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(means.to_string())
    if by_round is not None:
        print(by_round.groupby("round")["race"].mean().round(3).to_string())
    return summary


@hydra.main(config_path=str(CONFIG_DIR), config_name="race", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from rl_shop.llm import LLMError

    try:
        summary = run(cfg)
    except (ValueError, LLMError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"-> {summary['out_dir']}")


if __name__ == "__main__":
    main()
