"""Shared fixtures of the evaluation tests (no tests of its own): tiny catalog items and deterministic systems."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from test_sim_helpers import tiny_catalog

from rl_shop.evaluation.systems import SystemOutput
from rl_shop.sim.benchmark import BenchmarkItem
from rl_shop.sim.constraints import gold_ids
from rl_shop.sim.slots import Intent

__all__ = ["FixedIndex", "KeyedSystem", "ProbeSystem", "Interrupting", "make_items", "tiny_catalog"]


def _intent(**kw) -> Intent:
    base = dict(
        query_type="multi_constraint",
        category="headphones",
        stated_slots=("category",),
        patience=6,
        p_dont_know=0.1,
        p_wrong=0.1,
        latency_tolerance_s=5.0,
    )
    return Intent(**{**base, **kw})


def make_items(cat) -> list[BenchmarkItem]:
    """Eight hand-made queries over the tiny catalog, two query types per category."""
    specs = [
        (
            "q0",
            "sony headphones under $150",
            _intent(budget=150.0, preferred_brands=("sony",), stated_slots=("category", "budget", "brand")),
        ),
        (
            "q1",
            "headphones but not sony",
            _intent(query_type="negation", excluded_brands=("sony",), stated_slots=("category", "brand")),
        ),
        (
            "q2",
            "a usb stick",
            _intent(
                query_type="ambiguous", category="usb flash drives", min_capacity_gb=32.0, hidden_slots=("capacity",)
            ),
        ),
        ("q3", "usb flash drives", _intent(query_type="simple", category="usb flash drives")),
        (
            "q4",
            "dell laptops",
            _intent(
                query_type="simple", category="laptops", preferred_brands=("dell",), stated_slots=("category", "brand")
            ),
        ),
        (
            "q5",
            "a laptop for travel",
            _intent(query_type="ambiguous", category="laptops", max_size_in=14.0, hidden_slots=("size",)),
        ),
        (
            "q6",
            "wireless mice",
            _intent(
                query_type="simple", category="mice", features=("wireless",), stated_slots=("category", "features")
            ),
        ),
        (
            "q7",
            "logitech mice not over $30",
            _intent(
                query_type="negation",
                category="mice",
                budget=30.0,
                preferred_brands=("logitech",),
                stated_slots=("category", "budget", "brand"),
            ),
        ),
    ]
    return [BenchmarkItem(i, q, it.query_type, it, tuple(gold_ids(cat, it))) for i, q, it in specs]


class KeyedSystem:
    """A deterministic test double: shows gold[:n_gold] then other products; fixed per-item timings.

    It also asks the shopper one question through the language face, as a multi-turn system would.
    """

    def __init__(self, name: str, cat, n_gold: int = 2) -> None:
        self.name, self.n_gold = name, n_gold
        self.all_ids = list(cat["product_id"])

    def run(self, item, shopper) -> SystemOutput:
        gold = list(item.gold_product_ids)[: self.n_gold]
        others = [p for p in self.all_ids if p not in item.gold_product_ids]
        reply = shopper.answer_text("budget")
        n = int(item.id[1:])
        return SystemOutput(
            gold + others[:3],
            answer=f"Here are products for you. {reply}",
            clarifications=[("budget", "What is your budget?", reply)],
            ttft_s=0.1 * (n + 1),
            total_s=1.0 + n,
        )


@dataclass
class ProbeSystem:
    """Records what its shopper says and does, to check that two systems meet the same shopper."""

    name: str
    seen: dict = field(default_factory=dict)

    def run(self, item, shopper) -> SystemOutput:
        texts = [shopper.answer_text(s) for s in ("budget", "brand", "capacity")]
        reaction = shopper.react(list(item.gold_product_ids)[:3] + ["h3", "m2"], latency_s=1.0)
        self.seen[item.id] = (texts, reaction.clicks, reaction.purchased)
        return SystemOutput(list(item.gold_product_ids)[:3], answer=" | ".join(texts))


class Interrupting:
    """Wraps a system and raises KeyboardInterrupt on its ``at``-th call (a killed evaluation)."""

    def __init__(self, inner, at: int) -> None:
        self.inner, self.at, self.calls, self.name = inner, at, 0, inner.name

    def run(self, item, shopper):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.inner.run(item, shopper)


class FixedIndex:
    """Returns the same candidates for every query (what the RAG prompt gets is then known)."""

    def __init__(self, ids):
        self.ids, self.queries = list(ids), []

    def search(self, query, k, filters=None):
        self.queries.append(query)
        return [SimpleNamespace(product_id=p) for p in self.ids[:k]]
