"""Multi-turn intent shift: the simulated shopper changes or refines the request mid-research.

ProductResearch's stated future work: real shoppers revise what they want while an assistant
researches. Here the shift is driven by the simulator's intent model: the latent
:class:`~rl_shop.sim.Intent` is edited into a new one whose gold set (``rl_shop.sim.gold_ids``)
is still non-empty, and the shopper's turn says what changed:

* ``budget_drop``: a lower budget, a sayable value (``nice_ceil``) of the gold set's median price
  (or its minimum) strictly below the current budget (or the gold set's top price when none);
* ``brand_exclusion``: the most frequent brand of the current gold set is excluded (and dropped
  from the preferred brands);
* ``new_use_case``: a use case of the simulator's knowledge table (``configs/sim/knowledge.yaml``
  ``reasoning``) whose categories match the intent's category, with its required features /
  connectivity when some gold product still has them.

The User Agent's reading is updated with the shift (the shopper said it plainly, so no inference
is needed): budget (then marked stated), brands, excluded brands, the features and connectivity a
new use case needs (stated, so they become search limits), and the request text with the shopper's
words appended. The scorer judges the final report against the FINAL intent
(:func:`rl_shop.research.scorer.ends_on_intent`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rl_shop.config_files import defaults_from_yaml
from rl_shop.research.trajectory import InferredIntent
from rl_shop.sim import Intent, gold_ids
from rl_shop.sim.constraints import CatalogArrays
from rl_shop.sim.sampler import nice_ceil

if TYPE_CHECKING:
    import pandas as pd

ShiftKind = Literal["budget_drop", "brand_exclusion", "new_use_case"]
SHIFT_KINDS: tuple[ShiftKind, ...] = ("budget_drop", "brand_exclusion", "new_use_case")


@defaults_from_yaml("research/shift.yaml", what="research config")
class ShiftConfig(BaseModel):
    """``configs/research/shift.yaml``: whether and how shoppers shift their intent."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    after_round: int = Field(ge=0)  # the shift comes after this round's report (0 = the first)
    kinds: list[ShiftKind]  # tried in turn from seed % len


class IntentShift(BaseModel):
    """One shopper turn that changes the intent, as recorded in a trajectory."""

    model_config = ConfigDict(extra="forbid")

    after_round: int = Field(ge=0)
    kind: ShiftKind
    message: str  # the shopper's words
    persona: dict[str, Any]  # the new latent Intent (JSON)
    inferred: InferredIntent  # the User Agent's updated reading


def _with(intent: Intent, **changes: object) -> Intent:
    return Intent.model_validate({**intent.model_dump(), **changes})


def _state(intent: Intent, *slots: str) -> dict[str, tuple[str, ...]]:
    stated = tuple(dict.fromkeys([*intent.stated_slots, *slots]))
    return {"stated_slots": stated, "hidden_slots": tuple(s for s in intent.hidden_slots if s not in stated)}


def _prices(arr: CatalogArrays, ids: list[str]) -> np.ndarray:
    p = np.array([arr.price[arr.index_of(i)] for i in ids], dtype=float)
    return p[np.isfinite(p)]


def budget_drop(intent: Intent, catalog: pd.DataFrame, rng: np.random.Generator) -> tuple[Intent, str] | None:
    arr = CatalogArrays.of(catalog)
    prices = _prices(arr, gold_ids(arr, intent))
    if len(prices) == 0:
        return None
    old = intent.budget or float(prices.max())
    for q in (float(np.median(prices)), float(prices.min())):
        new = nice_ceil(q)
        if new < old:
            cand = _with(intent, budget=new, **_state(intent, "budget"))
            if gold_ids(arr, cand):
                msg = (
                    f"Update: my budget dropped, I can spend at most ${new:g} now."
                    if intent.budget
                    else f"Update: I just set a budget, at most ${new:g}."
                )
                return cand, msg
    return None


def brand_exclusion(intent: Intent, catalog: pd.DataFrame, rng: np.random.Generator) -> tuple[Intent, str] | None:
    arr = CatalogArrays.of(catalog)
    brands = [arr.brand[arr.index_of(i)] for i in gold_ids(arr, intent)]
    counts: dict[str, int] = {}
    for b in brands:
        if b and b not in intent.excluded_brands:
            counts[b] = counts.get(b, 0) + 1
    for b, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        cand = _with(
            intent,
            excluded_brands=(*intent.excluded_brands, b),
            preferred_brands=tuple(x for x in intent.preferred_brands if x != b),
            **_state(intent, "brand"),
        )
        if gold_ids(arr, cand):
            return cand, f"Also, I changed my mind about {b}: please no {b} products."
    return None


def new_use_case(
    intent: Intent, catalog: pd.DataFrame, rng: np.random.Generator, rules: list[dict[str, Any]] | None = None
) -> tuple[Intent, str] | None:
    from rl_shop.sim import load_sim_config

    arr = CatalogArrays.of(catalog)
    rules = rules if rules is not None else load_sim_config().knowledge.get("reasoning", [])
    cat = intent.category.lower()
    fits = [
        r
        for r in rules
        if r.get("use_case") != intent.use_case and any(str(k).lower() in cat for k in r.get("categories", []))
    ]
    if not fits:
        return None
    order = rng.permutation(len(fits))
    for i in order:
        rule = fits[int(i)]
        base = {
            "use_case": str(rule["use_case"]),
            "recipient": rule.get("recipient"),
            "use_case_categories": (intent.category,),
        }
        feats = [str(t).lower() for t in rule.get("features", []) or [] if str(t).lower() not in intent.features]
        conn = [str(t).lower() for t in rule.get("connectivity", []) or [] if str(t).lower() not in intent.connectivity]
        slots = ["use_case"]
        # keep the rule's requirements that some gold product still meets (as the sampler relaxes them)
        extra: dict[str, Any] = {}
        for key, toks, have in (("features", feats, intent.features), ("connectivity", conn, intent.connectivity)):
            kept: list[str] = []
            for t in toks:
                probe = _with(intent, **base, **extra, **{key: (*have, *kept, t)})
                if gold_ids(arr, probe):
                    kept.append(t)
            if kept:
                extra[key] = (*have, *kept)
                slots.append(key)
        cand = _with(intent, **base, **extra, **_state(intent, *slots))
        if not gold_ids(arr, cand):
            continue
        phrasing = str(
            (rule.get("phrasings") or [f"for {rule['use_case']}"])[int(rng.integers(len(rule.get("phrasings") or [1])))]
        )
        need = [
            *extra.get("features", ())[len(intent.features) :],
            *extra.get("connectivity", ())[len(intent.connectivity) :],
        ]
        msg = f"Actually, I now need it {phrasing}" + (f", so it must be {' and '.join(need)}" if need else "") + "."
        return cand, msg
    return None


_MAKERS = {"budget_drop": budget_drop, "brand_exclusion": brand_exclusion, "new_use_case": new_use_case}


def shift_intent(
    intent: Intent, catalog: pd.DataFrame, seed: int, kinds: Sequence[str] = SHIFT_KINDS
) -> tuple[str, Intent, str] | None:
    """(kind, new intent, the shopper's message); kinds are tried starting at ``seed % len(kinds)``.
    ``None`` when no kind applies (the gold set would become empty)."""
    rng = np.random.default_rng(seed)
    for j in range(len(kinds)):
        kind = kinds[(seed + j) % len(kinds)]
        out = _MAKERS[kind](intent, catalog, rng)
        if out is not None:
            return kind, out[0], out[1]
    return None


def updated_inferred(inferred: InferredIntent, old: Intent, new: Intent, message: str) -> InferredIntent:
    """The User Agent's reading after the shopper's turn: what changed from ``old`` to ``new`` (and
    only that: latent slots the shopper did not mention stay unread) applied, the words appended."""
    said_no = [b for b in new.excluded_brands if b not in old.excluded_brands]
    excluded = list(dict.fromkeys([*inferred.excluded_brands, *said_no]))
    ruled_out = {x.lower() for x in excluded}
    brands = [b for b in inferred.brands if b.lower() not in ruled_out]
    budget_said = new.budget is not None and new.budget != old.budget

    def said(now: tuple[str, ...], before: tuple[str, ...], kept: list[str]) -> list[str]:
        return list(dict.fromkeys([*kept, *(t for t in now if t not in before)]))

    return inferred.model_copy(
        update={
            "budget": new.budget if budget_said else inferred.budget,
            "budget_stated": inferred.budget_stated or budget_said,
            "brands": brands,
            "favoured_brands": [b for b in inferred.favoured_brands if b.lower() not in ruled_out],
            "excluded_brands": excluded,
            "stated_features": said(new.features, old.features, inferred.stated_features),
            "stated_connectivity": said(new.connectivity, old.connectivity, inferred.stated_connectivity),
            "query": f"{inferred.query} {message}",
        }
    )


def make_shift(
    persona: Intent,
    inferred: InferredIntent,
    catalog: pd.DataFrame,
    seed: int,
    after_round: int,
    kinds: Sequence[str] = SHIFT_KINDS,
) -> IntentShift | None:
    """The recorded shift of ``persona`` (``None`` when none applies)."""
    out = shift_intent(persona, catalog, seed, kinds)
    if out is None:
        return None
    kind, new, msg = out
    return IntentShift(
        after_round=after_round,
        kind=kind,
        message=msg,
        persona=new.model_dump(mode="json"),
        inferred=updated_inferred(inferred, persona, new, msg),
    )


def shift_note(shift: IntentShift) -> str:
    """What the Research Agent is told (a user turn in the multi-agent setting and in the SFT data)."""
    from rl_shop.research.research_agent import SHOPPER_PREFIX

    return f"{SHOPPER_PREFIX} {shift.message}"
