"""SB3 -> ONNX exporter: turns a trained DQN / PPO / A2C / MaskablePPO into ``policy.onnx`` + card.

The runtime must not unpickle SB3 objects (docs/ARCHITECTURE.md, "No pickled training objects at
run time"), so the decision-relevant part of each network is traced to ONNX:

* DQN: ``obs -> q_values`` (the online Q-network; the Guider reads Q-values to ask or stop);
* PPO / A2C / MaskablePPO: ``obs -> logits`` (the actor head; the loader applies softmax and the
  action mask, exactly as MaskablePPO's distribution does).

VecNormalize observation statistics, if the run used them, are baked into the graph as a first
``clip((obs - mean) / sqrt(var + eps), -clip, clip)`` node and recorded in the card for audit, so the
runtime feeds raw featurizer output. Every export is verified before the card is written: the ONNX
network and SB3's own ``predict`` must agree on the action for ``n_verify`` sampled observations
(with random action masks for MaskablePPO) and on the raw outputs within ``atol``.

This module may import stable-baselines3 and torch; :mod:`rl_shop.policies.loader` may not.
"""

from __future__ import annotations

import io
import json
import pickle
import platform
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rl_shop.paths import REPO_ROOT
from rl_shop.policies.card import (
    CARD_FILENAME,
    ONNX_FILENAME,
    OUTPUT_KIND_BY_ALGO,
    BoxSpaceInfo,
    DiscreteActionInfo,
    EvaluationInfo,
    FeaturizerInfo,
    ObsNormalization,
    OnnxInfo,
    PolicyCard,
    TrainingInfo,
    VerificationInfo,
    env_version_of,
    save_card,
    sha256_file,
)
from rl_shop.policies.loader import RuntimeLayout, load_policy, runtime_layout

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

#: Training configs name algorithms in snake case; cards use SB3's class names.
ALGO_ALIASES: dict[str, str] = {
    "dqn": "DQN",
    "ppo": "PPO",
    "a2c": "A2C",
    "maskable_ppo": "MaskablePPO",
    "maskableppo": "MaskablePPO",
}

INPUT_NAME = "obs"
EXPORTER = "torch.onnx.export (TorchScript-based, dynamo=False)"


class PolicyExportError(RuntimeError):
    """The model cannot be exported as asked (unsupported algo/space, mismatch, failed verification)."""


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and what its card says."""

    out_dir: Path
    onnx_path: Path
    card_path: Path
    card: PolicyCard


# ------------------------------------------------------------------------------- model loading
def canonical_algo(name: str) -> str:
    """``"maskable_ppo"`` / ``"MaskablePPO"`` -> ``"MaskablePPO"``; clear error for the rest."""
    key = name.replace("-", "_").lower()
    if key in ALGO_ALIASES:
        return ALGO_ALIASES[key]
    if key == "qlearning":
        raise PolicyExportError(
            "the tabular Q-learning baseline has no neural network to export to ONNX; export a DQN, PPO, "
            "A2C or MaskablePPO run instead."
        )
    raise PolicyExportError(f"unknown algorithm {name!r}; exportable: {sorted(set(ALGO_ALIASES.values()))}")


def _algo_class(algo: str) -> type[BaseAlgorithm]:
    if algo == "MaskablePPO":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    import stable_baselines3 as sb3

    return getattr(sb3, algo)


def detect_algo(model_zip: str | Path) -> str:
    """Guess the algorithm from an SB3 zip's ``data`` record (policy class module + PPO-only keys)."""
    try:
        with zipfile.ZipFile(model_zip) as archive:
            data = json.loads(archive.read("data"))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise PolicyExportError(f"{model_zip} is not a stable-baselines3 model zip ({exc})") from exc
    module = str(data.get("policy_class", {}).get("__module__", ""))
    if "dqn" in module:
        return "DQN"
    if "maskable" in module:
        return "MaskablePPO"
    if "common.policies" in module:
        return "PPO" if "clip_range" in data else "A2C"
    raise PolicyExportError(
        f"cannot tell the algorithm of {model_zip} (policy class module {module!r}); pass algo=DQN|PPO|A2C|MaskablePPO"
    )


def load_sb3_model(model_zip: str | Path, algo: str | None = None) -> tuple[Any, str]:
    """Load an SB3 zip on CPU; returns ``(model, canonical_algo)``."""
    model_zip = Path(model_zip)
    if not model_zip.is_file():
        raise PolicyExportError(f"model file not found: {model_zip}")
    algo = canonical_algo(algo) if algo else detect_algo(model_zip)
    try:
        model = _algo_class(algo).load(model_zip, device="cpu")
    except Exception as exc:  # SB3 raises many kinds (pickle, shape, key errors)
        raise PolicyExportError(f"stable-baselines3 could not load {model_zip} as {algo}: {exc}") from exc
    return model, algo


def load_vecnormalize(path: str | Path) -> ObsNormalization | None:
    """Observation statistics of a saved ``VecNormalize`` (None if it does not normalise obs).

    SB3 saves VecNormalize with pickle (without its venv); unpickling restores ``obs_rms``.
    """
    try:
        with open(path, "rb") as handle:
            vecnorm = pickle.load(handle)
    except Exception as exc:
        raise PolicyExportError(f"cannot read VecNormalize statistics from {path}: {exc}") from exc
    if not getattr(vecnorm, "norm_obs", False):
        return None
    rms = vecnorm.obs_rms
    if isinstance(rms, dict):
        raise PolicyExportError("dict observation spaces are not supported by the ONNX export")
    return ObsNormalization(
        mean=np.asarray(rms.mean, dtype=np.float64).ravel().tolist(),
        var=np.asarray(rms.var, dtype=np.float64).ravel().tolist(),
        epsilon=float(vecnorm.epsilon),
        clip_obs=float(vecnorm.clip_obs),
    )


def normalize_obs(obs: np.ndarray, norm: ObsNormalization | None) -> np.ndarray:
    """VecNormalize's observation transform in numpy (the reference the graph must reproduce)."""
    if norm is None:
        return obs
    mean = np.asarray(norm.mean, dtype=np.float64).reshape(obs.shape[1:])
    var = np.asarray(norm.var, dtype=np.float64).reshape(obs.shape[1:])
    out = np.clip((obs - mean) / np.sqrt(var + norm.epsilon), -norm.clip_obs, norm.clip_obs)
    return out.astype(obs.dtype)


# ------------------------------------------------------------------------------- graph building
def build_export_module(model: Any, algo: str, norm: ObsNormalization | None = None) -> Any:
    """A ``torch.nn.Module`` computing ``obs -> q_values`` (DQN) or ``obs -> logits`` (actor-critic)."""
    import torch
    from torch import nn

    class _Normalize(nn.Module):
        mean: torch.Tensor  # buffers, registered in __init__
        std: torch.Tensor

        def __init__(self, stats: ObsNormalization, shape: tuple[int, ...]) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(stats.mean, dtype=torch.float32).reshape(shape))
            self.register_buffer(
                "std", torch.sqrt(torch.tensor(stats.var, dtype=torch.float32) + stats.epsilon).reshape(shape)
            )
            self.clip = float(stats.clip_obs)

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return torch.clamp((obs - self.mean) / self.std, -self.clip, self.clip)

    class _QValues(nn.Module):
        q_net: nn.Module

        def __init__(self, q_net: nn.Module) -> None:
            super().__init__()
            self.q_net = q_net

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            return self.q_net(obs)

    class _Logits(nn.Module):
        # an SB3 actor-critic policy: ActorCriticPolicy, or sb3_contrib's MaskableActorCriticPolicy
        policy: Any

        def __init__(self, policy: nn.Module) -> None:
            super().__init__()
            self.policy = policy

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            features = self.policy.extract_features(obs)
            if not self.policy.share_features_extractor:
                features = features[0]
            latent_pi = self.policy.mlp_extractor.forward_actor(features)
            return self.policy.action_net(latent_pi)

    policy = model.policy
    policy.set_training_mode(False)
    head: nn.Module = _QValues(policy.q_net) if algo == "DQN" else _Logits(policy)
    if norm is None:
        module: nn.Module = head
    else:
        module = nn.Sequential(_Normalize(norm, tuple(model.observation_space.shape)), head)
    return module.eval()


def _check_spaces(model: Any) -> None:
    from gymnasium import spaces

    if not isinstance(model.observation_space, spaces.Box):
        raise PolicyExportError(
            f"only Box observation spaces can be exported (the featurizers emit flat float vectors); got {model.observation_space}"
        )
    if not isinstance(model.action_space, spaces.Discrete):
        raise PolicyExportError(f"only Discrete action spaces can be exported; got {model.action_space}")
    if int(model.action_space.start) != 0:
        raise PolicyExportError("Discrete action spaces must start at 0 for index-aligned action names")


def _to_onnx_bytes(module: Any, obs_shape: tuple[int, ...], output_name: str, opset: int) -> bytes:
    import torch

    dummy = torch.zeros((1, *obs_shape), dtype=torch.float32)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter is deprecated but needs no onnxscript
        torch.onnx.export(
            module,
            (dummy,),
            buffer,  # type: ignore[arg-type]  # torch's stub says str | PathLike; the TorchScript exporter (dynamo=False) also writes to a file-like object
            input_names=[INPUT_NAME],
            output_names=[output_name],
            dynamic_axes={INPUT_NAME: {0: "batch"}, output_name: {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    return buffer.getvalue()


# ------------------------------------------------------------------------------- verification
def sample_observations(space: Any, n: int, seed: int) -> np.ndarray:
    """``n`` observations from a Box space with a private seeded RNG (reproducible, no global state)."""
    import copy

    local = copy.deepcopy(space)
    local.seed(seed)
    return np.stack([local.sample() for _ in range(n)]).astype(np.float32)


def sample_action_masks(n_actions: int, n: int, seed: int) -> np.ndarray:
    """Random boolean masks with at least one valid action per row."""
    rng = np.random.default_rng(seed)
    masks = rng.random((n, n_actions)) < 0.5
    rows = np.flatnonzero(~masks.any(axis=1))
    masks[rows, rng.integers(0, n_actions, size=rows.size)] = True
    return masks


def verify_against_sb3(
    model: Any,
    algo: str,
    module: Any,
    policy: Any,
    norm: ObsNormalization | None,
    *,
    n_samples: int,
    seed: int,
    atol: float,
) -> VerificationInfo:
    """Compare the ONNX policy with SB3's ``predict`` (actions) and the torch module (raw outputs)."""
    import torch

    obs = sample_observations(model.observation_space, n_samples, seed)
    with_masks = algo == "MaskablePPO"
    masks = sample_action_masks(int(model.action_space.n), n_samples, seed + 1) if with_masks else None
    kwargs = {"action_masks": masks} if with_masks else {}
    sb3_actions, _ = model.predict(normalize_obs(obs, norm), deterministic=True, **kwargs)
    onnx_actions = policy.act_batch(obs, masks)
    with torch.no_grad():
        reference = module(torch.as_tensor(obs)).numpy().astype(np.float64)
    diff = float(np.max(np.abs(reference - policy.outputs_batch(obs))))
    agreement = float(np.mean(np.asarray(sb3_actions).reshape(-1) == onnx_actions))
    info = VerificationInfo(n_samples=n_samples, action_agreement=agreement, max_abs_diff=diff, with_masks=with_masks)
    if diff > atol or agreement < 1.0:
        raise PolicyExportError(
            f"exported network disagrees with the SB3 model: action agreement {agreement:.4f} on {n_samples} "
            f"observations, max |output difference| {diff:.3g} (atol {atol:g}). The ONNX export is not faithful; "
            "do not ship it."
        )
    return info


# ------------------------------------------------------------------------------- export
def _software_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for dist in ("rl_shop", "torch", "stable-baselines3", "sb3-contrib", "onnx", "onnxruntime", "gymnasium"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def display_path(path: str | Path) -> str:
    """A path relative to the repository when inside it (cards stay valid after a clone elsewhere)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def export_model(
    model: Any,
    out_dir: str | Path,
    *,
    env_id: str,
    algo: str,
    action_names: Sequence[str] | None = None,
    layout: RuntimeLayout | None = None,
    featurizer: str | None = None,
    normalization: ObsNormalization | None = None,
    run_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    training_config: dict[str, Any] | None = None,
    evaluation: EvaluationInfo | None = None,
    n_verify: int = 1000,
    verify_seed: int = 0,
    atol: float = 1e-4,
    opset: int = 17,
) -> ExportResult:
    """Export a loaded SB3 model to ``out_dir/policy.onnx`` + ``out_dir/policy_card.json``.

    The featurizer layout comes from the registry in :mod:`rl_shop.policies.loader`, or from the
    module path ``featurizer`` for an env outside it (``layout`` overrides both); ``action_names`` (from the env) override the featurizer's ``ACTION_NAMES``.
    The export is refused when the model's observation size differs from the featurizer's
    feature count, i.e. when the network was trained on another layout than the running one.
    """
    algo = canonical_algo(algo)
    _check_spaces(model)
    if layout is None:
        layout = runtime_layout(env_id, action_names=action_names, featurizer=featurizer)
    if action_names is not None:
        layout = RuntimeLayout(
            layout.env_id, layout.module, layout.layout_version, layout.feature_names, tuple(action_names)
        )
    obs_shape = tuple(int(d) for d in model.observation_space.shape)
    n_obs = int(np.prod(obs_shape))
    if n_obs != len(layout.feature_names):
        raise PolicyExportError(
            f"the model observes {n_obs} values but the running featurizer {layout.module} "
            f"({layout.layout_version}) has {len(layout.feature_names)} features: the network was trained on "
            "another observation layout. Retrain it on the current code before exporting."
        )
    n_actions = int(model.action_space.n)
    if layout.action_names is None:
        raise PolicyExportError(
            f"no action names for {env_id}: pass the env's ACTION_NAMES (experiments/export.py does) or define "
            f"ACTION_NAMES in {layout.module}"
        )
    if len(layout.action_names) != n_actions:
        raise PolicyExportError(
            f"the model has {n_actions} actions but {env_id} names {len(layout.action_names)}: {list(layout.action_names)}"
        )
    if normalization is not None and len(normalization.mean) != n_obs:
        raise PolicyExportError(f"VecNormalize statistics have {len(normalization.mean)} values, observations {n_obs}")

    output_kind = OUTPUT_KIND_BY_ALGO[algo]
    module = build_export_module(model, algo, normalization)
    onnx_bytes = _to_onnx_bytes(module, obs_shape, output_kind, opset)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / ONNX_FILENAME
    onnx_path.write_bytes(onnx_bytes)

    space = model.observation_space
    out_display = display_path(out_dir)
    card = PolicyCard(
        env_id=env_id,
        env_version=env_version_of(env_id),
        featurizer=FeaturizerInfo(
            module=layout.module, layout_version=layout.layout_version, feature_names=list(layout.feature_names)
        ),
        observation_space=BoxSpaceInfo(
            shape=list(obs_shape),
            dtype=str(np.dtype(space.dtype)),
            low=np.asarray(space.low, dtype=np.float64).ravel().tolist(),
            high=np.asarray(space.high, dtype=np.float64).ravel().tolist(),
        ),
        action_space=DiscreteActionInfo(n=n_actions, names=list(layout.action_names)),
        normalization=normalization,
        onnx=OnnxInfo(
            file=ONNX_FILENAME,
            sha256=sha256_file(onnx_path),
            opset=opset,
            input_name=INPUT_NAME,
            output_name=output_kind,
            output_kind=output_kind,
            exporter=EXPORTER,
        ),
        training=TrainingInfo(
            algo=algo,
            run_dir=None if run_dir is None else display_path(run_dir),
            checkpoint=None if checkpoint is None else display_path(checkpoint),
            num_timesteps=int(getattr(model, "num_timesteps", 0)),
            seed=getattr(model, "seed", None),
            config=_json_safe(training_config or {}),
        ),
        evaluation=evaluation,
        exported_at=datetime.now(UTC),
        software=_software_versions(),
        export_command=(
            f"python experiments/export.py run_dir={display_path(run_dir)} out={out_display}" if run_dir else None
        ),
    )
    card_path = save_card(card, out_dir / CARD_FILENAME)

    # Verify through the real loader (sha256, layout checks, onnxruntime), then record the result.
    policy = load_policy(out_dir, layout=layout)
    try:
        verification = verify_against_sb3(
            model, algo, module, policy, normalization, n_samples=n_verify, seed=verify_seed, atol=atol
        )
    except PolicyExportError:
        onnx_path.unlink(missing_ok=True)
        card_path.unlink(missing_ok=True)
        raise
    card = card.model_copy(update={"verification": verification})
    save_card(card, card_path)
    return ExportResult(out_dir=out_dir, onnx_path=onnx_path, card_path=card_path, card=card)
