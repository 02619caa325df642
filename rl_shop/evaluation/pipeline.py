"""One end-to-end evaluation run, from a resolved config to ``report.md`` (called by experiments/evaluate.py).

Steps: load catalog, benchmark and index; build the LLM backend once (every LLM system and the
judge share it, so a run compares systems on one backend); build the systems; run the resumable
benchmark; aggregate per query type; simulate the A/B test; measure sim-to-agent consistency;
write tables, plots, TensorBoard scalars, ``summary.json`` and the report.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from envs.specs import CLARIFY
from rl_shop.agents.runtime import LEARNED_ROLES
from rl_shop.config_files import env_config
from rl_shop.evaluation.ab_sim import ABConfig, compare_arms, simulate_ab
from rl_shop.evaluation.ab_test import RelativeChange
from rl_shop.evaluation.rag import RAGSettings, RAGSystem
from rl_shop.evaluation.real_benchmark import REAL_BENCHMARK
from rl_shop.evaluation.report import (
    ab_absolute_table,
    ab_table,
    bar_plot,
    consistency_markdown,
    interval_table,
    markdown_table,
    paired_differences,
    paired_table,
    per_type_intervals,
    wide,
    write_tensorboard,
)
from rl_shop.evaluation.runner import EvalRunError, EvalRunner, aggregate, select_items, shard_dir, shard_items
from rl_shop.evaluation.summary import (
    benchmark_label,
    build_summary,
    load_headroom,
    load_summary,
    merge_summaries,
    role_system,
)
from rl_shop.evaluation.systems import RetrievalSystem, System, make_macdf_system
from rl_shop.evaluation.uds import JudgeConfig, RubricConfig, UDSJudge

if TYPE_CHECKING:
    from rl_shop.catalog.index import HybridIndex
    from rl_shop.llm import LLM
    from rl_shop.sim.config import SimConfig
    from rl_shop.sim.constraints import CatalogArrays

log = logging.getLogger(__name__)

#: ``macdf_learned_<role>``: one role's learned policy alone, the others heuristic (whatever ``learned_roles``
#: says), so one run measures every role in the loop (``summary.json``).
KNOWN_SYSTEMS: tuple[str, ...] = (
    "retrieval",
    "rag",
    "macdf_heuristic",
    "macdf_learned",
    *(role_system(r) for r in LEARNED_ROLES),
)
LLM_SYSTEMS = frozenset(KNOWN_SYSTEMS) - {"retrieval"}


def build_systems(
    names: Sequence[str], *, cfg: Mapping[str, Any], llm: LLM | None, catalog: pd.DataFrame, index: HybridIndex
) -> list[System]:
    """The requested systems, in the requested order."""
    unknown = [n for n in names if n not in KNOWN_SYSTEMS]
    if unknown:
        raise EvalRunError(f"unknown system(s) {unknown}; choose from {list(KNOWN_SYSTEMS)}")
    out: list[System] = []
    for name in names:
        if name == "retrieval":
            out.append(RetrievalSystem(index, k=int(cfg["retrieval"]["k"])))
        elif name == "rag":
            assert llm is not None, "rag is one of LLM_SYSTEMS: the caller makes the LLM"
            out.append(RAGSystem(llm, index, catalog, RAGSettings(**cfg["rag"])))
        else:
            policies, roles = _macdf_variant(name, cfg.get("learned_roles"))
            overrides = list(cfg.get("macdf_overrides") or [])
            if roles:
                overrides.append("runtime.learned_roles=[" + ",".join(roles) + "]")
            try:
                out.append(
                    make_macdf_system(
                        policies,
                        llm=llm,
                        catalog=catalog,
                        index=index,
                        overrides=overrides,
                        policies_dir=cfg.get("policies_dir"),
                        name=name,
                    )
                )
            except (FileNotFoundError, RuntimeError) as exc:
                raise EvalRunError(f"cannot build {name}: {exc}") from exc
    return out


def _benchmark_items(benchmark: str | None, split: str | None, catalog: pd.DataFrame) -> list[Any]:
    """The configured benchmark's items of ``split``: the generated one (``split_of``, a hash of the
    id), or the real-language one (``benchmark=real_v1``: its labelled in-catalog rows, own split)."""
    from rl_shop.evaluation.real_items import is_real_benchmark, real_items
    from rl_shop.sim.benchmark import check_catalog_matches, load_benchmark, load_card

    if is_real_benchmark(benchmark):
        path = REAL_BENCHMARK if str(benchmark) == REAL_BENCHMARK.stem else Path(str(benchmark))
        try:
            return real_items(catalog, split, path)
        except (FileNotFoundError, ValueError) as exc:
            raise EvalRunError(str(exc)) from None
    check_catalog_matches(load_card(benchmark), catalog)
    return select_items(load_benchmark(benchmark), split=split)


def _macdf_variant(name: str, learned_roles: Sequence[str] | None) -> tuple[str, list[str] | None]:
    """``(policies, learned roles)`` of a MACDF system name: ``macdf_heuristic``, ``macdf_learned``
    (``learned_roles``; None = the runtime's default, every role) or ``macdf_learned_<role>``."""
    if name == "macdf_heuristic":
        return "heuristic", None
    if name == "macdf_learned":
        return "learned", list(learned_roles) if learned_roles else None
    return "learned", [name.removeprefix("macdf_learned_")]


def _paired_sections(
    records: Sequence[Mapping[str, Any]], names: Sequence[str], k: int, seed: int, out_dir: Path
) -> list[str]:
    """Every other MACDF system minus ``macdf_heuristic`` in Accuracy@K, paired per query (+ CSV)."""
    control = "macdf_heuristic"
    if control not in names:
        return []
    out = []
    for treatment in [n for n in names if n.startswith("macdf_") and n != control]:
        diffs = paired_differences(records, f"accuracy@{k}", control, treatment, seed=seed)
        diffs.to_csv(out_dir / f"paired_{treatment}_minus_{control}.csv", index=False)
        out += [
            f"{treatment} minus {control}, Accuracy@{k}, paired per query (percentile bootstrap over queries):",
            "",
            paired_table(diffs),
            "",
        ]
    return out


def _timing_table(records: Sequence[Mapping[str, Any]], systems: Sequence[str]) -> pd.DataFrame:
    rows = []
    for s in systems:
        part = [r for r in records if r["system"] == s]
        if not part:
            continue
        rows.append(
            {
                "system": s,
                "mean ttft_s": float(np.mean([r["ttft_s"] for r in part])),
                "mean total_s": float(np.mean([r["total_s"] for r in part])),
                "max total_s": float(np.max([r["total_s"] for r in part])),
                "mean wall_s": float(np.mean([r["wall_s"] for r in part])),
                "mean judge_s": float(np.mean([r.get("judge_s", 0.0) for r in part])),
                "llm fallbacks": int(sum(int(r.get("llm_fallbacks", 0)) for r in part)),
                "errors": int(sum(r.get("error") is not None for r in part)),
                "n": len(part),
            }
        )
    return pd.DataFrame(rows).set_index("system")


def run_ab(
    records: Sequence[Mapping[str, Any]],
    items: Sequence[Any],
    systems: Sequence[str],
    arr: CatalogArrays,
    sim_config: SimConfig,
    ab: ABConfig,
) -> tuple[dict[str, dict[str, RelativeChange]], dict[str, float], dict[str, dict[str, RelativeChange]]]:
    """Control vs each treatment, the share of users who abandoned per system, and the same
    comparison with the other abandonment rule (excluded <-> kept with zero clicks and orders).

    The paper excluded users who left before results arrived; when latency differs by query, that
    keeps the slow system's easy queries more often than its hard ones, so the other rule
    (intention to treat) is reported beside it.
    """
    outputs = {s: {r["item_id"]: r for r in records if r["system"] == s} for s in systems}
    if ab.control not in outputs or not outputs[ab.control]:
        raise EvalRunError(f"ab.control={ab.control!r} was not evaluated; add it to systems or change ab.control")
    treatments = ab.treatments or [s for s in systems if s != ab.control]
    results: dict[str, dict[str, RelativeChange]] = {}
    other: dict[str, dict[str, RelativeChange]] = {}
    flipped = ab.model_copy(update={"exclude_abandoned": not ab.exclude_abandoned})
    abandon: dict[str, float] = {}
    for t in treatments:
        if t not in outputs:
            raise EvalRunError(f"ab treatment {t!r} was not evaluated")
        arm_a, arm_b = simulate_ab(outputs[ab.control], outputs[t], items, arr, sim_config, ab)
        results[t] = compare_arms(arm_a, arm_b, ab)
        other[t] = compare_arms(arm_a, arm_b, flipped)
        abandon[ab.control] = float(arm_a.abandoned.mean())
        abandon[t] = float(arm_b.abandoned.mean())
    return results, abandon, other


def run_consistency(
    records: Sequence[Mapping[str, Any]],
    items: Sequence[Any],
    arr: CatalogArrays,
    sim_config: SimConfig,
    cfg: Mapping[str, Any],
    policies_dir: Path,
) -> tuple[pd.DataFrame | None, dict[str, Any] | None, str]:
    """Sim-to-agent table and the loop's retained share of the env's difference on the same queries
    (``consistency.retained_share``), or None, None and the reason they could not be measured."""
    from envs.intent_pool import load_or_build_intent_pool
    from rl_shop.evaluation.consistency import consistency_table, item_differences, retained_share, sim_outcomes
    from rl_shop.policies.heuristics.clarify import AskUntilConfident, ClarifyPriors, heuristic_params
    from rl_shop.policies.loader import load_policy

    guider_dir = policies_dir / "guider"
    roles = cfg.get("learned_roles")  # None: the runtime's default, every role learned
    if roles is not None and "guider" not in roles:
        return None, None, f"macdf_learned runs the heuristic Guider here (learned_roles={list(roles)})"
    if not (guider_dir / "policy_card.json").is_file():
        return None, None, f"no exported Guider in {guider_dir} (train one, or point policies_dir at an export)"
    systems = {r["system"] for r in records}
    if not {"macdf_learned", "macdf_heuristic"} <= systems:
        return None, None, "needs both macdf_heuristic and macdf_learned in systems"
    env_cfg = env_config(CLARIFY.config)
    kwargs = dict(env_cfg["kwargs"])
    h = heuristic_params(env_cfg.get("heuristic"))
    learned = load_policy(guider_dir, expect_env_id=CLARIFY.id)
    pool = load_or_build_intent_pool(int(kwargs["pool_size"]), int(kwargs["pool_seed"]), kwargs.get("sim_config"))
    heuristic = AskUntilConfident(
        h["threshold"],
        pool.log2_catalog_size,
        ClarifyPriors.from_pool(pool),
        max_leave_risk=h["max_leave_risk"],
        max_rounds=int(kwargs["max_rounds"]),
    )
    evaluated = {r["item_id"] for r in records if r["system"] == "macdf_learned"}
    subset = [it for it in items if it.id in evaluated and it.query_type in set(cfg["types"])]
    if not subset:
        return None, None, f"no evaluated item of the Guider's types {list(cfg['types'])}"
    sim = sim_outcomes(
        subset,
        {"learned": learned, "heuristic": heuristic},
        arr,
        kwargs,
        int(cfg["episodes"]),
        int(cfg["seed"]),
        float(sim_config.shopper.p_dont_know_hidden_bonus),
    )
    per_item = item_differences(subset, sim, records)
    return consistency_table(per_item), retained_share(per_item, seed=int(cfg["seed"])), ""


def evaluate(
    cfg: Mapping[str, Any], out_dir: Path, resolved_yaml: str, progress: Callable[[str], None] = print
) -> Path:
    """Run the whole evaluation described by ``cfg`` (the plain-dict form of configs/evaluate.yaml)."""
    from rl_shop.catalog import load_catalog
    from rl_shop.catalog.index import HybridIndex
    from rl_shop.sim.config import load_sim_config

    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(cfg["systems"])
    unknown = [n for n in names if n not in KNOWN_SYSTEMS]
    if unknown:
        raise EvalRunError(f"unknown system(s) {unknown}; choose from {list(KNOWN_SYSTEMS)}")
    ab_cfg = ABConfig(**cfg["ab"])  # validated before any query runs: a typo must not cost an hour
    if ab_cfg.enabled and len(names) >= 2:
        missing = [s for s in [ab_cfg.control, *ab_cfg.treatments] if s not in names]
        if missing:
            raise EvalRunError(
                f"ab.control / ab.treatments name system(s) {missing} that are not in systems={names}; "
                "fix them or set ab.enabled=false"
            )
    try:  # read now: a wrong path must not cost an hour of queries
        headroom = load_headroom((cfg.get("summary") or {}).get("headroom"))
        merge_with = load_summary((cfg.get("summary") or {}).get("merge_with"))
    except (FileNotFoundError, ValueError) as exc:
        raise EvalRunError(str(exc)) from None
    sim_overrides = {k: dict(v) if isinstance(v, Mapping) else v for k, v in (cfg.get("sim_overrides") or {}).items()}
    try:
        sim_config = load_sim_config(overrides=sim_overrides)
    except ValueError as exc:  # the sim's ConfigError: name the bad key before any query runs
        raise EvalRunError(f"sim_overrides: {exc}") from None
    types = None if cfg.get("types") in (None, "all") else list(cfg["types"])
    limit = cfg.get("limit")
    catalog = load_catalog()
    items = _benchmark_items(cfg.get("benchmark"), cfg.get("split"), catalog)
    items = select_items(items, types, None if limit is None else int(limit))
    shard = cfg["shard"]
    n_shards = int(shard["count"])
    if n_shards > 1:  # one process of a sharded run: its items, its own directory, no report
        items = shard_items(items, int(shard["index"]), n_shards)
        out_dir = shard_dir(out_dir, int(shard["index"]), n_shards)
    t0 = time.perf_counter()
    index = HybridIndex.load_or_build(catalog)
    index.search(items[0].query, k=1)  # load the query encoder now, not inside the first system's timing
    progress(f"hybrid index ready in {time.perf_counter() - t0:.1f}s; {len(items)} queries x {len(names)} systems")
    judge_cfg = JudgeConfig(**cfg["uds"]["judge"])
    llm = None
    if LLM_SYSTEMS & set(names) or judge_cfg.enabled:
        from rl_shop.llm import make_llm

        llm = make_llm(cfg["llm"])
        llm.chat([{"role": "user", "content": "Hello"}], max_tokens=1)  # load weights before anything is timed
        progress(f"LLM backend: {llm.describe()}")
    systems = build_systems(names, cfg=cfg, llm=llm, catalog=catalog, index=index)
    rows = catalog.set_index("product_id", drop=False)
    titles = dict(zip(catalog["product_id"].astype(str), catalog["title"].astype(str)))
    judge = UDSJudge(llm, rows, judge_cfg) if judge_cfg.enabled and llm is not None else None
    meta = {
        "benchmark": str(cfg.get("benchmark")),
        "llm": None if llm is None else llm.describe(),
        "rag": cfg["rag"],
        "retrieval": cfg["retrieval"],
        "macdf_overrides": cfg.get("macdf_overrides"),
        "learned_roles": cfg.get("learned_roles"),
        "policies_dir": str(cfg.get("policies_dir")),
        **({"sim_overrides": sim_overrides} if sim_overrides else {}),  # absent when unset: older runs resume
    }
    runner = EvalRunner(
        systems,
        catalog,
        sim_config,
        out_dir,
        seed=int(cfg["seed"]),
        k=int(cfg["k"]),
        rubric=RubricConfig(**cfg["uds"]["rubric"]),
        judge=judge,
        titles=titles,
        meta=meta,
        fail_fast=bool(cfg["fail_fast"]),
        retry_errors=bool(cfg["retry_errors"]),
        progress=progress,
    )
    records = runner.run(items)
    if n_shards > 1:
        progress(
            f"shard {shard.get('index', 0)} of {n_shards}: {len(records)} results in {out_dir}; run again "
            "without shard.count over the same results_dir to merge the shards and write the report"
        )
        return out_dir / "per_query.jsonl"
    wanted = {it.id for it in items}
    records = [r for r in records if r["item_id"] in wanted and r["system"] in names]
    table = aggregate(records, names, k=int(cfg["k"]))
    table.to_csv(out_dir / "per_type.csv")
    k = int(cfg["k"])
    acc = wide(table, f"accuracy@{k}", names)
    uds_j = wide(table, "uds_judge", names)
    uds_r = wide(table, "uds_rubric", names)
    rounds = wide(table, "rounds", names)
    ttft = wide(table, "ttft_s", names)
    total = wide(table, "total_s", names)
    timing = _timing_table(records, names)
    for name, df in [
        ("accuracy", acc),
        ("uds_judge", uds_j),
        ("uds_rubric", uds_r),
        ("rounds", rounds),
        ("ttft_s", ttft),
        ("total_s", total),
        ("timing", timing),
    ]:
        df.to_csv(out_dir / f"table_{name}.csv")
    acc_iv = per_type_intervals(records, f"accuracy@{k}", names, seed=int(cfg["seed"]))
    plots: list[Path] = []
    if cfg["plots"]:
        for metric, ylim in [(f"accuracy@{k}", (0.0, 1.0)), ("uds_rubric", (1.0, 3.0)), ("uds_judge", (1.0, 3.0))]:
            iv = per_type_intervals(records, metric, names, seed=int(cfg["seed"]))
            if not iv.empty:
                plots.append(bar_plot(iv, metric, out_dir / "plots" / f"{metric.replace('@', '_at_')}.png", ylim))

    ab_results: dict[str, dict[str, RelativeChange]] = {}
    ab_md = "(A/B test disabled)"
    if ab_cfg.enabled:
        if len(names) < 2:
            ab_md = "(needs two systems)"
        else:
            ab_results, abandon, ab_other = run_ab(records, items, names, runner.arr, sim_config, ab_cfg)
            rule = (
                "abandoned users kept with zero clicks and orders (intention to treat)"
                if ab_cfg.exclude_abandoned
                else "abandoned users excluded (the paper's rule)"
            )
            ab_md = (
                ab_table(ab_results, ab_cfg.control, abandon)
                + "\n\nPer-user means:\n\n"
                + ab_absolute_table(ab_results, ab_cfg.control)
                + f"\n\nThe same users with the other rule, {rule}:\n\n"
                + ab_table(ab_other, ab_cfg.control, abandon)
            )
            (out_dir / "ab_test.json").write_text(
                json.dumps({t: {m: rc.to_dict() for m, rc in res.items()} for t, res in ab_results.items()}, indent=2)
            )

    cons_md = "(consistency disabled)"
    same_queries = None
    if cfg["consistency"]["enabled"]:
        policies_dir = Path(cfg["policies_dir"])
        try:
            cons_cfg = {**cfg["consistency"], "learned_roles": cfg.get("learned_roles")}
            cons, same_queries, why = run_consistency(records, items, runner.arr, sim_config, cons_cfg, policies_dir)
        except Exception as exc:  # reported, not hidden: the rest of the report is still valid
            log.exception("consistency measurement failed")
            cons, same_queries, why = None, None, f"failed: {type(exc).__name__}: {exc}"
        if cons is not None:
            cons.to_csv(out_dir / "consistency.csv")
            cons_md = consistency_markdown(cons)
        else:
            cons_md = f"(not measured: {why})"
    if cfg["tensorboard"]:
        write_tensorboard(table, ab_results, out_dir / "tensorboard")
    summary = build_summary(
        records,
        names,
        k=k,
        benchmark=cfg.get("benchmark"),
        split=cfg.get("split"),
        learned_roles=cfg.get("learned_roles"),
        headroom=headroom,
        seed=int(cfg["seed"]),
        guider_same_queries=same_queries,
    )
    if merge_with is not None:
        summary = merge_summaries(merge_with, summary)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    elapsed = time.perf_counter() - started
    report = [
        "# rl_shop end-to-end evaluation",
        "",
        f"Benchmark slice: {benchmark_label(cfg.get('benchmark'), None)}, {cfg.get('split') or 'all'} split, "
        f"{len(items)} queries ({'all' if limit is None else limit} per type; types: "
        f"{', '.join(types or ['all'])}), systems: {', '.join(names)}, seed {cfg['seed']}, "
        f"LLM backend: {meta['llm']}. Wall time of this invocation: {elapsed:.0f}s.",
        "",
        f"## Accuracy@{k} (Table 1 layout)",
        "",
        markdown_table(acc),
        "",
        f"Accuracy@{k} with percentile-bootstrap 95% intervals over the queries of each type:",
        "",
        interval_table(acc_iv, names),
        "",
        *_paired_sections(records, names, k, int(cfg["seed"]), out_dir),
        "## UDS by the LLM judge, 1-3 (Table 2 layout; n/a = judge output unusable or judge disabled)",
        "",
        markdown_table(uds_j),
        "",
        "## UDS by the deterministic rubric, 1-3 (computed from the gold intent)",
        "",
        markdown_table(uds_r),
        "",
        "## Clarification rounds",
        "",
        markdown_table(rounds),
        "",
        "## Latency",
        "",
        "Time to first token (s):",
        "",
        markdown_table(ttft),
        "",
        "Total time (s):",
        "",
        markdown_table(total),
        "",
        "Per system (measured on this machine):",
        "",
        markdown_table(timing),
        "",
        "## Simulated online A/B test (Table 3 layout: relative change, bootstrap 95% interval, P)",
        "",
        ab_md,
        "",
        f"Users: {ab_cfg.n_users}, each drawing one evaluated query and a random arm; latency = recorded "
        f"{ab_cfg.latency_source} x {ab_cfg.latency_scale}; abandoned users excluded: {ab_cfg.exclude_abandoned}; "
        f"p-values: {ab_cfg.p_method}. Reformulations replay the same list (see docs/evaluation.md).",
        "",
        "## Sim-to-agent consistency (learned minus heuristic Guider)",
        "",
        cons_md,
        "",
        f"sim_* columns: {CLARIFY.id} on one-intent pools of the same queries; agent_* columns: the full "
        "LLM loop (macdf_learned minus macdf_heuristic). The two Accuracy@5 are different quantities "
        "(see rl_shop/evaluation/consistency.py); a large gap is reported as measured.",
        "",
        "## Files",
        "",
        "per_query.jsonl (one line per query and system; resumable), summary.json (machine-readable: "
        "rl_shop/evaluation/summary.py), per_type.csv, table_*.csv, "
        + ", ".join(str(p.relative_to(out_dir)) for p in plots)
        + ", tensorboard/",
        "",
        "## Resolved config",
        "",
        "```yaml",
        resolved_yaml.rstrip(),
        "```",
        "",
    ]
    path = out_dir / "report.md"
    path.write_text("\n".join(report), encoding="utf-8")
    progress("\n" + markdown_table(acc) + "\n\n" + ab_md)
    return path


__all__ = ["KNOWN_SYSTEMS", "build_systems", "evaluate", "run_ab", "run_consistency"]
