"""Train one policy (or a multirun sweep) from the Hydra config configs/train.yaml.

    python experiments/train.py env=clarify algo=dqn seed=3
    python experiments/train.py experiment=guider_dqn
    python experiments/train.py experiment=guider_dqn resume=true run_dir=latest
    python experiments/train.py -m experiment=guider_dqn seed=0,1,2,3,4 hydra/launcher=joblib
    python experiments/train.py env=gym env.id=CartPole-v1 algo=ppo   # any Gymnasium id

Config mistakes print one clear message and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from rl_shop.paths import CONFIG_DIR  # noqa: E402
from rl_shop.train.config import explain_hydra_error, preflight  # noqa: E402
from rl_shop.train.errors import TrainConfigError  # noqa: E402

log = logging.getLogger("train")


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Hydra entry: train, print the summary line, return the final eval return (for sweepers)."""
    from rl_shop.train.errors import TrainingInterrupted
    from rl_shop.train.runner import train

    try:
        summary = train(cfg)
    except TrainConfigError as exc:  # detected at run time (e.g. an env id nobody registered)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except TrainingInterrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        sys.exit(143)
    print(summary.line(), flush=True)
    return summary.final_eval_return


def cli() -> None:
    """Run the Hydra app; turn config errors (ours and Hydra's) into one readable message."""
    try:
        preflight(sys.argv[1:])
        main()
    except TrainConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # Hydra wraps composition errors; re-explain them with guidance
        name = type(exc).__module__
        if name.startswith(("hydra", "omegaconf")):
            print(f"error: {explain_hydra_error(exc, sys.argv[1:])}", file=sys.stderr)
            sys.exit(2)
        raise


if __name__ == "__main__":
    cli()
