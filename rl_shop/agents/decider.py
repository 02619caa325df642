"""Decider Agent (MACDF 3.7): multi-criteria decision over candidate products.

The paper's dynamic multi-criteria evaluation matrix has four criteria, each scored in [0, 1]:

* functional performance: query / feature overlap, required-attribute match, ratings and the
  retrieval score when available;
* economic cost: price against the budget (or against the other candidates without one);
* risk / reliability: established brand, no suspicious price outlier, web evidence mentioning it;
* preferences and constraints: preferred brands and the user's history (soft), while the hard
  constraints (budget cap, excluded brands, required / excluded attributes) filter candidates
  out before scoring and are never violated.

Criterion weights come from the Analytic Hierarchy Process (``rl_shop.agents.mcda``): the principal eigenvector of the
pairwise comparison matrix in ``configs/agents/decider.yaml``, with Saaty's consistency ratio
checked (CR < 0.1, else :class:`AHPInconsistent`). The Pareto front over the criteria marks the
options no other option dominates. The advice text is streamed from an injected LLM when one is
given (``llm.stream``), otherwise written by a deterministic template from the same matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from rl_shop.agents.decider_config import CRITERIA, DeciderConfig, HardConstraintConfig, decider_settings
from rl_shop.agents.llm_protocols import SupportsStream, chunk_text, note_discarded
from rl_shop.agents.mcda import ahp_weights, pareto_front
from rl_shop.agents.memory import Memory
from rl_shop.agents.text import tokens
from rl_shop.agents.types import (
    Candidate,
    Decision,
    IntentLike,
    IntentSpec,
    Recommendation,
    ScoredDocument,
    WebSearchResult,
)

# ------------------------------------------------------------------------------------------ feedback


class FeedbackSignal(BaseModel):
    """Result of the Decider's self-evaluation against the user's immediate feedback."""

    satisfaction: float
    replan: bool
    reason: str


# ------------------------------------------------------------------------------------------ hard constraints


def _values(value: object) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple, set)) else [value]


def _text_of(c: Candidate) -> str:
    return " ".join([c.title, c.description, " ".join(c.features)]).lower()


def attribute_match(c: Candidate, key: str, value: object, cfg: HardConstraintConfig) -> bool | None:
    """Whether candidate ``c`` has ``key=value``; None when the attribute is unknown for it."""
    if key == "features":
        text = _text_of(c)
        return all(str(v).lower() in text for v in _values(value))
    have = c.attributes.get(key)
    if have is None or (isinstance(have, float) and math.isnan(have)):
        return None
    if isinstance(value, Mapping):  # numeric range {"min": a, "max": b}
        try:
            got = float(have[0] if isinstance(have, list) else have)
        except (TypeError, ValueError):
            return False
        return (value.get("min") is None or got >= float(value["min"])) and (
            value.get("max") is None or got <= float(value["max"])
        )
    for want in _values(value):
        if isinstance(want, (int, float)) and not isinstance(want, bool):
            try:
                got = float(have[0] if isinstance(have, list) else have)
            except (TypeError, ValueError):
                return False
            if key in cfg.at_least:
                if got < float(want):
                    return False
            elif abs(got - float(want)) > cfg.numeric_tolerance * max(abs(float(want)), 1e-9):
                return False
        else:
            haves = [str(h).lower() for h in _values(have)]
            if str(want).lower() not in haves and not any(str(want).lower() in h for h in haves):
                return False
    return True


_ATTRIBUTE_MISS = ("missing required", "unknown")  # violations that only concern a stated attribute


def hard_constraint_violation(c: Candidate, intent: IntentSpec, cfg: HardConstraintConfig) -> str | None:
    """The first hard constraint ``c`` violates (a readable reason), or None."""
    if c.brand and c.brand.lower() in intent.excluded_brands:
        return f"excluded brand {c.brand}"
    if intent.budget is not None:
        if c.price is None:
            return "no price to check against the budget"
        if c.price > intent.budget * (1 + cfg.budget_tolerance):
            return f"price {c.price:.2f} over budget {intent.budget:.2f}"
    if intent.budget_min is not None and c.price is not None and c.price < intent.budget_min:
        return f"price {c.price:.2f} under minimum {intent.budget_min:.2f}"
    for key, value in intent.required_attributes.items():
        ok = attribute_match(c, key, value, cfg)
        if ok is None:
            if cfg.unknown_attribute == "exclude":
                return f"unknown {key}"
            if cfg.unknown_attribute == "text" and isinstance(value, Mapping):
                return f"unknown {key} (required range {value})"
            if cfg.unknown_attribute == "text":
                text = _text_of(c)
                ok = all(str(v).lower() in text for v in _values(value))
            else:
                ok = True
        if not ok:
            return f"missing required {key}={value}"
    for key, value in intent.excluded_attributes.items():
        for v in _values(value):
            hit = attribute_match(c, key, v, cfg)
            if hit is None:
                hit = str(v).lower() in _text_of(c)
            if hit:
                return f"has excluded {key}={v}"
    return None


def clean_llm_advice(text: str, recs: Sequence[Recommendation]) -> str:
    """Drop repeated paragraphs / sentences (small models loop) and reject advice that names none of
    the recommended products (by brand or a distinctive title word); "" means: use the template."""
    seen: set[str] = set()
    kept: list[str] = []
    for para in (p.strip() for p in text.replace("\r", "").split("\n")):
        key = " ".join(tokens(para))
        if not key or key in seen:
            continue
        seen.add(key)
        kept.append(para)
    cleaned = "\n".join(kept).strip()
    if not cleaned or not recs:
        return ""
    words = set(tokens(cleaned))
    anchors: set[str] = set()
    for r in recs:
        anchors |= {t for t in tokens(r.title) if len(t) > 3} | ({r.brand} if r.brand else set())
    return cleaned if words & anchors else ""


# ------------------------------------------------------------------------------------------ matrix


@dataclass
class EvaluationMatrix:
    """Criterion scores (rows: admissible candidates, columns: criteria) and what was filtered."""

    candidates: list[Candidate]
    criteria: list[str]
    values: np.ndarray
    excluded: dict[str, str]
    notes: dict[str, dict[str, Any]]
    titles: dict[str, str] = field(default_factory=dict)  # excluded product id -> title (nearest alternatives)


def _robust_z(x: np.ndarray) -> np.ndarray:
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    if mad <= 0:
        return np.zeros_like(x)
    return 0.6745 * (x - med) / mad


class Decider:
    """Multi-criteria Decider; the LLM (``stream``) is optional and only writes the advice text."""

    def __init__(self, config: DeciderConfig | dict[str, Any] | None = None, llm: SupportsStream | None = None) -> None:
        # a dict holds overrides of configs/agents/decider.yaml, the one home of the defaults
        self.config: DeciderConfig = config if isinstance(config, DeciderConfig) else decider_settings(**(config or {}))
        self.llm = llm
        self.ahp = ahp_weights(
            self.config.pairwise, self.config.max_consistency_ratio, self.config.reciprocal_tolerance
        )
        self.weights = {c: float(w) for c, w in zip(self.config.criteria, self.ahp.weights)}

    # ------------------------------------------------------------------ matrix
    def evaluate(
        self,
        intent: IntentLike,
        candidates: Iterable[Candidate | Mapping[str, Any]],
        web: WebSearchResult | Sequence[ScoredDocument] | None = None,
        user_history: Sequence[Mapping[str, Any]] | None = None,
        brand_counts: Mapping[str, int] | None = None,
    ) -> EvaluationMatrix:
        """Filter by hard constraints and score the admissible candidates on the four criteria."""
        spec = IntentSpec.from_intent(intent)
        pool = [c if isinstance(c, Candidate) else Candidate.from_row(dict(c)) for c in candidates]
        seen: set[str] = set()
        admissible, excluded, titles = [], {}, {}
        for c in pool:
            if c.product_id in seen:
                continue
            seen.add(c.product_id)
            why = hard_constraint_violation(c, spec, self.config.hard_constraints)
            if why:
                excluded[c.product_id] = why
                titles[c.product_id] = c.title
            else:
                admissible.append(c)
        notes: dict[str, dict[str, Any]] = {c.product_id: {} for c in admissible}
        cols = {name: np.zeros(len(admissible)) for name in CRITERIA}
        if admissible:
            cols["functional"] = self._functional(spec, admissible, notes)
            cols["economic"] = self._economic(spec, admissible, notes)
            cols["risk"] = self._risk(admissible, web, brand_counts, pool, notes)
            cols["preference"] = self._preference(spec, admissible, user_history, notes)
        values = (
            np.column_stack([cols[name] for name in self.config.criteria])
            if admissible
            else np.zeros((0, len(self.config.criteria)))
        )
        return EvaluationMatrix(admissible, list(self.config.criteria), values, excluded, notes, titles)

    def _functional(self, spec: IntentSpec, cands: list[Candidate], notes: dict[str, dict[str, Any]]) -> np.ndarray:
        f = self.config.functional
        q = set(tokens(spec.query)) | set(tokens(spec.category or ""))
        scores = []
        retrieval = [c.retrieval_score for c in cands if c.retrieval_score is not None]
        r_lo, r_hi = (min(retrieval), max(retrieval)) if retrieval else (0.0, 0.0)
        for c in cands:
            parts: list[tuple[float, float]] = []
            text = set(tokens(_text_of(c))) | set(tokens(c.brand)) | set(tokens(c.category))
            if q:
                overlap = len(q & text) / len(q)
                parts.append((f.query_overlap, overlap))
                notes[c.product_id]["query_overlap"] = overlap
            if spec.required_attributes:
                matched = [
                    k
                    for k, v in spec.required_attributes.items()
                    if attribute_match(c, k, v, self.config.hard_constraints)
                ]
                parts.append((f.attribute_match, len(matched) / len(spec.required_attributes)))
                notes[c.product_id]["matched_attributes"] = matched
            if c.rating is not None and c.rating > 0:
                parts.append((f.rating, min(c.rating / 5.0, 1.0)))
                notes[c.product_id]["rating"] = c.rating
            if c.retrieval_score is not None and r_hi > r_lo:
                parts.append((f.retrieval_score, (c.retrieval_score - r_lo) / (r_hi - r_lo)))
            total_w = sum(w for w, _ in parts)
            scores.append(sum(w * s for w, s in parts) / total_w if total_w > 0 else 0.5)
        return np.asarray(scores)

    def _economic(self, spec: IntentSpec, cands: list[Candidate], notes: dict[str, dict[str, Any]]) -> np.ndarray:
        prices = np.array([c.price if c.price is not None else np.nan for c in cands], dtype=float)
        w = self.config.economic.budget_headroom_weight
        if spec.budget is not None and spec.budget > 0:
            scores = 1.0 - w * np.clip(prices / spec.budget, 0.0, 1.0 + self.config.hard_constraints.budget_tolerance)
        else:
            finite = prices[np.isfinite(prices)]
            lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
            scores = 1.0 - w * ((prices - lo) / (hi - lo)) if hi > lo else np.full(len(cands), 1.0 - w / 2)
        scores = np.where(np.isfinite(scores), scores, 0.0)  # unknown price: worst economic score
        for c, s in zip(cands, scores):
            notes[c.product_id]["economic"] = float(s)
        return np.clip(scores, 0.0, 1.0)

    def _risk(
        self,
        cands: list[Candidate],
        web: WebSearchResult | Sequence[ScoredDocument] | None,
        brand_counts: Mapping[str, int] | None,
        pool: list[Candidate],
        notes: dict[str, dict[str, Any]],
    ) -> np.ndarray:
        r = self.config.risk
        counts: dict[str, int] = {}
        if brand_counts:
            counts = {str(k).lower(): int(v) for k, v in brand_counts.items()}
        else:
            for c in pool:
                if c.brand:
                    counts[c.brand] = counts.get(c.brand, 0) + 1
        prices = np.array([c.price if c.price and c.price > 0 else np.nan for c in cands], dtype=float)
        z = np.zeros(len(cands))
        ok = np.isfinite(prices)
        if ok.sum() >= 3:
            z[ok] = _robust_z(np.log(prices[ok]))
        docs = web.documents if isinstance(web, WebSearchResult) else list(web or [])
        web_text = " ".join(f"{d.document.title} {d.document.text}" for d in docs).lower()
        web_tokens = set(tokens(web_text))
        scores = []
        for i, c in enumerate(cands):
            known = counts.get(c.brand, 0) >= r.known_brand_min_count if c.brand else False
            outlier = bool(z[i] < -r.price_outlier_z)
            mentioned = bool(c.brand and c.brand in web_tokens)
            notes[c.product_id].update(
                known_brand=known, brand_count=counts.get(c.brand, 0), price_outlier=outlier, web_mentioned=mentioned
            )
            parts = [(r.brand_weight, 1.0 if known else 0.0), (r.price_weight, 0.0 if outlier else 1.0)]
            if docs:
                parts.append((r.web_weight, 1.0 if mentioned else 0.0))
            total = sum(w for w, _ in parts)
            scores.append(sum(w * s for w, s in parts) / total if total > 0 else 0.5)
        return np.asarray(scores)

    def _preference(
        self,
        spec: IntentSpec,
        cands: list[Candidate],
        history: Sequence[Mapping[str, Any]] | None,
        notes: dict[str, dict[str, Any]],
    ) -> np.ndarray:
        p = self.config.preference
        history_brands: set[str] = set()
        for event in history or []:
            payload = event.get("payload", event)
            if isinstance(payload, Mapping) and payload.get("brand"):
                history_brands.add(str(payload["brand"]).lower())
        scores = []
        for c in cands:
            if not spec.preferred_brands:
                s = p.no_preference
            elif c.brand in spec.preferred_brands:
                s = p.preferred_brand
                notes[c.product_id]["preferred_brand"] = True
            else:
                s = p.other_brand
            if c.brand and c.brand in history_brands:
                s += p.history_bonus
                notes[c.product_id]["history_brand"] = True
            scores.append(min(s, 1.0))
        return np.asarray(scores)

    # ------------------------------------------------------------------ decision
    def decide(
        self,
        intent: IntentLike,
        candidates: Iterable[Candidate | Mapping[str, Any]],
        web: WebSearchResult | Sequence[ScoredDocument] | None = None,
        user_history: Sequence[Mapping[str, Any]] | None = None,
        brand_counts: Mapping[str, int] | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Decision:
        """Score, rank (AHP-weighted sum; Pareto front marked) and write the Decision.

        ``on_token`` receives advice text chunks as they are produced (streamed from the LLM, or
        the template text in one chunk) so a caller can measure time to first token.
        """
        spec = IntentSpec.from_intent(intent)
        pool = [c if isinstance(c, Candidate) else Candidate.from_row(dict(c)) for c in candidates]
        m = self.evaluate(spec, pool, web, user_history, brand_counts)
        relaxed: dict[str, str] = {}
        if not m.candidates:
            m, relaxed = self._relax(spec, pool, m, web, user_history, brand_counts)
        w = np.array([self.weights[c] for c in m.criteria])
        scores = m.values @ w if len(m.candidates) else np.zeros(0)
        front = pareto_front(m.values) if len(m.candidates) else np.zeros(0, dtype=bool)
        order = sorted(
            range(len(m.candidates)),
            key=lambda i: (-scores[i], m.candidates[i].price or 0.0, m.candidates[i].product_id),
        )
        recs = []
        for i in order[: self.config.top_k]:
            c = m.candidates[i]
            crit = {name: round(float(m.values[i, j]), 4) for j, name in enumerate(m.criteria)}
            recs.append(
                Recommendation(
                    product_id=c.product_id,
                    title=c.title,
                    brand=c.brand,
                    price=c.price,
                    score=round(float(scores[i]), 4),
                    criteria=crit,
                    pareto_optimal=bool(front[i]),
                    reasons=[
                        *([f"does not meet {relaxed[c.product_id]}"] if relaxed else []),
                        *self._reasons(spec, c, crit, m.notes[c.product_id], m),
                    ],
                )
            )
        missed = sorted({why for pid, why in relaxed.items() if pid in {r.product_id for r in recs}})
        follow_up = self._follow_up(spec, recs)
        advice, source = self._advice(spec, recs, m, web, follow_up, on_token, missed)
        return Decision(
            advice=advice,
            recommendations=recs,
            follow_up_question=follow_up,
            weights=self.weights,
            consistency_ratio=self.ahp.consistency_ratio,
            excluded=m.excluded,
            advice_source=source,
            relaxed=missed,
        )

    def _relax(
        self,
        spec: IntentSpec,
        pool: list[Candidate],
        strict: EvaluationMatrix,
        web: WebSearchResult | Sequence[ScoredDocument] | None,
        user_history: Sequence[Mapping[str, Any]] | None,
        brand_counts: Mapping[str, int] | None,
    ) -> tuple[EvaluationMatrix, dict[str, str]]:
        """When no candidate meets every requirement: the nearest real alternatives are those that
        miss only stated attributes (never one over budget, of an excluded brand or with an
        excluded attribute), scored without those attributes; each keeps what it misses."""
        if not self.config.hard_constraints.relax_attributes or not spec.required_attributes:
            return strict, {}
        misses = {
            pid: why.removeprefix("missing required ")
            for pid, why in strict.excluded.items()
            if why.startswith(_ATTRIBUTE_MISS)
        }
        near = [c for c in pool if c.product_id in misses]
        loose = self.evaluate(
            spec.model_copy(update={"required_attributes": {}}), near, web, user_history, brand_counts
        )
        if not loose.candidates:
            return strict, {}
        kept = {c.product_id for c in loose.candidates}
        excluded = {pid: why for pid, why in strict.excluded.items() if pid not in kept} | loose.excluded
        return replace(loose, excluded=excluded, titles={**strict.titles, **loose.titles}), {
            pid: why for pid, why in misses.items() if pid in kept
        }

    def _reasons(
        self, spec: IntentSpec, c: Candidate, crit: dict[str, float], note: dict[str, Any], m: EvaluationMatrix
    ) -> list[str]:
        reasons: list[tuple[float, str]] = []
        matched = note.get("matched_attributes") or []
        if matched:
            desc = ", ".join(f"{k}={spec.required_attributes[k]}" for k in matched)
            reasons.append((self.weights["functional"] * crit["functional"], f"functionality: matches {desc}"))
        elif note.get("query_overlap") is not None:
            reasons.append(
                (
                    self.weights["functional"] * crit["functional"],
                    f"functionality: {note['query_overlap']:.0%} of your request's terms appear in its description",
                )
            )
        if c.rating:
            reasons.append((self.weights["functional"] * crit["functional"], f"rated {c.rating:.1f}/5"))
        if c.price is not None:
            if spec.budget:
                reasons.append(
                    (
                        self.weights["economic"] * crit["economic"],
                        f"cost: ${c.price:.2f}, {1 - c.price / spec.budget:.0%} under your ${spec.budget:.0f} budget",
                    )
                )
            else:
                cheaper = sum(1 for o in m.candidates if o.price is not None and o.price > c.price)
                reasons.append(
                    (
                        self.weights["economic"] * crit["economic"],
                        f"cost: ${c.price:.2f}, cheaper than {cheaper} of {len(m.candidates)} options",
                    )
                )
        if note.get("known_brand"):
            reasons.append(
                (
                    self.weights["risk"] * crit["risk"],
                    f"reliability: established brand {c.brand} ({note.get('brand_count')} products)",
                )
            )
        if note.get("web_mentioned"):
            reasons.append((self.weights["risk"] * crit["risk"], f"reliability: {c.brand} is covered by web sources"))
        if note.get("price_outlier"):
            reasons.append((0.0, "caution: price far below similar products"))
        if note.get("preferred_brand"):
            reasons.append(
                (self.weights["preference"] * crit["preference"], f"preference: your preferred brand {c.brand}")
            )
        if note.get("history_brand"):
            reasons.append((self.weights["preference"] * crit["preference"], f"preference: you chose {c.brand} before"))
        caution = [r for r in reasons if r[1].startswith("caution")]
        ranked = [r for _, r in sorted((r for r in reasons if r not in caution), key=lambda r: -r[0])]
        return ranked[: self.config.advice.max_reasons] + [r for _, r in caution]

    def _follow_up(self, spec: IntentSpec, recs: list[Recommendation]) -> str:
        if not recs:
            if spec.budget is not None:
                return f"Nothing matched every requirement within ${spec.budget:.0f}. Could you raise the budget or drop a requirement?"
            return "Nothing matched every requirement. Which requirement could you relax?"
        if len(recs) >= 2 and recs[0].score - recs[1].score < self.config.advice.close_score_gap:
            return f"{recs[0].title} and {recs[1].title} are close. Is price or features more important to you?"
        if spec.budget is None:
            return "What budget do you have in mind? I can narrow the options down."
        if not spec.preferred_brands:
            return "Do you have a preferred brand?"
        return f"Would you like to see accessories that go with {recs[0].title}?"

    def _template_advice(
        self, spec: IntentSpec, recs: list[Recommendation], m: EvaluationMatrix, follow_up: str
    ) -> str:
        if not recs:
            n = len(m.excluded)
            text = (
                f"I could not find a product that meets all your requirements ({n} candidates were ruled out, "
                f"e.g. {next(iter(m.excluded.values()), 'no candidates')})."
            )
            # The nearest real alternative: the best-ranked candidate that only misses a stated
            # attribute (never one over budget or of an excluded brand).
            near = next(
                ((pid, why) for pid, why in m.excluded.items() if why.startswith(("missing required", "unknown"))), None
            )
            if near is not None:
                text += f" The closest match is {m.titles.get(near[0], near[0])}, but it has {near[1]}."
            return f"{text} {follow_up}"
        top = recs[0]
        price = f" at ${top.price:.2f}" if top.price is not None else ""
        lines = [f"My recommendation: {top.title}{price}. " + "; ".join(top.reasons[:2]) + "."]
        for alt in recs[1:]:
            alt_price = f" (${alt.price:.2f})" if alt.price is not None else ""
            lines.append(
                f"Alternative: {alt.title}{alt_price}: {alt.reasons[0] if alt.reasons else 'also a good fit'}."
            )
        lines.append(follow_up)
        return "\n".join(lines)

    def _advice(
        self,
        spec: IntentSpec,
        recs: list[Recommendation],
        m: EvaluationMatrix,
        web: WebSearchResult | Sequence[ScoredDocument] | None,
        follow_up: str,
        on_token: Callable[[str], None] | None,
        missed: Sequence[str] = (),
    ) -> tuple[str, Literal["llm", "template"]]:
        # relaxed recommendations: say plainly, before anything else, what none of them meets
        notice = (
            (
                f"Nothing meets every requirement (none has {'; '.join(missed)}); "
                "these are the closest real alternatives.\n"
            )
            if missed
            else ""
        )
        if notice and on_token:
            on_token(notice)
        if self.llm is not None and recs:
            summary = web.summary if isinstance(web, WebSearchResult) else ""
            table = "\n".join(
                f"- {r.title} | ${r.price if r.price is not None else '?'} | score {r.score:.2f} | "
                + "; ".join(r.reasons)
                for r in recs
            )
            messages = [
                {
                    "role": "system",
                    "content": "You are a shopping advisor. Using only the analysed options below, write "
                    "short purchasing advice: recommend the first option, explain why (function, cost, reliability), "
                    "mention alternatives. Do not invent products or prices.",
                },
                {
                    "role": "user",
                    "content": f"Request: {spec.query}\nOptions (best first):\n{table}\n"
                    f"Web findings: {summary or 'none'}",
                },
            ]
            parts: list[str] = []
            try:
                for chunk in self.llm.stream(messages, max_tokens=self.config.advice.llm_max_tokens):
                    text = chunk_text(chunk)
                    if text:
                        parts.append(text)
                        if on_token:
                            on_token(text)
            except Exception:  # noqa: BLE001 - a failing backend falls back to the template
                parts = []
            advice = clean_llm_advice("".join(parts), recs)
            if advice:
                return f"{notice}{advice}\n{follow_up}", "llm"
            note_discarded(self.llm)  # failed the advice checks (or the backend failed)
        text = self._template_advice(spec, recs, m, follow_up)
        if on_token:
            on_token(text)
        return notice + text, "template"

    # ------------------------------------------------------------------ self-adaptation (3.7)
    def self_evaluate(
        self, decision: Decision, clicked: Iterable[str] = (), purchased: Iterable[str] = (), new_need: bool = False
    ) -> FeedbackSignal:
        """Score the decision by the user's immediate feedback on the recommended products; a low
        score or a new need asks the Leader to re-plan."""
        fb = self.config.feedback
        recommended = {r.product_id for r in decision.recommendations}
        if recommended & set(purchased):
            sat, why = fb.purchase, "a recommended product was purchased"
        elif recommended & set(clicked):
            sat, why = fb.click, "a recommended product was clicked"
        else:
            sat, why = fb.no_interaction, "no recommended product was clicked or purchased"
        if new_need:
            return FeedbackSignal(satisfaction=sat, replan=True, reason=f"{why}; the user raised a new need")
        return FeedbackSignal(satisfaction=sat, replan=sat < fb.replan_below, reason=why)

    def remember(self, memory: Memory, intent: IntentLike, decision: Decision, signal: FeedbackSignal) -> bool:
        """Store the decision as an experience sample when its feedback reached
        ``feedback.store_experience_at``; returns whether it was stored."""
        if signal.satisfaction < self.config.feedback.store_experience_at:
            return False
        spec = IntentSpec.from_intent(intent)
        memory.record_experience(
            spec.query_type,
            {
                "intent": spec.model_dump(mode="json"),
                "recommended": [r.product_id for r in decision.recommendations],
                "weights": decision.weights,
            },
            signal.satisfaction,
        )
        return True
