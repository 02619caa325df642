"""Probe candidate features for the carried-or-not gate on real_v1 dev (nothing is written).

    python experiments/probe_type_gate.py

The gate of ``configs/agents/type_gate.yaml`` is a logistic regression over the evidence features
of ``rl_shop.agents.understanding.semantic_types``. This script adds one candidate feature set at a
time and reports, by 5-fold cross-validation on the hand-labelled dev queries (never test), the
share of out-of-catalog requests detected at the threshold that keeps false "not carried" within
the fit's bound, averaged over five fold seeds. The candidates are the ones recorded as "tried
and not shipped" in docs/results/understanding.md.
"""

from __future__ import annotations

import re
import sys

import numpy as np
from fit_type_gate import MAX_FALSE_NOT_CARRIED, C, dev_evidence, threshold_at_bound
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from rl_shop.agents.understanding.semantic_types import GATE_FEATURES

FOLD_SEEDS = range(5)
N_NEAREST = 10  # nearest products whose titles the word-coverage feature reads
MIN_BRAND_PRODUCTS = 5  # a catalog brand counts when it has at least this many products

# Written from general retail knowledge before any dev error was read: departments the catalog
# does not carry, and the ones it does.
OTHER_DEPARTMENTS = (
    "beauty and personal care: makeup, lipstick, skin care, moisturizer, face cream, serum, shampoo, nail polish, perfume",
    "grocery and gourmet food: snacks, coffee, tea, candy, chocolate, cookies, spices, sauces, cereal, nuts",
    "clothing: shirts, pants, jeans, dresses, jackets, sweaters, t-shirts, socks, underwear, hoodies, leggings",
    "shoes: sneakers, running shoes, boots, sandals, heels, slippers",
    "jewelry: necklaces, earrings, bracelets, rings",
    "kitchen and dining: cookware, pots, pans, knives, kitchen utensils, dishes, bakeware, blenders",
    "furniture: sofas, chairs, tables, beds, mattresses, shelves, dressers",
    "bedding and bath: sheets, pillows, blankets, towels, shower curtains, rugs, curtains",
    "home decor: wall art, candles, vases, artificial flowers",
    "toys and games: toys, dolls, puzzles, board games, action figures, building blocks",
    "baby products: diapers, baby bottles, strollers, car seats, baby clothes",
    "pet supplies: dog food, cat food, pet beds, leashes, cat litter, pet toys",
    "sports and outdoors: fitness equipment, yoga mats, dumbbells, bicycles, camping gear, tents, fishing rods",
    "health and household: vitamins, supplements, first aid, cleaning supplies, laundry detergent, paper towels",
    "automotive parts: car parts, tires, motor oil, brake pads, car wax, seat covers",
    "tools and home improvement: power drills, hand tools, screws, paint, plumbing, light bulbs",
    "patio, lawn and garden: plants, seeds, garden hoses, lawn mowers, outdoor furniture, grills",
    "arts, crafts and sewing: yarn, paint brushes, craft supplies, fabric, sewing machines",
    "musical instruments: guitars, pianos, drums, violins, ukuleles",
    "books: novels, textbooks, cookbooks, children's books",
    "luggage and travel: suitcases, travel bags, duffel bags",
    "handbags and accessories: purses, wallets, belts, hats, sunglasses, scarves",
)
CARRIED_DEPARTMENTS = (
    "computers: laptops, desktops, tablets, monitors, keyboards, mice, graphics cards, memory, hard drives, usb flash drives",
    "electronics: headphones, speakers, televisions, home theater, audio, mp3 players, radios",
    "cameras and photo: digital cameras, dslr, camcorders, lenses, tripods, memory cards, camera batteries",
    "cell phones and accessories: smartphones, phone cases, chargers, cables, screen protectors, bluetooth headsets",
    "office products: printers, ink, toner, paper, labels, laminators, shredders, office supplies, binders",
    "networking: routers, modems, network switches, ethernet cables, wireless adapters",
    "car electronics and gps: car stereos, car speakers, gps navigation, dash cams, radar detectors",
)
_TOKEN = re.compile(r"[a-z0-9]+")
_FUNCTION_WORD_TEXT = (
    "i am im looking for a an the some me find show want need would like to with and or of in on at by from "
    "under less than over below above price priced dollars dollar is it that which who be my you can get please "
    "buy one"
)
_FUNCTION_WORDS = frozenset(_FUNCTION_WORD_TEXT.split())


def detected_at_bound(X: np.ndarray, carried: np.ndarray) -> float:
    """Mean over fold seeds of the out-of-catalog share detected at the fit's threshold rule
    (``fit_type_gate.threshold_at_bound``) on cross-validated probabilities."""
    found = []
    for seed in FOLD_SEEDS:
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
        model = LogisticRegression(C=C, class_weight="balanced", max_iter=4000)
        proba = cross_val_predict(model, X, carried, cv=folds, method="predict_proba")[:, 1]
        threshold = threshold_at_bound(proba, carried)
        found.append(0.0 if threshold is None else float(np.mean(proba[~carried] < threshold)))
    return float(np.mean(found))


def main() -> int:
    dev = dev_evidence()
    catalog, index, semantic, queries, carried = dev.catalog, dev.index, dev.semantic, dev.queries, dev.carried
    base = np.array([[ev.features[k] for k in GATE_FEATURES] for ev in dev.evidence])
    request = index.embed_queries(queries)

    other = (request @ index.embed_queries(list(OTHER_DEPARTMENTS)).T).max(axis=1)
    kept = (request @ index.embed_queries(list(CARRIED_DEPARTMENTS)).T).max(axis=1)
    departments = np.stack([other, kept, other - kept], axis=1)

    titles = [set(_TOKEN.findall(str(t).lower())) for t in catalog["title"]]
    doc_freq: dict[str, int] = {}
    for words in titles:
        for w in words:
            doc_freq[w] = doc_freq.get(w, 0) + 1

    def coverage(i: int) -> list[float]:
        words = [w for w in _TOKEN.findall(queries[i].lower()) if w not in _FUNCTION_WORDS and not w.isdigit()]
        if not words:
            return [0.0, 0.0]
        near = np.argsort(-(semantic.products @ request[i]))[:N_NEAREST]
        idf = {w: np.log(len(titles) / (1 + doc_freq.get(w, 0))) for w in words}
        total = sum(idf.values()) or 1.0
        plain = max(sum(w in titles[j] for w in words) / len(words) for j in near)
        weighted = max(sum(idf[w] for w in words if w in titles[j]) / total for j in near)
        return [plain, weighted]

    covered = np.array([coverage(i) for i in range(len(queries))])
    counts = catalog["brand"].fillna("").astype(str).str.lower().value_counts()
    brands = {b: int(n) for b, n in counts.items() if len(b) >= 3 and n >= MIN_BRAND_PRODUCTS}
    brand_re = re.compile(r"\b(" + "|".join(sorted(map(re.escape, brands), key=len, reverse=True)) + r")\b")
    named = np.array([[float(bool(brand_re.search(q.lower())))] for q in queries])

    print(f"real_v1 dev: {len(queries)} labelled requests, {int((~carried).sum())} out of catalog")
    print(
        f"out-of-catalog detected at false 'not carried' <= {MAX_FALSE_NOT_CARRIED} (mean of {len(FOLD_SEEDS)} fold seeds)"
    )
    candidates = {
        "as shipped": base,
        "+ department closeness": np.hstack([base, departments]),
        "+ nearest titles' word coverage (plain)": np.hstack([base, covered[:, :1]]),
        "+ nearest titles' word coverage (idf)": np.hstack([base, covered[:, 1:]]),
        "+ names a catalog brand": np.hstack([base, named]),
    }
    for name, X in candidates.items():
        print(f"  {name:42s} {detected_at_bound(X, carried):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
