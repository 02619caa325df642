"""How much room does each env leave a learned policy? Random, shipped heuristics, the best of a
swept heuristic family, the shipped learned policy and oracles on the same paired episodes.

    python experiments/headroom.py                                     # config: configs/headroom.yaml
    python experiments/headroom.py 'roles_to_run=[scheduler]' episodes=2000

Writes ``headroom.csv`` (every row), ``headroom.json`` (per role: best heuristic, learned minus
best heuristic, oracle gap, the no-RL verdict) and ``report.md`` under ``results_dir``. What the
rows mean: ``rl_shop/train/headroom.py``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import hydra  # noqa: E402
import pandas as pd  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from rl_shop.paths import CONFIG_DIR  # noqa: E402


def _family(role_cfg: DictConfig, env: Any) -> dict[str, Any]:
    from rl_shop.train import headroom as H

    fam = OmegaConf.to_container(role_cfg.family, resolve=True)
    assert isinstance(fam, dict)
    if role_cfg.env == "clarify":
        return H.clarify_family(env, fam["thresholds"], fam["max_leave_risks"])
    if role_cfg.env == "schedule":
        return H.schedule_family(env)
    if role_cfg.env == "collaborate":
        return H.collaborate_family(fam["clarify_sets"], fam["web_sets"], fam["double_search_sets"], fam["reflection"])
    raise ValueError(f"no heuristic family for env {role_cfg.env!r}; use clarify, schedule or collaborate")


def _role(name: str, role_cfg: DictConfig, env_cfg: DictConfig, cfg: DictConfig) -> tuple[list[Any], dict[str, Any]]:
    import gymnasium as gym

    import envs  # noqa: F401  (registers the rl_shop/ ids)
    from rl_shop.policies.loader import load_policy
    from rl_shop.train import headroom as H
    from rl_shop.train.baselines import load_heuristic
    from rl_shop.train.config import EnvSettings

    settings = EnvSettings.model_validate(OmegaConf.to_container(env_cfg, resolve=True))
    env = gym.make(settings.id, **settings.kwargs)
    n, seed = int(cfg.episodes), int(cfg.seed)
    shipped = load_heuristic(settings, "auto", env)
    family = _family(role_cfg, env)
    if shipped is not None:
        family = {f"shipped: {H.policy_name(shipped)}": shipped, **family}
    best_name, select_means = H.select_best(env, family, int(cfg.select_episodes), int(cfg.select_seed))
    print(f"[{name}] best of {len(family)} heuristics on the selection episodes: {best_name}", flush=True)
    on_eval = {
        k: H.score(env, k, "shipped" if k.startswith("shipped") else "best heuristic", p, n, seed)
        for k, p in family.items()
    }
    learned = [
        H.score(env, f"learned: {path}", "learned", load_policy(REPO_ROOT / path, expect_env_id=settings.id), n, seed)
        for path in role_cfg.policies
    ]
    scored = [H.score(env, "random (valid actions)", "random", H.random_policy(env, seed), n, seed)]
    scored += [s for k, s in on_eval.items() if k.startswith("shipped") or k == best_name]
    scored += learned
    if role_cfg.env == "collaborate":
        typed_env = H.TrueTypeObservation(gym.make(settings.id, **settings.kwargs))
        typed_best, _ = H.select_best(typed_env, family, int(cfg.select_episodes), int(cfg.select_seed))
        scored.append(H.score(typed_env, f"oracle: true type, {typed_best}", "oracle", family[typed_best], n, seed))
    oracle = H.hindsight_oracle([*on_eval.values(), *(s for s in scored if s.kind in ("learned", "oracle"))])
    scored.append(oracle)
    best = on_eval[best_name]
    shipped_scored = next((s for k, s in on_eval.items() if k.startswith("shipped")), None)
    rows = H.table(scored, best)
    summary = {
        "env": settings.id,
        "episodes": n,
        "family_size": len(family),
        "best_heuristic": best_name,
        "best_heuristic_return": best.mean,
        **H.learned_vs_best(learned, best),
        **H.learned_vs_heuristic_in_metric(learned, best, str(role_cfg.loop_metric)),
        **(
            H.learned_vs_heuristic_in_metric(learned, shipped_scored, str(role_cfg.loop_metric), "shipped")
            if shipped_scored
            else {}
        ),
        **H.verdict(best, oracle, scored[0], float(cfg.near_oracle)),
        "selection_means": select_means,
        "family_eval_means": {k: v.mean for k, v in on_eval.items()},
    }
    return rows, summary


def _report(results: dict[str, tuple[list[Any], dict[str, Any]]], cfg: DictConfig) -> str:
    lines = [
        f"Same {cfg.episodes} paired episodes (seed {cfg.seed}) for every policy of a role; the best heuristic "
        f"was chosen on {cfg.select_episodes} episodes of seed {cfg.select_seed}. ± is the 95% interval "
        "(1.96 s.e.; paired for the differences).",
        "",
    ]
    for role, (rows, s) in results.items():
        lines += [
            f"### {role} ({s['env']}, {s['family_size']} heuristics swept)",
            "",
            "| policy | kind | mean return | - best heuristic (paired) |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r.policy} | {r.kind} | {r.mean:.3f} ± {r.ci95:.3f} | {r.diff_vs_best:+.3f} ± {r.diff_ci95:.3f} |"
            for r in rows
        ]
        verdict = "no RL needed" if s["no_rl_needed"] else "room for a learned policy"
        lines += [
            "",
            f"Learned - best heuristic (n = {s['n_learned']} learned): {s['learned_minus_best']:+.3f} "
            f"± {s['learned_minus_best_ci95']:.3f} (Student-t over policies when there are several, else paired "
            "over episodes).",
            f"In the agent loop's metric ({s['loop_metric']}, the mean at the episode end; best heuristic "
            f"{s['metric_best_heuristic']:.3f}): learned - best heuristic {s['metric_learned_minus_best']:+.3f} "
            f"± {s['metric_learned_minus_best_ci95']:.3f} (Student-t over the learned policies)"
            + (
                f"; learned - shipped heuristic {s['metric_learned_minus_shipped']:+.3f} "
                f"± {s['metric_learned_minus_shipped_ci95']:.3f}."
                if "metric_learned_minus_shipped" in s
                else "."
            ),
            f"Oracle gap {s['oracle_gap']:.3f} ± {s['oracle_gap_ci95']:.3f} = {s['gap_share']:.1%} of the "
            f"oracle's gain over random ({s['oracle_over_random']:.3f}): **{verdict}** "
            f"(threshold {cfg.near_oracle:.0%}).",
            "",
        ]
    return "\n".join(lines)


@hydra.main(config_path=str(CONFIG_DIR), config_name="headroom", version_base="1.3")
def main(cfg: DictConfig) -> None:
    roles = list(cfg.roles_to_run) if cfg.roles_to_run else list(cfg.roles)
    unknown = sorted(set(roles) - set(cfg.roles))
    if unknown:
        raise SystemExit(f"unknown roles {unknown}; configs/headroom.yaml has {list(cfg.roles)}")
    results = {}
    for role in roles:
        role_cfg = cfg.roles[role]
        results[role] = _role(role, role_cfg, cfg.envs[role_cfg.env], cfg)
    out = Path(cfg.results_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        [
            {"role": role, **{k: v for k, v in vars(r).items() if k != "info"}, **r.info}
            for role, (rows, _) in results.items()
            for r in rows
        ]
    )
    frame.to_csv(out / "headroom.csv", index=False)
    (out / "headroom.json").write_text(json.dumps({role: s for role, (_, s) in results.items()}, indent=2) + "\n")
    report = _report(results, cfg)
    (out / "report.md").write_text(report)
    print(report)
    print(f"wrote {out / 'report.md'}")


if __name__ == "__main__":
    main()
