"""Learned-vs-heuristic verdicts: the across-seed interval arithmetic and the paired comparison."""

from __future__ import annotations

import math

import pytest

from rl_shop.paths import CHECKPOINT_DIR
from rl_shop.train.compare import PairedComparison, across_seeds, compare_with_heuristic, seed_table
from rl_shop.train.config import EnvSettings


def _row(seed: int, diff: float) -> PairedComparison:
    return PairedComparison(
        role="guider",
        env="rl_shop/Clarify-v0",
        seed=seed,
        learned=1.0 + diff,
        heuristic=1.0,
        random=0.0,
        diff=diff,
        ci95=0.01,
        n_episodes=10,
        learned_info={"rounds": 1.0},
        heuristic_info={"rounds": 2.0},
    )


def test_interval_over_seeds_by_hand():
    # diffs 0.1, 0.2, 0.3: mean 0.2, sd 0.1, s.e. 0.1/sqrt(3); t(0.975, df=2) = 4.302653
    wide = across_seeds([_row(0, 0.1), _row(1, 0.2), _row(2, 0.3)])
    assert wide["diff_mean"] == pytest.approx(0.2)
    assert wide["diff_ci"] == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-5)
    assert wide["significant"] is False  # 0.2 < 0.248
    tight = across_seeds([_row(0, 0.10), _row(1, 0.11), _row(2, 0.12)])
    assert tight["diff_ci"] == pytest.approx(4.302653 * 0.01 / math.sqrt(3), rel=1e-5)
    assert tight["significant"] is True  # 0.11 > 0.0248
    assert tight["learned_rounds"] == 1.0 and tight["heuristic_rounds"] == 2.0
    assert "| guider |" in seed_table([tight]) and "| yes |" in seed_table([tight])


def test_one_seed_is_never_called_significant():
    one = across_seeds([_row(0, 5.0)])
    assert math.isnan(one["diff_ci"]) and one["significant"] is False
    with pytest.raises(ValueError, match="no comparisons"):
        across_seeds([])


@pytest.mark.skipif(not (CHECKPOINT_DIR / "scheduler" / "policy_card.json").is_file(), reason="no shipped scheduler")
def test_paired_comparison_of_the_shipped_scheduler_is_deterministic_and_paired():
    from hydra import compose, initialize_config_dir

    from rl_shop.paths import CONFIG_DIR
    from rl_shop.policies.card import load_card

    card = load_card(CHECKPOINT_DIR / "scheduler" / "policy_card.json")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["env=schedule"])
    env_cfg = EnvSettings(name="schedule", id=card.env_id, kwargs=dict(cfg.env.kwargs))
    a = compare_with_heuristic("scheduler", env_cfg, CHECKPOINT_DIR / "scheduler", 40, 123)
    b = compare_with_heuristic("scheduler", env_cfg, CHECKPOINT_DIR / "scheduler", 40, 123)
    assert a == b  # same seed, same numbers
    assert a.diff == pytest.approx(a.learned - a.heuristic)  # paired over the same episodes
    assert a.n_episodes == 40 and a.ci95 > 0
    assert a.heuristic > a.random  # the paper's rule beats a random trigger
