"""Export a trained policy: SB3 run directory -> ``<out>/policy.onnx`` + ``<out>/policy_card.json``.

    python experiments/export.py run_dir=checkpoints/runs/<experiment>/<timestamp> out=checkpoints/guider

Reads the run's ``config.yaml`` (env id + kwargs, algorithm), takes the best model if the run has
one (else the final checkpoint), bakes VecNormalize statistics into the graph if present, asks the
env for its ``ACTION_NAMES``, exports and verifies (ONNX vs SB3 on ``verify.n_samples``
observations), then plays ``evaluation.n_episodes`` episodes with the EXPORTED policy and records
the scores (and the run's ``summary.json``) in the card. Settings: ``configs/export.yaml``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # running as a script from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from rl_shop.policies.card import CARD_FILENAME, EvaluationInfo, save_card  # noqa: E402
from rl_shop.policies.export import (  # noqa: E402
    ExportResult,
    PolicyExportError,
    canonical_algo,
    export_model,
    load_sb3_model,
    load_vecnormalize,
)
from rl_shop.policies.loader import PolicyLoadError, load_policy  # noqa: E402
from rl_shop.train.run_dir import algo_of, env_id_of, find_run_artifacts  # noqa: E402


def _make_env(env_id: str, kwargs: dict[str, Any]) -> Any:
    from rl_shop.train.config import EnvSettings
    from rl_shop.train.env_factory import make_env

    return make_env(EnvSettings(name=env_id, id=env_id, kwargs=kwargs))


def _env_action_names(env: Any) -> list[str] | None:
    """The env instance's ``ACTION_NAMES`` (config-dependent grids), else its module's constant."""
    try:
        names = env.get_wrapper_attr("ACTION_NAMES")
    except AttributeError:
        names = getattr(sys.modules.get(type(env.unwrapped).__module__), "ACTION_NAMES", None)
    return None if names is None else [str(n) for n in names]


def _evaluate(policy: Any, env: Any, n_episodes: int, seed: int, info_keys: list[str]) -> dict[str, Any]:
    from rl_shop.train.evaluation import run_episodes

    result = run_episodes(env, policy.act, n_episodes, seed, info_keys=info_keys)
    return {
        "mean_return": result.mean_return,
        "std_return": result.std_return,
        "mean_length": float(sum(result.lengths) / len(result.lengths)),
        "n_episodes": n_episodes,
        "seed": seed,
        **{f"mean_{k}": v for k, v in result.info_means.items()},
    }


def run_export(cfg: DictConfig) -> ExportResult:
    """Do one export as configured; raises PolicyExportError / PolicyLoadError with a clear message."""
    out = Path(cfg.out)
    if (out / CARD_FILENAME).exists() and not cfg.overwrite:
        raise PolicyExportError(f"{out} already holds an exported policy; pass overwrite=true to replace it")
    artifacts = find_run_artifacts(
        cfg.run_dir,
        checkpoint=str(cfg.checkpoint),
        best_patterns=list(cfg.checkpoint_patterns.best),
        final_patterns=list(cfg.checkpoint_patterns.final),
        vecnormalize_patterns=list(cfg.vecnormalize_patterns),
    )
    env_id = cfg.env_id or env_id_of(artifacts.config)
    if not env_id:
        raise PolicyExportError(f"{artifacts.run_dir}/config.yaml names no env.id; pass env_id=<gymnasium id>")
    config_algo = cfg.algo or algo_of(artifacts.config)
    model, algo = load_sb3_model(artifacts.checkpoint, canonical_algo(config_algo) if config_algo else None)
    normalization = load_vecnormalize(artifacts.vecnormalize) if artifacts.vecnormalize else None

    env_cfg = artifacts.config.get("env") if isinstance(artifacts.config.get("env"), dict) else {}
    env = _make_env(env_id, dict(env_cfg.get("kwargs") or {}))
    action_names = list(cfg.action_names) if cfg.action_names else _env_action_names(env)

    result = export_model(
        model,
        out,
        env_id=env_id,
        algo=algo,
        action_names=action_names,
        featurizer=cfg.featurizer,
        normalization=normalization,
        run_dir=artifacts.run_dir,
        checkpoint=artifacts.checkpoint,
        training_config=artifacts.config,
        n_verify=int(cfg.verify.n_samples),
        verify_seed=int(cfg.verify.seed),
        atol=float(cfg.verify.atol),
        opset=int(cfg.onnx.opset),
    )

    metrics: dict[str, Any] = {}
    source = []
    if int(cfg.evaluation.n_episodes) > 0:
        policy = load_policy(out, expect_env_id=env_id, expect_action_names=action_names)
        info_keys = list((artifacts.config.get("logging") or {}).get("info_keys") or [])
        metrics["exported_policy"] = _evaluate(
            policy, env, int(cfg.evaluation.n_episodes), int(cfg.evaluation.seed), info_keys
        )
        source.append("export-time evaluation of the ONNX policy")
    if artifacts.summary is not None:
        metrics["run_summary"] = json.loads(json.dumps(artifacts.summary, default=str))
        source.append(f"{artifacts.run_dir}/summary.json")
    env.close()
    if metrics:
        card = result.card.model_copy(update={"evaluation": EvaluationInfo(source=" + ".join(source), metrics=metrics)})
        save_card(card, result.card_path)
        result = ExportResult(result.out_dir, result.onnx_path, result.card_path, card)
    return result


@hydra.main(config_path="../configs", config_name="export", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: export, print a one-screen summary, exit 2 with a message on bad input."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        print(
            f"export failed: set {', '.join(missing)} on the command line, e.g.\n"
            "  python experiments/export.py run_dir=checkpoints/runs/<experiment>/<timestamp> out=checkpoints/guider",
            file=sys.stderr,
        )
        sys.exit(2)
    try:
        result = run_export(cfg)
    except (PolicyExportError, PolicyLoadError, ValueError) as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        sys.exit(2)
    card = result.card
    print(f"exported {card.training.algo} policy for {card.env_id} -> {result.out_dir}")
    print(f"  onnx      {result.onnx_path} (sha256 {card.onnx.sha256[:16]}...)")
    print(f"  card      {result.card_path}")
    print(
        f"  layout    {card.featurizer.module} {card.featurizer.layout_version} ({card.featurizer.n_features} features)"
    )
    print(f"  actions   {card.action_space.names}")
    if card.verification is not None:
        v = card.verification
        print(
            f"  verified  {v.n_samples} obs, action agreement {v.action_agreement:.3f}, max|diff| {v.max_abs_diff:.2g}"
        )
    if card.evaluation is not None and "exported_policy" in card.evaluation.metrics:
        ev = card.evaluation.metrics["exported_policy"]
        print(
            f"  eval      mean return {ev['mean_return']:.3f} +- {ev['std_return']:.3f} over {ev['n_episodes']} episodes"
        )


if __name__ == "__main__":
    main()
