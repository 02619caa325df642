"""Multi-seed verdict: does each runtime-policy recipe beat its env's heuristic?

    python experiments/seed_study.py                                   # configs/seed_study.yaml
    python experiments/seed_study.py 'roles_to_run=[scheduler]' roles.scheduler.experiment=scheduler_ppo

For every role and training seed: train the recipe, export it to ONNX, and play the exported
policy and the heuristic on the same seeded episodes. Writes `per_seed.csv`, `summary.csv` and
`report.md` (tables of rl_shop.train.compare) under `results_dir`. With `resume=true` and an
existing `results_dir`, seeds whose exported policy is already there are evaluated, not retrained.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hydra  # noqa: E402
import pandas as pd  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "experiments"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from _jobs import train_and_export  # noqa: E402

from rl_shop.paths import CONFIG_DIR  # noqa: E402


@hydra.main(config_path=str(CONFIG_DIR), config_name="seed_study", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from hydra import compose

    from rl_shop.train.compare import across_seeds, compare_with_heuristic, comparison_table, env_settings, seed_table

    out = Path(cfg.results_dir).resolve()
    roles = list(cfg.roles_to_run) if cfg.roles_to_run else list(cfg.roles)
    unknown = sorted(set(roles) - set(cfg.roles))
    if unknown:
        raise SystemExit(f"error: unknown role(s) {unknown}; configured roles: {sorted(cfg.roles)}")
    per_seed, summaries = [], []
    for role in roles:
        spec = cfg.roles[role]
        env_cfg = env_settings(compose(config_name="train", overrides=[f"experiment={spec.experiment}"]))
        rows = []
        for seed in cfg.seeds:
            policy_dir = out / "policies" / role / f"s{seed}"
            if not (cfg.resume and (policy_dir / "policy_card.json").is_file()):
                train_and_export(
                    spec.experiment,
                    int(spec.total_timesteps),
                    int(seed),
                    out / "runs" / role / f"s{seed}",
                    policy_dir,
                    list(spec.extra),
                )
            row = compare_with_heuristic(
                role, env_cfg, policy_dir, int(cfg.eval_episodes), int(cfg.eval_seed), int(seed)
            )
            print(comparison_table([row]).splitlines()[-1], flush=True)
            rows.append(row)
        per_seed += rows
        summaries.append(
            {
                **across_seeds(rows, float(cfg.confidence)),
                "experiment": spec.experiment,
                "total_timesteps": int(spec.total_timesteps),
            }
        )
    pd.DataFrame([r.as_row() for r in per_seed]).to_csv(out / "per_seed.csv", index=False)
    pd.DataFrame(summaries).to_csv(out / "summary.csv", index=False)
    report = [
        "# Runtime policies vs heuristics over training seeds",
        "",
        seed_table(summaries, float(cfg.confidence)),
        "",
        "## Per seed",
        "",
        comparison_table(per_seed),
        "",
    ]
    (out / "report.md").write_text("\n".join(report))
    print("\n" + seed_table(summaries, float(cfg.confidence)))
    print(f"\nreport: {out / 'report.md'}")


if __name__ == "__main__":
    main()
