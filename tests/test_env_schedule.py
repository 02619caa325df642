"""rl_shop/Schedule-v0: Eq. 1 firing times on hand-built traces, API, determinism, errors, baselines."""

from __future__ import annotations

import math
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401  (registers the ids)
from envs.dag import DagConfigError, DagSampler
from envs.schedule import ScheduleEnv, eq1_crossing_time, load_default_kwargs
from rl_shop.policies.features.schedule import (
    BLOCKED,
    DONE,
    FEATURE_NAMES,
    RUNNING,
    ScheduleState,
    eq1_should_fire,
    featurize,
    featurize_batch,
    readiness_vector,
)
from rl_shop.policies.heuristics.schedule import every_completion, paper_fixed, periodic_polling

# Hand-built DAG: two ProductSearches (1 s and 3 s) feed a Decision (2 s).
TYPES = ["product_search", "product_search", "decision"]
PARENTS = [[], [], [0, 1]]
LAT = [1.0, 3.0, 2.0]


def _run(env: ScheduleEnv, action: int) -> tuple[list[float], list[str], float]:
    """Event times, causes and return of one episode on the hand-built DAG."""
    env.reset(seed=0)
    env.reset_to_dag(TYPES, PARENTS, LAT)
    times, why, ret = [], [], 0.0
    done = False
    while not done:
        _, r, term, trunc, info = env.step(action)
        times.append(info["latency"])
        why.append(info["fired_by"])
        ret += r
        done = term or trunc
    return times, why, ret


def _action(env: ScheduleEnv, name: str) -> int:
    return env.ACTION_NAMES.index(name)


def test_eq1_fires_exactly_at_hand_computed_times_episode_origin():
    # delta = 1, alpha = 0.5, t since episode start; readiness levels 0 / 0.5 / 1.
    # Event 1: task 0 finishes at 1.0 -> ||e|| = 0.5 (Decision still blocked);
    #   0.5 > exp(-0.5 t)  <=>  t > 2 ln 2 = 1.3863 < 3.0 -> fires at 2 ln 2 (nothing to dispatch).
    # Event 2: task 1 finishes at 3.0 and unblocks the Decision -> ||e|| = sqrt(0.25 + 0.25);
    #   threshold exp(-1.5) = 0.22 already below -> fires at 3.0, Decision runs 3.0 -> 5.0.
    # Event 3: Decision done at 5.0 -> ||e|| = 0.5 > exp(-2.5) -> fires at 5.0, episode ends.
    env = ScheduleEnv(c_event=0.3, w_latency=1.0, time_origin="episode")
    times, why, ret = _run(env, _action(env, "eq1(delta=1,alpha=0.5)"))
    assert times == pytest.approx([2 * math.log(2), 3.0, 5.0], abs=1e-12)
    assert why == ["eq1", "eq1", "eq1"]
    assert ret == pytest.approx(-(5.0 + 3 * 0.3))


def test_eq1_fires_exactly_at_hand_computed_times_event_origin():
    # delta = 2, alpha = 0.25, t since the last event.
    # Event 1: at 1.0 ||e|| = 0.5 -> crossing 4 ln 4 = 5.545 > 3.0 (next completion);
    #   at 3.0 ||e|| = sqrt(3 * 0.25) (two done, Decision unblocked) -> crossing
    #   4 ln(2 / sqrt(0.75)) = 3.34795 > 3.0 -> fires at 3.34795, Decision runs until 5.34795.
    # Event 2: at 5.34795 ||e|| = 0.5 -> crossing 3.34795 + 4 ln 4 (5.54518) = 8.89313
    #   (the Leader idles 3.5 s: the price of a high delta; max_wait 8 s not hit).
    env = ScheduleEnv(time_origin="event", max_wait_s=8.0)
    times, why, _ = _run(env, _action(env, "eq1(delta=2,alpha=0.25)"))
    t1 = 4 * math.log(2 / math.sqrt(0.75))
    assert t1 == pytest.approx(3.347952, abs=1e-6)
    assert times == pytest.approx([t1, t1 + 4 * math.log(4)], abs=1e-12)
    assert times[1] == pytest.approx(8.89313, abs=1e-5)
    assert why == ["eq1", "eq1"]


def test_idle_rule_periodic_every_completion_and_max_wait():
    env = ScheduleEnv(max_wait_s=8.0)
    # alpha = 0 and delta = 2: ||e|| never exceeds 2 here, so Eq. 1 can never fire; the Leader
    # fires when the last running task finishes (3.0, then 5.0).
    times, why, _ = _run(env, _action(env, "eq1(delta=2,alpha=0)"))
    assert times == pytest.approx([3.0, 5.0]) and why == ["idle", "idle"]
    times, why, _ = _run(env, _action(env, "every_completion"))
    assert times == pytest.approx([1.0, 3.0, 5.0]) and set(why) == {"completion"}
    times, why, ret = _run(env, _action(env, "periodic(1s)"))
    assert times == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0]) and set(why) == {"periodic"}
    assert ret == pytest.approx(-(5.0 + 5 * env.params.c_event))
    env = ScheduleEnv(max_wait_s=0.5)
    times, why, _ = _run(env, _action(env, "eq1(delta=2,alpha=0)"))
    # Eq. 1 never fires; the 0.5 s cap fires first except where the idle rule (last running task
    # done) coincides with the cap at 3.0 and 5.0.
    assert times == pytest.approx([0.5 * k for k in range(1, 11)])
    assert why == ["max_wait"] * 5 + ["idle"] + ["max_wait"] * 3 + ["idle"]


def test_runtime_eq1_condition_agrees_with_the_closed_form():
    # The first event of the hand trace: r(t_0) = (0.5, 0.5, 0) -> after task 0 finished
    # r = (1, 0.5, 0); ||e|| = 0.5 crosses exp(-0.5 t) at t = 2 ln 2.
    r0 = readiness_vector([RUNNING, RUNNING, BLOCKED])
    r1 = readiness_vector([DONE, RUNNING, BLOCKED])
    assert r0 == [0.5, 0.5, 0.0] and r1 == [1.0, 0.5, 0.0]
    t_star = 2 * math.log(2)
    assert not eq1_should_fire(r0, r1, 1.0, 0.5, t_star - 1e-6)
    assert eq1_should_fire(r0, r1, 1.0, 0.5, t_star + 1e-6)
    assert not eq1_should_fire(r0, r0, 1.0, 0.5, 1e9)  # no change, never fires
    with pytest.raises(ValueError, match="length"):
        eq1_should_fire(r0, r1[:2], 1.0, 0.5, 1.0)


def test_eq1_crossing_time_closed_form():
    assert eq1_crossing_time(0.5, 1.0, 0.5, 0.0) == pytest.approx(2 * math.log(2))
    assert eq1_crossing_time(0.5, 1.0, 0.5, 10.0) == pytest.approx(10 + 2 * math.log(2))
    assert eq1_crossing_time(2.0, 1.0, 0.0, 0.0) == -math.inf  # already above, no decay
    assert eq1_crossing_time(1.0, 1.0, 0.0, 0.0) == math.inf  # strict ">" never holds
    assert eq1_crossing_time(0.0, 1.0, 1.0, 0.0) == math.inf


def test_env_checkers_and_registry():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = ScheduleEnv()
        check_env(env)
        sb3_check_env(env)
        made = gymnasium.make("rl_shop/Schedule-v0")
        check_env(made.unwrapped)
    obs, info = made.reset(seed=3)
    assert obs.shape == (len(FEATURE_NAMES),)
    assert info["action_mask"].all() and env.action_masks().shape == (env.action_space.n,)


def test_seeded_determinism_and_seed_sensitivity():
    def trajectory(seed: int) -> list[float]:
        env = ScheduleEnv()
        env.reset(seed=seed)
        out = []
        rng = np.random.default_rng(1)
        for _ in range(60):
            o, r, term, trunc, info = env.step(int(rng.integers(env.action_space.n)))
            out += [r, info["latency"], float(o.sum())]
            if term or trunc:
                env.reset()
        return out

    assert trajectory(5) == trajectory(5)
    assert trajectory(5) != trajectory(6)


def test_per_episode_mode_equals_sum_of_events():
    a_paper = ScheduleEnv().ACTION_NAMES.index("eq1(delta=1,alpha=0.5)")
    per_event, per_episode = ScheduleEnv(), ScheduleEnv(action_mode="per_episode")
    per_event.reset(seed=11)
    per_episode.reset(seed=11)
    for _ in range(20):
        total, done = 0.0, False
        while not done:
            _, r, term, trunc, info = per_event.step(a_paper)
            total += r
            done = term or trunc
        _, r2, term2, _, info2 = per_episode.step(a_paper)
        assert term2 and r2 == pytest.approx(total)
        assert info2["scheduling_events"] == info["scheduling_events"]
        per_event.reset()
        per_episode.reset()


def test_featurize_by_hand_and_batch_identical():
    st = ScheduleState(
        elapsed_s=2.0, n_events=1, last_interval_s=2.0, task_types=[0, 1, 3],
        status=[2, 1, 0], running_age_s=[0.0, 1.0, 0.0],
    )  # fmt: skip
    row = featurize(st)
    f = dict(zip(FEATURE_NAMES, row))
    assert f["elapsed_s"] == pytest.approx(0.2) and f["frac_done"] == pytest.approx(1 / 3)
    assert f["n_running"] == pytest.approx(1 / 8) and f["running_web_search"] == pytest.approx(1 / 8)
    assert f["remaining_decision"] == pytest.approx(1 / 8) and f["remaining_product_search"] == 0
    assert f["max_running_age_s"] == pytest.approx(0.1)
    batch = featurize_batch(
        np.array([2.0]), np.array([1]), np.array([2.0]), np.array([[0, 1, 3, -1]]),
        np.array([[2, 1, 0, 2]]), np.array([[0.0, 1.0, 0.0, 0.0]]),
    )  # fmt: skip
    np.testing.assert_allclose(batch[0], row, atol=1e-7)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"delta_grid": [-1.0]}, "delta"),
        ({"alpha_grid": [-0.5]}, "alpha"),
        ({"periodic_grid_s": [0.0]}, "period"),
        ({"templates": {"x": {"weight": 1, "tasks": []}}}, "empty"),
        ({"templates": {"x": {"tasks": [{"type": "teleport"}]}}}, "unknown task type"),
        ({"templates": {"x": {"tasks": [{"type": "decision", "deps": [0]}]}}}, "earlier task"),
        ({"templates": {}}, "no DAG"),
        ({"readiness_levels": {"blocked": 1.0, "ready": 0.5, "done": 0.0}}, "blocked <= ready"),
        ({"time_origin": "yesterday"}, "time_origin"),
        ({"max_wait_s": -1}, "max_wait_s"),
        ({"bogus": 1}, "unknown rl_shop/Schedule-v0 argument"),
    ],
)
def test_bad_arguments_raise_clearly(kwargs, fragment):
    with pytest.raises((ValueError, TypeError, DagConfigError), match=fragment):
        ScheduleEnv(**kwargs)


def test_reset_to_dag_rejects_bad_dags():
    env = ScheduleEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="empty"):
        env.reset_to_dag([], [], [])
    with pytest.raises(ValueError, match="unknown type"):
        env.reset_to_dag(["shopping_spree"], [[]], [1.0])
    with pytest.raises(ValueError, match="latency"):
        env.reset_to_dag(["decision"], [[]], [-1.0])


def test_random_dags_are_valid_and_end_in_decision():
    sampler = DagSampler({}, load_default_kwargs()["latency"], 6,
                         {"weight": 1.0, "min_tasks": 2, "max_tasks": 6, "edge_prob": 0.5})  # fmt: skip
    dag = sampler.sample(np.random.default_rng(0).random((200, sampler.n_uniforms)))
    for b in range(200):
        n = dag.n_tasks[b]
        assert 2 <= n <= 6 and dag.types[b, n - 1] == 3 and (dag.types[b, n:] == -1).all()
        assert not np.triu(dag.parents[b]).any()  # edges only to earlier tasks: acyclic
        # every non-final task is an ancestor of the Decision via some path
        reach = dag.parents[b, n - 1, :n].copy()
        for i in range(n - 2, -1, -1):
            if reach[i]:
                reach |= dag.parents[b, i, :n]
        assert reach[: n - 1].all()
        assert (dag.latency_s[b, :n] > 0).all()


def test_baselines_beat_random_triggers():
    env = ScheduleEnv()
    names = env.ACTION_NAMES
    policies = {
        "paper": paper_fixed(names, alpha=env.params.paper_alpha),
        "every_completion": every_completion(names),
        "periodic": periodic_polling(names, 1.0),
    }

    def mean_return(policy, n=300) -> float:
        env.reset(seed=123)
        rng = np.random.default_rng(0)
        total = 0.0
        for _ in range(n):
            obs, info = env.reset()
            done = False
            while not done:
                a = policy.act(obs, info["action_mask"]) if policy else int(rng.integers(len(names)))
                obs, r, term, trunc, info = env.step(a)
                total += r
                done = term or trunc
        return total / n

    rand = mean_return(None)
    scores = {k: mean_return(p) for k, p in policies.items()}
    assert scores["paper"] > rand and scores["every_completion"] > rand
    # polling wastes events and adds up to a period of delay per stage
    assert scores["every_completion"] > scores["periodic"]
    with pytest.raises(ValueError, match="not in the env's action grid"):
        periodic_polling(names, 7.0)
