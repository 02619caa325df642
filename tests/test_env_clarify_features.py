"""The Clarify featurizer: layout, hand-worked rows, batch == single, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from rl_shop.policies.features import clarify as F
from rl_shop.policies.features.clarify import DialogueState, featurize, featurize_batch


def test_layout_is_versioned_and_named():
    assert F.LAYOUT_VERSION == "clarify-v1"
    assert len(F.FEATURE_NAMES) == F.N_FEATURES == 47
    assert len(set(F.FEATURE_NAMES)) == 47
    assert F.FEATURE_NAMES[F.ROUNDS_IDX] == "rounds_frac"
    assert F.FEATURE_NAMES[F.LOG2_CAND_IDX] == "log2_cand_frac"


def test_hand_worked_row_from_slot_names():
    state = DialogueState.from_slots(
        "negation",
        known=["category", "brand"],
        no_preference=["colour"],
        dont_know=["budget"],
        asked=["brand", "colour", "budget"],
        rounds=3,
        max_rounds=6,
        n_candidates=16,
        catalog_size=1024,
    )
    row = featurize(state)
    assert row.dtype == np.float32 and row.shape == (47,)
    expected = np.zeros(47, np.float32)
    for name in (
        "qt=negation",
        "known=category",
        "known=brand",
        "no_pref=colour",
        "dont_know=budget",
        "asked=brand",
        "asked=colour",
        "asked=budget",
    ):
        expected[F.feature_index(name)] = 1.0
    expected[F.feature_index("rounds_frac")] = 0.5
    expected[F.feature_index("log2_cand_frac")] = 0.4  # log2 16 / log2 1024
    expected[F.feature_index("known_frac")] = np.float32(2 / 9)
    assert np.array_equal(row, expected)
    row[0] = 5.0  # rows are writable and independent
    assert featurize(state)[0] == 0.0


def test_batch_rows_equal_single_rows():
    gen = np.random.default_rng(0)
    n = 300
    cols = dict(
        query_type=gen.integers(0, 8, n),
        known=gen.integers(0, 512, n),
        no_preference=gen.integers(0, 512, n),
        dont_know=gen.integers(0, 512, n),
        asked=gen.integers(0, 512, n),
        rounds=gen.integers(0, 7, n),
        log2_candidates=gen.uniform(0, 11.3, n),
    )
    batch = featurize_batch(max_rounds=7, log2_catalog_size=11.3, **cols)
    for k in range(n):
        state = DialogueState(
            int(cols["query_type"][k]),
            int(cols["known"][k]),
            int(cols["no_preference"][k]),
            int(cols["dont_know"][k]),
            int(cols["asked"][k]),
            int(cols["rounds"][k]),
            7,
            float(cols["log2_candidates"][k]),
            11.3,
        )
        assert np.array_equal(batch[k], featurize(state)), k


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(query_type="shouting"), "unknown query type"),
        (dict(known=["colour", "flavour"]), "unknown slot 'flavour'"),
        (dict(known="brand"), "single string"),
        (dict(rounds=9), "rounds"),
        (dict(n_candidates=5000), "n_candidates"),
        (dict(max_rounds=0), "max_rounds"),
    ],
)
def test_from_slots_rejects_bad_input(kwargs, message):
    base = dict(query_type="simple", rounds=1, max_rounds=6, n_candidates=10, catalog_size=100)
    base.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=message):
        DialogueState.from_slots(**base)


def test_featurize_rejects_out_of_range_masks():
    bad = DialogueState(0, 1 << 9, 0, 0, 0, 0, 5, 1.0, 3.0)
    with pytest.raises(ValueError, match="known must be a 9-bit slot mask"):
        featurize(bad)
    neg = DialogueState(0, 0, -1, 0, 0, 0, 5, 1.0, 3.0)
    with pytest.raises(ValueError, match="no_preference"):
        featurize(neg)
