"""Training throughput: env steps/s of DQN and PPO on the rl_shop envs vs SB3 on CartPole-v1.

Every case builds its VecEnv and model through rl_shop.train (the code path of train.py), runs a
short warm-up, then times ``model.learn(steps)`` (wall clock and this process's CPU time).  The
ratio column divides by CartPole-v1 with the same algorithm, hardware entry and device, measured
in the same run, so machine load and library versions cancel out.  CUDA cases run when a GPU is
present; otherwise the script prints "cuda: not available".

Second part, "SB3 vs trainer=torchrl": the same env, the same number of envs (SB3 on our numpy
batched env, TorchRL on the torch kernel), the same step budget and the same PPO hyperparameters
(``compare`` in the config), per seed: env-steps/s of learning and the final evaluation return
(deterministic policy, the same evaluation episodes for both). On a GPU the TorchRL path is also
timed per number of envs (``compare.gpu_n_envs``). The last line printed is
``torchrl_over_sb3=<ratio>``: the geometric mean over envs of (TorchRL steps/s) / (SB3 steps/s)
on this machine's CPU.

Usage: python experiments/bench_train.py [--config configs/bench/train.yaml] [--quick] [--compare-only]
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


def _ci95(values: list[float]) -> str:
    """``mean +- half-width`` of a 95% t interval (n < 2: the value alone)."""
    import math

    import numpy as np

    n = len(values)
    if n < 2:
        return f"{values[0]:.3f}" if values else "n/a"
    from scipy.stats import t as student_t

    half = float(student_t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))
    return f"{float(np.mean(values)):.3f} +- {half:.3f}"


def compare_case(env: str, seed: int, n_envs: int, steps: int, ppo: list[str], eval_episodes: int,
                 device: str = "cpu", sb3: bool = True) -> dict[str, float]:  # fmt: skip
    """One (env, seed): SB3 PPO on the numpy batched env and TorchRL PPO on the torch kernel,
    same n_envs / budget / hyperparameters. Steps/s over ``learn`` (after a one-rollout warm-up)."""
    from rl_shop.train.evaluation import model_act_fn, run_episodes
    from rl_shop.train.torchrl_runner import bench_run, evaluate_actor

    base = [f"env={env}", "algo=ppo", *ppo, "hardware=batched", f"hardware.n_envs={n_envs}", f"seed={seed}",
            f"hardware.device={device}"]  # fmt: skip
    out: dict[str, float] = {}
    eval_seed = seed + 100000
    if sb3:
        s = validate_config(compose_train_config(base))
        configure_torch(s.hardware.torch_threads)
        seed_everything(seed)
        venv = make_vec_env(s.env, s.hardware, seed)
        try:
            model = build_model(s.algo, venv, seed, device)
            rollout = n_envs * int(s.algo.kwargs["n_steps"])
            model.learn(rollout)  # warm-up: one rollout + update
            n0 = model.num_timesteps
            t0 = time.perf_counter()
            model.learn(steps, reset_num_timesteps=False)
            out["sb3_sps"] = (model.num_timesteps - n0) / (time.perf_counter() - t0)
            from rl_shop.train.env_factory import make_env

            eval_env = make_env(s.env, seed=eval_seed)
            out["sb3_return"] = run_episodes(
                eval_env, model_act_fn(model, True, False), eval_episodes, eval_seed
            ).mean_return
        finally:
            venv.close()
    s = validate_config(compose_train_config([*base, "trainer=torchrl"]))
    configure_torch(s.hardware.torch_threads)
    seed_everything(seed)
    run = bench_run(s, device)
    rollout = n_envs * run.hp["n_steps"]
    run.learn(rollout, time.time())  # warm-up: one rollout + update
    n0 = run.state.num_timesteps
    t0 = time.perf_counter()
    done, _ = run.learn(n0 + steps, time.time())
    if device == "cuda":
        torch.cuda.synchronize()
    out["torchrl_sps"] = (done - n0) / (time.perf_counter() - t0)
    if eval_episodes:
        out["torchrl_return"] = evaluate_actor(run, eval_episodes, eval_seed)
    return out


def run_compare(cfg: dict[str, Any], quick: bool) -> float:
    """The SB3 vs TorchRL table; returns the geometric-mean steps/s ratio on the CPU."""
    import math

    c = cfg["compare"]
    steps = int(c["quick_steps" if quick else "steps"])
    seeds = list(c["quick_seeds" if quick else "seeds"])
    n_envs = int(c["n_envs"])
    print(f"\nSB3 vs trainer=torchrl: PPO, {n_envs} envs, {steps} timed steps per case, seeds {seeds}, "
          f"{c['eval_episodes']} eval episodes; PPO overrides {c['ppo']}")  # fmt: skip
    header = f"{'device':6} {'env':12} {'seed':>4} {'sb3 steps/s':>12} {'torchrl steps/s':>16} {'ratio':>7} {'sb3 return':>11} {'torchrl return':>15}"
    print(header)
    print("-" * len(header))
    ratios = []
    for env in c["envs"]:
        rows = []
        for seed in seeds:
            r = compare_case(env, seed, n_envs, steps, list(c["ppo"]), int(c["eval_episodes"]))
            rows.append(r)
            print(f"{'cpu':6} {env:12} {seed:4d} {r['sb3_sps']:12.0f} {r['torchrl_sps']:16.0f} "
                  f"{r['torchrl_sps'] / r['sb3_sps']:7.2f} {r['sb3_return']:11.3f} {r['torchrl_return']:15.3f}", flush=True)  # fmt: skip
        ratio = float(sum(x["torchrl_sps"] for x in rows) / sum(x["sb3_sps"] for x in rows))
        ratios.append(ratio)
        print(f"{'cpu':6} {env:12} {'all':>4} steps/s ratio {ratio:.2f}; final eval return (95% CI over seeds): "
              f"sb3 {_ci95([x['sb3_return'] for x in rows])}, torchrl {_ci95([x['torchrl_return'] for x in rows])}")  # fmt: skip
    if torch.cuda.is_available():
        print(
            "\ntrainer=torchrl on " + torch.cuda.get_device_name(0) + " (steps/s of learn, per env and number of envs)"
        )
        for env in c["envs"]:
            for n in c["gpu_n_envs"]:
                gsteps = max(steps, int(n) * int(c["gpu_rollouts"]) * _n_steps(c["ppo"]))
                r = compare_case(env, seeds[0], int(n), gsteps, list(c["ppo"]), 0, device="cuda", sb3=False)
                print(f"{'cuda':6} {env:12} n_envs={int(n):8d} {r['torchrl_sps']:14.0f} steps/s", flush=True)
    else:
        print("cuda: not available (GPU rows of the comparison not run)")
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios))


def _n_steps(overrides: list[str]) -> int:
    for o in overrides:
        if o.startswith("algo.kwargs.n_steps="):
            return int(o.split("=", 1)[1])
    return 256


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: the SB3 vs TorchRL comparison on a small budget, one seed"
    )
    parser.add_argument("--compare-only", action="store_true", help="only the SB3 vs trainer=torchrl comparison")
    args = parser.parse_args(argv)
    from rl_shop.config_files import ConfigFileError, read_config

    try:
        cfg: dict[str, Any] = read_config(args.config, what="bench config")
    except ConfigFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.quick or args.compare_only:
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
        ratio = run_compare(cfg, args.quick)
        print(f"torchrl_over_sb3={ratio:.2f}")
        return 0
    steps = int(cfg["steps"])
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
                ref = measure(
                    [*cfg["reference_env"], f"algo={algo}", *cfg["algo_overrides"].get(algo, []), *ref_hw],
                    steps,
                    cfg["warmup_steps"],
                    cfg["seed"],
                    device,
                )
                print(
                    f"{device:6} {hw_name:10} {algo:5} {'CartPole-v1':12} {ref[0]:13.0f} {ref[1]:12.0f} {1.0:12.2f}",
                    flush=True,
                )
                for env in cfg["envs"]:
                    try:
                        wall, cpu = measure([f"env={env}", *base], steps, cfg["warmup_steps"], cfg["seed"], device)
                    except TrainConfigError as exc:
                        print(f"{device:6} {hw_name:10} {algo:5} {env:12} unavailable: {exc}")
                        continue
                    print(
                        f"{device:6} {hw_name:10} {algo:5} {env:12} {wall:13.0f} {cpu:12.0f} {cpu / ref[1]:12.2f}",
                        flush=True,
                    )
    print("CartPole-v1 has no batched version: in batched rows it runs on a DummyVecEnv with the same n_envs.")
    ratio = run_compare(cfg, quick=False)
    print(f"torchrl_over_sb3={ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
