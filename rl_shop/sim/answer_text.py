"""The language face of a slot answer: the same ``SlotAnswer`` rendered as a shopper's reply.

Agents parse these replies; the structured value stays available to the env, so a policy can be
trained on structure and evaluated on text with the same underlying answer.

Two faces (``render.answer_face`` in ``configs/sim/default.yaml``): ``mined`` speaks with the
reply phrasings people used in Qulac, ClariQ and MG-ShopDial (``configs/sim/lexicon.yaml``,
``answers``: "i dont know", a bare "no", "i would like ...", "{x} max"), sampled by their counts;
``templates`` keeps the fixed sentences of the first benchmark runs ("I'm not sure.").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from rl_shop.sim.lexicon import weighted_choice

ANSWER_STATUSES: tuple[str, ...] = ("value", "no_preference", "dont_know", "quit")


@dataclass(frozen=True)
class SlotAnswer:
    """A shopper's structured answer to "ask about slot X".

    ``noisy`` marks a wrong value (the shopper misremembered); the env must not read it, it is
    there for diagnostics and tests.
    """

    slot: str
    status: str
    value: object = None  # the slot's value (Intent.slot_value): its type depends on the slot
    noisy: bool = False

    # Typed views of ``value`` for the slots that have that shape (``Intent.slot_value``).
    def number(self) -> float:  # budget, capacity
        return cast(float, self.value)

    def brands(self) -> Mapping[str, Sequence[str]]:  # brand: {"prefer": [...], "exclude": [...]}
        return cast(Mapping[str, Sequence[str]], self.value)

    def bounds(self) -> tuple[float | None, float | None]:  # size: (min, max) inches
        return cast(tuple[float | None, float | None], self.value)

    def words(self) -> Sequence[str]:  # connectivity, features
        return cast(Sequence[str], self.value)

    def need(self) -> Mapping[str, str | None]:  # use_case: {"use_case": ..., "recipient": ...}
        return cast(Mapping[str, str | None], self.value)


def _fmt_gb(gb: float) -> str:
    return f"{gb / 1000:g} TB" if gb >= 1000 and gb % 1000 == 0 else f"{gb:g} GB"


def _value_text(answer: SlotAnswer, rng: np.random.Generator) -> str:
    pick = lambda opts: str(rng.choice(opts))  # noqa: E731
    slot, value = answer.slot, answer.value
    if slot == "category":
        return pick([f"I'm after {value}.", f"{value}, please.", f"Looking for {value}."])
    if slot == "budget":
        budget = answer.number()
        return pick([f"My budget is ${budget:g}.", f"No more than ${budget:g}.", f"Up to ${budget:g} or so."])
    if slot == "brand":
        brands = answer.brands()
        parts = []
        if brands.get("prefer"):
            parts.append(pick(["I'd like ", "Preferably "]) + " or ".join(brands["prefer"]) + ".")
        if brands.get("exclude"):
            parts.append(pick(["Anything but ", "Not "]) + " or ".join(brands["exclude"]) + ".")
        return " ".join(parts)
    if slot == "colour":
        return pick([f"{value}, please.", f"I want it in {value}.", f"Colour: {value}."])
    if slot == "capacity":
        gb = answer.number()
        return pick([f"At least {_fmt_gb(gb)}.", f"{_fmt_gb(gb)} or more."])
    if slot == "size":
        lo, hi = answer.bounds()
        if lo is not None and hi is not None:
            return pick([f"Between {lo:g} and {hi:g} inches.", f"Around {lo:g} to {hi:g} inches."])
        return f"At least {lo:g} inches." if lo is not None else f"At most {hi:g} inches."
    if slot in ("connectivity", "features"):
        return pick(["It needs ", "Must have "]) + " and ".join(answer.words()) + "."
    need = answer.need()
    use = need.get("use_case") or "everyday use"
    who = need.get("recipient")
    return f"It's for {use}" + (f", for my {who}." if who else ".")


@dataclass(frozen=True)
class AnswerPhrasing:
    """Reply phrasings mined from real clarification dialogues, with their counts."""

    lead_ins: Mapping[str, float]
    dont_know: Mapping[str, float]
    no_preference: Mapping[str, float]
    budget_frames: Mapping[str, float]
    exclusions: Mapping[str, float]  # "no {x}" / "not {x}" / "without {x}", weighted as in requests

    @classmethod
    def from_lexicon(cls, lexicon: Mapping[str, Any]) -> AnswerPhrasing:
        """The ``answers`` section of the lexicon; raises ``ValueError`` naming what is missing."""
        answers = lexicon.get("answers") or {}
        tables = {k: dict(answers.get(k) or {}) for k in ("lead_ins", "dont_know", "no_preference", "budget_frames")}
        negation = lexicon.get("negation_phrasings") or {}
        tables["exclusions"] = {
            v["template"]: v["count"] for k, v in negation.items() if k in ("no_x", "not_x", "without_x")
        }
        empty = [k for k, v in tables.items() if not v]
        if empty:
            raise ValueError(
                f"the lexicon has no mined reply phrasings {empty}; regenerate it with "
                "`python -m rl_shop.sim.lexicon` or set render.answer_face=templates"
            )
        return cls(**tables)


def _bare_value(answer: SlotAnswer, rng: np.random.Generator, phrasing: AnswerPhrasing) -> str:
    """The value of a reply without any lead-in ("sony", "at least 64 GB", "for gaming")."""
    slot = answer.slot
    if slot == "budget":
        return f"${answer.number():g}"
    if slot == "brand":
        brands = answer.brands()
        parts = [" or ".join(brands["prefer"])] if brands.get("prefer") else []
        if brands.get("exclude"):
            parts.append(weighted_choice(rng, phrasing.exclusions).replace("{x}", " or ".join(brands["exclude"])))
        return ", ".join(parts)
    if slot == "capacity":
        return f"at least {_fmt_gb(answer.number())}"
    if slot == "size":
        lo, hi = answer.bounds()
        if lo is not None and hi is not None:
            return f"between {lo:g} and {hi:g} inches"
        return f"at least {lo:g} inches" if lo is not None else f"at most {hi:g} inches"
    if slot in ("connectivity", "features"):
        return " and ".join(answer.words())
    if slot == "use_case":
        need = answer.need()
        who = need.get("recipient")
        return f"for {need.get('use_case') or 'everyday use'}" + (f", for my {who}" if who else "")
    return str(answer.value)  # category, colour


def mined_answer_text(answer: SlotAnswer, rng: np.random.Generator, phrasing: AnswerPhrasing) -> str:
    """The reply in phrasings people used: a mined don't-know / no-preference reply, a mined
    budget frame, or a mined lead-in before the value (a use or an excluded brand alone goes
    without one). Quitting has no mined phrasing (the dialogue sets hold no walk-outs) and keeps
    its template."""
    if answer.status == "quit":
        return answer_to_text(answer, rng)
    if answer.status in ("dont_know", "no_preference"):
        return weighted_choice(rng, getattr(phrasing, answer.status))
    value = _bare_value(answer, rng, phrasing)
    if answer.slot == "budget":
        return weighted_choice(rng, phrasing.budget_frames).replace("{x}", value)
    if answer.slot == "use_case" or (answer.slot == "brand" and not answer.brands().get("prefer")):
        return value  # "i want for gaming", "i want no lg": no lead-in reads right before these
    return f"{weighted_choice(rng, phrasing.lead_ins)} {value}".strip()


def answer_to_text(answer: SlotAnswer, rng: np.random.Generator, phrasing: AnswerPhrasing | None = None) -> str:
    """Natural-language reply for ``answer`` (varied by ``rng``): in mined phrasings when
    ``phrasing`` is given, else in the fixed templates."""
    if phrasing is not None:
        return mined_answer_text(answer, rng, phrasing)
    if answer.status == "quit":
        return str(rng.choice(["Never mind, I'll look elsewhere.", "This is taking too long, bye."]))
    if answer.status == "dont_know":
        return str(rng.choice(["I'm not sure.", "No idea, honestly.", "I don't know."]))
    if answer.status == "no_preference":
        return str(rng.choice(["I don't mind.", "Doesn't matter to me.", "Any is fine."]))
    return _value_text(answer, rng)


def suggestion_text(answer: SlotAnswer | None, rng: np.random.Generator, phrasing: AnswerPhrasing | None = None) -> str:
    """The reply to a shortlist shown for confirmation (``Shopper.suggestion``): a yes when she
    confirms it (``None``); else a no, followed by the slot she volunteers. Mined face: a bare
    "yes" / "no, ..." as ClariQ's replies open ("no i want ..."; the comma keeps "no, wireless"
    from reading as an exclusion); templates: sentences."""
    if answer is not None and answer.status == "quit":
        return answer_to_text(answer, rng)
    if answer is None:
        return "yes" if phrasing is not None else "Yes, one of those works."
    no = "no," if phrasing is not None else "None of those."
    if answer.status != "value":  # nothing left to add
        return no
    return f"{no} {answer_to_text(answer, rng, phrasing)}"


__all__ = ["ANSWER_STATUSES", "AnswerPhrasing", "SlotAnswer", "answer_to_text", "mined_answer_text", "suggestion_text"]
