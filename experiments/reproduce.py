"""The main job: what `make reproduce` runs on embedded defaults (no GPU, no API key, no network).

1. Load the shipped catalog, build or reuse the cached hybrid index, and evaluate the
   retrieval-ranking baseline (hybrid index on the raw query, no LLM) per query type on the test
   split of the generated benchmark (``benchmark`` / ``split`` in configs/reproduce.yaml), and
   beside it the real-language split (query understanding old vs new, retrieval on the labelled
   in-catalog human queries).
2. Train the three runtime policies (Guider, Leader scheduler, collaboration) with short CPU
   budgets through the real entry points `experiments/train.py` and `experiments/export.py`, or,
   with `train=false`, take the exported policies shipped in `checkpoints/`.
3. Compare each exported (ONNX) policy with its heuristic on the same seeded episodes.
4. Evaluate the four systems end to end (retrieval, RAG, MACDF with heuristic and with the learned
   policies) on a slice of the same split through `experiments/evaluate.py`, sharded over processes
   by a Hydra multirun and merged: per-type table with 95% intervals, simulated A/B test and
   sim-to-agent consistency; then MACDF vs retrieval on real in-catalog test queries
   (configs/reproduce.yaml `evaluation:`).

Tables are printed and written under `results_dir` (see configs/reproduce.yaml).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

if str(REPO_ROOT / "experiments") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "experiments"))

from _jobs import run_entry_point, train_and_export  # noqa: E402

from rl_shop.paths import CHECKPOINT_DIR, CONFIG_DIR  # noqa: E402


def retrieval_baseline(k: int, benchmark: str | None, split: str | None) -> str:
    """Per-type Accuracy@k of the hybrid index on the raw query text of ``benchmark``'s ``split``
    (all of it if None), as a markdown table."""
    from rl_shop.catalog import load_catalog
    from rl_shop.catalog.index import HybridIndex
    from rl_shop.evaluation.retrieval_baseline import evaluate, to_markdown
    from rl_shop.sim.benchmark import check_catalog_matches, load_benchmark, load_card

    catalog = load_catalog()
    check_catalog_matches(load_card(benchmark), catalog)
    started = time.perf_counter()
    index = HybridIndex.load_or_build(catalog)
    how = "loaded from cache" if getattr(index, "loaded_from_cache", False) else "built"
    print(f"hybrid index over {len(catalog):,} products {how} in {time.perf_counter() - started:.1f}s", flush=True)
    items = [it for it in load_benchmark(benchmark) if split is None or it.split == split]
    table = evaluate(items, catalog, index, k=k)
    return to_markdown(table)


def real_language(index_k: int) -> str:
    """The real-language split (shipped ``data/benchmark/real_v1.jsonl``, test side): query
    understanding old parser vs new, and the retrieval baseline on the in-catalog labelled rows."""
    import numpy as np
    from eval_understanding import ROWS, new_reader, old_reader

    from rl_shop.agents.demand import CatalogVocab
    from rl_shop.agents.understanding import Understander
    from rl_shop.catalog import load_catalog
    from rl_shop.catalog.index import HybridIndex
    from rl_shop.evaluation.metrics import accuracy_at_k
    from rl_shop.evaluation.real_benchmark import gold_products, load_real_benchmark, score_reader
    from rl_shop.sim import load_sim_config

    catalog = load_catalog()
    rows = load_real_benchmark(split="test")
    old = score_reader(rows, old_reader(CatalogVocab.from_catalog(catalog, load_sim_config().knowledge)))
    index = HybridIndex.load_or_build(catalog)
    new = score_reader(rows, new_reader(Understander.from_catalog(catalog, index=index)))

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    lines = ["| figure (real_v1 test) | goal | old parser | new |", "|---|---|---|---|"]
    lines += [f"| {key} | {goal} | {fmt(old[key])} | {fmt(new[key])} |" for key, goal in ROWS]
    inc = [r for r in rows if r["labels"] and r["labels"].get("in_catalog")]
    acc = [
        accuracy_at_k(
            [h.product_id for h in index.search(r["query"], k=index_k)], gold_products(r["labels"], catalog), index_k
        )
        for r in inc
    ]
    half = 1.96 * float(np.std(acc, ddof=1)) / np.sqrt(len(acc))
    lines += [
        "",
        f"Retrieval-ranking baseline on the labelled in-catalog test queries: Accuracy@{index_k} "
        f"{np.mean(acc):.3f} ± {half:.3f} (n = {len(acc)}).",
    ]
    return "\n".join(lines)


def real_end_to_end(n: int, k: int, seed: int) -> str:
    """MACDF (deterministic runtime: with the embedded model's call budget its products do not
    depend on the LLM) vs the retrieval-ranking baseline on the first ``n`` labelled in-catalog
    test queries of real_v1, Accuracy@k, paired 95% t interval."""
    import numpy as np
    from scipy import stats

    from rl_shop.agents.runtime import MACDFAssistant
    from rl_shop.catalog import load_catalog
    from rl_shop.catalog.index import HybridIndex
    from rl_shop.evaluation.metrics import accuracy_at_k
    from rl_shop.evaluation.real_benchmark import gold_products, load_real_benchmark

    catalog = load_catalog()
    index = HybridIndex.load_or_build(catalog)
    rows = [r for r in load_real_benchmark(split="test") if r["labels"] and r["labels"].get("in_catalog")][:n]
    assistant = MACDFAssistant.from_config(
        ["runtime.llm_enabled=false"], catalog=catalog, index=index, memory_path=":memory:"
    )
    macdf, base = [], []
    for i, r in enumerate(rows):
        gold = gold_products(r["labels"], catalog)
        macdf.append(
            accuracy_at_k(
                [p.product_id for p in assistant.run(r["query"], session_id=f"real-{seed}-{i}").products], gold, k
            )
        )
        base.append(accuracy_at_k([h.product_id for h in index.search(r["query"], k=k)], gold, k))
    d = np.array(macdf) - np.array(base)

    def half(v: Any) -> float:  # 95% t interval half-width of a mean
        return (
            float(stats.t.ppf(0.975, len(v) - 1) * np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
        )

    return (
        f"| system | Accuracy@{k} | 95% interval |\n|---|---|---|\n"
        f"| retrieval | {np.mean(base):.3f} | ± {half(base):.3f} |\n"
        f"| macdf (deterministic runtime) | {np.mean(macdf):.3f} | ± {half(macdf):.3f} |\n"
        f"| macdf - retrieval (paired) | {d.mean():+.3f} | [{d.mean() - half(d):+.3f}, {d.mean() + half(d):+.3f}] |\n\n"
        f"n = {len(d)} labelled in-catalog test queries of data/benchmark/real_v1.jsonl (the first {n})."
    )


def end_to_end(ev: DictConfig, results_dir: Path, policies_root: Path, seed: int) -> list[str]:
    """Step 4: experiments/evaluate.py on the configured slice (sharded over ``ev.processes``
    processes by a Hydra multirun, then merged); returns its report as report lines."""
    overrides = [
        f"results_dir={results_dir}",
        f"policies_dir={policies_root}",
        f"seed={seed}",
        f"limit={'null' if ev.limit is None else int(ev.limit)}",
        f"benchmark={'null' if ev.benchmark is None else ev.benchmark}",
        f"split={'null' if ev.split is None else ev.split}",
        "systems=[" + ",".join(ev.systems) + "]",
    ]
    if ev.types is not None:
        overrides.append("types=[" + ",".join(ev.types) + "]")
    n = int(ev.processes)
    if n > 1:
        run_entry_point(
            [
                "experiments/evaluate.py",
                "-m",
                "hydra/launcher=joblib",
                f"hydra.launcher.n_jobs={n}",
                f"shard.count={n}",
                "shard.index=" + ",".join(map(str, range(n))),
                *overrides,
                *list(ev.extra_overrides),
            ]
        )
    run_entry_point(["experiments/evaluate.py", *overrides, *list(ev.extra_overrides)])  # merge + report
    text = (results_dir / "report.md").read_text(encoding="utf-8")
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    body = body.replace("\n## ", "\n### ")  # nested under this report's step-4 heading, resolved config included
    lines = [
        "## End-to-end evaluation (experiments/evaluate.py)",
        "",
        body.strip(),
        "",
        f"Full evaluation outputs and resolved config: `{results_dir}`.",
        "",
    ]
    if int(ev.real_in_catalog) > 0:
        real = real_end_to_end(int(ev.real_in_catalog), int(ev.k), seed)
        print("\nEnd to end on real in-catalog test queries:\n\n" + real, flush=True)
        lines += ["## End to end on human-written in-catalog queries (real_v1 test)", "", real, ""]
    return lines


@hydra.main(config_path=str(CONFIG_DIR), config_name="reproduce", version_base="1.3")
def main(cfg: DictConfig) -> None:
    out_root = Path(cfg.results_dir).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    report = ["# rl_shop main job", ""]
    if cfg.baseline.enabled:
        table = retrieval_baseline(int(cfg.baseline.k), cfg.benchmark, cfg.split)
        from rl_shop.evaluation.summary import benchmark_label

        where = f"{benchmark_label(cfg.benchmark, None)}, {cfg.split or 'all'} split"
        print(f"\nRetrieval-ranking baseline (hybrid index on the raw query, no LLM), per query type ({where}):\n")
        print(table, flush=True)
        report += [f"## Retrieval-ranking baseline ({where})", "", table, ""]
        real = real_language(int(cfg.baseline.k))
        print("\nReal-language split (human-written queries, data/benchmark/real_v1.jsonl, test side):\n")
        print(real, flush=True)
        report += ["## Real-language split (human-written queries)", "", real, ""]

    from hydra import compose

    from rl_shop.train.compare import compare_with_heuristic, comparison_table, env_settings

    rows = []
    for role, spec in cfg.roles.items():
        if cfg.train:
            policy_dir = train_and_export(
                spec.experiment,
                int(spec.total_timesteps),
                int(cfg.seed),
                out_root / "runs" / role,
                out_root / "policies" / role,
            )
        else:
            policy_dir = CHECKPOINT_DIR / role
            if not (policy_dir / "policy_card.json").is_file():
                raise SystemExit(f"error: no shipped policy in {policy_dir}; run with train=true")
        env_cfg = env_settings(compose(config_name="train", overrides=[f"experiment={spec.experiment}"]))
        rows.append(
            compare_with_heuristic(role, env_cfg, policy_dir, int(cfg.eval_episodes), int(cfg.eval_seed), int(cfg.seed))
        )
    table = comparison_table(rows)
    print("\nRuntime policies (exported ONNX) vs heuristics, mean episode return:\n")
    print(table, flush=True)
    report += [
        "## Runtime policies vs heuristics",
        "",
        "One training seed each, brief CPU budgets; the multi-seed verdict is `experiments/seed_study.py`.",
        "",
        table,
        "",
    ]
    if cfg.evaluation.enabled:
        policies_root = out_root / "policies" if cfg.train else CHECKPOINT_DIR
        report += end_to_end(cfg.evaluation, out_root / "evaluation", policies_root, int(cfg.seed))
    (out_root / "report.md").write_text("\n".join(report))
    print(f"\nreport: {out_root / 'report.md'}")


if __name__ == "__main__":
    main()
