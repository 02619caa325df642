"""Reference reports for RACE, built from the simulator's ground truth.

DeepResearch Bench compares each report with a reference written by a strong system. Offline,
the strongest source we have is the latent persona itself: the reference recommends products
of the persona's gold set (every constraint satisfied, ``rl_shop.sim.gold_ids``), ranked by the
hybrid index for the query, and explains them with catalog facts. It is a templated oracle, not
prose from a frontier model, so a RACE of 0.5 means "as useful as the oracle shortlist".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rl_shop.research.research_agent import render_markdown
from rl_shop.research.trajectory import InferredIntent, Recommendation, Report
from rl_shop.sim import Intent, gold_ids

if TYPE_CHECKING:
    import pandas as pd

    from rl_shop.catalog.index import HybridIndex


def reference_report(
    persona: Intent, inferred: InferredIntent, catalog: pd.DataFrame, index: HybridIndex, k: int = 3, depth: int = 50
) -> Report:
    """The oracle shortlist for ``persona`` rendered like an agent report."""
    gold = set(gold_ids(catalog, persona))
    if not gold:
        raise ValueError(f"persona has an empty gold set; cannot build a reference: {persona.constraints()}")
    ranked = [h.product_id for h in index.search(inferred.query, k=depth) if h.product_id in gold]
    rest = sorted(gold - set(ranked))
    picks = (ranked + rest)[:k]
    rows = {str(p): i for i, p in enumerate(catalog["product_id"].astype(str))}
    recs = []
    prices = []
    for pid in picks:
        r = catalog.iloc[rows[pid]]
        price = float(r["price"])
        bits = [f"a {r['category']} from {r['brand'] or 'an unnamed brand'}"]
        if not math.isnan(price):
            prices.append(price)
            bits.append(
                f"priced at ${price:.2f}" + (f", within the ${persona.budget:.0f} budget" if persona.budget else "")
            )
        if len(r["features"]):
            bits.append("with " + ", ".join(list(r["features"])[:3]))
        recs.append(Recommendation(product_id=pid, reason="It is " + ", ".join(bits) + "."))
    span = f" Prices range from ${min(prices):.2f} to ${max(prices):.2f}." if prices else ""
    summary = (
        f"{len(gold)} products in the catalog satisfy every stated need for {persona.category}; "
        f"these {len(picks)} match the request best.{span}"
    )
    if len(prices) >= 2:
        cheapest = picks[prices.index(min(prices))]
        verdict = f"Choose [{cheapest}] for the lowest price, or the first pick for the closest match to the request."
    else:
        verdict = "The first pick is the closest match to the request."
    report = Report(summary=summary, recommendations=recs, verdict=verdict)
    report.markdown = render_markdown(inferred.query, report, catalog)
    return report
