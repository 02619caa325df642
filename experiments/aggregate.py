"""Aggregate multi-seed training runs: summary.json files -> CSV tables + a plot.

    python experiments/aggregate.py                         # all runs under checkpoints/runs
    python experiments/aggregate.py checkpoints/runs/guider_dqn --out results/guider

Writes <out>/runs.csv (one row per run), <out>/aggregate.csv (mean and 95% t-interval per env,
algorithm and recipe, with the heuristic and random references) and <out>/curves.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rl_shop.paths import CHECKPOINT_DIR, REPO_ROOT
from rl_shop.train.aggregate import aggregate, find_summaries, load_runs, plot


def main(argv: list[str] | None = None) -> int:
    """Parse paths, aggregate, write the outputs; exit 2 with a message when nothing is found."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "roots",
        nargs="*",
        type=Path,
        default=[CHECKPOINT_DIR / "runs"],
        help="run roots or run dirs to scan for summary.json",
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "train", help="output directory")
    parser.add_argument("--confidence", type=float, default=0.95)
    args = parser.parse_args(argv)
    paths = find_summaries(args.roots)
    if not paths:
        print(
            f"error: no summary.json under {[str(r) for r in args.roots]}; train first "
            "(python experiments/train.py ...) or pass the run root",
            file=sys.stderr,
        )
        return 2
    runs, curves = load_runs(paths)
    table = aggregate(runs, args.confidence)
    args.out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.out / "runs.csv", index=False)
    table.to_csv(args.out / "aggregate.csv", index=False)
    plot(runs, curves, args.out / "curves.png", args.confidence)
    with_pd = table[
        ["env_name", "experiment", "n_seeds", "final_mean", "final_ci", "heuristic_return", "random_return"]
    ]
    print(with_pd.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"wrote {args.out / 'runs.csv'}, {args.out / 'aggregate.csv'}, {args.out / 'curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
