"""Build the ECCD-style benchmark JSONL + card from the shipped catalog (Hydra app).

python experiments/make_benchmark.py                       # configs/benchmark_build/default.yaml (eccd_v1)
python experiments/make_benchmark.py --config-name eccd_v2 # data/benchmark/eccd_v2.jsonl
python experiments/make_benchmark.py seed=7 size=80 output=/tmp/b.jsonl
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from rl_shop.paths import CONFIG_DIR, REPO_ROOT
from rl_shop.sim.benchmark import build_benchmark, catalog_hash, write_benchmark
from rl_shop.sim.config import load_sim_config
from rl_shop.sim.errors import SimError


def _load_catalog(path: str | None):
    from rl_shop.catalog import load_catalog  # the catalog layer is below sim; imported lazily

    return load_catalog(path) if path else load_catalog()


def run(cfg: DictConfig) -> tuple[Path, Path]:
    """Build and write the benchmark described by ``cfg``; returns (jsonl, card) paths."""
    sim_cfg = load_sim_config(CONFIG_DIR / "sim" / str(cfg.sim_config))
    catalog = _load_catalog(cfg.catalog_path)
    items = build_benchmark(catalog, sim_cfg, int(cfg.size), int(cfg.seed), str(cfg.composition), str(cfg.id_prefix))
    out = Path(str(cfg.output))
    out = out if out.is_absolute() else REPO_ROOT / out
    card = {
        "version": str(cfg.version),
        "seed": int(cfg.seed),
        "composition": str(cfg.composition),
        "catalog_hash": catalog_hash(catalog),
        "catalog_products": len(catalog),
        "sim_config": str(cfg.sim_config),
        "answer_face": sim_cfg.render.answer_face,  # how the simulated shopper replies when evaluated
        "generator": "experiments/make_benchmark.py (rl_shop.sim.benchmark.build_benchmark)",
    }
    return write_benchmark(items, out, card)


@hydra.main(version_base="1.3", config_path="../configs/benchmark_build", config_name="default")
def main(cfg: DictConfig) -> None:
    try:
        jsonl, card = run(cfg)
    except SimError as exc:
        print(f"make_benchmark: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"wrote {jsonl} and {card}")


if __name__ == "__main__":
    main()
