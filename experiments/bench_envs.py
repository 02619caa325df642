"""Throughput of the rl_shop envs (single, SyncVectorEnv, numpy-batched) against CartPole-v1.

Prints, in one run, env-steps/s of each env made with ``gymnasium.make`` (ratio to CartPole-v1
made the same way), of its batched kernel run with one sub-env (ratio to the single env: what the
single env would cost as a one-row view of the kernel), of ``gymnasium.vector.SyncVectorEnv`` over
the single env, and of the batched env from ``envs.make_batched`` (ratio to that SyncVectorEnv). Actions are uniform over the valid
ones (masks respected), drawn from pre-generated seeded random numbers. Times are CPU seconds of
this process (``time.process_time``), so other load on a shared machine does not distort the
ratios. Each ratio's two sides are measured interleaved (reference, env, reference, env, ...;
best of ``repeats`` each): on a shared machine the load drifts over the minutes of a run, and
timing all reference repeats first and the env's later made a ratio swing by +-15% between
identical runs; interleaving exposes both sides to the same drift. Single envs are timed over the whole loop, action picking included (a few microseconds
per step, which only makes the masked rl_shop envs look slower than CartPole, which has no mask);
vector envs are timed inside ``reset`` / ``step`` only. A second table gives the mean return of
the Clarify baselines over ``clarify_eval_episodes`` episodes.

Usage: python experiments/bench_envs.py [--config configs/bench/envs.yaml] [--quick]
An env whose module is not importable yet is listed as unavailable, not an error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

import envs  # noqa: E402  (registers the rl_shop ids)
from envs.specs import CLARIFY  # noqa: E402
from rl_shop.config_files import ConfigFileError, env_config, read_config  # noqa: E402
from rl_shop.paths import CONFIG_DIR  # noqa: E402

DEFAULT_CONFIG = CONFIG_DIR / "bench" / "envs.yaml"


def load_config(path: Path) -> dict[str, Any]:
    """The bench config, with a clear error when it is missing or malformed."""
    try:
        cfg = read_config(path, what="bench config")
    except ConfigFileError as exc:
        raise SystemExit(f"error: {exc}") from None
    required = {
        "seed",
        "reference_id",
        "env_ids",
        "single_steps",
        "sync_num_envs",
        "sync_steps",
        "batched_num_envs",
        "batched_steps",
        "one_row_steps",
        "repeats",
        "clarify_eval_episodes",
    }
    if not isinstance(cfg, dict) or required - set(cfg):
        raise SystemExit(f"error: bench config {path} lacks keys {sorted(required - set(cfg or {}))}")
    return cfg


def _pick(mask: np.ndarray | None, n_actions: int, u: float) -> int:
    """The valid action selected by a uniform ``u`` in [0, 1)."""
    if mask is None:
        return int(u * n_actions)
    valid = np.flatnonzero(mask)
    return int(valid[int(u * valid.size)])


def _mask_of(env: gym.Env, info: dict[str, Any]) -> np.ndarray | None:
    if "action_mask" in info:
        return info["action_mask"]
    fn = getattr(env.unwrapped, "action_masks", None)
    return fn() if fn is not None else None


def bench_single(make: Callable[[], gym.Env], steps: int, seed: int) -> float:
    """Env-steps/s of one env, timing the whole loop (random valid action picking included)."""
    env = make()
    n_actions = int(env.action_space.n)
    us = np.random.default_rng(seed).random(steps).tolist()
    clock = time.process_time
    t0 = clock()
    _, info = env.reset(seed=seed)
    for u in us:
        _, _, term, trunc, info = env.step(_pick(_mask_of(env, info), n_actions, u))
        if term or trunc:
            _, info = env.reset()
    spent = clock() - t0
    env.close()
    return steps / spent


def _vector_actions(masks: np.ndarray | None, u: np.ndarray, n_actions: int) -> np.ndarray:
    """Per row, the valid action selected by the uniform ``u`` (vectorized ``_pick``)."""
    if masks is None:
        return (u * n_actions).astype(np.int64)
    masks = np.asarray(masks, dtype=bool)
    counts = masks.sum(axis=1)
    k = (u * counts).astype(np.int64)
    # index of the (k+1)-th True in each row
    return (np.cumsum(masks, axis=1) > k[:, None]).argmax(axis=1)


def bench_vector(vec: gym.vector.VectorEnv, steps: int, seed: int) -> float:
    """Env-steps/s of a vector env (sub-env steps per second; time inside reset/step only)."""
    n = vec.num_envs
    n_actions = int(vec.single_action_space.n)
    us = np.random.default_rng(seed).random((steps, n))
    clock = time.process_time
    t0 = clock()
    _, infos = vec.reset(seed=seed)
    spent = clock() - t0
    masks_fn = getattr(vec, "action_masks", None)
    for s in range(steps):
        masks = masks_fn() if masks_fn is not None else infos.get("action_mask")
        actions = _vector_actions(masks, us[s], n_actions)
        t0 = clock()
        _, _, _, _, infos = vec.step(actions)
        spent += clock() - t0
    vec.close()
    return steps * n / spent


def best_of(repeats: int, fn: Callable[[], float]) -> float:
    """The best of ``repeats`` measurements (the least disturbed by other load)."""
    return max(fn() for _ in range(repeats))


def best_of_interleaved(repeats: int, ref: Callable[[], float], fn: Callable[[], float]) -> tuple[float, float]:
    """Best of ``repeats`` of ``ref`` and of ``fn``, run alternately (same load drift for both)."""
    best_ref = best_fn = 0.0
    for _ in range(repeats):
        best_ref = max(best_ref, ref())
        best_fn = max(best_fn, fn())
    return best_ref, best_fn


def clarify_baselines(episodes: int, seed: int) -> list[tuple[str, Any]]:
    """Mean return of AskUntilConfident, random-valid and stop-at-once on the default Clarify env."""
    from rl_shop.policies.evaluate import RandomPolicy, evaluate_policy
    from rl_shop.policies.heuristics.clarify import AskUntilConfident, ClarifyPriors

    env = gym.make("rl_shop/Clarify-v0")
    base = env.unwrapped
    hcfg = env_config(CLARIFY.config)["heuristic"]
    heuristic = AskUntilConfident(
        hcfg["threshold"],
        base.pool.log2_catalog_size,
        ClarifyPriors.from_pool(base.pool),
        max_leave_risk=hcfg["max_leave_risk"],
        max_rounds=base.params.max_rounds,
    )

    class StopAtOnce:
        def act(self, obs: np.ndarray, action_mask: np.ndarray | None = None) -> int:
            return int(env.action_space.n) - 1

    rows = []
    for name, policy in (
        ("AskUntilConfident", heuristic),
        ("random valid action", RandomPolicy(int(env.action_space.n), seed=seed)),
        ("stop at once", StopAtOnce()),
    ):
        rows.append((name, evaluate_policy(env, policy, episodes, seed)))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--quick", action="store_true", help="10x fewer steps (smoke run)")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    div = 10 if args.quick else 1
    seed, reps = int(cfg["seed"]), int(cfg["repeats"])
    single_steps = max(1000, int(cfg["single_steps"]) // div)
    sync_steps = max(50, int(cfg["sync_steps"]) // div)
    batched_steps = max(20, int(cfg["batched_steps"]) // div)
    one_row_steps = max(500, int(cfg["one_row_steps"]) // div)

    ref_id = cfg["reference_id"]

    def ref_run() -> float:
        return bench_single(lambda: gym.make(ref_id), single_steps, seed)

    ref_best = best_of(reps, ref_run)
    print(f"# env throughput, env-steps per CPU-second (best of {reps}); seed {seed}")
    print("# each ratio: both sides timed alternately in the same window (ref_in_window = its reference)")
    print(f"{'env':28s} {'mode':34s} {'steps/s':>12s} {'ratio':>9s}  reference")
    print(f"{ref_id:28s} {'single (gymnasium.make)':34s} {ref_best:12,.0f} {1.0:9.2f}  itself")
    for env_id in cfg["env_ids"]:
        try:
            gym.make(env_id).close()
        except Exception as exc:  # noqa: BLE001 - an env still being written is reported, not fatal
            print(f"{env_id:28s} {'unavailable':34s} {'-':>12s} {'-':>9s}  {type(exc).__name__}: {exc}")
            continue
        ref_single, single = best_of_interleaved(
            reps, ref_run, lambda e=env_id: bench_single(lambda: gym.make(e), single_steps, seed)
        )
        print(
            f"{env_id:28s} {'single (gymnasium.make)':34s} {single:12,.0f} {single / ref_single:9.2f}  "
            f"{ref_id} single (ref_in_window {ref_single:,.0f})"
        )
        try:  # the single env as a one-row view of its batched kernel: why the two are separate code
            one_row = best_of(
                reps, lambda e=env_id: bench_vector(envs.make_batched(e, 1, seed=seed), one_row_steps, seed)
            )
            print(f"{env_id:28s} {'batched x1 (one-row view)':34s} {one_row:12,.0f} {one_row / single:9.2f}  single")
        except gym.error.Error:
            pass  # no batched kernel: reported on the batched row below
        n_sync = int(cfg["sync_num_envs"])
        n_b = int(cfg["batched_num_envs"])

        def sync_run(env_id: str = env_id, n_sync: int = n_sync) -> float:
            return bench_vector(
                gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(n_sync)]), sync_steps, seed
            )

        try:
            sync, batched = best_of_interleaved(
                reps,
                sync_run,
                lambda e=env_id, n=n_b: bench_vector(envs.make_batched(e, n, seed=seed), batched_steps, seed),
            )
        except gym.error.Error as exc:
            sync = best_of(reps, sync_run)
            print(
                f"{env_id:28s} {f'SyncVectorEnv x{n_sync}':34s} {sync:12,.0f} {sync / ref_single:9.2f}  {ref_id} single"
            )
            print(f"{env_id:28s} {f'batched x{n_b}':34s} {'-':>12s} {'-':>9s}  {exc}")
            continue
        print(f"{env_id:28s} {f'SyncVectorEnv x{n_sync}':34s} {sync:12,.0f} {sync / ref_single:9.2f}  {ref_id} single")
        print(
            f"{env_id:28s} {f'batched x{n_b} (envs.make_batched)':34s} {batched:12,.0f} {batched / sync:9.2f}  SyncVectorEnv x{n_sync}"
        )

    episodes = max(100, int(cfg["clarify_eval_episodes"]) // div)
    print(f"\n# rl_shop/Clarify-v0 baselines, {episodes} episodes, seed {seed} (default config)")
    rows = clarify_baselines(episodes, seed)
    ref = rows[1][1].mean_return
    print(f"{'policy':24s} {'mean return':>12s} {'± s.e.':>8s} {'Acc@5':>7s} {'rounds':>7s} {'minus random':>13s}")
    for name, res in rows:
        acc = res.final_info_means.get("accuracy_at_5", float("nan"))
        rounds = res.final_info_means.get("rounds", float("nan"))
        print(
            f"{name:24s} {res.mean_return:12.4f} {res.stderr_return:8.4f} {acc:7.3f} {rounds:7.2f} {res.mean_return - ref:13.4f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
