"""Tabular Q-learning baseline, plain and readable (CleanRL style), on the same envs as SB3.

The observation vector is rounded to a grid of ``bin_width`` and the rounded tuple is the table
key, so continuous featurized observations become a (growing) finite state set.  Exploration is
epsilon-greedy with a linear decay over ``exploration_fraction`` of the run, and respects action
masks when the env provides them.  The class mimics the parts of SB3's algorithm API the training
runner uses (``learn`` with SB3 callbacks, ``predict``, ``save``/``load``, ``logger``,
``num_timesteps``) so that checkpoints, evaluation and TensorBoard go through one code path.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs


def _array_obs(obs: VecEnvObs) -> np.ndarray:
    """A VecEnv's observations as one ``(n_envs, ...)`` array (the table keys flat vectors)."""
    if not isinstance(obs, np.ndarray):
        raise TypeError(
            f"tabular Q-learning needs array observations, got {type(obs).__name__} "
            "(Dict / Tuple observation spaces are not supported)"
        )
    return obs


class QLearning:
    """Epsilon-greedy tabular Q-learning over a discretised observation."""

    def __init__(
        self,
        env: VecEnv,
        learning_rate: float = 0.1,
        gamma: float = 0.95,
        bin_width: float = 0.25,
        exploration_fraction: float = 0.5,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        seed: int = 0,
    ) -> None:
        if not isinstance(env.action_space, spaces.Discrete):
            raise ValueError(f"tabular Q-learning needs a Discrete action space, got {env.action_space}")
        if bin_width <= 0:
            raise ValueError(f"bin_width must be > 0, got {bin_width}")
        self.env: VecEnv | None = env
        self.n_actions = int(env.action_space.n)
        self.learning_rate = learning_rate
        self.gamma = gamma
        self.bin_width = bin_width
        self.exploration_fraction = exploration_fraction
        self.exploration_initial_eps = exploration_initial_eps
        self.exploration_final_eps = exploration_final_eps
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.q: defaultdict[tuple[int, ...], np.ndarray] = defaultdict(self._zeros)
        self.num_timesteps = 0
        self._total_timesteps = 0
        self._last_obs: np.ndarray | None = None
        self._logger: Logger = configure(None, [""])
        self.exploration_rate = exploration_initial_eps

    def _zeros(self) -> np.ndarray:
        return np.zeros(self.n_actions, dtype=np.float64)

    # -- SB3-like surface -------------------------------------------------------------------
    @property
    def logger(self) -> Logger:
        return self._logger

    def set_logger(self, logger: Logger) -> None:
        self._logger = logger

    def get_env(self) -> VecEnv | None:
        return self.env

    def set_env(self, env: VecEnv) -> None:
        self.env = env
        self._last_obs = None

    def key(self, obs: np.ndarray) -> tuple[int, ...]:
        """Table key of one observation: its coordinates rounded to the bin grid."""
        return tuple(np.round(np.asarray(obs, dtype=np.float64).ravel() / self.bin_width).astype(np.int64).tolist())

    def _greedy(self, obs: np.ndarray, mask: np.ndarray | None) -> int:
        q = self.q.get(self.key(obs))
        if q is None:
            q = self._zeros()
        if mask is not None:
            q = np.where(mask, q, -np.inf)
        best = np.flatnonzero(q == q.max())
        return int(best[0])

    def _random(self, mask: np.ndarray | None) -> int:
        if mask is None:
            return int(self.rng.integers(self.n_actions))
        return int(self.rng.choice(np.flatnonzero(mask)))

    def predict(
        self,
        observation: np.ndarray,
        state: object = None,
        episode_start: object = None,
        deterministic: bool = True,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, None]:
        """Greedy (or epsilon-greedy) actions for one observation or a batch."""
        obs = np.asarray(observation)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        masks = None if action_masks is None else np.asarray(action_masks).reshape(len(batch), -1)
        acts = []
        for i, o in enumerate(batch):
            m = None if masks is None else masks[i]
            explore = not deterministic and self.rng.random() < self.exploration_rate
            acts.append(self._random(m) if explore else self._greedy(o, m))
        out = np.asarray(acts, dtype=np.int64)
        return (out[0] if single else out), None

    def _epsilon(self) -> float:
        frac = min(1.0, self.num_timesteps / max(1.0, self.exploration_fraction * self._total_timesteps))
        return self.exploration_initial_eps + frac * (self.exploration_final_eps - self.exploration_initial_eps)

    def _masks(self, env: VecEnv) -> np.ndarray | None:
        try:
            return np.stack(env.env_method("action_masks"))
        except AttributeError:
            return None

    def learn(
        self,
        total_timesteps: int,
        callback: BaseCallback | list[BaseCallback] | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
        **_: object,
    ) -> QLearning:
        """Run `total_timesteps` more env steps (summed over envs), calling SB3 callbacks."""
        env = self.env
        assert env is not None, "set an env before learn()"
        if reset_num_timesteps:
            self.num_timesteps = 0
        self._total_timesteps = self.num_timesteps + total_timesteps
        cb = CallbackList(callback) if isinstance(callback, list) else callback
        if progress_bar:
            from stable_baselines3.common.callbacks import ProgressBarCallback

            cb = CallbackList([c for c in [cb, ProgressBarCallback()] if c is not None])
        if cb is not None:
            cb.init_callback(self)  # type: ignore[arg-type]
            cb.on_training_start(locals(), globals())
        if self._last_obs is None or reset_num_timesteps:
            self._last_obs = _array_obs(env.reset())
        obs = self._last_obs
        has_masks = True
        while self.num_timesteps < self._total_timesteps:
            self.exploration_rate = self._epsilon()
            masks = self._masks(env) if has_masks else None
            has_masks = masks is not None
            actions, _state = self.predict(obs, deterministic=False, action_masks=masks)
            env.step_async(actions)
            step_obs, rewards, dones, infos = env.step_wait()
            new_obs = _array_obs(step_obs)
            for i in range(env.num_envs):
                s = self.key(obs[i])
                a = int(actions[i])
                next_o = infos[i].get("terminal_observation", new_obs[i]) if dones[i] else new_obs[i]
                terminal = bool(dones[i]) and not infos[i].get("TimeLimit.truncated", False)
                target = float(rewards[i])
                if not terminal:
                    target += self.gamma * float(np.max(self.q[self.key(next_o)]))
                self.q[s][a] += self.learning_rate * (target - self.q[s][a])
            obs = new_obs
            self._last_obs = obs
            self.num_timesteps += env.num_envs
            if cb is not None:
                cb.update_locals({"infos": infos, "dones": dones, "rewards": rewards, "new_obs": new_obs})
                if not cb.on_step():
                    break
                if dones.any():
                    cb.on_rollout_end()
                    cb.on_rollout_start()
        self.logger.record("train/table_size", len(self.q))
        self.logger.record("rollout/exploration_rate", self.exploration_rate)
        self.logger.dump(self.num_timesteps)
        if cb is not None:
            cb.on_training_end()
        return self

    # -- persistence (no pickles: a JSON header + an npz table) ------------------------------
    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.q.keys())
        width = len(keys[0]) if keys else 0
        with open(path.with_suffix(".npz"), "wb") as fh:
            np.savez(
                fh,
                keys=np.asarray(keys, dtype=np.int64).reshape(len(keys), width),
                values=np.asarray([self.q[k] for k in keys], dtype=np.float64).reshape(len(keys), self.n_actions),
                rng_state=np.frombuffer(json.dumps(self.rng.bit_generator.state).encode(), dtype=np.uint8),
            )
        meta = {
            "algorithm": "qlearning",
            "n_actions": self.n_actions,
            "learning_rate": self.learning_rate,
            "gamma": self.gamma,
            "bin_width": self.bin_width,
            "exploration_fraction": self.exploration_fraction,
            "exploration_initial_eps": self.exploration_initial_eps,
            "exploration_final_eps": self.exploration_final_eps,
            "seed": self.seed,
            "num_timesteps": self.num_timesteps,
        }
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, path: str | Path, env: VecEnv | None = None, **_: object) -> QLearning:
        path = Path(path)
        meta_path = path.with_suffix(".json")
        if not meta_path.is_file():
            raise FileNotFoundError(f"no Q-table header at {meta_path}; was this saved by QLearning.save?")
        meta = json.loads(meta_path.read_text())
        if env is None:
            raise ValueError("QLearning.load needs the env (it defines the action space)")
        model = cls(
            env,
            learning_rate=meta["learning_rate"],
            gamma=meta["gamma"],
            bin_width=meta["bin_width"],
            exploration_fraction=meta["exploration_fraction"],
            exploration_initial_eps=meta["exploration_initial_eps"],
            exploration_final_eps=meta["exploration_final_eps"],
            seed=meta["seed"],
        )
        with np.load(path.with_suffix(".npz")) as data:
            for k, v in zip(data["keys"], data["values"]):
                model.q[tuple(int(x) for x in k)] = v.copy()
            model.rng.bit_generator.state = json.loads(data["rng_state"].tobytes().decode())
        model.num_timesteps = int(meta["num_timesteps"])
        return model
