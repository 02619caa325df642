"""Sim-to-agent observation gap of the Guider: Clarify-v0's first observation vs the runtime's.

"One shopper, two faces": for the same dialogue situation the env (``envs.clarify.ClarifyEnv`` on
a one-intent pool of the benchmark item's hidden intent, ``envs.intent_pool.reduce_sim_intent``:
known = the intent's stated slots it constrains, |C| = products satisfying those constraints) and
the runtime Guider (``rule_parse`` of the query text -> ``Guider.observation``: known = every
slot the parser read, |C| = ``gold_mask`` over the parsed values, type = the parser's guess) must
produce the same ``rl_shop.policies.features.clarify`` vector. This script measures, per feature
and per query type, how often and by how much the two differ, and what the learned policy
(``policy_dir``) does first under each: its raw first action, and the first *move* (the env plays
``suggest`` as a round in which a rejected suggestion makes the shopper volunteer a slot, so any
action but ``stop`` / a confirmed suggestion is a clarification; the runtime asks the slot that
``Guider.decide`` returns, or nothing).

No LLM: the runtime path is the deterministic rule parser (``runtime.llm_enabled=false``).

Usage: python experiments/guider_obs_gap.py [--config configs/guider_obs_gap.yaml] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "guider_obs_gap.yaml"


def load_config(path: Path) -> dict[str, Any]:
    from rl_shop.config_files import ConfigFileError, read_config

    try:
        cfg = read_config(path)
    except ConfigFileError as exc:
        raise SystemExit(f"error: {exc}") from None
    need = {"policy_dir", "query_types", "per_type", "tolerance", "examples", "out"}
    if missing := need - set(cfg):
        raise SystemExit(f"error: config {path} lacks {sorted(missing)}")
    return cfg


def build_runtime(catalog: Any, policy_dir: str) -> tuple[Any, Any, float]:
    """(vocab, Guider with the learned policy, rule residual), built as ``MACDFAssistant.from_config`` does."""
    from rl_shop.agents.guider import Guider, load_guider_policy
    from rl_shop.agents.leader import LeaderConfig
    from rl_shop.agents.runtime import catalog_vocab, load_runtime_config, runtime_settings

    cfg = load_runtime_config(["runtime.llm_enabled=false"])  # the Guider is built with llm=None below
    vocab = catalog_vocab(catalog, runtime_settings(cfg))
    policy_path = Path(policy_dir)
    policy = load_guider_policy(policy_path if policy_path.is_absolute() else ROOT / policy_path)
    guider = Guider(catalog, vocab, cfg["guider"], llm=None, policy=policy)
    return vocab, guider, float(LeaderConfig.model_validate(cfg["leader"]).rule_residual)


def measure(
    items: list[Any], catalog: Any, vocab: Any, guider: Any, residual: float, tol: float, n_examples: int
) -> dict[str, Any]:
    """Per-item env vs runtime first observations and first actions, aggregated per type / feature."""
    from envs.clarify import ACTION_NAMES, STOP, SUGGEST, ClarifyEnv
    from envs.intent_pool import pool_from_intents, reduce_sim_intent
    from rl_shop.agents.demand import rule_parse
    from rl_shop.agents.guider import DialogueTracker
    from rl_shop.policies.features.clarify import FEATURE_NAMES
    from rl_shop.sim import load_sim_config
    from rl_shop.sim.constraints import CatalogArrays

    arr = CatalogArrays.of(catalog)
    bonus = float(load_sim_config().shopper.p_dont_know_hidden_bonus)
    policy = guider.policy
    per_type: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "n": 0,
            "exact": 0,
            "action_agree": 0,
            "move_agree": 0,
            "env_clarifies": 0,
            "runtime_clarifies": 0,
            "features": Counter(),
        }
    )
    feat_n = Counter()
    feat_abs: dict[str, list[float]] = defaultdict(list)
    actions: dict[str, Counter] = defaultdict(Counter)
    examples = []
    for it in items:
        pool = pool_from_intents([reduce_sim_intent(it.intent, arr, bonus)], arr.n)
        env = ClarifyEnv(intent_pool=pool)
        o_env, info = env.reset(seed=0)
        d = rule_parse(it.query, vocab, residual)
        t = DialogueTracker()
        o_rt = guider.observation(d, t)
        a_env = int(policy.act(o_env, info["action_mask"]))
        a_rt = int(policy.act(o_rt, guider.action_mask(d, t)))
        slot_rt, _ = guider.decide(d, t)
        # Env: a suggestion at the start is confirmed only if Accuracy@5 >= confirm_threshold.
        env_ends = a_env == STOP or (
            a_env == SUGGEST and pool.accuracy[0, pool.stated[0]] >= env.params.confirm_threshold
        )
        diff = np.abs(o_env.astype(np.float64) - o_rt.astype(np.float64))
        bad = [FEATURE_NAMES[k] for k in np.flatnonzero(diff > tol)]
        row = per_type[it.query_type]
        row["n"] += 1
        row["exact"] += not bad
        row["action_agree"] += a_env == a_rt
        row["env_clarifies"] += not env_ends
        row["runtime_clarifies"] += slot_rt is not None
        row["move_agree"] += (not env_ends) == (slot_rt is not None)
        row["features"].update(bad)
        actions[it.query_type][f"{ACTION_NAMES[a_env]} | {ACTION_NAMES[a_rt]}"] += 1
        for k in np.flatnonzero(diff > tol):
            feat_n[FEATURE_NAMES[k]] += 1
            feat_abs[FEATURE_NAMES[k]].append(float(diff[k]))
        if bad and len(examples) < n_examples:
            examples.append(
                {
                    "id": it.id,
                    "type": it.query_type,
                    "query": it.query,
                    "env_known": list(it.intent.stated_slots),
                    "runtime_type": d.query_type,
                    "runtime_known": d.known_slots(),
                    "features": bad,
                    "env_action": ACTION_NAMES[a_env],
                    "runtime_action": ACTION_NAMES[a_rt],
                }
            )
    n = sum(r["n"] for r in per_type.values())
    out_types = {}
    for q, r in per_type.items():
        m = r["n"]
        out_types[q] = {
            "n": m,
            "exact_obs": r["exact"] / m,
            "first_action_agreement": r["action_agree"] / m,
            "env_clarifies": r["env_clarifies"] / m,
            "runtime_clarifies": r["runtime_clarifies"] / m,
            "first_move_agreement": r["move_agree"] / m,
            "feature_mismatch_rate": {f: c / m for f, c in r["features"].most_common()},
            "actions_env_vs_runtime": dict(actions[q].most_common()),
        }
    total = {
        "n": n,
        "exact_obs": sum(r["exact"] for r in per_type.values()) / n,
        "first_action_agreement": sum(r["action_agree"] for r in per_type.values()) / n,
        "first_move_agreement": sum(r["move_agree"] for r in per_type.values()) / n,
    }
    features = {
        f: {
            "mismatch_rate": c / n,
            "mean_abs_diff": float(np.mean(feat_abs[f])),
            "max_abs_diff": float(np.max(feat_abs[f])),
        }
        for f, c in feat_n.most_common()
    }
    return {"overall": total, "per_type": out_types, "per_feature": features, "examples": examples}


def agent_loop(items: list[Any], catalog: Any, seed: int) -> dict[str, Any]:
    """Rounds and Accuracy@5 of the no-LLM MACDF loop per (Guider policy, type), both policies
    behind the Leader's heuristic clarify_types gate so that only the Guider differs."""
    from rl_shop.agents.runtime import MACDFAssistant
    from rl_shop.catalog.index import HybridIndex
    from rl_shop.evaluation.metrics import accuracy_at_k
    from rl_shop.evaluation.systems import clarify_confirm_threshold
    from rl_shop.sim.shopper import Shopper

    index = HybridIndex.load_or_build(catalog)
    threshold = clarify_confirm_threshold()
    out: dict[str, Any] = {}
    for policies in ("learned", "heuristic"):
        assistant = MACDFAssistant.from_config(
            ["runtime.llm_enabled=false"], catalog=catalog, index=index, policies=policies, memory_path=":memory:"
        )
        assistant.leader.collaboration_policy = None  # the heuristic clarify_types gate, as for "heuristic"
        rows: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, it in enumerate(items):
            shopper = Shopper(it.intent, catalog, seed=seed + i)
            res = assistant.run(it.query, answer_fn=lambda slot, q, shown, sh=shopper: sh.reply(slot, shown, threshold))
            acc = accuracy_at_k([p.product_id for p in res.products], it.gold_product_ids, 5)
            rows[it.query_type].append((len(res.clarifications), acc))
        for q, v in rows.items():
            out[f"{policies}/{q}"] = {
                "n": len(v),
                "rounds": float(np.mean([r for r, _ in v])),
                "accuracy_at_5": float(np.mean([a for _, a in v])),
            }
            print(
                f"  agent loop {policies:9s} {q:10s} rounds {out[f'{policies}/{q}']['rounds']:.2f} "
                f"Accuracy@5 {out[f'{policies}/{q}']['accuracy_at_5']:.3f} (n={len(v)})",
                flush=True,
            )
    return out


def print_report(res: dict[str, Any]) -> None:
    o = res["overall"]
    print(
        f"{o['n']} queries: obs identical {o['exact_obs']:.1%}, first action agrees {o['first_action_agreement']:.1%}, "
        f"first move (clarify or not) agrees {o['first_move_agreement']:.1%}"
    )
    print(
        f"{'type':17s} {'n':>4s} {'exact':>6s} {'act=':>6s} {'env?':>6s} {'rt?':>6s} {'move=':>6s}  top mismatching features"
    )
    for q, r in res["per_type"].items():
        top = ", ".join(f"{f} {v:.0%}" for f, v in list(r["feature_mismatch_rate"].items())[:4])
        print(
            f"{q:17s} {r['n']:4d} {r['exact_obs']:6.0%} {r['first_action_agreement']:6.0%} {r['env_clarifies']:6.0%} "
            f"{r['runtime_clarifies']:6.0%} {r['first_move_agreement']:6.0%}  {top}"
        )
        print(f"{'':17s} actions env | runtime: {r['actions_env_vs_runtime']}")
    print("per feature (mismatch rate over all queries, mean / max |diff| where they differ):")
    for f, v in res["per_feature"].items():
        print(f"  {f:22s} {v['mismatch_rate']:6.1%}  mean {v['mean_abs_diff']:.3f}  max {v['max_abs_diff']:.3f}")
    for e in res["examples"]:
        print(
            f"  [{e['type']}] {e['query']!r}: env known {e['env_known']}, runtime {e['runtime_type']} {e['runtime_known']}"
            f" -> {e['features']}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    ap.add_argument("--out", type=Path, default=None, help="JSON output (default: the config's out)")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    from rl_shop.catalog import load_catalog
    from rl_shop.sim.benchmark import load_benchmark

    t0 = time.perf_counter()
    catalog = load_catalog()
    items_all = load_benchmark(cfg.get("benchmark"))
    items = []
    for q in cfg["query_types"]:
        of_type = [it for it in items_all if it.query_type == q][: int(cfg["per_type"])]
        if not of_type:
            raise SystemExit(f"error: the benchmark has no {q!r} item; edit query_types in {args.config}")
        items += of_type
    vocab, guider, residual = build_runtime(catalog, cfg["policy_dir"])
    res = measure(items, catalog, vocab, guider, residual, float(cfg["tolerance"]), int(cfg["examples"]))
    loop = cfg.get("agent_loop") or {}
    if int(loop.get("per_type", 0)) > 0:
        picked: list[Any] = []
        for q in loop["query_types"]:
            picked += [it for it in items_all if it.query_type == q][: int(loop["per_type"])]
        res["agent_loop"] = agent_loop(picked, catalog, int(loop.get("seed", 0)))
    res["config"] = cfg
    res["seconds"] = round(time.perf_counter() - t0, 1)
    print_report(res)
    out = args.out or ROOT / cfg["out"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out} ({res['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
