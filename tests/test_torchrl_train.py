"""trainer=torchrl: TorchRL PPO on the torch-batched envs through rl_shop.train.runner.train."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchrl")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from rl_shop.train.checkpointing import checkpoint_dirs  # noqa: E402
from rl_shop.train.config import compose_train_config  # noqa: E402
from rl_shop.train.errors import TrainConfigError  # noqa: E402
from rl_shop.train.runner import train  # noqa: E402

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")
TINY = ["trainer=torchrl", "algo=ppo", "hardware=batched", "hardware.n_envs=16", "algo.kwargs.n_steps=16",
        "algo.kwargs.batch_size=128", "algo.kwargs.n_epochs=2", "eval.n_episodes=5", "baseline.n_episodes=5"]  # fmt: skip


def _cfg(tmp_path: Path, *extra: str):
    return compose_train_config([*TINY, f"runs_root={tmp_path}", *extra])


def _scalars(tb_dir: Path) -> dict[str, list[int]]:
    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _events(tb_dir: Path, tag: str) -> list:
    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    return list(acc.Scalars(tag)) if tag in acc.Tags()["scalars"] else []


@pytest.mark.slow  # the first TorchRL run of the process pays tensordict's import (torch._dynamo), ~5 s
def test_torchrl_ppo_clarify_run_dir_scalars_and_onnx_card(tmp_path):
    s = train(_cfg(tmp_path, "env=clarify", "total_timesteps=1024", "eval.freq=512", "checkpoint.freq=512"))
    run = Path(s.run_dir)
    assert s.algo == "ppo_torchrl" and s.num_timesteps == 1024
    assert [h["step"] for h in s.eval_history] == [512, 1024]
    for name in (
        "config.yaml",
        "summary.json",
        "references.json",
        "best/model.pt",
        "policy/policy.onnx",
        "policy/policy_card.json",
    ):
        assert (run / name).exists(), name
    assert [p.name for p in checkpoint_dirs(run)] == ["step_512", "step_1024"]
    tags = _scalars(run / "tb")
    for tag in ("eval/mean_reward", "eval/heuristic_return", "rollout/ep_rew_mean", "train/value_loss",
                "train/policy_gradient_loss", "time/fps", "episode/accuracy_at_5", "episode/rounds"):  # fmt: skip
        assert tag in tags, tag
    assert tags["eval/mean_reward"] == [512, 1024]
    gains = [e.value for e in _events(run / "tb", "episode/intent_gain")]
    assert gains and max(gains) > 0.0  # an episode sum: the last Clarify step alone reveals nothing
    card = json.loads((run / "policy" / "policy_card.json").read_text())
    assert card["env_id"] == "rl_shop/Clarify-v0" and card["training"]["algo"] == "PPO"
    assert card["verification"]["action_agreement"] == 1.0
    assert card["training"]["config"]["trainer"] == "torchrl"

    # The ONNX policy acts like the checkpointed actor (argmax of its logits).
    from rl_shop.policies.loader import load_policy
    from rl_shop.train.torchrl_runner import mlp

    policy = load_policy(run / "policy")
    data = torch.load(run / "checkpoints" / "step_1024" / "model.pt", weights_only=False)
    net = mlp(47, [64, 64], 11, torch.nn.Tanh)
    net.load_state_dict(data["actor"])
    obs = np.random.default_rng(0).random((64, 47)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.as_tensor(obs)).argmax(dim=1).numpy()
    assert np.array_equal(policy.act_batch(obs), want)


@pytest.mark.slow
def test_torchrl_resume_after_kill_reaches_the_same_schedule(tmp_path):
    args = ("env=clarify", "total_timesteps=1536", "eval.freq=512", "checkpoint.freq=512", "seed=3")

    class Killed(Exception):
        pass

    def kill_at_1024(step: int, mean: float) -> None:
        if step >= 1024:
            raise Killed

    with pytest.raises(Killed):
        train(_cfg(tmp_path, *args), on_eval=kill_at_1024)
    (run_dir,) = list((tmp_path / "clarify_ppo").iterdir())
    assert not (run_dir / "summary.json").exists()
    last = checkpoint_dirs(run_dir)[-1]
    assert last.name == "step_512" and (last / "model.pt").is_file()
    saved = torch.load(last / "model.pt", weights_only=False)

    resumed = train(_cfg(tmp_path, "resume=true", "run_dir=latest", *args))
    assert resumed.resumed and resumed.run_dir == str(run_dir)
    assert resumed.num_timesteps == 1536
    assert [h["step"] for h in resumed.eval_history] == [512, 1024, 1536]
    assert sorted(set(_scalars(run_dir / "tb")["eval/mean_reward"])) == [512, 1024, 1536]
    # it continued from the checkpoint's weights, not from a fresh network
    final = torch.load(checkpoint_dirs(run_dir)[-1] / "model.pt", weights_only=False)
    assert final["n_updates"] > saved["n_updates"] > 0


def test_torchrl_ppo_collaborate_runs(tmp_path):
    s = train(_cfg(tmp_path, "env=collaborate", "total_timesteps=512", "eval.freq=512", "checkpoint.freq=512"))
    assert s.num_timesteps == 512 and np.isfinite(s.final_eval_return)
    tags = _scalars(Path(s.run_dir) / "tb")
    assert "episode/clicked" in tags and "episode/latency" in tags
    assert (Path(s.run_dir) / "policy" / "policy_card.json").is_file()


def test_torchrl_rejects_what_it_cannot_train(tmp_path):
    with pytest.raises(TrainConfigError, match="algo=ppo"):
        train(_cfg(tmp_path, "env=clarify", "algo=dqn", "total_timesteps=256"))
    with pytest.raises(TrainConfigError, match="torch-batched"):
        train(_cfg(tmp_path, "env=schedule", "total_timesteps=256"))


@pytest.mark.slow
def test_torchrl_ppo_learns_clarify(tmp_path):
    """After 20k steps the policy beats the random reference clearly (a learning check)."""
    s = train(_cfg(tmp_path, "env=clarify", "hardware.n_envs=64", "algo.kwargs.n_steps=32", "algo.kwargs.batch_size=512",
                   "algo.kwargs.n_epochs=4", "total_timesteps=20480", "eval.freq=20480", "checkpoint.freq=20480",
                   "eval.n_episodes=50", "baseline.n_episodes=50"))  # fmt: skip
    assert s.random_return is not None
    assert s.best_eval_return > s.random_return + 0.3  # random 0.51, heuristic 1.04 on these seeds


@pytest.mark.gpu
@CUDA
def test_torchrl_ppo_on_cuda(tmp_path):
    s = train(_cfg(tmp_path, "env=clarify", "hardware.device=cuda", "hardware.n_envs=1024", "total_timesteps=32768",
                   "eval.freq=32768", "checkpoint.freq=32768"))  # fmt: skip
    assert s.device == "cuda" and s.num_timesteps == 32768
    assert (Path(s.run_dir) / "policy" / "policy_card.json").is_file()
