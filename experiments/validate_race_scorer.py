"""Validate a RACE judge on pairs of reports where the better one is known.

    python experiments/validate_race_scorer.py                               # 60 intents x 5 perturbations
    python experiments/validate_race_scorer.py n_intents=200 seed=7
    python experiments/validate_race_scorer.py trajectories=[results/research/demo/trajectories.jsonl]
    python experiments/validate_race_scorer.py judges=[criteria,llm] llm=openai llm.base_url=http://127.0.0.1:8000/v1

For each sampled simulator intent the deterministic report builder (rl_shop/research/report_builder.py)
writes a good report over the catalog; each perturbation makes a known-worse copy (citations removed,
citations fabricated, needs removed, a constraint-violating product swapped in, structure destroyed).
Final reports of real pipeline trajectories get the markdown perturbations too. Every judge in
``judges`` scores both reports (S_int, the RACE intermediate score); a pair counts as preferred when
the better report scores strictly higher (a tie is a miss). Prints the table per source and kind and
writes pairs.csv, table.csv / table.md and summary.json to out_dir. Config mistakes exit 2.
"""

from __future__ import annotations

import json
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


def run(cfg: DictConfig) -> dict:
    import pandas as pd

    from rl_shop.agents.websearch.corpus import load_corpus
    from rl_shop.catalog import load_catalog
    from rl_shop.paths import REPO_ROOT
    from rl_shop.research.config import node, results_dir
    from rl_shop.research.evaluate import md_table
    from rl_shop.research.race import RaceConfig, make_judge
    from rl_shop.research.report_builder import builder_pairs, preference_table, trajectory_pairs
    from rl_shop.research.trajectory import Trajectory

    t0 = time.perf_counter()
    race_cfg = node(RaceConfig, cfg.race, "race")
    names = list(cfg.judges)
    if not names or any(j not in ("criteria", "rubric", "llm") for j in names):
        raise ValueError(f"judges must be a non-empty list of criteria / rubric / llm, got {names}")
    if int(cfg.n_intents) < 1:
        raise ValueError(f"n_intents must be >= 1, got {cfg.n_intents}")
    catalog = load_catalog()
    corpus = load_corpus(REPO_ROOT / "data" / "web_corpus" / "documents.jsonl")
    llm = None
    if "llm" in names:
        from rl_shop.llm import make_llm

        llm = make_llm(cfg.llm)
    judges = {j: make_judge(race_cfg.model_copy(update={"judge": j}), catalog, llm, corpus=corpus) for j in names}
    rows = builder_pairs(catalog, judges, race_cfg, int(cfg.n_intents), int(cfg.seed), tuple(cfg.query_types))
    for path in cfg.trajectories or []:
        p = Path(path)
        if not p.is_file():
            raise ValueError(
                f"trajectories file {str(p)!r} not found (experiments/synthesize.py writes trajectories.jsonl)"
            )
        trajs = [Trajectory.model_validate_json(x) for x in p.read_text().splitlines() if x.strip()]
        rows += trajectory_pairs(trajs, catalog, judges, race_cfg, int(cfg.seed))
    table = preference_table(rows, names)
    out = results_dir(cfg.out_dir, "validate-")
    pd.DataFrame(rows).to_csv(out / "pairs.csv", index=False)
    table.to_csv(out / "table.csv", index=False)
    (out / "table.md").write_text(md_table(table.set_index(["source", "kind"])) + "\n")
    overall = table[(table["source"] == "all")].iloc[0].to_dict()
    summary = {
        "pairs": len(rows),
        "overall": overall,
        "seconds": round(time.perf_counter() - t0, 1),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "out_dir": str(out),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(table.to_string(index=False))
    return summary


@hydra.main(config_path=str(CONFIG_DIR), config_name="research/validate_race_scorer", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        summary = run(cfg)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"{summary['pairs']} pairs in {summary['seconds']}s -> {summary['out_dir']}")


if __name__ == "__main__":
    main()
