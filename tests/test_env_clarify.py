"""rl_shop/Clarify-v0: Eq. 3 on hand-worked transitions, episode ends, masks, checkers, errors.

The hand-built catalog has 8 products (ids 0-7) and one intent constraining three slots:
category keeps {0,1,2,3}, budget keeps {0,1,4,5}, brand keeps {0,2,4,6}; gold = {0}. The first
query states the category, so |C| starts at 4 (H = 2 bits); revealing budget leaves {0,1} (1 bit),
then brand leaves {0} (0 bits). All expected numbers below are worked out from these sets.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from envs.clarify import ACTION_NAMES, STOP, SUGGEST, ClarifyEnv
from envs.intent_pool import (
    IntentPool,
    IntentPoolError,
    PoolIntent,
    candidate_counts,
    pool_from_intents,
    synthetic_intent_pool,
)
from rl_shop.policies.features.clarify import LOG2_CAND_IDX, feature_index
from rl_shop.sim.slots import SLOTS

CAT, BUDGET, BRAND, COLOUR = (SLOTS.index(s) for s in ("category", "budget", "brand", "colour"))


def _mask(ids: list[int], n: int = 8) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[ids] = True
    return m


def hand_intent(**overrides) -> PoolIntent:
    fields = dict(
        query_type=0,
        slot_masks={CAT: _mask([0, 1, 2, 3]), BUDGET: _mask([0, 1, 4, 5]), BRAND: _mask([0, 2, 4, 6])},
        gold=_mask([0]),
        stated=[CAT],
        p_dont_know=0.0,
        p_wrong=0.0,
        patience=5,
    )
    fields.update(overrides)
    return PoolIntent(**fields)


def hand_env(intent: PoolIntent | None = None, **kwargs) -> ClarifyEnv:
    params = dict(
        alpha=1.0, beta=0.1, w_T=2.0, abandon_penalty=3.0, confirm_threshold=0.5, max_rounds=6, normalize_gain=False
    )
    params.update(kwargs)
    pool = pool_from_intents([intent or hand_intent()], 8)
    return ClarifyEnv(intent_pool=pool, **params)


# ---------------------------------------------------------------------- the pool tables
def test_candidate_counts_match_hand_counted_sets():
    masks = {CAT: _mask([0, 1, 2, 3]), BUDGET: _mask([0, 1, 4, 5]), BRAND: _mask([0, 2, 4, 6])}
    cand, hits = candidate_counts(masks, _mask([0]), 8)
    c, b, r, col = 1 << CAT, 1 << BUDGET, 1 << BRAND, 1 << COLOUR
    expected = {0: 8, c: 4, b: 4, r: 4, c | b: 2, c | r: 2, b | r: 2, c | b | r: 1}
    for mask, count in expected.items():
        assert cand[mask] == count, mask
        assert cand[mask | col] == count, "an irrelevant slot must not change the candidates"
        assert hits[mask] == 1
    assert cand.shape == (512,)


def test_hits_count_gold_inside_candidates_only():
    # Gold = a target product (like Q&A) that the brand constraint alone would exclude.
    masks = {CAT: _mask([0, 1, 2, 3]), BRAND: _mask([0, 2])}
    cand, hits = candidate_counts(masks, _mask([1]), 8)
    assert hits[1 << CAT] == 1 and cand[1 << CAT] == 4
    assert hits[(1 << CAT) | (1 << BRAND)] == 0


def test_pool_rejects_empty_and_inconsistent_input():
    with pytest.raises(IntentPoolError, match="zero intents"):
        pool_from_intents([], 8)
    good = pool_from_intents([hand_intent()], 8)
    with pytest.raises(IntentPoolError, match="empty"):
        IntentPool(**{**_fields(good), "query_type": np.zeros(0, int)})
    with pytest.raises(IntentPoolError, match="subset of the relevant"):
        IntentPool(**{**_fields(good), "stated": np.array([1 << COLOUR])})
    with pytest.raises(IntentPoolError, match="p_dont_know \\+ p_wrong"):
        pool_from_intents([hand_intent(p_dont_know=0.7, p_wrong=0.6)], 8)
    with pytest.raises(IntentPoolError, match="shape"):
        pool_from_intents([hand_intent(gold=_mask([0], n=5))], 8)


def _fields(pool: IntentPool) -> dict:
    names = ["query_type", "relevant", "stated", "n_candidates", "n_hits", "p_dont_know", "p_wrong", "patience"]
    return {**{n: getattr(pool, n) for n in names}, "catalog_size": pool.catalog_size}


def test_pool_save_load_roundtrip_and_corrupt_file(tmp_path):
    pool = synthetic_intent_pool(5, 50, seed=3)
    path = tmp_path / "pool.npz"
    pool.save(path)
    back = IntentPool.load(path)
    for name, value in _fields(pool).items():
        assert np.array_equal(np.asarray(getattr(back, name)), np.asarray(value)), name
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(IntentPoolError, match="unreadable"):
        IntentPool.load(bad)
    with pytest.raises(IntentPoolError, match="not found"):
        IntentPool.load(tmp_path / "missing.npz")


# ---------------------------------------------------------------------- Eq. 3, hand-worked
def test_start_state_knows_the_stated_slot():
    env = hand_env()
    obs, info = env.reset(seed=0)
    assert obs[feature_index("known=category")] == 1.0
    assert obs[feature_index("known=budget")] == 0.0
    assert obs[LOG2_CAND_IDX] == pytest.approx(2.0 / 3.0)  # log2 4 / log2 8
    assert info["action_mask"][CAT] == np.False_ and info["action_mask"][BUDGET]
    assert "accuracy_at_5" not in info


def test_eq3_reward_for_a_correct_answer_in_bits():
    env = hand_env()
    env.reset(seed=0)
    obs, reward, term, trunc, info = env.step(BUDGET)
    # Intent_Gain = log2 4 - log2 2 = 1 bit; R = 1.0 * 1 - 0.1 * 1
    assert info["intent_gain"] == pytest.approx(1.0)
    assert reward == pytest.approx(0.9)
    assert not term and not trunc and info["rounds"] == 1 and info["outcome"] == "answered"
    assert obs[LOG2_CAND_IDX] == pytest.approx(1.0 / 3.0)
    obs, reward, *_, info = env.step(BRAND)
    assert reward == pytest.approx(0.9) and obs[LOG2_CAND_IDX] == 0.0


def test_eq3_normalized_gain_divides_by_log2_catalog_size():
    env = hand_env(normalize_gain=True, alpha=3.0, beta=0.25)
    env.reset(seed=0)
    _, reward, *_, info = env.step(BUDGET)
    assert info["intent_gain"] == pytest.approx(1.0 / 3.0)
    assert reward == pytest.approx(3.0 * (1.0 / 3.0) - 0.25)


def test_irrelevant_slot_gets_no_preference_and_costs_a_round():
    env = hand_env()
    env.reset(seed=0)
    obs, reward, *_, info = env.step(COLOUR)
    assert reward == pytest.approx(-0.1) and info["intent_gain"] == 0.0
    assert info["outcome"] == "no_preference"
    assert obs[feature_index("no_pref=colour")] == 1.0 and obs[feature_index("asked=colour")] == 1.0
    assert not info["action_mask"][COLOUR]


def test_stop_hands_over_with_accuracy_at_5():
    env = hand_env()
    env.reset(seed=0)
    _, reward, term, trunc, info = env.step(STOP)
    # |G ∩ C| / |C| = 1 / 4; stop costs no round
    assert term and not trunc
    assert info["accuracy_at_5"] == pytest.approx(0.25)
    assert reward == pytest.approx(2.0 * 0.25)
    assert info["rounds"] == 0


def test_accuracy_is_gold_share_of_candidates_even_above_five():
    # Budget-only intent: gold = C_full ∩ budget = 4 products of 8. With nothing stated |C| = 8,
    # so the uniform top-5 holds 5 * 4/8 gold in expectation: Accuracy@5 = 0.5 (not 4/5).
    intent = hand_intent(slot_masks={BUDGET: _mask([0, 1, 4, 5])}, gold=_mask([0, 1, 4, 5]), stated=[])
    env = hand_env(intent)
    env.reset(seed=0)
    *_, info = env.step(STOP)
    assert info["accuracy_at_5"] == pytest.approx(0.5)


def test_rejected_suggestion_volunteers_a_hidden_slot_then_confirms():
    env = hand_env()
    env.reset(seed=0)
    obs, reward, term, _, info = env.step(SUGGEST)  # Accuracy 0.25 < 0.5: rejected
    assert not term and info["outcome"] == "rejected_volunteered"
    assert reward == pytest.approx(1.0 - 0.1)  # one of budget / brand revealed: 1 bit
    volunteered = [s for s in ("budget", "brand") if obs[feature_index(f"known={s}")] == 1.0]
    assert len(volunteered) == 1
    assert obs[feature_index(f"asked={volunteered[0]}")] == 0.0
    _, reward, term, _, info = env.step(SUGGEST)  # Accuracy 1/2 >= 0.5: confirmed
    assert term and info["outcome"] == "confirmed"
    assert reward == pytest.approx(-0.1 + 2.0 * 0.5)
    assert info["accuracy_at_5"] == pytest.approx(0.5) and info["rounds"] == 2


def test_patience_exhausted_shopper_leaves_with_penalty():
    env = hand_env(hand_intent(patience=1))
    env.reset(seed=0)
    _, r1, term, *_ = env.step(COLOUR)
    assert not term and r1 == pytest.approx(-0.1)
    _, r2, term, trunc, info = env.step(BUDGET)
    assert term and not trunc and info["outcome"] == "shopper_left"
    assert r2 == pytest.approx(-0.1 - 3.0)
    assert info["intent_gain"] == 0.0 and info["accuracy_at_5"] == 0.0


def test_max_rounds_truncates_without_terminal_term():
    env = hand_env(max_rounds=2)
    env.reset(seed=0)
    env.step(COLOUR)
    _, reward, term, trunc, info = env.step(BUDGET)
    assert trunc and not term
    assert reward == pytest.approx(0.9)  # no w_T term on truncation
    assert info["accuracy_at_5"] == pytest.approx(0.5)  # reported: |G|/|C| = 1/2


def test_dont_know_and_wrong_value_reveal_nothing():
    env = hand_env(hand_intent(p_dont_know=1.0))
    env.reset(seed=0)
    obs, reward, *_, info = env.step(BUDGET)
    assert info["outcome"] == "dont_know" and info["intent_gain"] == 0.0
    assert reward == pytest.approx(-0.1)
    assert obs[feature_index("dont_know=budget")] == 1.0 and not info["action_mask"][BUDGET]

    env = hand_env(hand_intent(p_wrong=1.0))
    env.reset(seed=0)
    obs, reward, *_, info = env.step(BUDGET)
    assert info["outcome"] == "wrong_value" and info["intent_gain"] == 0.0
    assert obs[feature_index("known=budget")] == 1.0  # the Guider believes it got a value
    assert obs[LOG2_CAND_IDX] == pytest.approx(2.0 / 3.0)  # but C did not shrink


def test_repeated_question_costs_a_round_and_reveals_nothing():
    env = hand_env()
    env.reset(seed=0)
    _, reward, *_, info = env.step(CAT)  # stated already: masked, still accepted
    assert info["outcome"] == "repeated" and reward == pytest.approx(-0.1)


def test_answer_probabilities_follow_the_pool():
    env = hand_env(hand_intent(p_dont_know=0.3, p_wrong=0.2))
    outcomes = []
    for ep in range(2000):
        env.reset(seed=ep)
        outcomes.append(env.step(BUDGET)[4]["outcome"])
    counts = {k: outcomes.count(k) / len(outcomes) for k in ("dont_know", "wrong_value", "answered")}
    assert counts["dont_know"] == pytest.approx(0.3, abs=0.04)
    assert counts["wrong_value"] == pytest.approx(0.2, abs=0.04)
    assert counts["answered"] == pytest.approx(0.5, abs=0.04)


# ---------------------------------------------------------------------- API conformance
def test_action_names_and_spaces():
    env = hand_env()
    assert ACTION_NAMES[:9] == tuple(f"ask_{s}" for s in SLOTS)
    assert ACTION_NAMES[SUGGEST] == "suggest" and ACTION_NAMES[STOP] == "stop"
    assert env.action_space.n == 11 and env.observation_space.shape == (47,)


@pytest.mark.slow
def test_gymnasium_and_sb3_env_checkers_pass():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("rl_shop/Clarify-v0", intent_pool=synthetic_intent_pool(16, 200, seed=1))
    check_env(env.unwrapped)  # made through the registry, so the ansi render mode is checked too
    sb3_check_env(env.unwrapped, warn=True)


def test_registered_id_makes_the_env():
    env = gym.make("rl_shop/Clarify-v0", intent_pool=synthetic_intent_pool(4, 100, seed=0))
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    assert isinstance(env.unwrapped, ClarifyEnv)
    for env_id in ("rl_shop/Clarify-v0", "rl_shop/Schedule-v0", "rl_shop/Collaborate-v0"):
        assert env_id in gym.registry


def test_seeded_reset_replays_exactly_and_seeds_differ():
    pool = synthetic_intent_pool(32, 300, seed=2)

    def rollout(seed: int) -> list:
        env = ClarifyEnv(intent_pool=pool)
        rng = np.random.default_rng(0)
        obs, info = env.reset(seed=seed)
        out = [obs.tobytes()]
        for _ in range(200):
            a = int(rng.choice(np.flatnonzero(info["action_mask"])))
            obs, r, te, tr, info = env.step(a)
            out.append((obs.tobytes(), r, te, tr))
            if te or tr:
                obs, info = env.reset()
                out.append(obs.tobytes())
        return out

    assert rollout(7) == rollout(7)
    assert rollout(7) != rollout(8)


def test_action_masks_block_known_and_asked_slots():
    env = hand_env()
    env.reset(seed=0)
    assert env.action_masks().tolist() == [False] + [True] * 10
    env.step(COLOUR)
    m = env.action_masks()
    assert not m[CAT] and not m[COLOUR] and m[BUDGET] and m[SUGGEST] and m[STOP]
    assert m.sum() == 9


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beta": -1.0}, "beta"),
        ({"alpha": float("nan")}, "alpha"),
        ({"confirm_threshold": 0.0}, "confirm_threshold"),
        ({"max_rounds": 0}, "max_rounds"),
        ({"max_rounds": 2.5}, "max_rounds"),
        ({"normalize_gain": "yes"}, "normalize_gain"),
        ({"alpah": 1.0}, "unknown rl_shop/Clarify-v0 argument"),
    ],
)
def test_bad_coefficients_raise_clear_errors(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ClarifyEnv(intent_pool=pool_from_intents([hand_intent()], 8), **kwargs)


def test_bad_actions_and_pool_type_raise_clear_errors():
    env = hand_env()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not in 0..10"):
        env.step(11)
    with pytest.raises(IntentPoolError, match="IntentPool"):
        ClarifyEnv(intent_pool={"not": "a pool"})


def test_render_ansi_names_known_slots():
    env = ClarifyEnv(intent_pool=pool_from_intents([hand_intent()], 8), render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert "known=['category']" in text and "|C|=4" in text


def test_malformed_config_file_and_sim_config_are_reported(tmp_path):
    from envs.clarify import load_default_kwargs

    bad = tmp_path / "clarify.yaml"
    bad.write_text("kwargs: [1, 2\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_default_kwargs(bad)
    bad.write_text("name: clarify\n")
    with pytest.raises(ValueError, match="'kwargs' mapping"):
        load_default_kwargs(bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_default_kwargs(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="sim_config"):
        ClarifyEnv(intent_pool=pool_from_intents([hand_intent()], 8), sim_config="fast please")
