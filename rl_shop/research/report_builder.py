"""A deterministic report builder over simulator intents + catalog, and known-worse perturbations.

Used to validate the criteria scorer (``experiments/validate_race_scorer.py``): for each sampled
intent the builder writes a good report (products of the gold set, a summary that states the
shopper's needs in varied wording, reasons from catalog facts, a comparison and a verdict),
rendered like an agent's report; each perturbation makes a copy that is worse in one known way:

* ``citations_removed``: the ``[id]`` citations are deleted;
* ``citations_fabricated``: every cited id is replaced by an id the catalog does not have;
* ``needs_removed``: the same products and structure, but the text no longer states the needs
  (written by the builder without the need clauses, not cut by the scorer's own detector);
* ``constraint_violation``: one recommendation (one that satisfies the intent) is swapped for a catalog product that breaks at
  least one constraint (same category when possible), with a reason of the same template;
* ``structure_destroyed``: headers and list numbering removed, everything in one paragraph.

The perturbations on markdown (citations, structure, constraint swap) also apply to real pipeline
reports (``perturb_markdown``); ``needs_removed`` needs the builder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rl_shop.research.fact import CITATION
from rl_shop.research.research_agent import render_markdown
from rl_shop.research.trajectory import Recommendation, Report
from rl_shop.sim import Intent, gold_ids, slot_mask
from rl_shop.sim.constraints import CatalogArrays

if TYPE_CHECKING:
    import pandas as pd

    from rl_shop.research.race import JudgeTask, RaceConfig

_SLOTS = ("category", "budget", "brand", "colour", "capacity", "size", "connectivity", "features", "use_case")
KINDS: tuple[str, ...] = (
    "citations_removed",
    "citations_fabricated",
    "needs_removed",
    "constraint_violation",
    "structure_destroyed",
)
MARKDOWN_KINDS: tuple[str, ...] = (
    "citations_removed",
    "citations_fabricated",
    "constraint_violation",
    "structure_destroyed",
)


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def need_clauses(intent: Intent, rng: np.random.Generator) -> list[str]:
    """Phrases stating each constrained need of ``intent`` (varied wording, seeded)."""
    out = []
    if intent.use_case:
        who = f" for your {intent.recipient}" if intent.recipient else ""
        out.append(
            _pick(
                rng,
                [
                    f"suited to {intent.use_case}{who}",
                    f"chosen with {intent.use_case} in mind{who}",
                    f"good picks for {intent.use_case}{who}",
                ],
            )
        )
    if intent.budget:
        b = f"${intent.budget:g}"
        out.append(
            _pick(
                rng,
                [
                    f"all within your {b} budget",
                    f"each priced under {b}",
                    f"staying below {b}",
                    f"none costing more than {b}",
                ],
            )
        )
    for brand in intent.preferred_brands:
        out.append(
            _pick(
                rng,
                [
                    f"from {brand}, the brand you prefer",
                    f"made by {brand} as you wanted",
                    f"{brand} models, as you asked",
                ],
            )
        )
    for brand in intent.excluded_brands:
        out.append(
            _pick(
                rng,
                [
                    f"avoiding {brand} as you asked",
                    f"none of them made by {brand}",
                    f"excluding {brand} products",
                    f"not from {brand}",
                ],
            )
        )
    if intent.colour:
        out.append(_pick(rng, [f"in {intent.colour}", f"available in {intent.colour}", f"{intent.colour} finish"]))
    if intent.min_capacity_gb:
        out.append(
            _pick(
                rng,
                [
                    f"with at least {intent.min_capacity_gb:g} GB of storage",
                    f"{intent.min_capacity_gb:g} GB capacity or more",
                ],
            )
        )
    if intent.min_size_in is not None or intent.max_size_in is not None:
        lo, hi = intent.min_size_in, intent.max_size_in
        if lo is not None and hi is not None:
            out.append(f"sized between {lo:g} and {hi:g} inches")
        elif lo is not None:
            out.append(f"at least {lo:g} inches in size")
        else:
            out.append(f"at most {hi:g} inches in size")
    for tok in intent.connectivity:
        out.append(_pick(rng, [f"with {tok} connectivity", f"connecting over {tok}"]))
    for tok in intent.features:
        out.append(_pick(rng, [f"featuring {tok}", f"with {tok} as required", f"offering {tok}"]))
    return out


@dataclass
class BuiltReport:
    """A good report, its need-free twin, and what the perturbations need."""

    intent: Intent
    query: str
    good: Report
    no_needs: Report
    picks: list[str]


class ReportBuilder:
    """Writes reports for intents from the catalog (deterministic given the seed)."""

    def __init__(self, catalog: pd.DataFrame) -> None:
        self.catalog = catalog
        self.arr = CatalogArrays.of(catalog)

    def satisfies(self, pid: str, intent: Intent) -> bool:
        """Whether catalog product ``pid`` meets every constraint of ``intent``."""
        i = self.arr.id_to_index.get(pid)
        return i is not None and bool(np.all([slot_mask(self.arr, intent, s)[i] for s in _SLOTS]))

    def _row(self, pid: str) -> pd.Series:
        return self.catalog.iloc[self.arr.index_of(pid)]

    def facts(self, pid: str) -> dict[str, Any]:
        r = self._row(pid)
        price = float(r["price"]) if r["price"] == r["price"] else None
        return {
            "brand": str(r["brand"] or ""),
            "category": str(r["category"]),
            "price": price,
            "features": [str(t) for t in r["features"]],
            "connectivity": [str(t) for t in r["connectivity"]],
        }

    def reason(self, pid: str, intent: Intent, rng: np.random.Generator, with_needs: bool) -> str:
        """A reason from the product's catalog facts (with the need-bearing facts only if ``with_needs``)."""
        f = self.facts(pid)
        price = f"${f['price']:.2f}" if f["price"] is not None else "an unlisted price"
        if not with_needs:
            return _pick(
                rng,
                [
                    f"Priced at {price}, it is one of the stronger options the search found.",
                    f"At {price} it is a solid option among the results.",
                    f"It costs {price} and reviews of this kind of product are positive.",
                ],
            )
        extras = [t for t in f["features"] + f["connectivity"]][:2]
        bits = [
            f"a {f['brand'] or 'no-name'} {f['category']}" if f["brand"] else f"a {f['category']}",
            f"priced at {price}",
        ]
        if extras:
            bits.append("with " + " and ".join(extras))
        return _pick(rng, ["It is ", "This is ", "You get "]) + ", ".join(bits) + "."

    def build(self, intent: Intent, seed: int, k: int = 3, query: str | None = None) -> BuiltReport:
        rng = np.random.default_rng(seed)
        gold = gold_ids(self.arr, intent)
        if not gold:
            raise ValueError(f"intent has an empty gold set: {intent.constraints()}")
        order = rng.permutation(len(gold))
        picks = [gold[int(i)] for i in order[:k]]
        query = query or f"research the best {intent.category} for me"
        clauses = need_clauses(intent, rng)
        cat = intent.category
        lead = _pick(
            rng,
            [
                f"I compared {len(gold)} {cat} in the catalog",
                f"Of the {len(gold)} {cat} that fit",
                f"Looking through {len(gold)} matching {cat}",
            ],
        )
        summary = lead + (", " + ", ".join(clauses) if clauses else "") + f"; these {len(picks)} stand out."
        neutral = _pick(
            rng,
            [
                f"I compared {len(gold)} products in the catalog; these {len(picks)} stand out.",
                f"Of the options the search returned, these {len(picks)} stand out.",
            ],
        )
        prices = [(self.facts(p)["price"], p) for p in picks]
        known = [x for x in prices if x[0] is not None]
        if len(known) >= 2:
            cheap = min(known)[1]
            verdict = _pick(
                rng,
                [
                    f"Buy [{cheap}] if price matters most; it is cheaper than the others, while the first pick is the closest match.",
                    f"Choose [{cheap}] for the lowest price, whereas [{picks[0]}] is the best overall fit.",
                ],
            )
        else:
            verdict = f"Buy [{picks[0]}]: it is the closest match to the request."
        good = Report(
            summary=summary,
            verdict=verdict,
            recommendations=[Recommendation(product_id=p, reason=self.reason(p, intent, rng, True)) for p in picks],
        )
        bare = Report(
            summary=neutral,
            verdict=verdict,
            recommendations=[Recommendation(product_id=p, reason=self.reason(p, intent, rng, False)) for p in picks],
        )
        good.markdown = render_markdown(query, good, self.catalog)
        bare.markdown = render_markdown(query, bare, self.catalog)
        return BuiltReport(intent, query, good, bare, picks)

    # ------------------------------------------------------------------ violations
    def violator(self, intent: Intent, rng: np.random.Generator, exclude: set[str]) -> str | None:
        """A catalog product that breaks >= 1 constraint of ``intent``: same category if possible."""
        sat = np.ones(self.arr.n, dtype=bool)
        for s in _SLOTS:
            sat &= slot_mask(self.arr, intent, s)
        same_cat = slot_mask(self.arr, intent, "category")
        for pool in (same_cat & ~sat, ~sat):
            ids = [p for p in self.arr.ids[pool].tolist() if p not in exclude]
            if ids:
                return ids[int(rng.integers(len(ids)))]
        return None

    def swap_in_violation(self, built: BuiltReport, seed: int) -> Report | None:
        rng = np.random.default_rng(seed + 7)
        bad = self.violator(built.intent, rng, set(built.picks))
        if bad is None:
            return None
        i = int(rng.integers(len(built.picks)))
        recs = [r.model_copy() for r in built.good.recommendations]
        recs[i] = Recommendation(product_id=bad, reason=self.reason(bad, built.intent, rng, True))
        verdict = built.good.verdict.replace(f"[{built.picks[i]}]", f"[{bad}]")
        rep = Report(summary=built.good.summary, recommendations=recs, verdict=verdict)
        rep.markdown = render_markdown(built.query, rep, self.catalog)
        return rep


# ---------------------------------------------------------------------- markdown perturbations
def remove_citations(markdown: str) -> str:
    return re.sub(r"\s*\[(?:amz|fk|abt|buy)-[A-Za-z0-9]+\]", "", markdown)


def fabricate_citations(markdown: str, known: set[str]) -> str:
    def fake(m: re.Match) -> str:
        pid = m.group(1)
        prefix, digits = pid.split("-", 1)
        cand = f"{prefix}-9{digits[::-1]}x"
        return f"[{cand if cand not in known else cand + 'z'}]"

    return CITATION.sub(fake, markdown)


def destroy_structure(markdown: str) -> str:
    lines = []
    for line in markdown.splitlines():
        line = re.sub(r"^\s*#+\s*", "", line)
        line = re.sub(r"^\s*\d+\.\s+", "", line)
        if line.strip() and line.strip() not in ("Summary", "Recommendations", "Verdict"):
            lines.append(line.strip().replace("**", ""))
    return " ".join(lines)


def perturb_markdown(kind: str, markdown: str, known_ids: set[str]) -> str:
    """A markdown-level perturbation (``citations_removed``, ``citations_fabricated``, ``structure_destroyed``)."""
    if kind == "citations_removed":
        return remove_citations(markdown)
    if kind == "citations_fabricated":
        return fabricate_citations(markdown, known_ids)
    if kind == "structure_destroyed":
        return destroy_structure(markdown)
    raise ValueError(f"{kind!r} is not a markdown perturbation")


def swap_report_violation(
    report: Report, intent: Intent, query: str, catalog: pd.DataFrame, builder: ReportBuilder, seed: int
) -> Report | None:
    """``constraint_violation`` on any report: one cited recommendation replaced by a violating product
    (the reason text kept, the head re-rendered from the catalog)."""
    if not report.recommendations:
        return None
    rng = np.random.default_rng(seed + 11)
    ids = {r.product_id for r in report.recommendations}
    bad = builder.violator(intent, rng, ids)
    if bad is None:
        return None
    # only a product that satisfies the intent is swapped out (else the copy is not known to be worse)
    ok = [j for j, r in enumerate(report.recommendations) if builder.satisfies(r.product_id, intent)]
    if not ok:
        return None
    i = ok[int(rng.integers(len(ok)))]
    recs = [r.model_copy() for r in report.recommendations]
    old = recs[i].product_id
    recs[i] = Recommendation(product_id=bad, reason=recs[i].reason)
    rep = Report(summary=report.summary, recommendations=recs, verdict=report.verdict.replace(f"[{old}]", f"[{bad}]"))
    rep.markdown = render_markdown(query, rep, catalog)
    return rep


# ---------------------------------------------------------------------- validation pairs
VALIDATION_TYPES: tuple[str, ...] = ("simple", "multi_constraint", "negation", "reasoning", "ambiguous")


def _judge_totals(judges: dict[str, Any], race_cfg: RaceConfig, markdown: str, task: JudgeTask) -> dict[str, float]:
    from rl_shop.research.race import DIMENSIONS, dimension_score, intermediate_score

    out = {}
    for name, judge in judges.items():
        crit_w = getattr(judge, "criterion_weights", None) or race_cfg.criteria
        scores = judge.score(markdown, task)
        dims = {d: dimension_score(scores[d], crit_w[d]) for d in DIMENSIONS}
        out[name] = intermediate_score(dims, race_cfg.weights_for(task.query_type))
    return out


def builder_pairs(
    catalog: pd.DataFrame,
    judges: dict[str, Any],
    race_cfg: RaceConfig,
    n_intents: int,
    seed: int,
    query_types: tuple[str, ...] = VALIDATION_TYPES,
    kinds: tuple[str, ...] = KINDS,
) -> list[dict[str, Any]]:
    """One row per (intent, perturbation kind): each judge's S_int of the good and the perturbed report.

    Intents: ``IntentSampler(catalog, seed=seed + i).sample(query_types[i % len])``."""
    from rl_shop.research.race import JudgeTask
    from rl_shop.sim import IntentSampler

    builder = ReportBuilder(catalog)
    known = set(builder.arr.ids.tolist())
    rows = []
    for i in range(n_intents):
        s = seed + i
        intent = IntentSampler(catalog, seed=s).sample(query_types[i % len(query_types)])
        built = builder.build(intent, seed=s)
        task = JudgeTask(
            query=built.query,
            category=intent.category,
            budget=intent.budget,
            brands=list(intent.preferred_brands),
            query_type=intent.query_type,
            intent=intent,
        )
        good = _judge_totals(judges, race_cfg, built.good.markdown, task)
        for kind in kinds:
            if kind == "needs_removed":
                worse: str | None = built.no_needs.markdown
            elif kind == "constraint_violation":
                rep = builder.swap_in_violation(built, s)
                worse = rep.markdown if rep else None
            else:
                worse = perturb_markdown(kind, built.good.markdown, known)
            if worse is None or worse == built.good.markdown:
                continue
            bad = _judge_totals(judges, race_cfg, worse, task)
            rows.append(
                {
                    "source": "builder",
                    "seed": s,
                    "query_type": intent.query_type,
                    "kind": kind,
                    **{f"{j}_better": good[j] for j in judges},
                    **{f"{j}_worse": bad[j] for j in judges},
                }
            )
    return rows


def trajectory_pairs(
    trajectories: list[Any], catalog: pd.DataFrame, judges: dict[str, Any], race_cfg: RaceConfig, seed: int = 0
) -> list[dict[str, Any]]:
    """The markdown perturbations (+ the constraint swap) of real pipeline reports (final round of each
    trajectory, judged against its final intent with the trajectory's evidence). Pairs where the
    perturbation changes nothing (e.g. no citation to remove) are skipped."""
    from rl_shop.research.race import JudgeTask

    builder = ReportBuilder(catalog)
    known = set(builder.arr.ids.tolist())
    rows = []
    for t in trajectories:
        intent = Intent.model_validate(t.final_persona if hasattr(t, "final_persona") else t.persona)
        rep = t.final_report
        if not rep.recommendations:
            continue
        task = JudgeTask(
            query=t.query,
            category=intent.category,
            budget=intent.budget,
            brands=list(intent.preferred_brands),
            query_type=intent.query_type,
            intent=intent,
            evidence_ids=t.evidence_product_ids(),
            evidence_text=t.evidence_text(),
        )
        good = _judge_totals(judges, race_cfg, rep.markdown, task)
        for kind in MARKDOWN_KINDS:
            if kind == "constraint_violation":
                if not all(builder.arr.id_to_index.get(r.product_id) is not None for r in rep.recommendations):
                    continue
                swapped = swap_report_violation(rep, intent, t.query, catalog, builder, seed + t.seed)
                worse = swapped.markdown if swapped else None
                # the swapped product must be one the tools showed, else it is also an invalid citation
                if swapped is not None:
                    task_k = JudgeTask(
                        **{
                            **task.__dict__,
                            "evidence_ids": (task.evidence_ids or set())
                            | {r.product_id for r in swapped.recommendations},
                        }
                    )
                else:
                    task_k = task
            else:
                worse, task_k = perturb_markdown(kind, rep.markdown, known), task
            if worse is None or worse == rep.markdown:
                continue
            good_k = good if task_k is task else _judge_totals(judges, race_cfg, rep.markdown, task_k)
            bad = _judge_totals(judges, race_cfg, worse, task_k)
            rows.append(
                {
                    "source": "pipeline",
                    "seed": t.seed,
                    "query_type": intent.query_type,
                    "kind": kind,
                    **{f"{j}_better": good_k[j] for j in judges},
                    **{f"{j}_worse": bad[j] for j in judges},
                }
            )
    return rows


def preference_table(rows: list[dict[str, Any]], judges: list[str]) -> pd.DataFrame:
    """Per (source, kind): pairs, and for each judge the share preferring the better report (ties count as misses)."""
    import pandas as pd

    df = pd.DataFrame(rows)
    out = []
    groups = list(df.groupby(["source", "kind"])) + [(("all", "all"), df)]
    for (source, kind), g in groups:
        row = {"source": source, "kind": kind, "pairs": len(g)}
        for j in judges:
            row[f"{j}_prefers_better"] = round(float((g[f"{j}_better"] > g[f"{j}_worse"]).mean()), 3)
            row[f"{j}_ties"] = int((g[f"{j}_better"] == g[f"{j}_worse"]).sum())
        out.append(row)
    return pd.DataFrame(out)
