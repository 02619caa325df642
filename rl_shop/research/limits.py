"""What the shopper's request rules out, as catalog search filters.

A shopper who asked for headphones, said "at most $40" or said "no Sony" has ruled products out;
recommending one is a mistake no prose can repair, and the embedded 135M agent makes it (after an
intent shift it kept recommending from its old evidence, and its searches bring in other product
types: docs/research.md). So, as a shop's search page keeps the filters a shopper set, the Research
Agent's product searches and the products its report may cite are kept within the request
(``research_agent.yaml`` ``search_within_request`` / ``cite_within_request``): the product type
the request names (the reading's category), a budget the shopper *stated* (a product with no price
cannot be shown to be within it; a budget the User Agent only inferred from behaviour is not a
limit the shopper set), no brand the shopper excluded, and the features or connectivity the
shopper said an update needs. The rule is written once, as a
:class:`~rl_shop.catalog.filters.SearchFilters`, which the index applies to searches and
``ResearchTools.admitted`` to citations. Only the reading is used; the latent intent stays the
simulator's.

What the history *favours* (brands, a colour, features, connectivity) and the brands it *avoids*
(:mod:`rl_shop.research.history_profile`) are preferences, not limits: :func:`preferred_filters`
adds them to the request's filters, and a
search or a citation list that the preference would leave empty falls back to the request alone
(``ResearchTools.execute`` / ``admitted``), as a shop's "recommended for you" ordering never hides
the rest of the shelf.
"""

from __future__ import annotations

from dataclasses import replace

from rl_shop.catalog.filters import SearchFilters
from rl_shop.research.trajectory import InferredIntent


def request_filters(reading: InferredIntent) -> SearchFilters | None:
    """The filters of ``reading``'s request (``None`` when it rules nothing out)."""
    filters = SearchFilters(
        categories=frozenset({reading.category}) if reading.category else None,
        max_price=reading.budget if reading.budget_stated else None,
        exclude_brands=frozenset(reading.excluded_brands),
        features=frozenset(reading.stated_features),
        connectivity=frozenset(reading.stated_connectivity),
    )
    return None if filters.is_empty() else filters


def preferred_filters(reading: InferredIntent) -> SearchFilters | None:
    """The request's filters narrowed to what the history favours and away from the brands it avoids
    (``None`` when it shows neither)."""
    shown = (reading.favoured_brands, reading.colour, reading.features, reading.connectivity, reading.avoided_brands)
    if not any(shown):
        return None
    base = request_filters(reading) or SearchFilters()
    return replace(
        base,
        brands=frozenset(reading.favoured_brands) or None,
        exclude_brands=base.exclude_brands | frozenset(reading.avoided_brands),
        colour=reading.colour,
        features=base.features | frozenset(reading.features),
        connectivity=base.connectivity | frozenset(reading.connectivity),
    )


__all__ = ["preferred_filters", "request_filters"]
