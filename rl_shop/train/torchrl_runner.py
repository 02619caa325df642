"""``trainer=torchrl``: device-resident PPO on the torch-batched env kernels, with TorchRL.

Selected by ``experiments/train.py trainer=torchrl``. The same run directory, config, evaluation,
TensorBoard scalar names, checkpoint schedule, resume and summary.json as the SB3 path
(``rl_shop.train.runner``); only the learner differs:

* envs: ``rl_shop.train.torchrl_envs.KernelEnv`` over ``envs/<env>_torch.py`` (``hardware.n_envs``
  sub-envs on ``hardware.device``): no numpy and no host round trip per step;
* collection: ``torchrl.collectors.Collector`` (``n_steps`` steps of every sub-env per batch);
* advantages: ``torchrl.objectives.value.GAE``; loss: ``torchrl.objectives.ClipPPOLoss``;
  minibatches from a ``ReplayBuffer`` over ``LazyTensorStorage`` on the same device.

Hyperparameters are read from the ``algo`` group with SB3's names (``learning_rate``,
``n_steps``, ``batch_size``, ``n_epochs``, ``gamma``, ``gae_lambda``, ``clip_range``, ``ent_coef``,
``vf_coef``, ``max_grad_norm``, ``policy_kwargs.net_arch``), so ``algo=ppo`` means corresponding
settings on both trainers. Evaluation runs the learned actor (argmax of its logits) on the
single Gymnasium env with the SB3 path's seeds, so ``eval/mean_reward`` is comparable across
trainers. At the end the actor is exported with ``rl_shop.policies.export.export_model`` to
``<run_dir>/policy/`` (``policy.onnx`` + ``policy_card.json``, verified through the loader).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rl_shop.train.checkpointing import TrainState, prune_checkpoints, read_state, write_state
from rl_shop.train.config import TrainSettings
from rl_shop.train.errors import TrainConfigError, TrainingInterrupted
from rl_shop.train.evaluation import EvalResult, run_episodes
from rl_shop.train.summary import TrainSummary, write_summary

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
EXPORT_DIR = "policy"
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
_PPO_KEYS = {
    "learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "clip_range",
    "ent_coef", "vf_coef", "max_grad_norm",
}  # fmt: skip


def mlp(
    n_in: int, hidden: list[int], n_out: int, activation: type[nn.Module], head_gain: float | None = None
) -> nn.Sequential:
    """``Linear -> act`` per hidden size, then a linear head (SB3's MlpPolicy layout).

    ``head_gain``: SB3's ``ortho_init`` (orthogonal weights, gain sqrt(2) in the hidden layers and
    ``head_gain`` in the head: 0.01 for the policy logits, 1 for the value; zero biases);
    ``None`` keeps torch's default initialisation.
    """
    layers: list[nn.Module] = []
    last = n_in
    for h in hidden:
        layers += [nn.Linear(last, int(h)), activation()]
        last = int(h)
    layers.append(nn.Linear(last, n_out))
    if head_gain is not None:
        linears = [m for m in layers if isinstance(m, nn.Linear)]
        for k, lin in enumerate(linears):
            nn.init.orthogonal_(lin.weight, gain=head_gain if k == len(linears) - 1 else math.sqrt(2))
            nn.init.zeros_(lin.bias)
    return nn.Sequential(*layers)


def ppo_settings(s: TrainSettings) -> dict[str, Any]:
    """The PPO hyperparameters of the ``algo`` group (SB3 names, SB3 defaults where absent)."""
    if s.algo.algorithm != "ppo":
        raise TrainConfigError(
            f"trainer=torchrl trains algo=ppo (TorchRL ClipPPOLoss); got algo.algorithm={s.algo.algorithm!r}. "
            "Use trainer=sb3 for dqn / a2c / maskable_ppo / qlearning."
        )
    kw = dict(s.algo.kwargs)
    unknown = sorted(set(kw) - _PPO_KEYS)
    if unknown:
        raise TrainConfigError(
            f"trainer=torchrl does not support algo.kwargs {unknown} (supported: {sorted(_PPO_KEYS)})"
        )
    missing = sorted(_PPO_KEYS - set(kw)) + ([] if "net_arch" in s.algo.policy_kwargs else ["policy_kwargs.net_arch"])
    if missing:
        raise TrainConfigError(f"trainer=torchrl needs algo.kwargs {missing}; configs/algo/ppo.yaml sets every one")
    arch = s.algo.policy_kwargs["net_arch"]
    pi, vf = (arch["pi"], arch["vf"]) if isinstance(arch, dict) else (arch, arch)
    # SB3's PPO MlpPolicy default activation, so that the two trainers build the same network
    act = str(s.algo.policy_kwargs.get("activation", "tanh")).lower()
    if act not in ACTIVATIONS:
        raise TrainConfigError(f"trainer=torchrl: policy_kwargs.activation must be one of {sorted(ACTIVATIONS)}")
    out = dict(
        learning_rate=float(kw["learning_rate"]),
        n_steps=int(kw["n_steps"]),
        batch_size=int(kw["batch_size"]),
        n_epochs=int(kw["n_epochs"]),
        gamma=float(kw["gamma"]),
        gae_lambda=float(kw["gae_lambda"]),
        clip_range=float(kw["clip_range"]),
        ent_coef=float(kw["ent_coef"]),
        vf_coef=float(kw["vf_coef"]),
        max_grad_norm=float(kw["max_grad_norm"]),
        pi=[int(h) for h in pi],
        vf=[int(h) for h in vf],
        activation=act,
    )
    return out


class PPOAgent:
    """Actor (logits) and critic MLPs wrapped as TorchRL modules, plus the PPO loss and GAE."""

    def __init__(self, n_obs: int, n_actions: int, hp: dict[str, Any], device: torch.device, action_spec: Any) -> None:
        from tensordict.nn import TensorDictModule
        from torchrl.modules import ProbabilisticActor, ValueOperator
        from torchrl.objectives import ClipPPOLoss
        from torchrl.objectives.value import GAE

        act = ACTIVATIONS[hp["activation"]]
        self.actor_net = mlp(n_obs, hp["pi"], n_actions, act, head_gain=0.01).to(device)
        self.critic_net = mlp(n_obs, hp["vf"], 1, act, head_gain=1.0).to(device)
        self.actor = ProbabilisticActor(
            TensorDictModule(self.actor_net, in_keys=["observation"], out_keys=["logits"]),
            in_keys=["logits"],
            out_keys=["action"],
            spec=action_spec,
            distribution_class=torch.distributions.Categorical,
            return_log_prob=True,
        )
        self.critic = ValueOperator(self.critic_net, in_keys=["observation"])
        self.gae = GAE(gamma=hp["gamma"], lmbda=hp["gae_lambda"], value_network=self.critic, average_gae=False)
        self.loss = ClipPPOLoss(
            self.actor,
            self.critic,
            clip_epsilon=hp["clip_range"],
            entropy_bonus=hp["ent_coef"] > 0,
            entropy_coeff=hp["ent_coef"],
            critic_coeff=hp["vf_coef"],
            loss_critic_type="l2",
            normalize_advantage=True,
        )
        self.optimizer = torch.optim.Adam(self.loss.parameters(), lr=hp["learning_rate"], eps=1e-5)

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor_net.state_dict(),
            "critic": self.critic_net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, data: dict[str, Any]) -> None:
        self.actor_net.load_state_dict(data["actor"])
        self.critic_net.load_state_dict(data["critic"])
        if "optimizer" in data:
            self.optimizer.load_state_dict(data["optimizer"])


def _act_fn(actor_net: nn.Module, device: torch.device) -> Any:
    """Deterministic action (argmax of the logits) for ``run_episodes``; masks are not applied,
    as with SB3's PPO (an invalid action is accepted by the envs and penalised)."""

    def act(obs: np.ndarray, mask: np.ndarray | None) -> int:
        with torch.no_grad():
            logits = actor_net(torch.as_tensor(np.asarray(obs, np.float32), device=device).unsqueeze(0))
        return int(logits.argmax(dim=-1).item())

    return act


class TorchRLPPORun:
    """One training run (new or resumed) of the TorchRL PPO trainer; see the module docstring."""

    def __init__(
        self,
        s: TrainSettings,
        run_dir: Path,
        device: str,
        eval_env: Any,
        references: dict[str, float | None],
        logger: Any,
        on_eval: Any = None,
        stop: Any = None,
    ) -> None:
        from rl_shop.train.torchrl_envs import KernelEnv, make_kernel

        self.s = s
        self.run_dir = run_dir
        self.device = torch.device(device)
        self.hp = ppo_settings(s)
        self.eval_env = eval_env
        self.references = {k: v for k, v in references.items() if v is not None}
        self.logger = logger
        self.on_eval = on_eval
        self.stop = stop
        try:
            self.kernel = make_kernel(s.env.id, s.hardware.n_envs, s.seed, self.device, dict(s.env.kwargs))
        except ValueError as exc:
            raise TrainConfigError(str(exc)) from None
        self.env = KernelEnv(self.kernel, s.seed, tuple(s.logging.info_keys))
        self.agent = PPOAgent(self.kernel.n_features, self.kernel.n_actions, self.hp, self.device, self.env.action_spec)
        self.state = TrainState()
        self.n_updates = 0
        self.last_result: EvalResult | None = None
        self.ep_returns: deque[float] = deque(maxlen=100)
        self.ep_lengths: deque[float] = deque(maxlen=100)
        self.info_bufs: dict[str, deque[float]] = {k: deque(maxlen=s.logging.info_window) for k in self.env.info_keys}

    # -------------------------------------------------------------- checkpoints
    def load(self, ckpt: Path) -> None:
        self.state = read_state(ckpt)
        data = torch.load(ckpt / MODEL_FILE, map_location=self.device, weights_only=False)
        self.agent.load_state_dict(data)
        self.n_updates = int(data.get("n_updates", 0))
        # Continue on fresh episodes: the kernel stream of a resumed run starts at a new seed.
        self.env.set_seed(self.s.seed + 1_000_003 * (1 + self.state.num_timesteps))

    def _save_model(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        data = self.agent.state_dict()
        data.update(n_updates=self.n_updates, num_timesteps=self.state.num_timesteps, hp=self.hp, n_obs=self.kernel.n_features,
                    n_actions=self.kernel.n_actions, env_id=self.s.env.id)  # fmt: skip
        tmp = directory / (MODEL_FILE + ".tmp")
        torch.save(data, tmp)
        tmp.replace(directory / MODEL_FILE)

    def checkpoint(self, steps: int, wall_start: float) -> Path:
        directory = self.run_dir / "checkpoints" / f"step_{steps}"
        self.state.num_timesteps = steps
        self.state.wall_time_s = time.time() - wall_start
        self._save_model(directory)
        write_state(directory, self.state)
        prune_checkpoints(self.run_dir, self.s.checkpoint.keep_last)
        return directory

    # -------------------------------------------------------------- evaluation
    def evaluate(self, steps: int) -> EvalResult:
        s = self.s
        self.agent.actor_net.eval()
        result = run_episodes(
            self.eval_env,
            _act_fn(self.agent.actor_net, self.device),
            s.eval.n_episodes,
            s.seed + s.eval.seed_offset,
            s.logging.info_keys,
        )
        self.agent.actor_net.train()
        mean = result.mean_return
        self.last_result = result
        self.state.eval_history.append({"step": steps, "mean_return": mean, "std_return": result.std_return})
        lg = self.logger
        lg.record("eval/mean_reward", mean)
        lg.record("eval/std_reward", result.std_return)
        lg.record("eval/mean_ep_length", float(np.mean(result.lengths)))
        for key, value in result.info_means.items():
            lg.record(f"eval/{key}", value)
        for key, value in self.references.items():
            lg.record(f"eval/{key}_return", value)
        lg.dump(steps)
        finite = all(bool(p.isfinite().all()) for p in self.agent.actor_net.parameters())
        if not math.isfinite(mean) or not finite:
            from rl_shop.train.callbacks import DivergenceError

            raise DivergenceError(f"non-finite evaluation return {mean} or weights at step {steps}")
        if mean > self.state.best_mean_reward:
            self.state.best_mean_reward = mean
            self.state.best_step = steps
            best = self.run_dir / "best"
            self._save_model(best)
            (best / "best.json").write_text(f'{{"step": {steps}, "mean_return": {mean}}}\n')
        if self.on_eval is not None:
            self.on_eval(steps, mean)
        return result

    # -------------------------------------------------------------- episode statistics
    def _episode_stats(self, data: Any) -> None:
        """Episode returns / lengths / info means from a ``[n_envs, T]`` batch (host copy, once per batch)."""
        reward = data["next", "reward"].squeeze(-1).to(torch.float64).cpu()
        done = data["next", "done"].squeeze(-1).cpu()
        n, T = reward.shape
        if not hasattr(self, "_run_ret"):
            self._run_ret = torch.zeros(n, dtype=torch.float64)
            self._run_len = torch.zeros(n, dtype=torch.int64)
        for t in range(T):
            self._run_ret += reward[:, t]
            self._run_len += 1
            d = done[:, t]
            if d.any():
                self.ep_returns.extend(self._run_ret[d].tolist())
                self.ep_lengths.extend(self._run_len[d].tolist())
                self._run_ret[d] = 0.0
                self._run_len[d] = 0
        for key, buf in self.info_bufs.items():
            v = data["next", f"info_{key}"].reshape(-1)
            v = v[~torch.isnan(v)]
            if v.numel():
                buf.extend(v.cpu().tolist())

    # -------------------------------------------------------------- training
    def learn(self, total_timesteps: int, wall_start: float) -> tuple[int, float]:
        """Collect + update until ``total_timesteps``; returns (steps, seconds spent learning)."""
        from torchrl.collectors import Collector
        from torchrl.data import LazyTensorStorage, ReplayBuffer
        from torchrl.data.replay_buffers.samplers import SamplerWithoutReplacement

        s, hp = self.s, self.hp
        n_envs = s.hardware.n_envs
        fpb = n_envs * hp["n_steps"]
        steps = self.state.num_timesteps
        remaining = total_timesteps - steps
        if remaining <= 0:
            return steps, 0.0
        next_eval = (steps // s.eval.freq + 1) * s.eval.freq
        next_ckpt = (steps // s.checkpoint.freq + 1) * s.checkpoint.freq
        n_batches = math.ceil(remaining / fpb)
        collector = Collector(
            self.env,
            self.agent.actor,
            frames_per_batch=fpb,
            total_frames=n_batches * fpb,
            device=self.device,
            auto_register_policy_transforms=False,
        )
        buffer = ReplayBuffer(
            storage=LazyTensorStorage(fpb, device=self.device),
            sampler=SamplerWithoutReplacement(),
            batch_size=min(hp["batch_size"], fpb),
        )
        params = list(self.agent.loss.parameters())
        t0 = time.time()
        lg = self.logger
        try:
            for data in collector:
                steps += data.numel()
                self._episode_stats(data)
                with torch.no_grad():
                    self.agent.gae(data)
                flat = data.reshape(-1)
                stats: dict[str, list[torch.Tensor]] = {"pg": [], "vf": [], "ent": [], "kl": [], "clip": []}
                for _ in range(hp["n_epochs"]):
                    buffer.empty()
                    buffer.extend(flat)
                    for mb in buffer:
                        out = self.agent.loss(mb)
                        loss = (
                            out["loss_objective"]
                            + out["loss_critic"]
                            + out.get("loss_entropy", torch.zeros((), device=self.device))
                        )
                        self.agent.optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        nn.utils.clip_grad_norm_(params, hp["max_grad_norm"])
                        self.agent.optimizer.step()
                        self.n_updates += 1
                        stats["pg"].append(out["loss_objective"].detach())
                        stats["vf"].append(out["loss_critic"].detach())
                        if "loss_entropy" in out:
                            stats["ent"].append(out["loss_entropy"].detach())
                        if "kl_approx" in out:
                            stats["kl"].append(out["kl_approx"].detach())
                        if "clip_fraction" in out:
                            stats["clip"].append(out["clip_fraction"].detach())
                # SB3's scalar names, so both trainers draw on the same TensorBoard charts.
                mean = lambda xs: float(torch.stack(xs).mean()) if xs else math.nan  # noqa: E731
                if self.ep_returns:
                    lg.record("rollout/ep_rew_mean", float(np.mean(self.ep_returns)))
                    lg.record("rollout/ep_len_mean", float(np.mean(self.ep_lengths)))
                for key, buf in self.info_bufs.items():
                    if buf:
                        lg.record(f"episode/{key}", float(np.mean(buf)))
                lg.record("train/policy_gradient_loss", mean(stats["pg"]))
                lg.record("train/value_loss", mean(stats["vf"]))
                if stats["ent"]:
                    lg.record("train/entropy_loss", mean(stats["ent"]))
                if stats["kl"]:
                    lg.record("train/approx_kl", mean(stats["kl"]))
                if stats["clip"]:
                    lg.record("train/clip_fraction", mean(stats["clip"]))
                lg.record("train/learning_rate", hp["learning_rate"])
                lg.record("train/n_updates", self.n_updates)
                lg.record("time/fps", int(steps - self.state.num_timesteps) / max(time.time() - t0, 1e-9))
                lg.record("time/total_timesteps", steps)
                lg.dump(steps)
                if self.stop is not None and self.stop.requested:
                    self.checkpoint(steps, wall_start)
                    raise TrainingInterrupted(self.run_dir, steps, self.stop.signal_name)
                if steps >= next_eval:
                    self.evaluate(steps)
                    while next_eval <= steps:
                        next_eval += s.eval.freq
                if steps >= next_ckpt:
                    self.checkpoint(steps, wall_start)
                    while next_ckpt <= steps:
                        next_ckpt += s.checkpoint.freq
                self.state.num_timesteps = steps
        finally:
            collector.shutdown()
        return steps, time.time() - t0

    # -------------------------------------------------------------- export
    def export(self, out_dir: Path, evaluation: Any = None) -> Any:
        """ONNX + policy card of the actor through ``export_model`` (the SB3 path's exporter)."""
        from rl_shop.policies.export import export_model

        model = SB3Like(self.agent.actor_net, self.kernel, self.state.num_timesteps, self.s.seed)
        return export_model(
            model,
            out_dir,
            env_id=self.s.env.id,
            algo="ppo",
            action_names=list(self.kernel.ACTION_NAMES),
            run_dir=self.run_dir,
            checkpoint=self.run_dir / "checkpoints",
            training_config={"trainer": "torchrl", "algo": self.s.algo.model_dump(), "n_envs": self.s.hardware.n_envs},
            evaluation=evaluation,
        )


class _ActorTrunk(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward_actor(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _PolicyShim(nn.Module):
    """What ``export.build_export_module`` reads from an SB3 actor-critic policy."""

    share_features_extractor = True

    def __init__(self, actor_net: nn.Sequential) -> None:
        super().__init__()
        layers = list(actor_net)
        self.mlp_extractor = _ActorTrunk(nn.Sequential(*layers[:-1]))
        self.action_net = layers[-1]

    def extract_features(self, obs: torch.Tensor) -> torch.Tensor:
        return obs

    def set_training_mode(self, mode: bool) -> None:
        self.train(mode)


class SB3Like:
    """The SB3 model surface that ``rl_shop.policies.export.export_model`` uses (spaces, policy,
    ``predict``, ``num_timesteps``, ``seed``), over a trained TorchRL actor (CPU copy)."""

    def __init__(self, actor_net: nn.Sequential, kernel: Any, num_timesteps: int, seed: int) -> None:
        import copy

        import gymnasium as gym

        net = copy.deepcopy(actor_net).to("cpu").eval()
        self.policy = _PolicyShim(net)
        self._net = net
        self.observation_space = gym.spaces.Box(0.0, np.inf, (kernel.n_features,), np.float32)
        if hasattr(kernel, "observation_bounds"):
            lo, hi = kernel.observation_bounds
            self.observation_space = gym.spaces.Box(lo, hi, (kernel.n_features,), np.float32)
        self.action_space = gym.spaces.Discrete(kernel.n_actions)
        self.num_timesteps = int(num_timesteps)
        self.seed = int(seed)

    def predict(self, obs: np.ndarray, deterministic: bool = True, **_: Any) -> tuple[np.ndarray, None]:
        with torch.no_grad():
            logits = self._net(torch.as_tensor(np.asarray(obs, np.float32)))
        return logits.argmax(dim=-1).numpy(), None


def train_torchrl(
    s: TrainSettings,
    run_dir: Path,
    resumed: bool,
    ckpt: Path | None,
    device: str,
    eval_env: Any,
    references: dict[str, float | None],
    logger: Any,
    on_eval: Any,
    stop: Any,
) -> TrainSummary:
    """Train (or resume) with TorchRL PPO; same outputs as ``runner._train_loop``."""
    run = TorchRLPPORun(s, run_dir, device, eval_env, references, logger, on_eval, stop)
    if ckpt is not None:
        run.load(ckpt)
        log.info("resumed %s from %s at step %d", run_dir, ckpt.name, run.state.num_timesteps)
    wall_start = time.time() - run.state.wall_time_s
    steps_at_start = run.state.num_timesteps
    steps, learn_s = run.learn(s.total_timesteps, wall_start)  # learn_s includes the evaluations, as SB3's
    if not run.state.eval_history or run.state.eval_history[-1]["step"] != steps:
        run.evaluate(steps)
    if not (run_dir / "checkpoints" / f"step_{steps}" / "state.json").is_file():
        run.checkpoint(steps, wall_start)
    try:
        run.export(run_dir / EXPORT_DIR)
    except Exception as exc:  # an export problem must not lose a finished run
        log.warning("ONNX export of %s failed: %s", run_dir, exc)
    final = run.last_result
    summary = TrainSummary(
        experiment=s.experiment_name,
        env_id=s.env.id,
        env_name=s.env.name,
        algo=f"{s.algo.name}_torchrl",
        seed=s.seed,
        run_dir=str(run_dir),
        total_timesteps=s.total_timesteps,
        num_timesteps=steps,
        final_eval_return=run.state.eval_history[-1]["mean_return"],
        best_eval_return=run.state.best_mean_reward,
        best_step=run.state.best_step,
        heuristic_return=references.get("heuristic"),
        random_return=references.get("random"),
        wall_time_s=time.time() - wall_start,
        steps_per_s=(steps - steps_at_start) / learn_s if learn_s > 0 else math.nan,
        device=device,
        resumed=resumed,
        eval_history=run.state.eval_history,
        final_info=final.info_means if final is not None else {},
    )
    write_summary(run_dir, summary)
    return summary


def bench_run(s: TrainSettings, device: str) -> TorchRLPPORun:
    """A run object for benchmarks: no run directory of its own, no evaluations, no checkpoints
    (``experiments/bench_train.py`` times ``learn`` and evaluates the actor itself)."""
    import tempfile

    from stable_baselines3.common.logger import configure

    from rl_shop.train.env_factory import make_env

    s = s.model_copy(deep=True)
    s.eval.freq = s.checkpoint.freq = 1 << 62
    run_dir = Path(tempfile.mkdtemp(prefix="bench_torchrl_"))
    eval_env = make_env(s.env, seed=s.seed + s.eval.seed_offset)
    return TorchRLPPORun(s, run_dir, device, eval_env, {}, configure(None, []))


def evaluate_actor(run: TorchRLPPORun, n_episodes: int, seed: int) -> float:
    """Mean return of the deterministic actor on the single env, episodes seeded ``seed + k``."""
    res = run_episodes(run.eval_env, _act_fn(run.agent.actor_net, run.device), n_episodes, seed)
    return res.mean_return
