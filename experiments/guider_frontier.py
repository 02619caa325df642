"""Does the learned Guider need fewer rounds than the heuristic for the same Accuracy@5?

    python experiments/guider_frontier.py
    python experiments/guider_frontier.py 'policies=[results/seed_study/main/policies/guider/s0]'

The heuristic (AskUntilConfident) is swept over its threshold and leave-risk knobs; each setting
is one point (rounds, Accuracy@5) on the same seeded episodes as the learned policies. For every
learned policy the table names the heuristic settings that reach at least its Accuracy@5 and the
fewest rounds any of them needs. Writes `frontier.csv` and `report.md` under `results_dir`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import hydra  # noqa: E402
import pandas as pd  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from rl_shop.paths import CONFIG_DIR  # noqa: E402


def _point(name: str, result) -> dict[str, object]:
    info = result.final_info_means
    return {
        "policy": name,
        "return": result.mean_return,
        "accuracy_at_5": info.get("accuracy_at_5"),
        "rounds": info.get("rounds"),
    }


@hydra.main(config_path=str(CONFIG_DIR), config_name="guider_frontier", version_base="1.3")
def main(cfg: DictConfig) -> None:
    import gymnasium as gym
    from hydra import compose

    import envs  # noqa: F401
    from rl_shop.policies.evaluate import evaluate_policy
    from rl_shop.policies.heuristics.clarify import AskUntilConfident, ClarifyPriors
    from rl_shop.policies.loader import load_policy

    env_cfg = OmegaConf.to_container(compose(config_name="train", overrides=["env=clarify"]).env, resolve=True)
    env = gym.make(env_cfg["id"], **env_cfg["kwargs"])
    u = env.unwrapped
    priors = ClarifyPriors.from_pool(u.pool)
    episodes, seed = int(cfg.episodes), int(cfg.seed)
    rows = []
    for threshold in cfg.thresholds:
        for risk in cfg.max_leave_risks:
            policy = AskUntilConfident(
                float(threshold),
                u.pool.log2_catalog_size,
                priors,
                max_leave_risk=float(risk),
                max_rounds=u.params.max_rounds,
            )
            rows.append(
                {
                    **_point(
                        f"heuristic(threshold={threshold}, max_leave_risk={risk})",
                        evaluate_policy(env, policy, episodes, seed),
                    ),
                    "kind": "heuristic",
                }
            )
    for path in cfg.policies:
        policy = load_policy(REPO_ROOT / path, expect_env_id=env_cfg["id"])
        rows.append({**_point(str(path), evaluate_policy(env, policy, episodes, seed)), "kind": "learned"})
    df = pd.DataFrame(rows)
    heur = df[df.kind == "heuristic"]
    lines = [
        f"Same {episodes} seeded Clarify-v0 episodes (seed {seed}) for every policy.",
        "",
        "| learned policy | Accuracy@5 | rounds | return | heuristic settings with >= its Accuracy@5 "
        "(fewest rounds) | heuristic settings it Pareto-dominates | best heuristic Accuracy@5 with <= its rounds "
        "| best heuristic return |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, row in df[df.kind == "learned"].iterrows():
        at_least = heur[heur.accuracy_at_5 >= row.accuracy_at_5]
        fewest = f" ({at_least.rounds.min():.2f})" if len(at_least) else ""
        dominated = heur[(heur.accuracy_at_5 <= row.accuracy_at_5) & (heur.rounds >= row.rounds)]
        cheaper = heur[heur.rounds <= row.rounds]
        best_cheaper = f"{cheaper.accuracy_at_5.max():.3f}" if len(cheaper) else "-"
        lines.append(
            f"| {row.policy} | {row.accuracy_at_5:.3f} | {row.rounds:.2f} | {row['return']:.3f} | "
            f"{len(at_least)} of {len(heur)}{fewest} | {len(dominated)} of {len(heur)} | {best_cheaper} | "
            f"{heur['return'].max():.3f} |"
        )
    lines += ["", "All points:", "", "| policy | Accuracy@5 | rounds | return |", "|---|---|---|---|"]
    for _, row in df.sort_values("rounds").iterrows():
        lines.append(f"| {row.policy} | {row.accuracy_at_5:.3f} | {row.rounds:.2f} | {row['return']:.3f} |")
    out = Path(cfg.results_dir).resolve()
    df.to_csv(out / "frontier.csv", index=False)
    (out / "report.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[: 6 + len(cfg.policies)]))
    print(f"\nreport: {out / 'report.md'}")


if __name__ == "__main__":
    main()
