"""The simulated shopper's structured face: slot answers and reactions to result lists.

Answers carry the noise real shoppers show: "don't know" (more often for needs they left unsaid),
a misremembered value, and a patience budget after which they quit. Reactions follow a
position-based click model, P(click at rank r) = examination(r) * attractiveness(relevance), with
purchase, reformulation and latency-driven abandonment (MACDF section 4.2.2 reports users leaving
before slow results arrived). All probabilities come from ``configs/sim``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rl_shop.array_ops import SCALAR, FormulaOps, Num
from rl_shop.sim.answer_text import AnswerPhrasing, SlotAnswer, answer_to_text, suggestion_text
from rl_shop.sim.config import SimConfig, load_sim_config
from rl_shop.sim.constraints import CatalogArrays, gold_mask, slot_mask, target_mask
from rl_shop.sim.slots import SLOTS, SUGGESTION, Intent


@dataclass(frozen=True)
class Reaction:
    """What the shopper did with one result list."""

    clicks: tuple[str, ...] = ()
    purchased: str | None = None
    reformulate: bool = False
    abandon: bool = False
    relevant_in_top_k: int = 0
    p_abandon: float = 0.0


@dataclass
class _State:
    questions: int = 0
    quit: bool = False
    answers: list[SlotAnswer] = field(default_factory=list)


def abandon_probability(
    latency_s: Num,
    tolerance_s: Num,
    base_p: float,
    scale_s: float,
    ops: FormulaOps[Num] = SCALAR,  # type: ignore[assignment]  # mypy: no default for a generic parameter
) -> Num:
    """``base_p`` up to the tolerance, then rising towards 1: 1 - (1-base) exp(-(l - tol)/scale).

    The one shopper abandonment model: on Python numbers (``ops=SCALAR``: the language-face shopper
    and the single env) and on numpy / torch arrays (``NUMPY`` / ``TORCH``: the batched kernels).
    """
    if ops is SCALAR and (latency_s < 0 or not math.isfinite(latency_s)):
        raise ValueError(f"latency must be a finite non-negative number of seconds, got {latency_s!r}")
    over = ops.maximum(latency_s - tolerance_s, 0.0)
    return ops.where(latency_s <= tolerance_s, base_p, 1.0 - (1.0 - base_p) * ops.exp(-over / scale_s))


def confirms(accuracy: Num, confirm_threshold: float) -> Num:
    """The shopper accepts a shortlist shown for confirmation (the Clarify env's ``suggest``) when
    its Accuracy@5 reaches the threshold (scalars or arrays alike)."""
    return accuracy >= confirm_threshold


def volunteer_index(ops: FormulaOps[Num], u: Num, n_hidden: Num) -> Num:
    """Which hidden relevant slot (the k-th, in ``SLOTS`` order) a shopper who rejects a shortlist
    volunteers, for a uniform draw ``u``: each of the ``n_hidden`` equally likely."""
    return ops.i64(u * n_hidden)


class Shopper:
    """One seeded simulated shopper holding a hidden ``Intent``."""

    def __init__(
        self,
        intent: Intent,
        catalog: pd.DataFrame | CatalogArrays,
        config: SimConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.intent = intent
        self.arr = CatalogArrays.of(catalog)
        self.config = config or load_sim_config()
        self.cfg = self.config.shopper
        self.rng = np.random.default_rng(seed)
        mined = self.config.render.answer_face == "mined"
        self.phrasing = AnswerPhrasing.from_lexicon(self.config.lexicon) if mined else None
        self.gold = gold_mask(self.arr, intent)
        self._state = _State()
        constrained = [s for s in intent.constrained_slots()]
        masks = [slot_mask(self.arr, intent, s) for s in constrained]
        if intent.target_product_ids:
            masks.append(target_mask(self.arr, intent))
        self._graded = np.mean(masks, axis=0) if masks else np.ones(self.arr.n)
        self._graded = np.where(self.gold, 1.0, self._graded)

    # ------------------------------------------------------------------ state
    @property
    def quit(self) -> bool:
        """True once patience ran out."""
        return self._state.quit

    @property
    def patience_left(self) -> int:
        """Questions the shopper will still answer."""
        return max(0, self.intent.patience - self._state.questions)

    @property
    def answers(self) -> tuple[SlotAnswer, ...]:
        return tuple(self._state.answers)

    # ------------------------------------------------------------------ answers
    def answer(self, slot: str) -> SlotAnswer:
        """Answer one clarifying question about ``slot`` (costs one unit of patience)."""
        if slot not in SLOTS:
            raise ValueError(f"unknown slot {slot!r}; valid slots are {list(SLOTS)}")
        st = self._state
        if st.quit or st.questions >= self.intent.patience:
            st.quit = True
            ans = SlotAnswer(slot, "quit")
        else:
            st.questions += 1
            ans = self._answer_value(slot)
        st.answers.append(ans)
        return ans

    def suggestion(self, shown: Sequence[str], confirm_threshold: float) -> SlotAnswer | None:
        """React to a shortlist shown for confirmation (the Clarify env's ``suggest``; one unit of
        patience, like a question): ``None`` when she confirms it (its Accuracy@5, the share of
        gold products among ``shown``, reaches ``confirm_threshold``); else she volunteers one
        relevant slot not yet revealed, chosen uniformly, with its true value, or, with none left,
        rejects it with nothing to add (status ``no_preference`` on ``SUGGESTION``)."""
        st = self._state
        if st.quit or st.questions >= self.intent.patience:
            st.quit = True
            st.answers.append(ans := SlotAnswer(SUGGESTION, "quit"))
            return ans
        st.questions += 1
        ids = [str(p) for p in shown]
        if ids and confirms(float(self.is_relevant(ids).mean()), confirm_threshold):
            return None
        revealed = set(self.intent.stated_slots) | {a.slot for a in st.answers if a.status == "value" and not a.noisy}
        hidden = [s for s in self.intent.constrained_slots() if s not in revealed]
        if not hidden:
            ans = SlotAnswer(SUGGESTION, "no_preference")
        else:
            slot = hidden[int(volunteer_index(SCALAR, self.rng.random(), len(hidden)))]
            ans = SlotAnswer(slot, "value", self.intent.slot_value(slot))
        st.answers.append(ans)
        return ans

    def _answer_value(self, slot: str) -> SlotAnswer:
        it = self.intent
        if not it.has_constraint(slot):
            return SlotAnswer(slot, "no_preference")
        p_dk = it.p_dont_know + (self.cfg.p_dont_know_hidden_bonus if slot in it.hidden_slots else 0.0)
        u = self.rng.random()
        if u < min(1.0, p_dk):
            return SlotAnswer(slot, "dont_know")
        if self.rng.random() < it.p_wrong:
            wrong = self._wrong_value(slot)
            if wrong is not None:
                return SlotAnswer(slot, "value", wrong, noisy=True)
        return SlotAnswer(slot, "value", it.slot_value(slot))

    def _other(self, values: list[str], true: set[str]) -> str | None:
        pool = sorted({v for v in values if v and v not in true})
        return pool[int(self.rng.integers(len(pool)))] if pool else None

    def _wrong_value(self, slot: str) -> object | None:
        """A plausible but wrong value for ``slot`` drawn from what the catalog has."""
        it, a = self.intent, self.arr
        if slot == "category":
            return self._other(list(a.categories), {it.category})
        if slot == "budget":
            assert it.budget is not None, "_answer_value asks only about constrained slots"
            f = self.rng.uniform(self.cfg.wrong_budget_factor.low, self.cfg.wrong_budget_factor.high)
            return round(float(it.budget) * f, 2)
        if slot == "brand":
            in_cat = a.brand[a.category == it.category].tolist()
            other = self._other(in_cat, set(it.preferred_brands) | set(it.excluded_brands))
            if other is None:
                return None
            return {"prefer": [other], "exclude": []} if it.preferred_brands else {"prefer": [], "exclude": [other]}
        if slot == "colour":
            return self._other(a.colour.tolist(), {it.colour or ""})
        if slot == "capacity":
            assert it.min_capacity_gb is not None, "_answer_value asks only about constrained slots"
            return float(it.min_capacity_gb) * float(self.rng.choice([0.5, 2.0]))
        if slot == "size":
            shift = float(self.rng.choice([-2.0, 2.0]))
            lo, hi = it.min_size_in, it.max_size_in
            return [None if lo is None else max(0.0, lo + shift), None if hi is None else hi + shift]
        if slot in ("connectivity", "features"):
            lists = a.connectivity_lists if slot == "connectivity" else a.feature_lists
            tokens = it.connectivity if slot == "connectivity" else it.features
            other = self._other([t for lst in lists for t in lst], set(tokens))
            return None if other is None else [other]
        return None  # use_case: a shopper does not misremember why they shop

    def answer_text(self, slot: str) -> str:
        """Language face: answer ``slot`` and render the same answer as a natural reply."""
        return answer_to_text(self.answer(slot), self.rng, self.phrasing)

    def reply(self, slot: str, shown: Sequence[str], confirm_threshold: float) -> str:
        """Language face of one clarification turn: the answer about ``slot``, or, for
        ``slot == SUGGESTION``, the reaction to the shortlist ``shown`` (``suggestion``; the
        threshold is the Clarify env's ``confirm_threshold``, which callers read from its config)."""
        if slot != SUGGESTION:
            return self.answer_text(slot)
        return suggestion_text(self.suggestion(shown, confirm_threshold), self.rng, self.phrasing)

    # ------------------------------------------------------------------ reactions
    def relevance(self, product_ids: list[str]) -> np.ndarray:
        """Graded relevance in [0, 1]: 1 for gold, else the share of constraints satisfied."""
        return np.array([self._graded[self.arr.index_of(p)] for p in product_ids], dtype=float)

    def is_relevant(self, product_ids: list[str]) -> np.ndarray:
        """Binary relevance (membership of the gold set)."""
        return np.array([bool(self.gold[self.arr.index_of(p)]) for p in product_ids])

    def react(self, ranked_product_ids: list[str], latency_s: float = 0.0) -> Reaction:
        """Clicks, purchase, reformulation or abandonment for one ranked result list."""
        c = self.cfg
        p_ab = abandon_probability(latency_s, self.intent.latency_tolerance_s, c.abandon_base_p, c.abandon_scale_s)
        if self.rng.random() < p_ab:
            return Reaction(abandon=True, p_abandon=p_ab)
        ids = [str(p) for p in ranked_product_ids][: c.click.max_rank]
        rel = self.relevance(ids) if ids else np.zeros(0)
        gold = self.is_relevant(ids) if ids else np.zeros(0, dtype=bool)
        ranks = np.arange(1, len(ids) + 1)
        exam = 1.0 / ranks**c.click.examination_eta
        attr = (
            c.click.attractiveness_irrelevant
            + (c.click.attractiveness_relevant - c.click.attractiveness_irrelevant) * rel**2
        )
        clicked = self.rng.random(len(ids)) < exam * attr
        clicks = tuple(p for p, k in zip(ids, clicked) if k)
        purchased = None
        budget = self.intent.budget
        for i in np.flatnonzero(clicked):
            price = self.arr.price[self.arr.index_of(ids[i])]
            within = budget is None or (math.isfinite(price) and price <= budget)
            if gold[i] and within and self.rng.random() < c.p_purchase:
                purchased = ids[i]
                break
        n_rel = int(gold[: c.reformulate_top_k].sum())
        reformulate = purchased is None and n_rel == 0 and self.rng.random() < c.p_reformulate
        return Reaction(clicks, purchased, reformulate, False, n_rel, p_ab)
