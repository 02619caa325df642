"""``summary.json``: the machine-readable results of an evaluation run (issue 13, item 6).

``{"roles": {role: {...}}, "systems": {system: {benchmark: {"accuracy_at_5", "n"}}}}``. Per role:

* ``sim_*`` and ``oracle_gap`` / ``no_rl_needed`` come from a headroom run
  (``experiments/headroom.py``, its ``headroom.json``) over every training seed: ``sim_delta`` is
  learned minus the best heuristic in the env, in the loop's metric (``sim_metric``), with the
  Student-t half-width over the seeds (``sim_ci95``); ``oracle_gap`` is in the env's return.
* ``loop_*`` come from this run where it isolates the role: the system ``macdf_learned_<role>``
  (that role learned, the others heuristic), or ``macdf_learned`` when ``learned_roles == [role]``,
  against ``macdf_heuristic``: the paired per-query difference in ``loop_metric``, with its
  percentile-bootstrap 95% interval ``[low, high]`` (``loop_ci95``).
* ``retained = loop_delta / sim_delta_vs_shipped`` where both were measured: the loop compares the
  learned role with the heuristic the runtime ships, so the env's difference it is set against is
  learned minus that *shipped* heuristic (``sim_delta`` is against the *best* one). ``SIM_METRIC``
  and ``LOOP_METRIC`` pair each role's metrics in one unit; the interval is the loop interval over
  the same env difference (the env's own seed spread is in ``sim_ci95_vs_shipped``).

* ``same_queries`` (the Guider): the same comparison on the same queries, which is what the
  sim-to-agent ratio asks for: the Clarify env (``envs.specs.CLARIFY``) on one-intent pools of
  the evaluated queries of the Guider's types and the loop on those queries (``macdf_learned``
  minus ``macdf_heuristic``, the consistency step), ``retained`` = loop / env mean difference in
  Accuracy@5 with a percentile-bootstrap interval over queries (``consistency.retained_share``).

A field that was not measured is ``null`` and the role's ``notes`` say why: nothing is filled in.
``loop_by_benchmark`` keeps each benchmark's loop figures when runs on several benchmarks are
merged (``summary.merge_with``); the top-level ``loop_*`` are the first benchmark's (``loop_benchmark``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rl_shop.agents.runtime import LEARNED_ROLES as ROLES
from rl_shop.evaluation.report import paired_differences
from rl_shop.sim.benchmark import DEFAULT_BENCHMARK

#: Each role's metric in the agent loop (a per-query record key; ``{k}`` is Accuracy@K's K) and its
#: counterpart in the role's env (a final-info key, ``configs/headroom.yaml`` ``roles.*.loop_metric``).
LOOP_METRIC: dict[str, str] = {"guider": "accuracy@{k}", "scheduler": "total_s", "collaboration": "accuracy@{k}"}
SIM_METRIC: dict[str, str] = {"guider": "accuracy_at_5", "scheduler": "latency", "collaboration": "relevance"}
CONTROL, TREATMENT = "macdf_heuristic", "macdf_learned"


def role_system(role: str) -> str:
    """The system that runs ``role``'s learned policy alone (the other roles heuristic)."""
    return f"{TREATMENT}_{role}"


def benchmark_label(benchmark: str | None, split: str | None) -> str:
    """``eccd_v1`` or ``eccd_v1:test``: the benchmark file's stem and the split evaluated."""
    stem = Path(benchmark).stem if benchmark else DEFAULT_BENCHMARK.stem
    return f"{stem}:{split}" if split else stem


def systems_entry(records: Sequence[Mapping[str, Any]], names: Sequence[str], k: int, label: str) -> dict[str, Any]:
    """Per system, the benchmark's mean Accuracy@K over the queries it answered without error, and n."""
    out: dict[str, Any] = {}
    for name in names:
        acc = [float(r[f"accuracy@{k}"]) for r in records if r["system"] == name and not r.get("error")]
        out[name] = {label: {"accuracy_at_5": float(np.mean(acc)) if acc else None, "n": len(acc)}}
    return out


def _sim_fields(role: str, headroom: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    empty = {
        "sim_metric": None,
        "sim_delta": None,
        "sim_ci95": None,
        "sim_delta_vs_shipped": None,
        "sim_ci95_vs_shipped": None,
        "sim_seeds": 0,
        "oracle_gap": None,
    }
    if headroom is None:
        return {**empty, "no_rl_needed": None}, ["no headroom run given (summary.headroom)"]
    if role not in headroom:
        return {**empty, "no_rl_needed": None}, [f"the headroom run has no {role} role"]
    h = headroom[role]
    if h.get("loop_metric") != SIM_METRIC[role]:
        raise ValueError(
            f"headroom.json's {role} entry measures {h.get('loop_metric')!r}, not the loop's unit "
            f"{SIM_METRIC[role]!r}; rerun experiments/headroom.py with this version"
        )
    notes = [] if h["n_learned"] > 1 else ["one learned policy: sim_ci95 needs several training seeds"]
    fields = {
        "sim_metric": h["loop_metric"],
        "sim_delta": h["metric_learned_minus_best"],
        "sim_ci95": _finite_or_none(h["metric_learned_minus_best_ci95"]),
        "sim_delta_vs_shipped": h.get("metric_learned_minus_shipped"),
        "sim_ci95_vs_shipped": _finite_or_none(h.get("metric_learned_minus_shipped_ci95")),
        "sim_seeds": int(h["n_learned"]),
        "oracle_gap": h["oracle_gap"],
        "oracle_gap_units": "return",
        "no_rl_needed": bool(h["no_rl_needed"]),
    }
    return fields, notes


def _loop_fields(
    role: str, records: Sequence[Mapping[str, Any]], learned_roles: Sequence[str] | None, k: int, seed: int
) -> tuple[dict[str, Any], list[str], np.ndarray | None]:
    metric = LOOP_METRIC[role].format(k=k)
    empty = {"loop_metric": metric, "loop_system": None, "loop_delta": None, "loop_ci95": None, "loop_n": 0}
    systems = {r["system"] for r in records}
    if role_system(role) in systems:
        treatment = role_system(role)
    elif TREATMENT in systems and list(learned_roles or ROLES) == [role]:
        treatment = TREATMENT
    else:
        why = f"this run does not isolate the {role}: evaluate {role_system(role)} (or {TREATMENT} with learned_roles=[{role}])"
        return empty, [why], None
    if CONTROL not in systems:
        return empty, [f"needs {CONTROL} in systems"], None
    diffs = paired_differences(records, metric, CONTROL, treatment, seed=seed)
    overall = diffs[diffs["query_type"] == "overall"]
    if overall.empty:
        return empty, ["no query answered by both systems"], None
    row = overall.iloc[0]
    fields = {
        "loop_metric": metric,
        "loop_system": treatment,
        "loop_delta": float(row["diff"]),
        "loop_ci95": [float(row["lo"]), float(row["hi"])],
        "loop_n": int(row["n"]),
    }
    return fields, [], np.array([row["lo"], row["hi"]], dtype=float)


def role_entry(
    role: str,
    records: Sequence[Mapping[str, Any]],
    learned_roles: Sequence[str] | None,
    headroom: Mapping[str, Any] | None,
    k: int,
    seed: int,
) -> dict[str, Any]:
    """One role's sim-side and loop-side figures (see the module docstring)."""
    sim, notes = _sim_fields(role, headroom)
    loop, loop_notes, interval = _loop_fields(role, records, learned_roles, k, seed)
    entry: dict[str, Any] = {**sim, **loop, "retained": None, "retained_ci95": None}
    # The loop's heuristic system runs the env's shipped heuristic: the retained share compares like
    # with like (one unit: SIM_METRIC pairs with LOOP_METRIC).
    sim_ref = sim.get("sim_delta_vs_shipped")
    if loop["loop_delta"] is not None and sim_ref:
        entry["retained"] = loop["loop_delta"] / sim_ref
        assert interval is not None
        entry["retained_ci95"] = sorted((interval / sim_ref).tolist())
    elif loop["loop_delta"] is not None and sim["sim_metric"] is not None:
        notes.append("no retained share: the headroom run has no shipped-heuristic difference (or it is 0)")
    entry["notes"] = notes + loop_notes
    return entry


def build_summary(
    records: Sequence[Mapping[str, Any]],
    names: Sequence[str],
    *,
    k: int,
    benchmark: str | None,
    split: str | None,
    learned_roles: Sequence[str] | None,
    headroom: Mapping[str, Any] | None,
    seed: int,
    guider_same_queries: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole ``summary.json`` of one evaluation run (``guider_same_queries``: the consistency
    step's ``retained_share``, when it ran)."""
    label = benchmark_label(benchmark, split)
    roles = {role: role_entry(role, records, learned_roles, headroom, k, seed) for role in ROLES}
    roles["guider"]["same_queries"] = {**guider_same_queries, "benchmark": label} if guider_same_queries else None
    for entry in roles.values():
        entry["loop_benchmark"] = label if entry["loop_delta"] is not None else None
        entry["loop_by_benchmark"] = (
            {label: {f: entry[f] for f in _LOOP_KEYS}} if entry["loop_delta"] is not None else {}
        )
    return {
        "roles": roles,
        "systems": systems_entry(records, names, k, label),
        "learned_roles": list(learned_roles) if learned_roles else list(ROLES),
    }


_LOOP_KEYS = ("loop_system", "loop_delta", "loop_ci95", "loop_n", "retained", "retained_ci95")


def merge_summaries(base: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` (an earlier run's summary, e.g. on another benchmark) with ``new``'s systems and
    per-benchmark loop figures added. A role's top-level ``loop_*`` stay ``base``'s where it has
    them (the first benchmark is the primary one); ``sim_*`` are ``new``'s where it has them."""
    out = json.loads(json.dumps(base))
    for name, by_bench in new["systems"].items():
        out["systems"].setdefault(name, {}).update(by_bench)
    for role, entry in new["roles"].items():
        old = out["roles"].setdefault(role, dict(entry))
        old.setdefault("loop_by_benchmark", {}).update(entry.get("loop_by_benchmark") or {})
        if old.get("loop_delta") is None and entry.get("loop_delta") is not None:
            old.update({f: entry[f] for f in (*_LOOP_KEYS, "loop_metric", "loop_benchmark")})
        if entry.get("sim_delta") is not None:
            old.update({k: v for k, v in entry.items() if k.startswith("sim_") or k in _SIM_EXTRA})
        if not old.get("same_queries") and entry.get("same_queries"):  # the first benchmark's, as loop_*
            old["same_queries"] = entry["same_queries"]
        old["notes"] = sorted(set(old.get("notes") or []) | set(entry.get("notes") or []))
    return out


_SIM_EXTRA = ("oracle_gap", "oracle_gap_units", "no_rl_needed")


def load_headroom(paths: str | Path | Sequence[str | Path] | None) -> dict[str, Any] | None:
    """The roles of one or more headroom runs' ``headroom.json`` (a file or its run directory; a
    later run's role replaces an earlier one's), or None; a clear error when one is missing or unreadable."""
    if paths is None:
        return None
    if isinstance(paths, (str, Path)):
        paths = [paths]
    merged: dict[str, Any] = {}
    for path in paths:
        merged.update(_load_one_headroom(path))
    return merged


def _load_one_headroom(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / "headroom.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"summary.headroom={path}: no such file; run experiments/headroom.py first") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"summary.headroom={path} is not valid JSON ({exc}); rerun experiments/headroom.py") from None
    if not isinstance(data, dict):
        raise ValueError(f"summary.headroom={path} must hold a JSON object of roles, got {type(data).__name__}")
    return data


def load_summary(path: str | Path | None) -> dict[str, Any] | None:
    """An earlier run's ``summary.json`` to merge into (``summary.merge_with``), or None."""
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"summary.merge_with={path}: no such file (an earlier run's summary.json)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"summary.merge_with={path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not {"roles", "systems"} <= set(data):
        raise ValueError(f"summary.merge_with={path} is not a summary.json (it needs 'roles' and 'systems')")
    return data


def _finite_or_none(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None
