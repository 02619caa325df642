"""`runtime.learned_roles`: which runtime roles take their exported policy with policies="learned"."""

from __future__ import annotations

import pytest
from test_agents_product_search import sub_index

from rl_shop.paths import CHECKPOINT_DIR

pytestmark = pytest.mark.skipif(
    not all((CHECKPOINT_DIR / r / "policy_card.json").is_file() for r in ("guider", "scheduler", "collaboration")),
    reason="the shipped policies are missing from checkpoints/",
)


def _assistant(overrides: list[str]):
    from rl_shop.agents.runtime import MACDFAssistant

    sub, index = sub_index()
    return MACDFAssistant.from_config(
        ["runtime.llm_enabled=false", *overrides], catalog=sub, index=index, policies="learned", memory_path=":memory:"
    )


def test_all_roles_by_default_and_a_subset_keeps_the_heuristic_gate():
    full = _assistant([])
    assert full.guider.policy_kind == "learned" and full.leader.collaboration_policy is not None
    isolated = _assistant(["runtime.learned_roles=[guider,scheduler]"])
    assert isolated.guider.policy_kind == "learned"
    assert isolated.leader.collaboration_policy is None  # clarify-or-plan by the heuristic gate
    only_gate = _assistant(["runtime.learned_roles=[collaboration]"])
    assert only_gate.guider.policy_kind == "heuristic" and only_gate.leader.collaboration_policy is not None


def test_unknown_role_is_a_clear_error():
    with pytest.raises(ValueError, match="learned_roles.*planner"):
        _assistant(["runtime.learned_roles=[guider,planner]"])
