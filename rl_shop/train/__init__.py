"""Training glue: config validation, env / algorithm factories, callbacks, checkpoints, tuning.

Entry points: ``experiments/train.py`` (one run or a Hydra multirun), ``experiments/tune.py``
(Optuna), ``experiments/aggregate.py`` (multi-seed tables and plots).  The library functions:

* :func:`rl_shop.train.runner.train` - one run from a composed config -> TrainSummary
* :func:`rl_shop.train.config.compose_train_config` - compose configs/train.yaml with overrides
* :mod:`rl_shop.train.tuning` - Optuna study creation, objective and worker loop
"""

from rl_shop.train.config import TrainSettings, compose_train_config, validate_config
from rl_shop.train.errors import TrainConfigError

__all__ = ["TrainConfigError", "TrainSettings", "compose_train_config", "validate_config"]
