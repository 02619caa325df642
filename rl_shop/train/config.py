"""Validation of the composed training config, before anything expensive starts.

Hydra only checks that the YAML composes; this module checks that the values make sense (known
algorithm, positive step counts, a vec-env kind we can build) so that a typo fails in a second
with a message naming the key, not after minutes of training with a traceback from SB3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from omegaconf import DictConfig, OmegaConf
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rl_shop.paths import CONFIG_DIR
from rl_shop.train.errors import TrainConfigError

ALGORITHMS = ("dqn", "ppo", "a2c", "maskable_ppo", "qlearning")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvSettings(BaseModel):  # type: ignore[no-redef]  # pydantic mypy plugin bug (pydantic#3125): with extra="allow" its synthesized __init__(**kwargs) clashes with the field `kwargs`
    """The `env` group; extra top-level keys (e.g. a `heuristic:` block) are kept for baselines."""

    model_config = ConfigDict(extra="allow")
    name: str
    id: str
    kwargs: dict[str, Any]


class AlgoSettings(_Strict):
    name: str
    algorithm: Literal["dqn", "ppo", "a2c", "maskable_ppo", "qlearning"]
    policy: str | None  # an SB3 policy class name; null for the tabular Q-learner
    policy_kwargs: dict[str, Any]
    kwargs: dict[str, Any]


class HardwareSettings(_Strict):
    device: Literal["auto", "cpu", "cuda"]
    n_envs: int = Field(ge=1)
    vec_env: Literal["dummy", "subproc", "batched"]
    start_method: Literal["fork", "forkserver", "spawn"] | None
    torch_threads: int = Field(ge=1)


class TrainerSettings(_Strict):
    """The `trainer` group: which library learns (`sb3`, or `torchrl` for device-resident PPO)."""

    name: Literal["sb3", "torchrl"]


class EvalSettings(_Strict):
    freq: int = Field(gt=0)
    n_episodes: int = Field(gt=0)
    deterministic: bool
    seed_offset: int = Field(ge=0)


class BaselineSettings(_Strict):
    enabled: bool
    n_episodes: int = Field(gt=0)
    policy: str
    random_reference: bool


class CheckpointSettings(_Strict):
    freq: int = Field(gt=0)
    keep_last: int = Field(ge=1)
    save_replay_buffer: bool


class LoggingSettings(_Strict):
    tensorboard: bool
    progress_bar: bool
    verbose: int = Field(ge=0, le=2)
    info_window: int = Field(gt=0)
    info_keys: list[str]


class TrainSettings(_Strict):
    """The validated view of configs/train.yaml after composition (hydra section excluded)."""

    env: EnvSettings
    algo: AlgoSettings
    hardware: HardwareSettings
    trainer: TrainerSettings
    seed: int = Field(ge=0)
    total_timesteps: int = Field(gt=0)
    experiment_name: str = Field(min_length=1)
    runs_root: str | None
    run_dir: str | None
    resume: bool
    eval: EvalSettings
    baseline: BaselineSettings
    checkpoint: CheckpointSettings
    logging: LoggingSettings


def validate_config(cfg: DictConfig | dict[str, Any]) -> TrainSettings:
    """Resolve interpolations and validate; raise TrainConfigError naming each bad key."""
    if isinstance(cfg, DictConfig):
        try:
            data = OmegaConf.to_container(cfg, resolve=True)
        except Exception as exc:  # omegaconf interpolation / missing-value errors
            raise TrainConfigError(f"config could not be resolved: {exc}") from exc
    else:
        data = dict(cfg)
    assert isinstance(data, dict)
    data.pop("hydra", None)
    try:
        return TrainSettings.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
        raise TrainConfigError(
            "invalid training config:\n"
            + "\n".join(lines)
            + f"\nFix the override or the YAML under {CONFIG_DIR}; algorithms known: {', '.join(ALGORITHMS)}."
        ) from None


def compose_train_config(
    overrides: list[str] | None = None,
    config_dir: Path | str = CONFIG_DIR,
    config_name: str = "train",
) -> DictConfig:
    """Compose configs/train.yaml with overrides outside a Hydra app (tests, tune workers).

    Works whether or not a Hydra app is already running: inside one, the global Hydra instance
    is reused; outside, a temporary one is initialised from ``config_dir``.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = list(overrides or [])
    try:
        if GlobalHydra.instance().is_initialized():
            return compose(config_name=config_name, overrides=overrides)
        with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
            return compose(config_name=config_name, overrides=overrides)
    except TrainConfigError:
        raise
    except Exception as exc:
        raise TrainConfigError(explain_hydra_error(exc, overrides)) from None


def explain_hydra_error(exc: BaseException, overrides: list[str]) -> str:
    """Turn a Hydra composition error into a message that says what to do."""
    msg = str(exc).strip()
    groups = sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir()) if CONFIG_DIR.is_dir() else []
    hint = ""
    lowered = msg.lower()
    if "could not find" in lowered or "in list of options" in lowered or "not found" in lowered:
        hint = (
            "\nAn option of a config group does not exist. List options with "
            "`ls configs/<group>/` (groups: " + ", ".join(groups) + "); "
            "for any Gymnasium id use `env=gym env.id=<Id>`."
        )
    elif "key" in lowered and ("not in struct" in lowered or "could not override" in lowered):
        hint = "\nThat key is not in the config; add it with `+key=value` only if you mean to."
    elif "parse" in lowered or "mismatched input" in lowered or "viable alternative" in lowered or "token" in lowered:
        hint = (
            "\nOverrides are `key=value`, `group=option`, `+new_key=value`; quote values with spaces, "
            "and quote list elements that contain '=': 'key=[\"a=1\",\"b=2\"]'."
        )
    return f"config error for overrides {overrides}: {msg}{hint}"


def preflight(
    argv: list[str], config_dir: Path | str = CONFIG_DIR, config_name: str = "train", validate: bool = True
) -> None:
    """Compose + validate the command-line overrides before Hydra starts the job(s).

    Hydra reports composition errors itself, tersely; doing the same composition first lets the
    entry point say what to do.  For a multirun, each sweep (``seed=0,1,2``) is checked with its
    first value.  Flags other than -m/--multirun are left to Hydra.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if any(a.startswith("-") and a not in ("-m", "--multirun") for a in argv):
        return
    raw = [a for a in argv if a not in ("-m", "--multirun")]
    try:
        parsed = OverridesParser.create().parse_overrides(raw)
    except Exception as exc:
        raise TrainConfigError(explain_hydra_error(exc, raw)) from None
    single: list[str] = []
    for o in parsed:
        key = o.get_key_element()
        if key.startswith(("hydra", "~hydra", "+hydra")):
            continue
        if o.is_sweep_override():
            first = next(iter(o.sweep_string_iterator()))
            single.append(f"{key}={first}")
        else:
            single.append(o.input_line if o.input_line is not None else f"{key}={o.get_value_element_as_str()}")
    cfg = compose_train_config(single, config_dir=config_dir, config_name=config_name)
    if validate:
        validate_config(cfg)
