"""The policy card: everything a runtime needs to decide whether an exported network may run here.

An exported policy is two files: ``policy.onnx`` (the weights and graph) and ``policy_card.json``
(this model). The card records what the network was trained on (env id, featurizer layout,
observation / action spaces with action names), how it was trained and scored, and the sha256 of
the ONNX file, so that :mod:`rl_shop.policies.loader` can refuse a policy whose observation layout
or weights do not match what is running. This module has no dependency on stable-baselines3 or
torch: the runtime reads cards with pydantic alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CARD_SCHEMA_VERSION: Final = 1
CARD_FILENAME = "policy_card.json"
ONNX_FILENAME = "policy.onnx"

OutputKind = Literal["q_values", "logits"]
AlgoName = Literal["DQN", "PPO", "A2C", "MaskablePPO"]

#: Which network output each algorithm's export carries (DQN: Q-values; actor-critics: logits).
OUTPUT_KIND_BY_ALGO: dict[str, OutputKind] = {
    "DQN": "q_values",
    "PPO": "logits",
    "A2C": "logits",
    "MaskablePPO": "logits",
}


class PolicyCardError(ValueError):
    """The card file is missing, is not JSON, or does not follow the card schema."""


class _CardModel(BaseModel):
    # Infinite Box bounds are legal in gymnasium; JSON has no infinity, so write them as strings.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings", frozen=True)


class FeaturizerInfo(_CardModel):
    """The observation layout the network was trained on (one featurizer module per env)."""

    module: str = Field(description="Import path of the featurizer module, or a test label.")
    layout_version: int | str
    feature_names: list[str]

    @property
    def n_features(self) -> int:
        """Number of features in one observation vector."""
        return len(self.feature_names)


class BoxSpaceInfo(_CardModel):
    """A flat ``gymnasium.spaces.Box`` observation space, bounds flattened row-major."""

    kind: Literal["Box"] = "Box"
    shape: list[int]
    dtype: str
    low: list[float]
    high: list[float]

    @model_validator(mode="after")
    def _bounds_match_shape(self) -> BoxSpaceInfo:
        size = 1
        for dim in self.shape:
            size *= dim
        if len(self.low) != size or len(self.high) != size:
            raise ValueError(
                f"observation bounds have {len(self.low)}/{len(self.high)} values, shape {self.shape} needs {size}"
            )
        return self


class DiscreteActionInfo(_CardModel):
    """A ``gymnasium.spaces.Discrete(n)`` action space with a name per action."""

    kind: Literal["Discrete"] = "Discrete"
    n: int = Field(gt=0)
    names: list[str]

    @model_validator(mode="after")
    def _one_name_per_action(self) -> DiscreteActionInfo:
        if len(self.names) != self.n:
            raise ValueError(f"action space has n={self.n} actions but {len(self.names)} action names")
        return self


class ObsNormalization(_CardModel):
    """VecNormalize observation statistics; baked into the ONNX graph, recorded here for audit.

    The graph computes ``clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs)`` itself, so
    the runtime feeds raw featurizer output and must NOT normalise again.
    """

    mean: list[float]
    var: list[float]
    epsilon: float
    clip_obs: float
    applied_in: Literal["graph"] = "graph"


class OnnxInfo(_CardModel):
    """Where the weights are and what the graph computes."""

    file: str = ONNX_FILENAME
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    opset: int
    input_name: str
    output_name: str
    output_kind: OutputKind
    exporter: str


class TrainingInfo(_CardModel):
    """Provenance: which run and checkpoint the weights came from and with which config."""

    algo: AlgoName
    run_dir: str | None = None
    checkpoint: str | None = None
    num_timesteps: int | None = None
    seed: int | None = None
    config: dict[str, Any] = Field(default_factory=dict)


class EvaluationInfo(_CardModel):
    """Scores of the exported policy, with where they came from (summary.json or export-time)."""

    source: str
    metrics: dict[str, Any] = Field(default_factory=dict)


class VerificationInfo(_CardModel):
    """The export-time check that ONNX and the original SB3 network agree."""

    n_samples: int
    action_agreement: float
    max_abs_diff: float
    with_masks: bool


class PolicyCard(_CardModel):
    """The JSON record written beside every exported ONNX policy."""

    schema_version: Literal[1] = CARD_SCHEMA_VERSION
    env_id: str
    env_version: int | None = None
    featurizer: FeaturizerInfo
    observation_space: BoxSpaceInfo
    action_space: DiscreteActionInfo
    normalization: ObsNormalization | None = None
    onnx: OnnxInfo
    training: TrainingInfo
    evaluation: EvaluationInfo | None = None
    verification: VerificationInfo | None = None
    exported_at: datetime
    software: dict[str, str] = Field(default_factory=dict)
    export_command: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PolicyCard:
        flat = 1
        for dim in self.observation_space.shape:
            flat *= dim
        if flat != self.featurizer.n_features:
            raise ValueError(
                f"observation shape {self.observation_space.shape} holds {flat} values but the featurizer "
                f"lists {self.featurizer.n_features} feature names"
            )
        if OUTPUT_KIND_BY_ALGO[self.training.algo] != self.onnx.output_kind:
            raise ValueError(
                f"algo {self.training.algo} exports {OUTPUT_KIND_BY_ALGO[self.training.algo]}, card says {self.onnx.output_kind}"
            )
        if self.normalization is not None and not (len(self.normalization.mean) == len(self.normalization.var) == flat):
            raise ValueError("normalization mean/var length does not match the observation size")
        return self


def env_version_of(env_id: str) -> int | None:
    """The ``N`` of a gymnasium id ending in ``-vN`` (``acme/Grid-v3`` -> 3), else None."""
    match = re.search(r"-v(\d+)$", env_id)
    return int(match.group(1)) if match else None


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks so large files do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_card(card: PolicyCard, path: str | Path) -> Path:
    """Write the card as indented JSON (diff-friendly in git) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(card.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def load_card(path: str | Path) -> PolicyCard:
    """Read and validate a card; every failure becomes a :class:`PolicyCardError` saying what to do."""
    path = Path(path)
    if not path.is_file():
        raise PolicyCardError(
            f"policy card not found: {path}. An exported policy directory must hold {CARD_FILENAME} "
            f"beside {ONNX_FILENAME}; re-export with `python experiments/export.py run_dir=<run> out=<dir>`."
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PolicyCardError(f"policy card {path} is not valid JSON ({exc}); re-export the policy.") from exc
    if not isinstance(raw, dict):
        raise PolicyCardError(f"policy card {path} must be a JSON object, got {type(raw).__name__}.")
    if raw.get("schema_version") not in (None, CARD_SCHEMA_VERSION):
        raise PolicyCardError(
            f"policy card {path} has schema_version={raw.get('schema_version')!r}; this runtime reads "
            f"version {CARD_SCHEMA_VERSION}. Re-export the policy with this version of rl_shop."
        )
    try:
        return PolicyCard.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<card>'}: {err['msg']}" for err in exc.errors()[:8]
        )
        raise PolicyCardError(
            f"policy card {path} does not follow the card schema: {problems}. Re-export the policy."
        ) from exc
