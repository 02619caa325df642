"""One :class:`EnvSpec` per environment: the single home of each env's id and of what belongs to it.

Every other module reads an env's id, classes, featurizer and reference heuristic from here
(``envs.specs.CLARIFY.id``) instead of spelling them. Entry points are ``"module:attr"`` strings,
so importing this module imports neither the env code nor torch.

Who reads what:

* ``envs`` registers ``id`` -> ``entry_point`` / ``vector_entry_point`` with Gymnasium and the
  featurizer with the policy loader (``rl_shop.policies.loader.register_layout``);
* ``rl_shop.train`` builds the reference heuristic (``heuristic``) and the torch kernel of
  ``trainer=torchrl`` (``torch_entry_point``);
* ``rl_shop.agents`` maps its roles to specs (Guider -> ``CLARIFY``, scheduler -> ``SCHEDULE``,
  Leader's collaboration -> ``COLLABORATE``) and calls the featurizer's ``featurize`` and
  ``action_mask``, the same functions the env calls.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class EnvSpec:
    """Everything that is one env's, named once.

    Attributes:
        id: the Gymnasium id (``rl_shop/<Name>-v<N>``).
        config: its file under ``configs/env/`` (``env=<config>`` in the Hydra apps).
        entry_point: the single Gymnasium env class.
        vector_entry_point: the numpy-batched vector env class (``envs.make_batched``).
        torch_entry_point: the torch-batched kernel for ``trainer=torchrl``; None where there is none.
        featurizer: the module with ``featurize``, ``action_mask``, ``LAYOUT_VERSION``,
            ``FEATURE_NAMES`` and ``ACTION_NAMES``, shared by the env and the runtime agent.
        heuristic: ``builder(env, extra) -> Policy`` of the reference heuristic the learned
            policy is compared with (``envs.reference``).
    """

    id: str
    config: str
    entry_point: str
    vector_entry_point: str
    torch_entry_point: str | None
    featurizer: str
    heuristic: str

    def load(self, field: str) -> object:
        """The object behind one of the entry-point fields (imports its module)."""
        return load_entry_point(getattr(self, field))


CLARIFY = EnvSpec(
    id="rl_shop/Clarify-v0",
    config="clarify",
    entry_point="envs.clarify:ClarifyEnv",
    vector_entry_point="envs.clarify_batched:ClarifyVectorEnv",
    torch_entry_point="envs.clarify_torch:ClarifyTorchVectorEnv",
    featurizer="rl_shop.policies.features.clarify",
    heuristic="envs.reference:ask_until_confident",
)
SCHEDULE = EnvSpec(
    id="rl_shop/Schedule-v0",
    config="schedule",
    entry_point="envs.schedule:ScheduleEnv",
    vector_entry_point="envs.schedule_batched:ScheduleVectorEnv",
    torch_entry_point=None,
    featurizer="rl_shop.policies.features.schedule",
    heuristic="envs.reference:paper_fixed_trigger",
)
COLLABORATE = EnvSpec(
    id="rl_shop/Collaborate-v0",
    config="collaborate",
    entry_point="envs.collaborate:CollaborateEnv",
    vector_entry_point="envs.collaborate_batched:CollaborateVectorEnv",
    torch_entry_point="envs.collaborate_torch:CollaborateTorchVectorEnv",
    featurizer="rl_shop.policies.features.collaborate",
    heuristic="envs.reference:reflection_replan",
)

#: The project's envs by id.
SPECS: dict[str, EnvSpec] = {s.id: s for s in (CLARIFY, SCHEDULE, COLLABORATE)}


def get_spec(env_id: str) -> EnvSpec:
    """The spec of ``env_id``; ``KeyError`` naming the known ids."""
    try:
        return SPECS[env_id]
    except KeyError:
        raise KeyError(f"unknown env id {env_id!r}; the project's envs are {sorted(SPECS)}") from None


def load_entry_point(entry_point: str) -> object:
    """``"module:attr"`` -> the attribute (imports the module)."""
    module_name, _, attr = entry_point.partition(":")
    return getattr(importlib.import_module(module_name), attr)
