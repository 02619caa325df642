"""A synthesis run that survives interruption and spreads over processes.

Trajectories are appended to ``trajectories.jsonl`` one line at a time (flushed), so a killed run
loses at most the trajectory in flight: a rerun on the same directory reads what is there (a torn
last line is dropped with a warning), re-applies the filter and attempts only the seeds not yet
tried. ``run_meta.json`` pins the configuration; resuming or merging with another one is refused
instead of mixing trajectories from two settings.

Sharding (:mod:`rl_shop.sharding`): shard ``i`` of ``n`` attempts seeds ``seed + i, seed + i + n, ...``
until it keeps its share of ``n_target`` (the shares add up to ``n_target``), writing under
``<out_dir>/shards/<i>-of-<n>/``; a plain run over the same ``out_dir`` merges the shards (no
model calls) and writes the dataset.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rl_shop.research.filtering import FilterConfig, FilterDecision, filter_trajectory
from rl_shop.research.trajectory import Trajectory
from rl_shop.sharding import check_shard

log = logging.getLogger(__name__)

TRAJECTORIES = "trajectories.jsonl"
RUN_META = "run_meta.json"


class SynthesisRunError(ValueError):
    """The run cannot resume or merge as asked (another configuration, unreadable records)."""


def attempt_seeds(seed: int, max_attempts: int, index: int = 0, count: int = 1) -> list[int]:
    """The shopper seeds shard ``index`` of ``count`` may try: every ``count``-th of ``seed .. seed + max_attempts - 1``."""
    i, n = check_shard(index, count)
    return [int(seed) + a for a in range(i, int(max_attempts), n)]


def shard_target(n_target: int, index: int = 0, count: int = 1) -> int:
    """Kept trajectories shard ``index`` aims for; the shares of all shards sum to ``n_target``."""
    i, n = check_shard(index, count)
    return int(n_target) // n + (1 if i < int(n_target) % n else 0)


def read_trajectories(path: Path) -> list[Trajectory]:
    """The trajectories of a JSONL file. A torn last line (a process killed mid-write) is dropped
    and the file rewritten without it; a bad line elsewhere is an error naming the line."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Trajectory] = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(Trajectory.model_validate_json(line))
        except ValidationError as exc:
            if no == len(lines):
                log.warning("%s: dropping a torn last line (%d chars); its shopper is attempted again", path, len(line))
                path.write_text("".join(x + "\n" for x in lines[:-1]), encoding="utf-8")
                break
            raise SynthesisRunError(
                f"{path}:{no} is not a trajectory ({exc.errors()[0]['msg']}); remove the line or the file to start over"
            ) from None
    return out


def pin(work_dir: Path, meta: Mapping[str, Any]) -> None:
    """Write ``meta`` as the directory's configuration, or refuse if it holds records of another one."""
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / RUN_META
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old != dict(meta):
            diff = sorted(k for k in set(old) | set(meta) if old.get(k) != meta.get(k))
            raise SynthesisRunError(
                f"{work_dir} holds trajectories made with another configuration (keys {diff}); "
                "use that configuration to resume, or another out_dir"
            )
    else:
        path.write_text(json.dumps(dict(meta), indent=2, sort_keys=True, default=str), encoding="utf-8")


@dataclass
class Attempt:
    """One trajectory and the filter's decision on it."""

    trajectory: Trajectory
    decision: FilterDecision
    resumed: bool = False


def decide(traj: Trajectory, cfg: FilterConfig) -> Attempt:
    """Filter ``traj`` and record the decision in its meta (so the JSONL line carries it)."""
    decision = filter_trajectory(traj, cfg)
    traj.meta["filter"] = {"keep": decision.keep, "reasons": decision.reasons, "details": decision.details}
    return Attempt(traj, decision)


def run_attempts(
    work_dir: Path, seeds: list[int], target: int, make: Callable[[int], Trajectory], filter_cfg: FilterConfig
) -> Iterator[Attempt]:
    """Attempt ``seeds`` in order until ``target`` trajectories are kept, appending each to
    ``work_dir/trajectories.jsonl``; the trajectories already there count first (resume)."""
    path = work_dir / TRAJECTORIES
    done = read_trajectories(path)
    kept = 0
    for traj in done:
        attempt = decide(traj, filter_cfg)
        attempt.resumed = True
        kept += attempt.decision.keep
        yield attempt
    tried = {t.seed for t in done}
    with path.open("a", encoding="utf-8") as fh:
        for seed in seeds:
            if kept >= target:
                return
            if seed in tried:
                continue
            attempt = decide(make(seed), filter_cfg)
            fh.write(attempt.trajectory.model_dump_json() + "\n")
            fh.flush()
            kept += attempt.decision.keep
            yield attempt


def merge_shards(out_dir: Path, meta: Mapping[str, Any]) -> list[Trajectory]:
    """The trajectories of every ``out_dir/shards/*`` (seed order, one per seed), each shard checked
    against ``meta``."""
    shards = sorted(p for p in (out_dir / "shards").glob("*") if (p / TRAJECTORIES).is_file())
    if not shards:
        raise SynthesisRunError(
            f"{out_dir / 'shards'} has no shard with {TRAJECTORIES}; run the shards first "
            "(shard.count=N shard.index=0..N-1)"
        )
    by_seed: dict[int, Trajectory] = {}
    for sub in shards:
        meta_file = sub / RUN_META
        theirs = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else None
        if theirs != dict(meta):
            diff = sorted(k for k in set(theirs or {}) | set(meta) if (theirs or {}).get(k) != meta.get(k))
            raise SynthesisRunError(
                f"shard {sub} was produced with a different configuration (keys {diff}); "
                "merge it with the configuration it ran with, or remove it"
            )
        for traj in read_trajectories(sub / TRAJECTORIES):
            by_seed.setdefault(traj.seed, traj)
    return [by_seed[s] for s in sorted(by_seed)]


__all__ = [
    "Attempt",
    "SynthesisRunError",
    "TRAJECTORIES",
    "attempt_seeds",
    "decide",
    "merge_shards",
    "pin",
    "read_trajectories",
    "run_attempts",
    "shard_target",
]
