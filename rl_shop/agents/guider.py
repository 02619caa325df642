"""Guider Agent (MACDF 3.3): slot-filling clarification and post-answer follow-up suggestions.

*Which* slot to ask about is decided by a policy over the shared featurizer
``rl_shop.policies.features.clarify`` (the observation the Clarify env, ``envs.specs.CLARIFY``, trains on): an
exported DQN policy (its Q-values over ``ask_<slot> x 9, suggest, stop``) when one is configured,
else the ``AskUntilConfident`` heuristic with population priors estimated from the simulator.
*How* the question is worded comes from the LLM (short chat call, checked: one question, no
invented products), with a template per slot as fallback. The shopper's reply is parsed by the
rule parser of :mod:`rl_shop.agents.demand` against the catalog vocabularies; the LLM is asked
(structured output) only when the rules find nothing, and its answer is re-validated by the
rules, so a hallucinated value never becomes a constraint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from envs.specs import CLARIFY
from rl_shop.agents.config import defaults_from, validate_config
from rl_shop.agents.demand import (
    INFERRED_SOURCES,
    CatalogVocab,
    ParsedDemand,
    extract_slots,
    parse_shortlist_reply,
    parse_slot_answer,
)
from rl_shop.agents.llm_protocols import note_discarded
from rl_shop.config_files import env_config
from rl_shop.policies.base import Policy, ScoringPolicy
from rl_shop.policies.features.clarify import ACTION_NAMES, SUGGEST, DialogueState, featurize
from rl_shop.policies.features.clarify import action_mask as clarify_action_mask
from rl_shop.policies.heuristics.clarify import AskUntilConfident, ClarifyPriors, heuristic_params
from rl_shop.sim.constraints import CatalogArrays, gold_mask, subset_candidate_counts
from rl_shop.sim.slots import SLOTS, SUGGESTION, Intent

if TYPE_CHECKING:
    import pandas as pd

    from rl_shop.policies.loader import ExportedPolicy

CLARIFY_ACTIONS = ACTION_NAMES  # the Guider's name for the Clarify env's actions
_PRIOR_CACHE: dict[tuple[int, int, int], ClarifyPriors] = {}


@defaults_from("guider")
class GuiderConfig(BaseModel):
    """``configs/agents/guider.yaml``."""

    max_questions: int = Field(ge=0)
    max_rounds: int | None  # featurizer's rounds scale; null = the Clarify env's max_rounds
    threshold: float | None  # AskUntilConfident; null = configs/env/clarify.yaml heuristic
    max_leave_risk: float | None
    prior_intents: int = Field(ge=10)
    prior_seed: int
    policy_dir: str | None
    # the Clarify env's ``suggest`` is a round, not an ending: the top-5 are shown for confirmation,
    # and a shopper who rejects them volunteers one hidden relevant slot. "shortlist" does exactly
    # that in the loop (the runtime shows its current top-5, ``SUGGESTION`` turn); "best_question"
    # asks the slot the policy scores highest instead; "stop" ends the dialogue.
    suggest_as: Literal["shortlist", "best_question", "stop"]
    shortlist_size: int = Field(ge=1)  # products shown in a shortlist turn (the env's top-5)
    question_llm: bool
    question_max_tokens: int = Field(ge=4)
    question_max_chars: int = Field(ge=20)
    answer_llm: Literal["fallback", "always", "never"]
    answer_max_tokens: int = Field(ge=4)
    templates: dict[str, str]
    follow_up_templates: dict[str, str]


class SlotAnswerParse(BaseModel):
    """Structured-output schema for the LLM reading of a shopper's reply."""

    status: Literal["value", "no_preference", "dont_know", "quit"] = "value"
    value: str | None = Field(default=None, max_length=80)


@dataclass
class DialogueTracker:
    """What the Guider knows during one clarification dialogue (slot names, not bitmasks)."""

    asked: list[str] = field(default_factory=list)
    no_preference: list[str] = field(default_factory=list)
    dont_know: list[str] = field(default_factory=list)
    rounds: int = 0
    quit: bool = False


def clarify_env_defaults() -> dict[str, Any]:
    """``configs/env/clarify.yaml`` (kwargs + heuristic), the env the policies were trained on."""
    data = env_config(CLARIFY.config)
    return {"max_rounds": int(data["kwargs"]["max_rounds"]), **heuristic_params(data.get("heuristic"))}


def estimate_priors(catalog: pd.DataFrame, n: int, seed: int) -> ClarifyPriors:
    """Population priors of ``AskUntilConfident`` from ``n`` simulated intents (cached per catalog).

    Same quantities as ``ClarifyPriors.from_pool`` (which reads an env intent pool): per query
    type the expected bits a first question about each slot removes (times the chance of a
    correct answer), the mean log2 gold-set size, and the patience hazard.
    """
    key = (id(catalog), n, seed)
    if key in _PRIOR_CACHE:
        return _PRIOR_CACHE[key]
    from rl_shop.sim import IntentSampler

    arr = CatalogArrays.of(catalog)
    intents = IntentSampler(catalog, seed=seed).sample_many(n)
    bonus = 0.0
    try:
        from rl_shop.sim import load_sim_config

        bonus = float(load_sim_config().shopper.p_dont_know_hidden_bonus)
    except Exception:  # noqa: BLE001 - the bonus is a refinement only
        bonus = 0.0
    qt, stated, relevant, patience = [], [], [], []
    log2c = np.zeros((n, 1 << len(SLOTS)))
    p_dk = np.zeros((n, len(SLOTS)))
    p_wrong = np.zeros((n, len(SLOTS)))
    from rl_shop.policies.features.clarify import query_type_index, slots_to_mask

    for i, it in enumerate(intents):
        counts = subset_candidate_counts(arr, it)
        log2c[i] = np.log2(np.maximum(counts, 1))
        qt.append(query_type_index(it.query_type))
        rel = slots_to_mask(it.constrained_slots())
        relevant.append(rel)
        stated.append(slots_to_mask(it.stated_slots) & rel)
        patience.append(it.patience)
        for j, s in enumerate(SLOTS):
            p_dk[i, j] = min(1.0, it.p_dont_know + (bonus if s in it.hidden_slots else 0.0))
            p_wrong[i, j] = min(it.p_wrong, 1.0 - p_dk[i, j])
    n_hits = np.exp2(log2c)

    pool = SimpleNamespace(  # the attributes ClarifyPriors.from_pool reads from an IntentPool
        query_type=np.array(qt),
        stated=np.array(stated),
        log2_candidates=log2c,
        n_hits=n_hits,
        relevant=np.array(relevant),
        p_dont_know=p_dk,
        p_wrong=p_wrong,
        patience=np.array(patience),
    )
    priors = ClarifyPriors.from_pool(pool)
    _PRIOR_CACHE[key] = priors
    return priors


class Guider:
    """Choose clarifying questions with a policy, word them with the LLM, parse the answers."""

    def __init__(
        self,
        catalog: pd.DataFrame,
        vocab: CatalogVocab,
        config: GuiderConfig | Mapping[str, Any],
        llm: Any | None = None,
        policy: Any | None = None,
    ) -> None:
        self.config = (
            config if isinstance(config, GuiderConfig) else validate_config(GuiderConfig, dict(config), "agents/guider")
        )
        env = clarify_env_defaults()
        self.max_rounds = int(self.config.max_rounds or env["max_rounds"])
        self.catalog = catalog
        self.arr = CatalogArrays.of(catalog)
        self.vocab = vocab
        self.llm = llm
        self.llm_rejections = 0
        if policy is None and self.config.policy_dir:
            from rl_shop.policies.loader import load_policy

            policy = load_policy(self.config.policy_dir, expect_env_id=CLARIFY.id, expect_action_names=CLARIFY_ACTIONS)
        if policy is None:
            priors = estimate_priors(catalog, self.config.prior_intents, self.config.prior_seed)
            policy = AskUntilConfident(
                threshold=float(self.config.threshold or env.get("threshold", 0.5)),
                log2_catalog_size=float(np.log2(self.arr.n)),
                priors=priors,
                max_leave_risk=float(self.config.max_leave_risk or env.get("max_leave_risk", 1.0)),
                max_rounds=self.max_rounds,
            )
        self.policy: Policy = policy
        self.policy_kind = "learned" if hasattr(policy, "card") else "heuristic"

    # -------------------------------------------------------------- state
    @staticmethod
    def as_known(d: ParsedDemand) -> ParsedDemand:
        """``d`` as the Clarify env knows a dialogue: a category is known there only when the shopper
        named it. When she named a department only ("any ideas for computers stuff?"), the category
        the assistant read into it is a guess the policy may still ask about, until she answers.
        Search keeps the guess; only the policy's view drops it."""
        guessed = d.department is not None and d.sources.get("category") in INFERRED_SOURCES
        return d.model_copy(update={"category": None}) if guessed else d

    def n_candidates(self, d: ParsedDemand) -> int:
        """Catalog products consistent with what is known (the featurizer's |C|)."""
        d = self.as_known(d)
        try:
            probe = Intent(
                query_type=d.query_type,
                category=d.category or "",
                budget=d.budget,
                preferred_brands=tuple(d.preferred_brands),
                excluded_brands=tuple(b for b in d.excluded_brands if b not in d.preferred_brands),
                colour=d.colour,
                min_capacity_gb=d.min_capacity_gb,
                min_size_in=d.min_size_in,
                max_size_in=d.max_size_in if (d.max_size_in or 0) > 0 else None,
                connectivity=tuple(d.connectivity),
                features=tuple(d.features),
                use_case_categories=tuple(d.use_case_categories),
            )
        except ValueError:
            return self.arr.n
        if probe.category and probe.category not in self.arr.categories:
            probe = probe.model_copy(update={"category": ""})
        return int(gold_mask(self.arr, probe).sum())

    def dialogue_state(self, d: ParsedDemand, t: DialogueTracker, n_candidates: int | None = None) -> DialogueState:
        """The current dialogue as the Clarify env's state (what the shared featurizer reads);
        ``n_candidates`` when the caller has counted them already."""
        return DialogueState.from_slots(
            d.query_type,
            known=self.as_known(d).known_slots(),
            no_preference=t.no_preference,
            dont_know=t.dont_know,
            asked=t.asked,
            rounds=min(t.rounds, self.max_rounds),
            max_rounds=self.max_rounds,
            n_candidates=self.n_candidates(d) if n_candidates is None else n_candidates,
            catalog_size=self.arr.n,
        )

    def observation(self, d: ParsedDemand, t: DialogueTracker) -> np.ndarray:
        """The Clarify env's observation of the current dialogue (shared featurizer)."""
        return featurize(self.dialogue_state(d, t))

    def action_mask(self, d: ParsedDemand, t: DialogueTracker) -> np.ndarray:
        """The Clarify env's action mask of the current dialogue (shared featurizer)."""
        return clarify_action_mask(self.dialogue_state(d, t))

    def decide(self, d: ParsedDemand, t: DialogueTracker) -> tuple[str | None, dict[str, Any]]:
        """The slot to ask next, ``SUGGESTION`` (show a shortlist) or None (stop), and what the
        policy saw, for the trace."""
        n_candidates = self.n_candidates(d)  # a pass over the catalog: once per decision
        state = self.dialogue_state(d, t, n_candidates)
        obs, mask = featurize(state), clarify_action_mask(state)
        detail: dict[str, Any] = {"policy": self.policy_kind, "n_candidates": n_candidates}
        if isinstance(self.policy, ScoringPolicy) and self.policy.output_kind == "q_values":
            q = self.policy.q_values(obs)
            detail["q_values"] = {a: round(float(v), 4) for a, v in zip(CLARIFY_ACTIONS, q)}
        elif isinstance(self.policy, AskUntilConfident):
            detail["estimated_accuracy"] = round(self.policy.estimated_accuracy(obs), 4)
        action = int(self.policy.act(obs, mask))
        detail["action"] = CLARIFY_ACTIONS[action]
        if action == SUGGEST and self.config.suggest_as == "shortlist":
            return SUGGESTION, detail
        if action == SUGGEST and self.config.suggest_as == "best_question":
            slot = self.best_question(obs, mask)
            if slot is not None:
                detail["suggest_as"] = f"ask_{slot}"
                return slot, detail
        return (SLOTS[action] if action < len(SLOTS) else None), detail

    def best_question(self, obs: np.ndarray, mask: np.ndarray) -> str | None:
        """The askable slot the policy scores highest (Q-values or action probabilities), or None
        when no slot may be asked or the policy exposes no per-action scores."""
        allowed = np.flatnonzero(mask[: len(SLOTS)])
        if allowed.size == 0:
            return None
        if not isinstance(self.policy, ScoringPolicy):
            return None
        if self.policy.output_kind == "q_values":
            scores = np.asarray(self.policy.q_values(obs), dtype=np.float64)
        else:
            scores = np.asarray(self.policy.action_probabilities(obs, mask), dtype=np.float64)
        return SLOTS[int(allowed[np.argmax(scores[allowed])])]

    # -------------------------------------------------------------- wording
    def template(self, slot: str, d: ParsedDemand) -> str:
        text = self.config.templates.get(slot) or f"Could you tell me more about the {slot.replace('_', ' ')}?"
        return text.format(category=d.category or "product")

    def question(self, slot: str, d: ParsedDemand) -> tuple[str, str]:
        """(question text, source): LLM wording when it is one short question, else the template."""
        fallback = self.template(slot, d)
        if self.llm is None or not self.config.question_llm:
            return fallback, "template"
        messages = [
            {"role": "system", "content": "You are a shopping assistant. Ask the shopper ONE short question."},
            {
                "role": "user",
                "content": f'The shopper wrote: "{d.query}". Ask about their {slot.replace("_", " ")}'
                f" (for example: {fallback})",
            },
        ]
        try:
            text = self.llm.chat(messages, max_tokens=self.config.question_max_tokens).text
        except Exception:  # noqa: BLE001 - the template keeps the dialogue going
            text = ""
        text = " ".join(str(text).split())
        q = text[: text.find("?") + 1] if "?" in text else ""
        keyword = {
            "use_case": "use",
            "capacity": "storage|capacity|gb|tb",
            "size": "size|inch|big",
            "features": "feature",
            "connectivity": "connect|bluetooth|wireless|usb|port",
            "colour": "colou?r",
            "budget": "budget|spend|price|\\$|much",
            "brand": "brand",
            "category": "what|which|kind|type|looking",
        }.get(slot, slot)
        if 8 <= len(q) <= self.config.question_max_chars and re.search(keyword, q, re.I):
            return q, "llm"
        self.llm_rejections += 1
        note_discarded(self.llm)
        return fallback, "template"

    # -------------------------------------------------------------- answers
    def parse_answer(self, slot: str, text: str) -> tuple[str, dict[str, Any], str]:
        """(status, values, source) for the reply to a question about ``slot``."""
        status, values = parse_slot_answer(slot, text, self.vocab)
        mode = self.config.answer_llm
        # parse_slot_answer reports "dont_know" both when the shopper says so and when nothing in
        # the reply is usable; only the second case is worth an LLM reading in "fallback" mode.
        rules_found_nothing = status == "dont_know" and not re.search(
            r"not sure|no idea|don'?t know|dunno|no clue", text, re.I
        )
        if self.llm is None or mode == "never" or (mode == "fallback" and not rules_found_nothing):
            return status, values, "rules"
        messages = [
            {"role": "system", "content": "Read the shopper's reply to a question."},
            {"role": "user", "content": f'Question about: {slot}. Reply: "{text}". Give the status and the value.'},
        ]
        try:
            res = self.llm.structured(messages, SlotAnswerParse, max_tokens=self.config.answer_max_tokens)
        except Exception:  # noqa: BLE001
            return status, values, "rules"
        parsed = res.value if not res.used_fallback else None
        if parsed is None:
            note_discarded(self.llm)
            return status, values, "rules"
        if parsed.status != "value" or not parsed.value:
            return parsed.status, {}, "llm"
        # The LLM's value must survive the same vocabulary check as the text itself.
        checked = extract_slots(parsed.value, self.vocab, only=slot)
        if slot == "budget" and "budget" not in checked and re.fullmatch(r"\$?\d+(\.\d+)?", parsed.value.strip()):
            checked = (
                {"budget": float(parsed.value.strip().lstrip("$"))} if parsed.value.strip().lstrip("$") in text else {}
            )
        if checked:
            return "value", {**values, **checked}, "llm"
        self.llm_rejections += 1
        note_discarded(self.llm)
        return status, values, "rules"

    @staticmethod
    def apply(d: ParsedDemand, slot: str, status: str, values: Mapping[str, Any], t: DialogueTracker) -> ParsedDemand:
        """The demand after one answer (values of any slot the reply gave are recorded)."""
        t.asked.append(slot)
        t.rounds += 1
        if status == "quit":
            t.quit = True
        elif status == "no_preference":
            t.no_preference.append(slot)
        elif status == "dont_know":
            t.dont_know.append(slot)
        return Guider._record(d, values)

    # ------------------------------------------------------------ shortlist
    def shortlist_question(self, products: list[Mapping[str, Any]]) -> str:
        """The shortlist turn's text: the products shown, and what to say if none fits."""
        if not products:
            return "I have nothing to show yet. What matters most to you?"
        lines = "; ".join(f"{i}. {p.get('title', p.get('product_id'))}" for i, p in enumerate(products, 1))
        return f"Would one of these do: {lines}? If not, what is missing?"

    def parse_shortlist_reply(self, text: str) -> tuple[str, dict[str, Any]]:
        """(status, values) of the reply to a shortlist: confirmed, value (what is missing), rejected or quit."""
        return parse_shortlist_reply(text, self.vocab)

    @staticmethod
    def apply_shortlist(
        d: ParsedDemand, status: str, values: Mapping[str, Any], t: DialogueTracker, shown: Sequence[str] = ()
    ) -> ParsedDemand:
        """The demand after a shortlist turn: a round, no slot asked (as the env's ``suggest``); what
        the shopper volunteered is recorded, and a confirmed shortlist (``shown``) is kept: in the
        env her yes hands over exactly those products, so the answer chooses among them."""
        t.rounds += 1
        t.quit = t.quit or status == "quit"
        if status == "confirmed" and shown:
            d = d.model_copy(update={"confirmed": list(shown)})
        return Guider._record(d, values)

    @staticmethod
    def _record(d: ParsedDemand, values: Mapping[str, Any]) -> ParsedDemand:
        """``d`` with the slots ``values`` gives (source: the answer): slots it has no value for yet,
        slots whose value was only inferred (``INFERRED_SOURCES``), since her word is better
        evidence than the assistant's guess, and values she repeats, which become hers."""
        if not values:
            return d
        data = d.model_dump()
        answered = [
            k
            for k, v in values.items()
            if k in data and (data[k] in (None, [], {}) or d.sources.get(k) in INFERRED_SOURCES or data[k] == v)
        ]
        data.update({k: values[k] for k in answered})
        new = ParsedDemand.model_validate(data)
        sources = {k: v for k, v in d.sources.items() if k not in answered}
        new.sources = {**sources, **{s: "answer" for s in new.known_slots() if s not in sources}}
        new.stated = new.known_slots()
        return new

    # -------------------------------------------------------------- follow-up
    def follow_up(self, d: ParsedDemand, decider_follow_up: str | None) -> str | None:
        """The post-answer suggestion: narrow by the slot the policy would ask next, else the Decider's."""
        t = DialogueTracker(asked=list(d.known_slots()))
        slot, _ = self.decide(d, t)
        if slot is not None and slot in self.config.follow_up_templates:
            return self.config.follow_up_templates[slot].format(category=d.category or "these")
        return decider_follow_up or None


AnswerFn = Callable[[str, str], str]


def load_guider_policy(path: str | Path) -> ExportedPolicy:
    """An exported Clarify env policy, checked against the running featurizer and action names."""
    from rl_shop.policies.loader import load_policy

    return load_policy(path, expect_env_id=CLARIFY.id, expect_action_names=CLARIFY_ACTIONS)
