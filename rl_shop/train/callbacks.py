"""SB3 callbacks of a training run: paper metrics from `info`, evaluation, checkpoints.

They work with SB3 algorithms and with the tabular QLearning (which calls the same callback API),
so every algorithm gets the same TensorBoard scalars and the same checkpoint layout.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from rl_shop.train.algos import save_model
from rl_shop.train.checkpointing import (
    MODEL_STEM,
    REPLAY_FILE,
    TrainState,
    prune_checkpoints,
    write_state,
)
from rl_shop.train.evaluation import EPISODE_SUM_KEYS, EvalResult, finite_float, model_act_fn, run_episodes

EvalHook = Callable[[int, float], None]


class DivergenceError(RuntimeError):
    """Training produced a non-finite evaluation return or non-finite weights."""


class StopRequest:
    """Set by a SIGTERM/SIGINT handler; the callback then checkpoints and stops learning."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""


class InfoMetricsCallback(BaseCallback):
    """Log the env's paper quantities as `episode/<key>` running means over finished episodes.

    A key in `sum_keys` (default: ``intent_gain``, a per-step increment) is summed over the steps
    of each episode; every other key is an end-of-episode value read from the last step's info.
    Rates (clicked, purchased, reformulations) come out as fractions because the mean of a 0/1
    end-of-episode flag over episodes is the rate.
    """

    def __init__(self, keys: list[str], window: int = 100, sum_keys: Sequence[str] = EPISODE_SUM_KEYS) -> None:
        super().__init__()
        self.keys = list(keys)
        self.sum_keys = [k for k in self.keys if k in set(sum_keys)]
        self.buffers: dict[str, deque[float]] = {k: deque(maxlen=window) for k in self.keys}
        # Running sums of the episodes in progress, one row per sub-env (sized on the first step).
        self._sums: dict[str, np.ndarray] = {}
        self._seen: dict[str, np.ndarray] = {}

    def _on_step(self) -> bool:
        dones = self.locals.get("dones")
        infos = self.locals.get("infos")
        if dones is None or infos is None:
            return True
        n = len(infos)
        for key in self.sum_keys:
            if key not in self._sums or len(self._sums[key]) != n:
                self._sums[key] = np.zeros(n)
                self._seen[key] = np.zeros(n, dtype=bool)
            for env_i, info in enumerate(infos):
                value = finite_float(info.get(key))
                if value is not None:
                    self._sums[key][env_i] += value
                    self._seen[key][env_i] = True
        for i in np.flatnonzero(np.asarray(dones)):
            info = infos[i]
            for key in self.keys:
                if key in self._sums:
                    if self._seen[key][i]:
                        self.buffers[key].append(float(self._sums[key][i]))
                    self._sums[key][i] = 0.0
                    self._seen[key][i] = False
                    continue
                value = finite_float(info.get(key))
                if value is not None:
                    self.buffers[key].append(value)
        return True

    def _on_rollout_end(self) -> None:
        for key, buf in self.buffers.items():
            if buf:
                self.logger.record(f"episode/{key}", float(np.mean(buf)))


class EvalCheckpointCallback(BaseCallback):
    """Periodic evaluation on a separate seeded env, best-model saving and periodic checkpoints.

    Evaluations and checkpoints trigger on the global step count (``model.num_timesteps``), so a
    resumed run hits the same schedule as an uninterrupted one.  `on_eval` (e.g. an Optuna
    reporter) is called with (step, mean_return) and may raise to stop the run.
    """

    def __init__(
        self,
        eval_env: gym.Env,
        run_dir: Path,
        state: TrainState,
        eval_freq: int,
        n_eval_episodes: int,
        eval_seed: int,
        deterministic: bool,
        masked: bool,
        checkpoint_freq: int,
        keep_last: int,
        save_replay_buffer: bool,
        info_keys: list[str],
        wall_clock_start: float,
        on_eval: EvalHook | None = None,
        stop: StopRequest | None = None,
        references: dict[str, float | None] | None = None,
    ) -> None:
        super().__init__()
        self.stop = stop
        # Logged beside eval/mean_reward at every evaluation, so they draw as flat reference lines.
        self.references = {k: v for k, v in (references or {}).items() if v is not None}
        self.eval_env = eval_env
        self.run_dir = run_dir
        self.state = state
        self.eval_freq = eval_freq
        self.n_eval_episodes = n_eval_episodes
        self.eval_seed = eval_seed
        self.deterministic = deterministic
        self.masked = masked
        self.checkpoint_freq = checkpoint_freq
        self.keep_last = keep_last
        self.save_replay_buffer = save_replay_buffer
        self.info_keys = info_keys
        self.wall_clock_start = wall_clock_start
        self.on_eval = on_eval
        self.last_result: EvalResult | None = None

    def _init_callback(self) -> None:
        done = self.state.num_timesteps
        self._next_eval = (done // self.eval_freq + 1) * self.eval_freq
        self._next_ckpt = (done // self.checkpoint_freq + 1) * self.checkpoint_freq

    def _on_step(self) -> bool:
        steps = self.model.num_timesteps
        if self.stop is not None and self.stop.requested:
            self.checkpoint()  # graceful kill (preemption, Ctrl-C): no progress lost
            return False
        if steps >= self._next_eval:
            self.evaluate()
            while self._next_eval <= steps:
                self._next_eval += self.eval_freq
        if steps >= self._next_ckpt:
            self.checkpoint()
            while self._next_ckpt <= steps:
                self._next_ckpt += self.checkpoint_freq
        return True

    # -- public so the runner can force a final evaluation / checkpoint -----------------------
    def evaluate(self) -> EvalResult:
        steps = int(self.model.num_timesteps)
        act = model_act_fn(self.model, self.deterministic, self.masked)
        result = run_episodes(self.eval_env, act, self.n_eval_episodes, self.eval_seed, self.info_keys)
        mean = result.mean_return
        self.last_result = result
        self.state.eval_history.append({"step": steps, "mean_return": mean, "std_return": result.std_return})
        self.logger.record("eval/mean_reward", mean)
        self.logger.record("eval/std_reward", result.std_return)
        self.logger.record("eval/mean_ep_length", float(np.mean(result.lengths)))
        for key, value in result.info_means.items():
            self.logger.record(f"eval/{key}", value)
        for key, value in self.references.items():
            self.logger.record(f"eval/{key}_return", value)
        self.logger.dump(steps)
        if not math.isfinite(mean) or not _weights_finite(self.model):
            raise DivergenceError(f"non-finite evaluation return {mean} or weights at step {steps}")
        if mean > self.state.best_mean_reward:
            self.state.best_mean_reward = mean
            self.state.best_step = steps
            best = self.run_dir / "best"
            best.mkdir(parents=True, exist_ok=True)
            save_model(self.model, best / MODEL_STEM)
            (best / "best.json").write_text(f'{{"step": {steps}, "mean_return": {mean}}}\n')
        if self.on_eval is not None:
            self.on_eval(steps, mean)
        return result

    def checkpoint(self) -> Path:
        steps = int(self.model.num_timesteps)
        directory = self.run_dir / "checkpoints" / f"step_{steps}"
        directory.mkdir(parents=True, exist_ok=True)
        save_model(self.model, directory / MODEL_STEM)
        if self.save_replay_buffer and hasattr(self.model, "save_replay_buffer"):
            self.model.save_replay_buffer(str(directory / REPLAY_FILE))
        self.state.num_timesteps = steps
        self.state.wall_time_s = time.time() - self.wall_clock_start
        write_state(directory, self.state)
        prune_checkpoints(self.run_dir, self.keep_last)
        return directory


def _weights_finite(model: object) -> bool:
    policy = getattr(model, "policy", None)
    if policy is None:
        q = getattr(model, "q", None)
        return q is None or all(np.isfinite(v).all() for v in q.values())
    return all(bool(p.detach().isfinite().all()) for p in policy.parameters())
