"""Training throughput: env steps/s of DQN and PPO on the rl_shop envs vs SB3 on CartPole-v1.

Every case builds its VecEnv and model through rl_shop.train (the code path of train.py), runs a
short warm-up, then times ``model.learn(steps)`` (wall clock and this process's CPU time).  The
ratio column divides by CartPole-v1 with the same algorithm, hardware entry and device, measured
in the same run, so machine load and library versions cancel out.  CUDA cases run when a GPU is
present; otherwise the script prints "cuda: not available".

Usage: python experiments/bench_train.py [--config configs/bench/train.yaml] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
import yaml  # noqa: E402

from rl_shop.paths import CONFIG_DIR  # noqa: E402
from rl_shop.train.algos import build_model  # noqa: E402
from rl_shop.train.config import compose_train_config, validate_config  # noqa: E402
from rl_shop.train.env_factory import make_vec_env  # noqa: E402
from rl_shop.train.errors import TrainConfigError  # noqa: E402
from rl_shop.train.seeding import configure_torch, seed_everything  # noqa: E402

DEFAULT_CONFIG = CONFIG_DIR / "bench" / "train.yaml"


def measure(overrides: list[str], steps: int, warmup: int, seed: int, device: str) -> tuple[float, float]:
    """(wall steps/s, cpu steps/s) of model.learn over `steps` env steps after a warm-up."""
    s = validate_config(compose_train_config(overrides))
    configure_torch(s.hardware.torch_threads)
    seed_everything(seed)
    venv = make_vec_env(s.env, s.hardware, seed)
    try:
        model = build_model(s.algo, venv, seed, device)
        model.learn(warmup)
        n0 = model.num_timesteps
        w0, c0 = time.perf_counter(), time.process_time()
        model.learn(steps, reset_num_timesteps=False)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        done = model.num_timesteps - n0
    finally:
        venv.close()
    return done / wall, done / cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--quick", action="store_true", help="a quarter of the steps (smoke run)")
    args = parser.parse_args(argv)
    if not args.config.is_file():
        print(f"error: bench config {args.config} not found", file=sys.stderr)
        return 2
    cfg: dict[str, Any] = yaml.safe_load(args.config.read_text())
    steps = int(cfg["steps"]) // (4 if args.quick else 1)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, steps/case {steps}")
    print("cuda: " + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"))
    header = f"{'device':6} {'hardware':10} {'algo':5} {'env':12} {'wall steps/s':>13} {'cpu steps/s':>12} {'ratio (cpu)':>12}"
    print(header)
    print("-" * len(header))
    for device in devices:
        for hw_name, hw in cfg["hardware"].items():
            for algo in cfg["algos"]:
                base = [f"algo={algo}", *cfg["algo_overrides"].get(algo, []), *hw]
                ref_hw = [o for o in hw if not o.startswith("hardware=")] if "hardware=batched" in hw else hw
                ref = measure([*cfg["reference_env"], f"algo={algo}", *cfg["algo_overrides"].get(algo, []), *ref_hw],
                              steps, cfg["warmup_steps"], cfg["seed"], device)
                print(f"{device:6} {hw_name:10} {algo:5} {'CartPole-v1':12} {ref[0]:13.0f} {ref[1]:12.0f} {1.0:12.2f}", flush=True)
                for env in cfg["envs"]:
                    try:
                        wall, cpu = measure([f"env={env}", *base], steps, cfg["warmup_steps"], cfg["seed"], device)
                    except TrainConfigError as exc:
                        print(f"{device:6} {hw_name:10} {algo:5} {env:12} unavailable: {exc}")
                        continue
                    print(f"{device:6} {hw_name:10} {algo:5} {env:12} {wall:13.0f} {cpu:12.0f} {cpu / ref[1]:12.2f}", flush=True)
    print("CartPole-v1 has no batched version: in batched rows it runs on a DummyVecEnv with the same n_envs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
