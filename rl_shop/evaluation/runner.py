"""Resumable end-to-end benchmark runner: every (query, system) result is appended to a JSONL file.

For each benchmark item and each system, a fresh simulated shopper is built with a seed derived
from ``(seed, item id)`` only (:func:`shopper_seed`), so two systems evaluated with the same seed
meet the same shopper (same hidden intent, same answers to the same questions, same reactions),
whatever the order in which systems run. The shopper's language face answers the system's
clarifying questions (see ``rl_shop.evaluation.systems.MACDFSystem``).

Each result line carries the ranked ids, answer, clarifications, latencies, Accuracy@K / nDCG /
Recall, the deterministic UDS rubric and the LLM judge's UDS. Lines are flushed and fsync'ed one
by one; a rerun on the same results file skips the (system, item) pairs already there, so an
interrupted evaluation continues where it stopped, and ``aggregate`` gives the same numbers as an
uninterrupted run (``retry_errors`` re-runs the pairs that raised). A ``run_meta.json`` beside the file pins what the results were produced with,
so a resume with a different configuration is refused instead of mixing results.

Sharding (:mod:`rl_shop.sharding`): :func:`shard_items` splits the slice into ``count`` disjoint shards (every ``count``-th
item, so each shard gets every query type); a shard's runner writes ``shards/<i>-of-<n>/`` under
the results directory (a Hydra multirun runs them as separate processes). A run of the whole
slice on the same directory first folds the shards' records in (:meth:`EvalRunner.merge_shards`,
refused when a shard was produced with another configuration) and then only runs what is missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, SupportsFloat, cast

import numpy as np
import pandas as pd

from rl_shop.evaluation.metrics import accuracy_at_k, ndcg_at_k, recall_at_k
from rl_shop.evaluation.systems import System, SystemOutput
from rl_shop.evaluation.uds import RubricConfig, UDSJudge, rubric_score
from rl_shop.sharding import shard_dir, shard_slice
from rl_shop.sim.benchmark import SPLIT_SHARES, BenchmarkItem, split_of
from rl_shop.sim.config import SimConfig
from rl_shop.sim.constraints import CatalogArrays
from rl_shop.sim.shopper import Shopper
from rl_shop.sim.slots import QUERY_TYPES

log = logging.getLogger(__name__)

TABLE_COLUMNS: tuple[str, ...] = (
    "accuracy@5",
    "max_accuracy@5",
    "uds_judge",
    "uds_rubric",
    "rounds",
    "ttft_s",
    "total_s",
    "n",
    "judge_missing",
    "errors",
)


class EvalRunError(RuntimeError):
    """The evaluation cannot run or resume as asked (bad slice, mismatching results directory)."""


def shopper_seed(seed: int, item_id: str) -> int:
    """A 63-bit shopper seed from ``(seed, item id)`` only, never from system order."""
    digest = hashlib.sha256(f"{int(seed)}\x1f{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def select_items(
    items: Sequence[BenchmarkItem],
    types: Iterable[str] | None = None,
    limit: int | None = None,
    split: str | None = None,
) -> list[BenchmarkItem]:
    """The slice to evaluate: items of ``types`` (all if None) in ``split`` (all if None; see
    ``rl_shop.sim.benchmark.split_of``), the first ``limit`` per type, benchmark order."""
    wanted = list(QUERY_TYPES) if types is None else [str(t) for t in types]
    unknown = [t for t in wanted if t not in QUERY_TYPES]
    if unknown:
        raise EvalRunError(f"unknown query type(s) {unknown}; choose from {list(QUERY_TYPES)}")
    if split is not None:
        if split not in SPLIT_SHARES:
            raise EvalRunError(f"unknown split {split!r}; choose from {list(SPLIT_SHARES)} (or null for all)")
        items = [it for it in items if split_of(it.id) == split]
    if limit is not None and (isinstance(limit, bool) or int(limit) < 1):
        raise EvalRunError(f"limit must be a positive number of queries per type (or null for all), got {limit!r}")
    taken: dict[str, int] = {t: 0 for t in wanted}
    out: list[BenchmarkItem] = []
    for it in items:
        if it.query_type in taken and (limit is None or taken[it.query_type] < int(limit)):
            taken[it.query_type] += 1
            out.append(it)
    if not out:
        raise EvalRunError(f"no benchmark query matches types={wanted}, split={split}")
    return out


def load_records(path: Path) -> list[dict[str, Any]]:
    """Result lines of a results file; a torn last line (the run was killed mid-write) is dropped."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                log.warning("dropping a torn last line of %s (interrupted write); it is recomputed", path)
                continue
            raise EvalRunError(f"{path}:{i + 1} is not valid JSON; the results file is corrupt") from None
    return out


def _rewrite_without_torn_line(path: Path, records: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    if path.is_file() and path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _finite(x: object) -> float | None:
    try:
        v = float(cast("SupportsFloat | str", x))  # anything else: TypeError
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def shard_items(items: Sequence[BenchmarkItem], index: int, count: int) -> list[BenchmarkItem]:
    """Items ``index, index + count, ...`` of the slice: disjoint shards that cover it and mix query types."""
    try:
        return shard_slice(items, index, count)
    except ValueError as exc:
        raise EvalRunError(str(exc)) from None


class EvalRunner:
    """Runs systems over benchmark items, appending one JSON line per (item, system)."""

    def __init__(
        self,
        systems: Sequence[System],
        catalog: pd.DataFrame | CatalogArrays,
        sim_config: SimConfig,
        results_dir: str | Path,
        *,
        seed: int = 0,
        k: int = 5,
        keep_ids: int = 10,
        rubric: RubricConfig | None = None,
        judge: UDSJudge | None = None,
        titles: Mapping[str, str] | None = None,
        meta: Mapping[str, Any] | None = None,
        fail_fast: bool = False,
        retry_errors: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        names = [s.name for s in systems]
        if not systems:
            raise EvalRunError("no systems to evaluate")
        if len(set(names)) != len(names):
            raise EvalRunError(f"system names must be unique, got {names}")
        self.systems = list(systems)
        self.arr = CatalogArrays.of(catalog)
        self.sim_config = sim_config
        self.results_dir = Path(results_dir)
        self.results_file = self.results_dir / "per_query.jsonl"
        self.seed, self.k, self.keep_ids = int(seed), int(k), int(keep_ids)
        self.rubric = rubric or RubricConfig.model_validate({"k": k})
        self.judge = judge
        self.titles = titles
        self.meta = dict(meta or {})
        self.fail_fast = fail_fast
        self.retry_errors = retry_errors
        self.progress = progress or (lambda msg: log.info(msg))

    # ------------------------------------------------------------------ resume bookkeeping
    def _pinned(self) -> dict[str, Any]:
        pinned = {
            "seed": self.seed,
            "k": self.k,
            "rubric": self.rubric.model_dump(),
            "judge": None if self.judge is None else self.judge.config.model_dump(),
            **self.meta,
        }
        return json.loads(json.dumps(pinned, sort_keys=True, default=str))

    def _check_meta(self) -> None:
        meta_file = self.results_dir / "run_meta.json"
        pinned = self._pinned()
        if meta_file.is_file():
            old = json.loads(meta_file.read_text(encoding="utf-8"))
            diff = sorted(k for k in set(old) | set(pinned) if old.get(k) != pinned.get(k))
            if diff:
                raise EvalRunError(
                    f"{self.results_dir} holds results produced with a different configuration (keys {diff}); "
                    "resume with the same configuration or choose a new results_dir"
                )
        else:
            self.results_dir.mkdir(parents=True, exist_ok=True)
            meta_file.write_text(json.dumps(pinned, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    def merge_shards(self) -> int:
        """Append the records of ``shards/*/per_query.jsonl`` that this run's file lacks; returns
        how many. A shard whose ``run_meta.json`` differs from this run's configuration is refused."""
        pinned = self._pinned()
        records = load_records(self.results_file)
        done = {(r["system"], r["item_id"]) for r in records}
        added = []
        for sub in sorted((self.results_dir / "shards").glob("*/per_query.jsonl")):
            meta_file = sub.parent / "run_meta.json"
            meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else None
            if meta != pinned:
                diff = sorted(k for k in set(meta or {}) | set(pinned) if (meta or {}).get(k) != pinned.get(k))
                raise EvalRunError(
                    f"shard {sub.parent} was produced with a different configuration (keys {diff}); "
                    "merge it with the configuration it ran with, or remove it"
                )
            for rec in load_records(sub):
                if (rec["system"], rec["item_id"]) not in done:
                    done.add((rec["system"], rec["item_id"]))
                    added.append(rec)
        if added:
            text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records + added)
            self.results_file.write_text(text, encoding="utf-8")
            self.progress(f"merged {len(added)} results from {self.results_dir / 'shards'}")
        return len(added)

    def shopper_for(self, item: BenchmarkItem) -> Shopper:
        """The simulated shopper of ``item`` (fresh state, seeded from (seed, item id))."""
        return Shopper(item.intent, self.arr, self.sim_config, seed=shopper_seed(self.seed, item.id))

    # ------------------------------------------------------------------ scoring
    def score(
        self, item: BenchmarkItem, system: System, out: SystemOutput, shopper: Shopper, wall_s: float
    ) -> dict[str, Any]:
        """The result record of one system output."""
        k = self.k
        ranked = [str(p) for p in out.ranked_ids]
        known = [p for p in ranked if p in self.arr.id_to_index]
        unknown = [p for p in ranked if p not in self.arr.id_to_index]
        gold = item.gold_product_ids
        # metrics on the list as shown: an id the catalog lacks keeps its slot and counts as irrelevant
        rub = rubric_score(item, ranked, out.answer, self.arr, self.rubric, self.titles)
        judged = None
        judge_start = time.perf_counter()
        if self.judge is not None:
            try:
                judged = self.judge.score(item, known, out.answer)
            except Exception as exc:  # a judge failure must not lose the system's result
                log.warning("judge failed on %s/%s: %s", system.name, item.id, exc)
        judge_s = time.perf_counter() - judge_start
        rec = out.to_record()
        rec.pop("ranked_ids")
        return {
            "system": system.name,
            "item_id": item.id,
            "query_type": item.query_type,
            "query": item.query,
            "seed": self.seed,
            "ranked_ids": known[: self.keep_ids],
            "unknown_ids": unknown[:5],
            f"accuracy@{k}": accuracy_at_k(ranked, gold, k),
            f"ndcg@{k}": ndcg_at_k(ranked, gold, k),
            f"recall@{k}": recall_at_k(ranked, gold, k),
            f"max_accuracy@{k}": min(len(gold), k) / k,
            "uds_rubric": rub.level,
            "rubric": {
                "correctness": rub.correctness,
                "explicit": rub.explicit,
                "implicit": rub.implicit,
                "usefulness": rub.usefulness,
                "score": rub.score,
            },
            "uds_judge": None if judged is None else judged.overall,
            "judge": None if judged is None else judged.model_dump(),
            "shopper_quit": shopper.quit,
            "wall_s": wall_s,
            "judge_s": judge_s,
            **rec,
        }

    # ------------------------------------------------------------------ main loop
    def run(self, items: Sequence[BenchmarkItem]) -> list[dict[str, Any]]:
        """Evaluate every system on every item not yet in the results file; returns all records."""
        self._check_meta()
        self.merge_shards()
        records = load_records(self.results_file)
        if self.retry_errors:
            failed = [r for r in records if r.get("error") is not None]
            if failed:
                self.progress(f"retrying {len(failed)} (system, query) pairs that failed before")
                records = [r for r in records if r.get("error") is None]
        _rewrite_without_torn_line(self.results_file, records)
        done = {(r["system"], r["item_id"]) for r in records}
        todo = sum(1 for it in items for s in self.systems if (s.name, it.id) not in done)
        if done:
            self.progress(f"resuming: {len(done)} results on disk, {todo} to go")
        step = 0
        with self.results_file.open("a", encoding="utf-8") as fh:
            for item in items:
                for system in self.systems:
                    if (system.name, item.id) in done:
                        continue
                    step += 1
                    shopper = self.shopper_for(item)
                    start = time.perf_counter()
                    try:
                        out = system.run(item, shopper)
                    except Exception as exc:
                        if self.fail_fast:
                            raise
                        log.exception("system %s failed on %s", system.name, item.id)
                        failed_after = time.perf_counter() - start
                        out = SystemOutput(
                            [], error=f"{type(exc).__name__}: {exc}", ttft_s=failed_after, total_s=failed_after
                        )
                    wall = time.perf_counter() - start
                    rec = self.score(item, system, out, shopper, wall)
                    fh.write(json.dumps(rec, sort_keys=True, default=str) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                    records.append(rec)
                    done.add((system.name, item.id))
                    self.progress(
                        f"[{step}/{todo}] {system.name:<16} {item.id} {item.query_type:<16} "
                        f"acc@{self.k}={rec[f'accuracy@{self.k}']:.2f} uds_rubric={rec['uds_rubric']} "
                        f"judge={rec['uds_judge']} rounds={rec['rounds']} total={out.total_s:.1f}s"
                        + (f" ERROR {out.error}" if out.error else "")
                    )
        return records


# --------------------------------------------------------------------------- aggregation
def aggregate(records: Sequence[Mapping[str, Any]], systems: Sequence[str] | None = None, k: int = 5) -> pd.DataFrame:
    """Per (system, query_type) means, plus an ``overall`` row per system.

    Columns: Accuracy@k and its ceiling, UDS by the judge (mean over judged queries) and by the
    rubric, clarification rounds, TTFT and total seconds, n, how many queries the judge could not
    score, and how many raised an error. Records are sorted first, so the table does not depend
    on the order they were produced in (an interrupted and resumed run aggregates identically).
    """
    if not records:
        raise EvalRunError("no results to aggregate")
    df = pd.DataFrame(
        [
            {
                "system": r["system"],
                "item_id": r["item_id"],
                "query_type": r["query_type"],
                "accuracy@5": float(r[f"accuracy@{k}"]),
                "max_accuracy@5": float(r[f"max_accuracy@{k}"]),
                "uds_judge": _finite(r.get("uds_judge")),
                "uds_rubric": float(r["uds_rubric"]),
                "rounds": float(r.get("rounds", 0)),
                "ttft_s": float(r.get("ttft_s", 0.0)),
                "total_s": float(r.get("total_s", 0.0)),
                "error": r.get("error") is not None,
            }
            for r in records
        ]
    ).sort_values(["system", "item_id"], kind="stable")
    df = df.rename(columns={"accuracy@5": f"accuracy@{k}", "max_accuracy@5": f"max_accuracy@{k}"})
    order = list(systems) if systems is not None else sorted(df["system"].unique())
    metrics = [f"accuracy@{k}", f"max_accuracy@{k}", "uds_judge", "uds_rubric", "rounds", "ttft_s", "total_s"]
    rows = []
    for name in order:
        part = df[df["system"] == name]
        if part.empty:
            continue
        groups = [(t, part[part["query_type"] == t]) for t in QUERY_TYPES if (part["query_type"] == t).any()]
        for label, g in [*groups, ("overall", part)]:
            row: dict[str, Any] = {"system": name, "query_type": label}
            for m in metrics:
                vals = g[m].dropna().to_numpy(dtype=float)
                row[m] = float(np.mean(vals)) if vals.size else math.nan
            row["n"] = len(g)
            row["judge_missing"] = int(g["uds_judge"].isna().sum())
            row["errors"] = int(g["error"].sum())
            rows.append(row)
    return pd.DataFrame(rows).set_index(["system", "query_type"])


__all__ = [
    "EvalRunError",
    "EvalRunner",
    "TABLE_COLUMNS",
    "aggregate",
    "load_records",
    "select_items",
    "shard_dir",
    "shard_items",
    "shopper_seed",
]
