"""Baseline collaboration strategies for the Collaborate env, ``envs.specs.COLLABORATE`` (read only the observation).

* :class:`AlwaysFullPipeline` - MACDF's fixed pipeline: clarify if demand reasoning says
  ambiguous, search products (twice for comparison), web-search for Q&A types, decide.
* :class:`ReflectionReplan` - the same, plus the Leader's Eq. 2 reflection: if the score is
  below the re-plan threshold, re-plan once and search again before deciding.
* :class:`RandomValid` - uniform over valid actions (the floor any strategy must beat).
"""

from __future__ import annotations

import numpy as np

from rl_shop.policies.features.collaborate import (
    CLARIFY,
    COUNT_SCALE,
    DECIDE,
    FEATURE_NAMES,
    N_TYPES,
    PRODUCT_SEARCH,
    REPLAN,
    WEB_SEARCH,
)
from rl_shop.sim.slots import QUERY_TYPES

_F = {name: i for i, name in enumerate(FEATURE_NAMES)}
_QA = {QUERY_TYPES.index(t) for t in ("product_qa", "general_qa", "comparison")}
_CLARIFY_TYPES = {QUERY_TYPES.index("ambiguous")}
_COMPARISON = QUERY_TYPES.index("comparison")


def _count(obs: np.ndarray, name: str) -> int:
    return int(round(float(obs[_F[name]]) * COUNT_SCALE))


def _first_valid(prefs: list[int], mask: np.ndarray | None) -> int:
    for a in prefs:
        if mask is None or mask[a]:
            return a
    if mask is not None and mask.any():
        return int(np.flatnonzero(mask)[0])
    return DECIDE


class AlwaysFullPipeline:
    """Clarify (ambiguous only), product search (x2 for comparison), web search for Q&A, decide.

    The three sets are the knobs of the family that ``rl_shop.train.headroom`` sweeps (indices
    into ``QUERY_TYPES``); ``None`` keeps MACDF's pipeline: clarify ``ambiguous``, search twice for
    ``comparison``, web-search ``product_qa`` / ``general_qa`` / ``comparison``.
    """

    def __init__(
        self,
        clarify_types: set[int] | None = None,
        web_types: set[int] | None = None,
        double_search_types: set[int] | None = None,
    ) -> None:
        self.clarify_types = _CLARIFY_TYPES if clarify_types is None else set(clarify_types)
        self.web_types = _QA if web_types is None else set(web_types)
        self.double_search_types = {_COMPARISON} if double_search_types is None else set(double_search_types)

    def _pipeline(self, obs: np.ndarray) -> list[int]:
        qtype = int(np.argmax(obs[:N_TYPES]))
        n_ps = _count(obs, "n_product_search")
        if qtype in self.clarify_types and _count(obs, "n_clarify") == 0 and n_ps == 0:
            return [CLARIFY, PRODUCT_SEARCH]
        if n_ps == 0 or (qtype in self.double_search_types and n_ps < 2):
            return [PRODUCT_SEARCH, DECIDE]
        if qtype in self.web_types and _count(obs, "n_web_search") == 0:
            return [WEB_SEARCH, DECIDE]
        return [DECIDE]

    def act(self, obs: np.ndarray, action_mask: np.ndarray | None = None) -> int:
        """Next pipeline stage, falling back to the first valid action the mask allows."""
        return _first_valid(self._pipeline(obs), action_mask)


class ReflectionReplan(AlwaysFullPipeline):
    """Full pipeline, then one re-plan + product search when the Eq. 2 score is below threshold."""

    def act(self, obs: np.ndarray, action_mask: np.ndarray | None = None) -> int:
        prefs = self._pipeline(obs)
        if prefs == [DECIDE] and obs[_F["below_replan_threshold"]] > 0.5:
            n_replan = _count(obs, "n_replan")
            if n_replan == 0:
                prefs = [REPLAN, DECIDE]
            elif _count(obs, "n_product_search") < 3:
                prefs = [PRODUCT_SEARCH, DECIDE]
        return _first_valid(prefs, action_mask)


class RandomValid:
    """Uniformly random among valid actions, seeded."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray, action_mask: np.ndarray | None = None) -> int:
        valid = np.flatnonzero(action_mask) if action_mask is not None else np.arange(5)
        return int(self.rng.choice(valid))
