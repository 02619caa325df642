"""The language face of a slot answer: the same ``SlotAnswer`` rendered as a shopper's reply.

Agents parse these replies; the structured value stays available to the env, so a policy can be
trained on structure and evaluated on text with the same underlying answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ANSWER_STATUSES: tuple[str, ...] = ("value", "no_preference", "dont_know", "quit")


@dataclass(frozen=True)
class SlotAnswer:
    """A shopper's structured answer to "ask about slot X".

    ``noisy`` marks a wrong value (the shopper misremembered); the env must not read it, it is
    there for diagnostics and tests.
    """

    slot: str
    status: str
    value: Any = None
    noisy: bool = False


def _fmt_gb(gb: float) -> str:
    return f"{gb / 1000:g} TB" if gb >= 1000 and gb % 1000 == 0 else f"{gb:g} GB"


def _value_text(slot: str, value: Any, rng: np.random.Generator) -> str:
    pick = lambda opts: str(rng.choice(opts))  # noqa: E731
    if slot == "category":
        return pick([f"I'm after {value}.", f"{value}, please.", f"Looking for {value}."])
    if slot == "budget":
        return pick([f"My budget is ${value:g}.", f"No more than ${value:g}.", f"Up to ${value:g} or so."])
    if slot == "brand":
        parts = []
        if value.get("prefer"):
            parts.append(pick(["I'd like ", "Preferably "]) + " or ".join(value["prefer"]) + ".")
        if value.get("exclude"):
            parts.append(pick(["Anything but ", "Not "]) + " or ".join(value["exclude"]) + ".")
        return " ".join(parts)
    if slot == "colour":
        return pick([f"{value}, please.", f"I want it in {value}.", f"Colour: {value}."])
    if slot == "capacity":
        return pick([f"At least {_fmt_gb(value)}.", f"{_fmt_gb(value)} or more."])
    if slot == "size":
        lo, hi = value
        if lo is not None and hi is not None:
            return pick([f"Between {lo:g} and {hi:g} inches.", f"Around {lo:g} to {hi:g} inches."])
        return f"At least {lo:g} inches." if lo is not None else f"At most {hi:g} inches."
    if slot in ("connectivity", "features"):
        return pick(["It needs ", "Must have "]) + " and ".join(value) + "."
    use = value.get("use_case") or "everyday use"
    who = value.get("recipient")
    return f"It's for {use}" + (f", for my {who}." if who else ".")


def answer_to_text(answer: SlotAnswer, rng: np.random.Generator) -> str:
    """Natural-language reply for ``answer`` (varied by ``rng``)."""
    if answer.status == "quit":
        return str(rng.choice(["Never mind, I'll look elsewhere.", "This is taking too long, bye."]))
    if answer.status == "dont_know":
        return str(rng.choice(["I'm not sure.", "No idea, honestly.", "I don't know."]))
    if answer.status == "no_preference":
        return str(rng.choice(["I don't mind.", "Doesn't matter to me.", "Any is fine."]))
    return _value_text(answer.slot, answer.value, rng)
