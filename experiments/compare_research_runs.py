"""Two synthesis runs on the same shoppers, paired: intent-shift outcomes and RACE by round.

    python experiments/compare_research_runs.py results/research/<run A> results/research/<run B>

Each run directory holds what ``synthesize.py`` wrote (``trajectories.jsonl``, or only its shards'
files under ``shards/*/``) and, for the RACE part, ``race/by_round.csv`` from
``race.py n_queries=0 trajectories=<run>/trajectories.jsonl out_dir=<run>/race``. Trajectories are
paired by id (the same seed is the same simulated shopper). Prints, for B against A: the share of
shifted trajectories that end on the final intent (Wilson 95% intervals) with the discordant pairs,
and the paired RACE difference per round (Student-t 95% interval). Exit 2 on a missing or
unpaired run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from scipy.stats import binomtest

from rl_shop.catalog import load_catalog
from rl_shop.research.evaluate import paired_interval, shift_outcomes
from rl_shop.research.trajectory import Trajectory


def load_trajectories(run: Path) -> list[Trajectory]:
    """The run's merged trajectories, else its shards' (a sharded run not merged yet)."""
    files = [run / "trajectories.jsonl"] if (run / "trajectories.jsonl").exists() else []
    files = files or sorted(run.glob("shards/*/trajectories.jsonl"))
    if not files:
        raise FileNotFoundError(f"{run}: no trajectories.jsonl (nor shards/*/trajectories.jsonl); run synthesize.py")
    return [Trajectory.model_validate_json(line) for f in files for line in f.read_text().splitlines() if line]


def wilson(k: int, n: int) -> str:
    ci = binomtest(k, n).proportion_ci(method="wilson")
    return f"{k}/{n} = {k / n:.3f} [{ci.low:.3f}, {ci.high:.3f}]"


def compare_shifts(a: pd.DataFrame, b: pd.DataFrame) -> None:
    both = a.merge(b, on="trajectory", suffixes=("_a", "_b"))
    if both.empty:
        raise ValueError("no shifted trajectory is in both runs: are they runs of the same seeds?")
    fa, fb = both["ends_on_final_intent_a"], both["ends_on_final_intent_b"]
    print(f"shifted trajectories in both runs: {len(both)} (kinds {both['kind_a'].value_counts().to_dict()})")
    print(f"ends on the final intent  A {wilson(int(fa.sum()), len(both))}")
    print(f"                          B {wilson(int(fb.sum()), len(both))}")
    b_only, a_only = int((fb & ~fa).sum()), int((fa & ~fb).sum())
    print(f"discordant pairs: B only {b_only}, A only {a_only}")
    d = paired_interval(fb.astype(float) - fa.astype(float))
    # exact McNemar: the discordant pairs split as Binomial(b_only + a_only, 1/2) when A and B are equal
    p = binomtest(b_only, b_only + a_only).pvalue if b_only + a_only else 1.0
    print(
        f"B - A per shopper: {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] (Student-t 95%), exact McNemar p = {p:.3f}"
    )


def compare_race(run_a: Path, run_b: Path) -> None:
    paths = [run / "race" / "by_round.csv" for run in (run_a, run_b)]
    if not all(p.exists() for p in paths):
        print("(no race/by_round.csv in both runs: RACE by round skipped)")
        return
    a, b = (pd.read_csv(p) for p in paths)
    both = a.merge(b, on=["trajectory", "round"], suffixes=("_a", "_b"))
    print("\nRACE by round (criteria judge), B - A paired over trajectories:")
    print("| round | A | B | B - A | 95% interval | n |\n|---|---|---|---|---|---|")
    for rnd, g in both.groupby("round"):
        d = paired_interval(g["race_b"] - g["race_a"])
        print(
            f"| {rnd} | {g['race_a'].mean():.3f} | {g['race_b'].mean():.3f} | {d['mean']:+.4f} | "
            f"[{d['low']:+.4f}, {d['high']:+.4f}] | {d['n']} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_a", type=Path, help="the reference run")
    parser.add_argument("run_b", type=Path, help="the run compared with it")
    args = parser.parse_args(argv)
    try:
        catalog = load_catalog()
        a, b = (shift_outcomes(load_trajectories(r), catalog) for r in (args.run_a, args.run_b))
        if not a.empty and not b.empty:
            compare_shifts(a, b)
        compare_race(args.run_a, args.run_b)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
