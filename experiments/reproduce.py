"""The main job: what `make reproduce` runs on embedded defaults (no GPU, no API key, no network).

1. Load the shipped catalog, build or reuse the cached hybrid index, and evaluate the
   retrieval-ranking baseline (hybrid index on the raw query, no LLM) per ECCD query type.
2. Train the three runtime policies (Guider, Leader scheduler, collaboration) with short CPU
   budgets through the real entry points `experiments/train.py` and `experiments/export.py`, or,
   with `train=false`, take the exported policies shipped in `checkpoints/`.
3. Compare each exported (ONNX) policy with its heuristic on the same seeded episodes.

Tables are printed and written under `results_dir` (see configs/reproduce.yaml).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from rl_shop.paths import CHECKPOINT_DIR, CONFIG_DIR  # noqa: E402


def retrieval_baseline(k: int) -> str:
    """Per-type Accuracy@k of the hybrid index on the raw query text, as a markdown table."""
    from rl_shop.catalog import load_catalog
    from rl_shop.catalog.index import HybridIndex
    from rl_shop.evaluation.retrieval_baseline import evaluate, to_markdown
    from rl_shop.sim.benchmark import check_catalog_matches, load_benchmark, load_card

    catalog = load_catalog()
    check_catalog_matches(load_card(), catalog)
    started = time.perf_counter()
    index = HybridIndex.load_or_build(catalog)
    how = "loaded from cache" if getattr(index, "loaded_from_cache", False) else "built"
    print(f"hybrid index over {len(catalog):,} products {how} in {time.perf_counter() - started:.1f}s", flush=True)
    table = evaluate(load_benchmark(), catalog, index, k=k)
    return to_markdown(table)


def run(cmd: list[str]) -> None:
    """Run one of the project's entry points; its own error message is the one the user sees."""
    print("$ " + " ".join(cmd), flush=True)
    result = subprocess.run([sys.executable, *cmd], cwd=REPO_ROOT)
    if result.returncode != 0:
        raise SystemExit(f"error: `{' '.join(cmd)}` failed with exit code {result.returncode}")


def train_and_export(role: str, experiment: str, steps: int, seed: int, out_root: Path) -> Path:
    """Train one recipe briefly and export it; returns the export directory."""
    run_dir = out_root / "runs" / role
    export_dir = out_root / "policies" / role
    run(["experiments/train.py", f"experiment={experiment}", f"seed={seed}", f"total_timesteps={steps}",
         f"run_dir={run_dir}"])
    run(["experiments/export.py", f"run_dir={run_dir}", f"out={export_dir}", "overwrite=true"])
    return export_dir


def compare(role: str, policy_dir: Path, experiment: str, episodes: int, seed: int) -> dict[str, object]:
    """Exported policy vs the env's heuristic on identical seeded episodes."""
    import gymnasium as gym
    from hydra import compose

    import envs  # noqa: F401  (registers the rl_shop/ ids)
    from rl_shop.policies.evaluate import RandomPolicy, evaluate_policy
    from rl_shop.policies.loader import load_policy
    from rl_shop.train.baselines import load_heuristic
    from rl_shop.train.config import EnvSettings

    cfg = compose(config_name="train", overrides=[f"experiment={experiment}"])  # inside this Hydra app
    env_cfg = EnvSettings.model_validate(OmegaConf.to_container(cfg.env, resolve=True))
    env = gym.make(env_cfg.id, **env_cfg.kwargs)
    policy = load_policy(policy_dir, expect_env_id=env_cfg.id)
    heuristic = load_heuristic(env_cfg, "auto", env)
    learned = evaluate_policy(env, policy, episodes, seed)
    base = evaluate_policy(env, heuristic, episodes, seed)
    rand = evaluate_policy(env, RandomPolicy(env.action_space.n, seed), episodes, seed)
    diff = learned.returns - base.returns  # paired: same seeded episodes
    half = 1.96 * diff.std(ddof=1) / len(diff) ** 0.5
    return {
        "role": role,
        "env": env_cfg.id,
        "learned": learned.mean_return,
        "heuristic": base.mean_return,
        "random": rand.mean_return,
        "diff": diff.mean(),
        "ci95": half,
    }


def policy_table(rows: list[dict[str, object]], episodes: int) -> str:
    lines = [
        f"| role | env | learned (ONNX) | heuristic | random | learned - heuristic (95% CI, paired, {episodes} episodes) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['role']} | {r['env']} | {r['learned']:.3f} | {r['heuristic']:.3f} | {r['random']:.3f} | "
            f"{r['diff']:+.3f} ± {r['ci95']:.3f} |"
        )
    return "\n".join(lines)


@hydra.main(config_path=str(CONFIG_DIR), config_name="reproduce", version_base="1.3")
def main(cfg: DictConfig) -> None:
    out_root = Path(cfg.results_dir).resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    report = ["# rl_shop main job", ""]
    if cfg.baseline.enabled:
        table = retrieval_baseline(int(cfg.baseline.k))
        print("\nRetrieval-ranking baseline (hybrid index on the raw query, no LLM), per ECCD query type:\n")
        print(table, flush=True)
        report += ["## Retrieval-ranking baseline", "", table, ""]

    rows = []
    for role, spec in cfg.roles.items():
        if cfg.train:
            policy_dir = train_and_export(role, spec.experiment, int(spec.total_timesteps), int(cfg.seed), out_root)
        else:
            policy_dir = CHECKPOINT_DIR / role
            if not (policy_dir / "policy_card.json").is_file():
                raise SystemExit(f"error: no shipped policy in {policy_dir}; run with train=true")
        rows.append(compare(role, policy_dir, spec.experiment, int(cfg.eval_episodes), int(cfg.eval_seed)))
    table = policy_table(rows, int(cfg.eval_episodes))
    print("\nRuntime policies (exported ONNX) vs heuristics, mean episode return:\n")
    print(table, flush=True)
    report += ["## Runtime policies vs heuristics", "", table, ""]
    (out_root / "report.md").write_text("\n".join(report))
    print(f"\nreport: {out_root / 'report.md'}")


if __name__ == "__main__":
    main()
