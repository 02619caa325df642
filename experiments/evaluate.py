"""End-to-end evaluation of the four systems of MACDF section 4 (Hydra app; config configs/evaluate.yaml).

    python experiments/evaluate.py limit=1 types=[simple]
    python experiments/evaluate.py --limit 1 --types simple,negation      # the same, argparse-style
    python experiments/evaluate.py systems=[retrieval,rag] limit=null     # baselines on the whole benchmark

Results go to ``results_dir`` (per_query.jsonl, tables, plots, tensorboard/, report.md); running
again with the same ``results_dir`` resumes where the previous run stopped.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from rl_shop.paths import CONFIG_DIR  # noqa: E402


def translate_flags(argv: list[str]) -> list[str]:
    """``--limit N`` / ``--types a,b`` / ``--results-dir D`` -> Hydra overrides (``limit=N`` ...)."""
    out: list[str] = []
    it = iter(argv)
    for arg in it:
        name, eq, value = arg.partition("=")
        if name in ("--limit", "--types", "--results-dir", "--seed"):
            if not eq:
                try:
                    value = next(it)
                except StopIteration:
                    raise SystemExit(f"error: {name} needs a value") from None
            key = name[2:].replace("-", "_")
            if key == "types" and not value.startswith("["):
                value = "[" + value + "]"
            out.append(f"{key}={value}")
        else:
            out.append(arg)
    return out


@hydra.main(config_path=str(CONFIG_DIR), config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from pydantic import ValidationError

    from rl_shop.catalog import CatalogError
    from rl_shop.evaluation.pipeline import evaluate
    from rl_shop.evaluation.runner import EvalRunError
    from rl_shop.llm import LLMError
    from rl_shop.sim.errors import SimError

    plain = OmegaConf.to_container(cfg, resolve=True)
    out_dir = Path(plain["results_dir"]).resolve()
    try:
        report = evaluate(plain, out_dir, OmegaConf.to_yaml(cfg, resolve=True))
    except (EvalRunError, LLMError, SimError, CatalogError, ValidationError) as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"\nreport: {report}")


if __name__ == "__main__":
    sys.argv = [sys.argv[0], *translate_flags(sys.argv[1:])]
    main()
