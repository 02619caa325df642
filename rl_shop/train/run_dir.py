"""Reading a training run directory (``checkpoints/runs/<experiment>/<timestamp>``) for export.

``experiments/train.py`` writes a run's resolved ``config.yaml``, model checkpoints, optional
VecNormalize statistics and ``summary.json``; :func:`find_run_artifacts` finds them so that
``experiments/export.py`` can hand the model to :func:`rl_shop.policies.export.export_model`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rl_shop.config_files import read_config
from rl_shop.policies.export import PolicyExportError


@dataclass(frozen=True)
class RunArtifacts:
    """What a training run directory offers the exporter."""

    run_dir: Path
    config: dict[str, Any]
    checkpoint: Path
    vecnormalize: Path | None
    summary: dict[str, Any] | None


def _first_existing(base: Path, patterns: Sequence[str]) -> Path | None:
    """First match over ``patterns`` (globs allowed; among glob matches the highest step number wins)."""
    for pattern in patterns:
        matches = [p for p in base.glob(pattern) if p.is_file()]
        if matches:
            return max(matches, key=_step_key)
    return None


def _step_key(path: Path) -> tuple[int, str]:
    for part in reversed(path.parts):
        if part.startswith("step_") and part[5:].isdigit():
            return int(part[5:]), str(path)
    return -1, str(path)


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The resolved training config (``config.yaml``) of a run, as plain dicts."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise PolicyExportError(
            f"{run_dir} is not a training run directory (no config.yaml). Expected "
            "checkpoints/runs/<experiment>/<timestamp> as written by experiments/train.py."
        )
    # resolve=False: the run's config is stored as Hydra resolved it
    return read_config(path, what="training run config", error=PolicyExportError, resolve=False)


def find_run_artifacts(
    run_dir: str | Path,
    *,
    checkpoint: str,
    best_patterns: Sequence[str],
    final_patterns: Sequence[str],
    vecnormalize_patterns: Sequence[str],
) -> RunArtifacts:
    """Locate config, model zip (``checkpoint``: "best" falls back to final, "final", or a path) and stats."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PolicyExportError(f"run directory not found: {run_dir}")
    config = read_run_config(run_dir)
    if checkpoint == "best":
        model_zip = _first_existing(run_dir, best_patterns) or _first_existing(run_dir, final_patterns)
    elif checkpoint == "final":
        model_zip = _first_existing(run_dir, final_patterns)
    else:
        candidate = Path(checkpoint)
        model_zip = candidate if candidate.is_absolute() else run_dir / candidate
        if not model_zip.is_file():
            model_zip = candidate if candidate.is_file() else None
    if model_zip is None:
        raise PolicyExportError(
            f"no model checkpoint for checkpoint={checkpoint!r} in {run_dir} (looked for "
            f"{list(best_patterns) + list(final_patterns) if checkpoint == 'best' else final_patterns if checkpoint == 'final' else checkpoint}). "
            "Did the run finish or save a checkpoint? Pass checkpoint=<path to an SB3 .zip> to choose one."
        )
    vecnorm = _first_existing(model_zip.parent, vecnormalize_patterns) or _first_existing(
        run_dir, vecnormalize_patterns
    )
    summary = None
    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise PolicyExportError(f"{summary_path} is not valid JSON: {exc}") from exc
    return RunArtifacts(run_dir=run_dir, config=config, checkpoint=model_zip, vecnormalize=vecnorm, summary=summary)


def env_id_of(config: dict[str, Any]) -> str | None:
    """``env.id`` of a training config (or a top-level ``env_id``)."""
    env = config.get("env")
    if isinstance(env, dict) and isinstance(env.get("id"), str):
        return env["id"]
    value = config.get("env_id")
    return value if isinstance(value, str) else None


def algo_of(config: dict[str, Any]) -> str | None:
    """``algo.algorithm`` (or ``algo.name``) of a training config."""
    algo = config.get("algo")
    if isinstance(algo, dict):
        value = algo.get("algorithm") or algo.get("name")
        return str(value) if value else None
    return str(algo) if isinstance(algo, str) else None
