"""Open-world query understanding of real shoppers' text (``rl-shop parse``).

General readers (budget, exclusions, attributes, product type against the catalog, a fitted
clarify gate) instead of an inverse of the simulator's renderer; see ``docs/agents.md``.
"""

from rl_shop.agents.understanding.normalize import normalize_text
from rl_shop.agents.understanding.understander import QueryUnderstanding, Understander

__all__ = ["QueryUnderstanding", "Understander", "normalize_text"]
