"""Shards of a long run: disjoint slices that separate processes run, and the directory each writes.

Shard ``index`` of ``count`` takes items ``index, index + count, ...`` (so every shard gets a mix of
whatever the list interleaves, e.g. query types) and writes under ``<root>/shards/<index>-of-<count>/``;
a plain run over the same root merges them. Used by the evaluation runner and the ProductResearch
synthesis, which each add their own merge rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def check_shard(index: object, count: object) -> tuple[int, int]:
    """``(index, count)`` as ints, or ValueError saying what is wrong."""
    ok = not isinstance(count, bool) and not isinstance(index, bool)
    try:
        i, n = int(index), int(count)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        ok = False
    if not ok or n < 1 or not 0 <= i < n:
        raise ValueError(
            f"shard.index must be in 0..shard.count-1 and shard.count >= 1, got index={index!r} count={count!r}"
        )
    return i, n


def shard_slice(items: Sequence[T], index: int, count: int) -> list[T]:
    """Items ``index, index + count, ...``: ``count`` such slices are disjoint and cover ``items``."""
    i, n = check_shard(index, count)
    return list(items)[i::n]


def shard_dir(root: str | Path, index: int, count: int) -> Path:
    """Where shard ``index`` of ``count`` writes its records."""
    i, n = check_shard(index, count)
    return Path(root) / "shards" / f"{i}-of-{n}"
