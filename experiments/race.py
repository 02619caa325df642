"""RACE of the Research Agent: base vs LoRA-tuned on held-out queries, and by supervisor round.

    python experiments/race.py adapter=results/research/<run>/sft/adapter trajectories=results/research/<run>/trajectories.jsonl
    python experiments/race.py race.judge=llm n_queries=20          # LLM judge (the llm config), more queries
    python experiments/race.py race.judge=rubric                    # the old feature rubric (default: criteria)
    python experiments/race.py n_queries=0 trajectories=.../trajectories.jsonl   # only the by-round curve
    python experiments/race.py llm=openai llm.base_url=http://127.0.0.1:8000/v1 tuned_model=tuned n_queries=20
        # base and tuned on a server: rl-shop serve-llm --set adapters.tuned=results/research/<run>/sft/adapter

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
    """The base LLM with the adapter on top, on the base's own engine where possible: the embedded
    llama.cpp engine applies the adapter converted to GGUF (so base and tuned decode alike); the
    transformers engines load the PEFT directory over the same weights."""
    from rl_shop.llm import load_llm_config, make_llm
    from rl_shop.research.sft import embedded_base_path

    base = OmegaConf.to_container(cfg.llm, resolve=True)
    model_path = str(embedded_base_path()) if base["backend"] == "embedded" else base.get("model_path")
    if base["backend"] == "openai" or not model_path:
        raise ValueError("adapter= needs a local base model (llm=embedded or llm=transformers)")
    if base["backend"] == "embedded" and base.get("engine", "llama_cpp") == "llama_cpp" and not base.get("gguf_path"):
        from rl_shop.llm.lora_gguf import adapter_gguf

        return make_llm({**base, "lora_path": str(adapter_gguf(adapter, model_path))})
    keep = {
        k: v
        for k, v in base.items()
        if k
        in (
            "seed",
            "structured_retries",
            "cache",
            "dtype",
            "top_p",
            "structured_library",
            "prefix_cache",
            "num_threads",
        )
    }
    over = [f"model_path={model_path}", f"adapter_path={Path(adapter).resolve()}"]
    tcfg = load_llm_config("transformers", over)
    tcfg.update(keep)
    return make_llm(tcfg)


def served_tuned_llm(cfg: DictConfig):
    """The fine-tuned model on the base's OpenAI-compatible server, as ``tuned_model`` names it
    (`rl-shop serve-llm --set adapters.<name>=<adapter>`, or vLLM's ``--lora-modules``)."""
    from rl_shop.llm import make_llm

    base = OmegaConf.to_container(cfg.llm, resolve=True)
    if base["backend"] != "openai":
        raise ValueError("tuned_model= names a model on an OpenAI-compatible server (llm=openai); locally use adapter=")
    llm = make_llm({**base, "model": str(cfg.tuned_model)})
    served = llm.served_models()
    if cfg.tuned_model not in served or base["model"] not in served:
        raise ValueError(
            f"the server at {llm.base_url} serves {served}, not both {base['model']!r} and {cfg.tuned_model!r}"
        )
    return llm


def plot(base_vs: pd.DataFrame | None, by_round: pd.DataFrame | None, path: Path) -> None:  # noqa: F821
    """Held-out RACE by dimension (if compared) and RACE by supervisor round (if trajectories given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p, df in (("heldout", base_vs), ("rounds", by_round)) if df is not None and len(df)]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8))
    axes = dict(zip(panels, [axes] if len(panels) == 1 else list(axes)))
    if "heldout" in axes:
        ax = axes["heldout"]
        base_vs.groupby("model")[DIMS].mean().T.plot.bar(ax=ax, rot=30)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_title("RACE vs reference (held-out)")
        ax.set_ylim(0, 1)
    if "rounds" in axes:
        ax = axes["rounds"]
        g = by_round.groupby("round")["race"].agg(["mean", "sem", "count"])
        ax.errorbar(
            g.index, g["mean"], yerr=1.96 * g["sem"].fillna(0), marker="o", capsize=3, label="all (last report carried)"
        )
        run = by_round[~by_round["carried"]].groupby("round")["race"].agg(["mean", "count"])
        ax.plot(run.index, run["mean"], marker="x", ls="--", label="as run")
        for r, row in run.iterrows():
            ax.annotate(f"n={int(row['count'])}", (r, row["mean"]), textcoords="offset points", xytext=(0, 6))
        ax.set_xlabel("supervisor round")
        ax.set_ylabel("RACE")
        ax.set_title("RACE by supervisor round")
        ax.set_xticks(list(g.index))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def compare_heldout(
    cfg: DictConfig, world, models: dict, agent_cfg, race_cfg, judge, out: Path, summary: dict
) -> pd.DataFrame:  # noqa: F821
    """Base (and tuned) on ``n_queries`` held-out shoppers: base_vs_tuned.csv / .md, paired interval."""
    from rl_shop.research.config import node
    from rl_shop.research.evaluate import compare_models, heldout_tasks, md_table, paired_interval
    from rl_shop.research.pipeline import PersonaConfig
    from rl_shop.research.user_agent import UserAgentConfig

    tasks = heldout_tasks(
        world,
        models["base"],
        int(cfg.n_queries),
        int(cfg.seed_offset),
        node(PersonaConfig, cfg.persona, "persona"),
        node(UserAgentConfig, cfg.user_agent, "user_agent"),
    )
    table = compare_models(world, models, tasks, agent_cfg, race_cfg, judge, int(cfg.reference_k))
    table.to_csv(out / "base_vs_tuned.csv", index=False)
    cols = DIMS + ["fact_share", "cited", "steps", "failed_tools"]
    means = table.groupby("model")[cols].mean().round(3)
    md = [f"# RACE, {len(tasks)} held-out queries, judge={race_cfg.judge}", "", md_table(means), ""]
    for _, r in table.iterrows():
        md += [f"## {r['model']} / seed {r['seed']} ({r['query_type']}): RACE {r['race']:.3f}", "", r["report"], ""]
    summary["base_vs_tuned"] = means.to_dict(orient="index")
    if "tuned" in models:
        wide = table.pivot(index="seed", columns="model", values="race")
        summary["tuned_minus_base"] = {
            k: round(v, 4) if isinstance(v, float) else v
            for k, v in paired_interval((wide["tuned"] - wide["base"]).tolist()).items()
        }
        md += [
            "",
            f"tuned - base RACE, paired over {len(wide)} held-out intents: "
            f"{summary['tuned_minus_base']} (mean, 95% t interval)",
        ]
    (out / "base_vs_tuned.md").write_text("\n".join(md))
    return table


def rounds_report(cfg: DictConfig, world, race_cfg, judge, out: Path, summary: dict) -> pd.DataFrame:  # noqa: F821
    """RACE by supervisor round over ``cfg.trajectories``: by_round.csv / .md, paired intervals vs round 1."""
    import pandas as pd

    from rl_shop.research.evaluate import md_table, paired_interval, race_by_round
    from rl_shop.research.trajectory import Trajectory

    path = Path(cfg.trajectories)
    if not path.is_file():
        raise ValueError(f"trajectories={str(path)!r} not found (experiments/synthesize.py writes trajectories.jsonl)")
    trajs = [Trajectory.model_validate_json(line) for line in path.read_text().splitlines() if line.strip()]
    # accepted trajectories stop early: their last report is carried to the longest one's last round
    by_round = race_by_round(
        world,
        trajs,
        race_cfg,
        judge,
        int(cfg.reference_k),
        through_round=max((len(t.rounds) for t in trajs), default=0),
    )
    by_round.to_csv(out / "by_round.csv", index=False)
    as_run = by_round[~by_round["carried"]]
    g = pd.DataFrame(
        {
            "RACE, all (last report carried)": by_round.groupby("round")["race"].mean(),
            "RACE, as run": as_run.groupby("round")["race"].mean(),
            "n as run": as_run.groupby("round")["race"].size(),
            "supervisor score, as run": as_run.groupby("round")["supervisor_score"].mean(),
        }
    ).round(3)
    summary["by_round"] = {int(k): float(v) for k, v in by_round.groupby("round")["race"].mean().round(4).items()}
    summary["by_round_as_run"] = {
        int(k): {"race": round(float(v.mean()), 4), "n": int(len(v))} for k, v in as_run.groupby("round")["race"]
    }
    # round r vs round 1 of the same trajectories (paired), with 95% intervals
    first = by_round[by_round["round"] == 1].set_index("trajectory")["race"]
    summary["by_round_vs_round1"] = {
        int(r): {
            k: round(v, 4) if isinstance(v, float) else v
            for k, v in paired_interval(
                (g_r.set_index("trajectory")["race"] - first.reindex(g_r["trajectory"]).values).tolist()
            ).items()
        }
        for r, g_r in by_round.groupby("round")
        if r > 1
    }
    lines = [
        f"| {r} | {d['mean']:+.4f} | [{d['low']:+.4f}, {d['high']:+.4f}] | {d['n']} |"
        for r, d in summary["by_round_vs_round1"].items()
    ]
    (out / "by_round.md").write_text(
        f"# RACE by supervisor round (judge={race_cfg.judge})\n\n{md_table(g)}\n\n"
        "Round r minus round 1, paired over the same trajectories (last report carried), 95% t interval:\n\n"
        "| round | mean | 95% interval | n |\n|---|---|---|---|\n" + "\n".join(lines) + "\n"
    )
    return by_round


def run(cfg: DictConfig) -> dict:
    """Held-out comparison and / or the by-round curve; returns the summary dict."""
    from rl_shop.llm import make_llm
    from rl_shop.research.config import node, results_dir
    from rl_shop.research.pipeline import ResearchWorld
    from rl_shop.research.race import RaceConfig, make_judge
    from rl_shop.research.research_agent import ResearchAgentConfig
    from rl_shop.research.tools import ToolsConfig

    race_cfg = node(RaceConfig, cfg.race, "race")
    agent_cfg = node(ResearchAgentConfig, cfg.research_agent, "research_agent")
    world = ResearchWorld.load(node(ToolsConfig, cfg.tools, "tools"), web_backend=cfg.web_backend)
    out = results_dir(cfg.out_dir, "race-")
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    base = make_llm(cfg.llm)
    models = {"base": base}
    if cfg.adapter and cfg.tuned_model:
        raise ValueError("give adapter= (a local adapter) or tuned_model= (a served one), not both")
    if cfg.adapter:
        if not (Path(cfg.adapter) / "adapter_config.json").is_file():
            raise ValueError(f"adapter={cfg.adapter!r} is not a PEFT adapter directory (run experiments/sft.py)")
        models["tuned"] = tuned_llm(cfg, str(cfg.adapter))
    elif cfg.tuned_model:
        models["tuned"] = served_tuned_llm(cfg)
    judge = make_judge(race_cfg, world.catalog, base, corpus=getattr(world.tools.web, "documents", []) or [])
    summary: dict = {
        "judge": race_cfg.judge,
        "n_queries": int(cfg.n_queries),
        "models": {k: m.describe() for k, m in models.items()},
    }
    table = (
        compare_heldout(cfg, world, models, agent_cfg, race_cfg, judge, out, summary) if int(cfg.n_queries) else None
    )
    by_round = rounds_report(cfg, world, race_cfg, judge, out, summary) if cfg.trajectories else None
    plot(table, by_round, out / "race.png")
    summary["out_dir"] = str(out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if table is not None:
        print(table.groupby("model")[DIMS].mean().round(3).to_string())
    if by_round is not None:
        print(by_round.groupby("round")["race"].mean().round(3).to_string())
    return summary


@hydra.main(config_path=str(CONFIG_DIR), config_name="race", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from rl_shop.llm import LLMError
    from rl_shop.llm.lora_gguf import AdapterConversionError

    try:
        summary = run(cfg)
    except (ValueError, LLMError, AdapterConversionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"-> {summary['out_dir']}")


if __name__ == "__main__":
    main()
