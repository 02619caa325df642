"""One training run from a composed config: the library behind experiments/train.py and tune.py.

Order of work: validate config -> seed -> envs -> (resume: reload model, replay buffer, state) ->
baseline references -> learn with callbacks -> final eval + checkpoint -> summary.json.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
from gymnasium import spaces
from omegaconf import DictConfig, OmegaConf
from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.vec_env import VecEnv

from rl_shop.config_files import read_config
from rl_shop.train.algos import build_model, load_model, uses_action_masks
from rl_shop.train.baselines import load_heuristic
from rl_shop.train.callbacks import EvalCheckpointCallback, EvalHook, InfoMetricsCallback, StopRequest
from rl_shop.train.checkpointing import (
    MODEL_STEM,
    REPLAY_FILE,
    TrainState,
    find_run_dir,
    latest_checkpoint,
    new_run_dir,
    read_state,
    runs_root,
)
from rl_shop.train.config import TrainSettings, validate_config
from rl_shop.train.env_factory import ensure_registered, make_env, make_vec_env
from rl_shop.train.errors import TrainConfigError, TrainingInterrupted
from rl_shop.train.evaluation import random_act_fn, run_episodes
from rl_shop.train.seeding import configure_torch, resolve_device, seed_everything
from rl_shop.train.summary import TrainSummary, write_summary

log = logging.getLogger(__name__)

REFERENCE_FILE = "references.json"


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[StopRequest]:
    """Turn SIGTERM/SIGINT into a stop request (main thread only; elsewhere a no-op)."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: object) -> None:
        stop.requested = True
        stop.signal_name = signal.Signals(signum).name

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _prepare_run_dir(cfg: DictConfig, s: TrainSettings) -> tuple[Path, DictConfig, bool]:
    """New run: create the dir and save config.yaml.  Resume: find the dir, reuse its config."""
    root = runs_root(s.runs_root)
    if s.resume:
        run_dir = find_run_dir(root, s.experiment_name, s.run_dir)
        saved = OmegaConf.create(read_config(run_dir / "config.yaml", what="saved run config", error=TrainConfigError))
        # The saved config wins: a resumed run keeps its hyperparameters and its step budget.
        return run_dir, saved, True
    if s.run_dir:
        run_dir = Path(s.run_dir)
        if (run_dir / "config.yaml").exists():
            raise TrainConfigError(f"run_dir={run_dir} already holds a run; add resume=true to continue it")
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        run_dir = new_run_dir(root, s.experiment_name, s.seed)
    resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    assert isinstance(resolved, DictConfig)  # the container of a DictConfig is a dict
    if "hydra" in resolved:
        del resolved["hydra"]
    resolved.run_dir = str(run_dir)
    OmegaConf.save(resolved, run_dir / "config.yaml")
    return run_dir, resolved, False


def _references(s: TrainSettings, run_dir: Path, logger: Logger) -> tuple[float | None, float | None]:
    """Heuristic and random returns on the eval seeds, computed once per run and cached."""
    path = run_dir / REFERENCE_FILE
    if path.is_file():
        data = json.loads(path.read_text())
        return data.get("heuristic"), data.get("random")
    heuristic = random_ret = None
    if s.baseline.enabled:
        env = make_env(s.env, seed=s.seed + s.eval.seed_offset)
        seed = s.seed + s.eval.seed_offset
        policy = load_heuristic(s.env, s.baseline.policy, env)
        if policy is not None:
            res = run_episodes(env, policy.act, s.baseline.n_episodes, seed, s.logging.info_keys)
            heuristic = res.mean_return
            logger.record("reference/heuristic_return", heuristic)
            for k, v in res.info_means.items():
                logger.record(f"reference/heuristic_{k}", v)
        if s.baseline.random_reference:
            if not isinstance(env.action_space, spaces.Discrete):
                raise TrainConfigError(
                    f"baseline.random_reference needs a Discrete action space, {s.env.id} has {env.action_space}; "
                    "set baseline.random_reference=false"
                )
            res = run_episodes(env, random_act_fn(env.action_space, s.seed), s.baseline.n_episodes, seed)
            random_ret = res.mean_return
            logger.record("reference/random_return", random_ret)
        env.close()
        logger.dump(0)
    path.write_text(json.dumps({"heuristic": heuristic, "random": random_ret}))
    return heuristic, random_ret


def train(cfg: DictConfig, on_eval: EvalHook | None = None) -> TrainSummary:
    """Train (or resume) one run described by a composed train config; return its summary.

    `on_eval(step, mean_return)` is called after each periodic evaluation; raising from it
    (e.g. optuna.TrialPruned) stops the run after the current step, with envs closed.
    """
    s = validate_config(cfg)
    ensure_registered(s.env.id)  # fail before a run directory is created
    run_dir, saved_cfg, resumed = _prepare_run_dir(cfg, s)
    if resumed:
        s = validate_config(saved_cfg)
    configure_torch(s.hardware.torch_threads)
    device = resolve_device(s.hardware.device)
    seed_everything(s.seed)

    state = TrainState()
    ckpt = latest_checkpoint(run_dir) if resumed else None
    if s.trainer.name == "torchrl":
        return _train_torchrl(s, run_dir, resumed, ckpt, device, on_eval)
    with contextlib.ExitStack() as stack:
        vec_env = make_vec_env(s.env, s.hardware, s.seed)
        stack.callback(vec_env.close)
        eval_env = make_env(s.env, seed=s.seed + s.eval.seed_offset)
        stack.callback(eval_env.close)
        stop = stack.enter_context(_stop_on_signals())
        return _train_loop(s, run_dir, resumed, ckpt, state, vec_env, eval_env, device, on_eval, stop)


def _train_torchrl(
    s: TrainSettings, run_dir: Path, resumed: bool, ckpt: Path | None, device: str, on_eval: EvalHook | None
) -> TrainSummary:
    """``trainer=torchrl``: the same run directory, references, logger and summary; TorchRL learns."""
    from rl_shop.train.torchrl_runner import train_torchrl

    with contextlib.ExitStack() as stack:
        eval_env = make_env(s.env, seed=s.seed + s.eval.seed_offset)
        stack.callback(eval_env.close)
        stop = stack.enter_context(_stop_on_signals())
        formats = ["tensorboard"] if s.logging.tensorboard else []
        if s.logging.verbose:
            formats.append("stdout")
        logger = configure(str(run_dir / "tb"), formats)
        heuristic, random_ret = _references(s, run_dir, logger)
        refs = {"heuristic": heuristic, "random": random_ret}
        return train_torchrl(s, run_dir, resumed, ckpt, device, eval_env, refs, logger, on_eval, stop)


def _train_loop(
    s: TrainSettings,
    run_dir: Path,
    resumed: bool,
    ckpt: Path | None,
    state: TrainState,
    vec_env: VecEnv,
    eval_env: gym.Env,
    device: str,
    on_eval: EvalHook | None,
    stop: StopRequest,
) -> TrainSummary:
    """Build or reload the model, run learn() with the callbacks, finish with eval + summary."""
    if ckpt is not None:
        state = read_state(ckpt)
        model = load_model(s.algo, ckpt / MODEL_STEM, vec_env, device)
        if hasattr(model, "load_replay_buffer") and (ckpt / REPLAY_FILE).is_file():
            model.load_replay_buffer(str(ckpt / REPLAY_FILE))
        log.info("resumed %s from %s at step %d", run_dir, ckpt.name, state.num_timesteps)
    else:
        if resumed:
            log.warning("no complete checkpoint in %s; restarting it from step 0", run_dir)
        model = build_model(s.algo, vec_env, s.seed, device, verbose=s.logging.verbose)
    formats = ["tensorboard"] if s.logging.tensorboard else []
    if s.logging.verbose:
        formats.append("stdout")
    logger = configure(str(run_dir / "tb"), formats)
    model.set_logger(logger)
    heuristic, random_ret = _references(s, run_dir, logger)

    wall_start = time.time() - state.wall_time_s
    steps_at_start = state.num_timesteps
    eval_cb = EvalCheckpointCallback(
        eval_env=eval_env,
        run_dir=run_dir,
        state=state,
        eval_freq=s.eval.freq,
        n_eval_episodes=s.eval.n_episodes,
        eval_seed=s.seed + s.eval.seed_offset,
        deterministic=s.eval.deterministic,
        masked=uses_action_masks(s.algo),
        checkpoint_freq=s.checkpoint.freq,
        keep_last=s.checkpoint.keep_last,
        save_replay_buffer=s.checkpoint.save_replay_buffer,
        info_keys=s.logging.info_keys,
        wall_clock_start=wall_start,
        on_eval=on_eval,
        stop=stop,
        references={"heuristic": heuristic, "random": random_ret},
    )
    callbacks = [InfoMetricsCallback(s.logging.info_keys, s.logging.info_window), eval_cb]
    remaining = s.total_timesteps - state.num_timesteps
    t0 = time.time()
    if remaining > 0:
        model.learn(
            total_timesteps=remaining,
            callback=callbacks,
            reset_num_timesteps=ckpt is None,
            progress_bar=s.logging.progress_bar,
        )
    else:
        eval_cb.init_callback(model)  # type: ignore[arg-type]
    learn_s = time.time() - t0
    steps = int(model.num_timesteps)
    if stop.requested:
        raise TrainingInterrupted(run_dir, steps, stop.signal_name)
    # Final evaluation + checkpoint unless the schedule just did them at this very step.
    if not state.eval_history or state.eval_history[-1]["step"] != steps:
        eval_cb.evaluate()
    if not (run_dir / "checkpoints" / f"step_{steps}" / "state.json").is_file():
        eval_cb.checkpoint()
    wall = time.time() - wall_start
    final_res = eval_cb.last_result
    summary = TrainSummary(
        experiment=s.experiment_name,
        env_id=s.env.id,
        env_name=s.env.name,
        algo=s.algo.name,
        seed=s.seed,
        run_dir=str(run_dir),
        total_timesteps=s.total_timesteps,
        num_timesteps=steps,
        final_eval_return=state.eval_history[-1]["mean_return"],
        best_eval_return=state.best_mean_reward,
        best_step=state.best_step,
        heuristic_return=heuristic,
        random_return=random_ret,
        wall_time_s=wall,
        steps_per_s=(steps - steps_at_start) / learn_s if learn_s > 0 else math.nan,
        device=device,
        resumed=resumed,
        eval_history=state.eval_history,
        final_info=final_res.info_means if final_res is not None else {},
    )
    write_summary(run_dir, summary)
    return summary
