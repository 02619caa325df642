"""Runtime loader for exported policies: ONNX weights + policy card, checked against running code.

The runtime agents (Guider, Leader, collaboration) load trained networks through
:func:`load_policy`. It never imports stable-baselines3 or torch (only onnxruntime, numpy and
pydantic), so the agent loop stays light. Before handing out a policy it verifies that

* the ONNX bytes hash to the sha256 recorded in the card (no silent weight swaps),
* the card's env id is the one the caller expects, and its env version (``env_version``, the
  ``-vN`` of the id) is the version of that env the running code registers,
* the featurizer the card was trained on has the same ``LAYOUT_VERSION`` and ``FEATURE_NAMES`` as
  the featurizer running now, and the env's action names are unchanged,

and refuses with :class:`PolicyCardMismatch` (what differs, and the command that fixes it)
otherwise. The env-id -> featurizer mapping is a small registry so tests (and new envs) can
register a layout without touching this file.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rl_shop.policies.card import CARD_FILENAME, PolicyCard, env_version_of, load_card

if TYPE_CHECKING:
    from onnxruntime import InferenceSession  # for annotations only: no onnxruntime import at runtime

__all__ = [
    "ExportedPolicy",
    "PolicyCardMismatch",
    "PolicyLoadError",
    "PolicyWeightsError",
    "RuntimeLayout",
    "UnknownLayoutError",
    "check_card",
    "load_policy",
    "register_layout",
    "registered_env_ids",
    "runtime_layout",
    "unregister_layout",
]


class PolicyLoadError(RuntimeError):
    """Base class: an exported policy could not be loaded."""


class PolicyCardMismatch(PolicyLoadError):
    """The card (or the weights it describes) does not match the code running now."""


class PolicyWeightsError(PolicyLoadError):
    """The ONNX file is missing, corrupt, or its graph does not have the shape the card promises."""


class UnknownLayoutError(PolicyLoadError, KeyError):
    """No featurizer is registered for an env id, so a card for it cannot be checked."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class RuntimeLayout:
    """What the running code feeds a policy for one env: featurizer layout and action names."""

    env_id: str
    module: str
    layout_version: int | str
    feature_names: tuple[str, ...]
    action_names: tuple[str, ...] | None = None


#: env id -> featurizer module path (imported lazily) or a ready layout. The project's envs add
#: theirs when ``envs`` is imported (from ``envs.specs``); ``register_layout`` adds others.
_REGISTRY: dict[str, str | RuntimeLayout] = {}


def register_layout(env_id: str, layout: str | RuntimeLayout, *, replace: bool = False) -> None:
    """Map an env id to a featurizer module path (imported lazily) or a ready :class:`RuntimeLayout`.

    A featurizer module must define ``LAYOUT_VERSION`` and ``FEATURE_NAMES``; ``ACTION_NAMES`` is
    read from it too when present. ``replace=False`` protects the built-in mappings from typos.
    """
    if env_id in _REGISTRY and not replace and _REGISTRY[env_id] != layout:
        raise ValueError(f"a layout is already registered for {env_id!r}; pass replace=True to override it")
    if isinstance(layout, RuntimeLayout) and layout.env_id != env_id:
        raise ValueError(f"layout is for {layout.env_id!r}, not {env_id!r}")
    _REGISTRY[env_id] = layout


def unregister_layout(env_id: str) -> None:
    """Remove a registration (tests use this to clean up)."""
    _REGISTRY.pop(env_id, None)


def registered_env_ids() -> list[str]:
    """The env ids whose policies this runtime can check."""
    return sorted(_REGISTRY)


def _layout_from_module(env_id: str, module_name: str, action_names: Sequence[str] | None) -> RuntimeLayout:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownLayoutError(
            f"featurizer module {module_name!r} for {env_id} cannot be imported ({exc}); "
            "is the rl_shop package complete and installed?"
        ) from exc
    missing = [name for name in ("LAYOUT_VERSION", "FEATURE_NAMES") if not hasattr(module, name)]
    if missing:
        raise UnknownLayoutError(f"featurizer module {module_name} lacks {', '.join(missing)}")
    names = getattr(module, "ACTION_NAMES", None) if action_names is None else action_names
    return RuntimeLayout(
        env_id=env_id,
        module=module_name,
        layout_version=module.LAYOUT_VERSION,
        feature_names=tuple(str(n) for n in module.FEATURE_NAMES),
        action_names=None if names is None else tuple(str(n) for n in names),
    )


def runtime_layout(
    env_id: str, *, action_names: Sequence[str] | None = None, featurizer: str | None = None
) -> RuntimeLayout:
    """The layout the running code uses for ``env_id``.

    ``action_names`` overrides the featurizer's own ``ACTION_NAMES`` (the exporter passes the env's).
    ``featurizer`` (a module path) is used for env ids outside the registry; a registered id keeps
    its registered featurizer, and naming a different one is an error.
    """
    entry = _REGISTRY.get(env_id)
    if featurizer is not None:
        registered = entry.module if isinstance(entry, RuntimeLayout) else entry
        if entry is not None and registered != featurizer:
            raise ValueError(f"{env_id} is registered with featurizer {registered}, not {featurizer}")
        entry = entry if entry is not None else featurizer
    if entry is None:
        raise UnknownLayoutError(
            f"no featurizer is registered for env id {env_id!r} (known: {', '.join(registered_env_ids()) or 'none'}). "
            "Importing `envs` registers the project's envs; register another with rl_shop.policies.loader.register_layout(env_id, 'package.module'), or pass "
            "featurizer=<package.module> to experiments/export.py."
        )
    if isinstance(entry, RuntimeLayout):
        if action_names is not None:
            return RuntimeLayout(
                entry.env_id, entry.module, entry.layout_version, entry.feature_names, tuple(action_names)
            )
        return entry
    return _layout_from_module(env_id, entry, action_names)


def _describe_name_diff(label: str, card: Sequence[str], running: Sequence[str]) -> str:
    card, running = list(card), list(running)
    parts = [f"{label}: card has {len(card)}, running code has {len(running)}"]
    added = [n for n in running if n not in card]
    removed = [n for n in card if n not in running]
    if added:
        parts.append(f"added {added[:5]}{' ...' if len(added) > 5 else ''}")
    if removed:
        parts.append(f"removed {removed[:5]}{' ...' if len(removed) > 5 else ''}")
    for i, (a, b) in enumerate(zip(card, running)):
        if a != b:
            parts.append(f"first difference at index {i}: card {a!r} vs running {b!r}")
            break
    return "; ".join(parts)


def _export_hint(card: PolicyCard, policy_dir: Path) -> str:
    run_dir = card.training.run_dir or "checkpoints/runs/<experiment>/<timestamp>"
    return f"python experiments/export.py run_dir={run_dir} out={policy_dir}"


def _env_base(env_id: str) -> str:
    """``acme/Grid-v3`` -> ``acme/Grid`` (the env without its version)."""
    return re.sub(r"-v\d+$", "", env_id)


def card_env_version(card: PolicyCard) -> int | None:
    """The env version the card was exported for: ``env_version``, else the ``-vN`` of its env id."""
    return card.env_version if card.env_version is not None else env_version_of(card.env_id)


def _env_version_problems(card: PolicyCard, running_env_id: str) -> list[str]:
    problems: list[str] = []
    id_version = env_version_of(card.env_id)
    if card.env_version is not None and id_version is not None and card.env_version != id_version:
        problems.append(
            f"env version: the card records env_version={card.env_version} but its env id {card.env_id} is "
            f"v{id_version} (the card was edited, or written by something other than experiments/export.py)"
        )
    version, running = card_env_version(card), env_version_of(running_env_id)
    if version is not None and running is not None and version != running:
        problems.append(
            f"env version: card v{version} ({card.env_id}), running code v{running} ({running_env_id}); "
            "the env's dynamics, rewards or observations differ between versions"
        )
    return problems


def _other_versions(env_id: str) -> list[str]:
    """Registered ids of the same env under another version (e.g. ``acme/Grid-v0`` for an ``acme/Grid-v1`` card)."""
    base = _env_base(env_id)
    return sorted(e for e in _REGISTRY if e != env_id and _env_base(e) == base)


def check_card(card: PolicyCard, layout: RuntimeLayout) -> list[str]:
    """Every way in which ``card`` disagrees with the running ``layout`` (empty list: compatible)."""
    problems: list[str] = []
    if card.env_id != layout.env_id:
        problems.append(f"env id: card {card.env_id!r}, running {layout.env_id!r}")
    problems.extend(_env_version_problems(card, layout.env_id))
    if card.featurizer.layout_version != layout.layout_version:
        problems.append(
            f"featurizer layout version ({layout.module}.LAYOUT_VERSION): card {card.featurizer.layout_version!r}, "
            f"running {layout.layout_version!r}"
        )
    if list(card.featurizer.feature_names) != list(layout.feature_names):
        problems.append(_describe_name_diff("feature names", card.featurizer.feature_names, layout.feature_names))
    if layout.action_names is not None and list(card.action_space.names) != list(layout.action_names):
        problems.append(_describe_name_diff("action names", card.action_space.names, layout.action_names))
    return problems


def _resolve_paths(path_or_dir: str | Path) -> tuple[Path, Path]:
    path = Path(path_or_dir)
    if path.is_dir():
        return path, path / CARD_FILENAME
    if path.suffix == ".json":
        return path.parent, path
    if path.suffix == ".onnx":
        return path.parent, path.parent / CARD_FILENAME
    if not path.exists():
        raise PolicyLoadError(
            f"no exported policy at {path}: give the directory holding {CARD_FILENAME} and the .onnx file "
            "(e.g. checkpoints/guider)."
        )
    raise PolicyLoadError(f"{path} is neither a policy directory, a {CARD_FILENAME} nor a .onnx file")


def _open_session(onnx_bytes: bytes, onnx_path: Path, num_threads: int) -> InferenceSession:
    import onnxruntime as ort  # imported here so that reading cards needs no onnxruntime

    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        raise PolicyWeightsError(
            f"{onnx_path} is not a loadable ONNX model ({type(exc).__name__}: {str(exc).strip()[:300]}). "
            "The file is corrupt or truncated: re-export the policy."
        ) from exc


class ExportedPolicy:
    """An exported network behind the :class:`rl_shop.policies.base.Policy` protocol.

    ``act`` is deterministic: the masked argmax of the network's output (Q-values for DQN, logits
    for PPO / A2C / MaskablePPO); ties go to the lowest action index. Observations are the raw
    featurizer output: VecNormalize statistics, if any, are inside the graph.
    """

    def __init__(self, session: InferenceSession, card: PolicyCard, source: Path) -> None:
        self._session = session
        self._card = card
        self.source = source
        self._shape = tuple(card.observation_space.shape)
        self._dtype = np.dtype(card.observation_space.dtype)

    @property
    def card(self) -> PolicyCard:
        """The policy card this network was loaded with."""
        return self._card

    @property
    def n_actions(self) -> int:
        """Size of the discrete action space."""
        return self._card.action_space.n

    @property
    def action_names(self) -> list[str]:
        """Names of the actions, index-aligned with the network's outputs."""
        return list(self._card.action_space.names)

    @property
    def output_kind(self) -> str:
        """``"q_values"`` (DQN) or ``"logits"`` (actor-critic algorithms)."""
        return self._card.onnx.output_kind

    def __repr__(self) -> str:
        return f"ExportedPolicy({self._card.training.algo} for {self._card.env_id}, source={str(self.source)!r})"

    # -- raw network -------------------------------------------------------------------------
    def _as_batch(self, obs: np.ndarray) -> np.ndarray:
        arr = np.asarray(obs)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"observation must be numeric, got dtype {arr.dtype}")
        if arr.shape[-len(self._shape) :] != self._shape or arr.ndim != len(self._shape) + 1:
            raise ValueError(
                f"observation batch must have shape (batch, {', '.join(map(str, self._shape))}) for "
                f"{self._card.env_id} (featurizer {self._card.featurizer.module}), got {arr.shape}"
            )
        arr = arr.astype(self._dtype, copy=False)
        if not np.all(np.isfinite(arr)):
            raise ValueError("observation contains NaN or infinity; check the featurizer input")
        return np.ascontiguousarray(arr)

    def outputs_batch(self, obs: np.ndarray) -> np.ndarray:
        """The raw network output (Q-values or logits), shape ``(batch, n_actions)``."""
        batch = self._as_batch(obs)
        (out,) = self._session.run([self._card.onnx.output_name], {self._card.onnx.input_name: batch})
        return np.asarray(out, dtype=np.float64)

    def _one(self, obs: np.ndarray) -> np.ndarray:
        arr = np.asarray(obs)
        if arr.shape != self._shape:
            raise ValueError(f"observation must have shape {self._shape} for {self._card.env_id}, got {arr.shape}")
        return arr[None]

    def _masks(self, action_masks: np.ndarray | None, batch: int) -> np.ndarray | None:
        if action_masks is None:
            return None
        masks = np.asarray(action_masks)
        if masks.shape != (batch, self.n_actions):
            raise ValueError(f"action mask must have shape ({batch}, {self.n_actions}), got {masks.shape}")
        masks = masks.astype(bool)
        empty = ~masks.any(axis=1)
        if empty.any():
            raise ValueError(f"action mask allows no action for row(s) {np.flatnonzero(empty)[:5].tolist()}")
        return masks

    # -- DQN ---------------------------------------------------------------------------------
    def q_values_batch(self, obs: np.ndarray) -> np.ndarray:
        """Q-values ``(batch, n_actions)``; only DQN exports carry them."""
        if self.output_kind != "q_values":
            raise TypeError(
                f"{self._card.training.algo} policies output action logits, not Q-values; use action_probabilities()"
            )
        return self.outputs_batch(obs)

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values of one observation, shape ``(n_actions,)`` (the Guider's ask-or-stop signal)."""
        return self.q_values_batch(self._one(obs))[0]

    # -- actor-critic --------------------------------------------------------------------------
    def action_probabilities_batch(self, obs: np.ndarray, action_masks: np.ndarray | None = None) -> np.ndarray:
        """Softmax of the logits over valid actions; masked-out actions get probability 0."""
        if self.output_kind != "logits":
            raise TypeError("DQN policies output Q-values, not a distribution over actions; use q_values()")
        logits = self.outputs_batch(obs)
        masks = self._masks(action_masks, logits.shape[0])
        if masks is not None:
            logits = np.where(masks, logits, -np.inf)
        logits = logits - logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def action_probabilities(self, obs: np.ndarray, action_mask: np.ndarray | None = None) -> np.ndarray:
        """Action distribution of one observation, shape ``(n_actions,)``."""
        mask = None if action_mask is None else np.asarray(action_mask)[None]
        return self.action_probabilities_batch(self._one(obs), mask)[0]

    # -- Policy protocol -------------------------------------------------------------------------
    def act_batch(self, obs: np.ndarray, action_masks: np.ndarray | None = None) -> np.ndarray:
        """Deterministic masked argmax for a batch; returns int64 actions ``(batch,)``."""
        scores = self.outputs_batch(obs)
        masks = self._masks(action_masks, scores.shape[0])
        if masks is not None:
            scores = np.where(masks, scores, -np.inf)
        return np.argmax(scores, axis=1).astype(np.int64)

    def act(self, obs: np.ndarray, action_mask: np.ndarray | None = None) -> int:
        """The action for one observation; actions with mask False are never chosen."""
        mask = None if action_mask is None else np.asarray(action_mask)[None]
        return int(self.act_batch(self._one(obs), mask)[0])


def _check_graph(session: InferenceSession, card: PolicyCard, onnx_path: Path) -> None:
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    if card.onnx.input_name not in inputs or card.onnx.output_name not in outputs:
        raise PolicyWeightsError(
            f"{onnx_path} has inputs {sorted(inputs)} and outputs {sorted(outputs)}; the card expects input "
            f"{card.onnx.input_name!r} and output {card.onnx.output_name!r}. Re-export the policy."
        )
    in_shape = list(inputs[card.onnx.input_name].shape)[1:]
    out_shape = list(outputs[card.onnx.output_name].shape)[1:]
    if in_shape != list(card.observation_space.shape) or out_shape != [card.action_space.n]:
        raise PolicyWeightsError(
            f"{onnx_path} maps {in_shape} -> {out_shape} but the card promises {card.observation_space.shape} -> "
            f"[{card.action_space.n}]. Re-export the policy."
        )


def load_policy(
    path_or_dir: str | Path,
    *,
    expect_env_id: str | None = None,
    expect_action_names: Sequence[str] | None = None,
    num_threads: int = 1,
    layout: RuntimeLayout | None = None,
) -> ExportedPolicy:
    """Load an exported policy after checking its card against the running featurizer and weights.

    ``path_or_dir`` is the export directory (or its ``policy_card.json`` / ``.onnx`` file).
    ``expect_env_id`` makes a caller's assumption explicit (the Guider passes ``envs.specs.CLARIFY.id``).
    ``expect_action_names`` are the action names the caller will interpret the output with; they
    override the featurizer module's ``ACTION_NAMES`` (needed where the action set is built from
    config, like the Leader's trigger grid). With neither, action names are not checked.
    ``layout`` overrides the registry lookup. Raises :class:`PolicyCardMismatch` on any disagreement,
    :class:`PolicyWeightsError` for missing / corrupt ONNX and
    :class:`rl_shop.policies.card.PolicyCardError` for a missing / malformed card.
    """
    policy_dir, card_path = _resolve_paths(path_or_dir)
    card = load_card(card_path)
    hint = _export_hint(card, policy_dir)

    if expect_env_id is not None and card.env_id != expect_env_id:
        raise PolicyCardMismatch(
            f"policy at {policy_dir} was trained on {card.env_id}, but the caller expects {expect_env_id}. "
            f"Point it at a policy exported from a {expect_env_id} run: "
            f"python experiments/export.py run_dir=<a {expect_env_id} run> out={policy_dir}"
        )

    onnx_path = policy_dir / card.onnx.file
    if not onnx_path.is_file():
        raise PolicyWeightsError(f"weights file {onnx_path} named in the card is missing. Re-export: {hint}")
    onnx_bytes = onnx_path.read_bytes()
    digest = hashlib.sha256(onnx_bytes).hexdigest()
    if digest != card.onnx.sha256:
        raise PolicyCardMismatch(
            f"policy at {policy_dir}: sha256 of {onnx_path.name} is {digest}, the card records {card.onnx.sha256}. "
            f"The weights were changed or replaced after export. Re-export to get a matching pair: {hint}"
        )

    others = _other_versions(card.env_id) if layout is None and card.env_id not in _REGISTRY else []
    if others:
        raise PolicyCardMismatch(
            f"policy at {policy_dir} was trained on {card.env_id} (env version {card_env_version(card)}), but "
            f"this code runs {', '.join(others)} (env version "
            f"{', '.join(str(env_version_of(e)) for e in others)}); the env's dynamics, rewards or observations "
            "differ between versions, so the policy is refused. Retrain on the env version this code runs "
            f"(python experiments/train.py env=...) and export the new run: python experiments/export.py "
            f"run_dir=<the new run> out={policy_dir}; or run the code the policy was trained with."
        )

    if layout is not None:
        running = layout
    elif card.env_id in _REGISTRY:
        running = runtime_layout(card.env_id, action_names=expect_action_names)
    else:
        # An env outside the registry: check against the featurizer module the card names, as
        # importable in THIS process (its current constants), or refuse.
        running = _layout_from_module(card.env_id, card.featurizer.module, expect_action_names)
    if layout is not None and expect_action_names is not None:
        running = RuntimeLayout(
            running.env_id, running.module, running.layout_version, running.feature_names, tuple(expect_action_names)
        )
    problems = check_card(card, running)
    if problems:
        bullet = "\n  - ".join(problems)
        raise PolicyCardMismatch(
            f"policy at {policy_dir} does not match the running code for {card.env_id}:\n  - {bullet}\n"
            "A network trained on another env version, observation layout or action set cannot run on this one: "
            f"retrain on the current code (python experiments/train.py ...) and re-export it: {hint}"
        )

    session = _open_session(onnx_bytes, onnx_path, num_threads)
    _check_graph(session, card, onnx_path)
    return ExportedPolicy(session, card, policy_dir)
