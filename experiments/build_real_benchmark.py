"""Build the real-language benchmark split ``data/benchmark/real_v1.jsonl`` (+ card) (Hydra app).

    python experiments/build_real_benchmark.py                      # configs/benchmark_build/real_v1.yaml
    python experiments/build_real_benchmark.py queue=/tmp/queue.jsonl   # also write the labelling queue

Every query is human-written text from ``../shared/data`` (WebShop instructions and typed
queries, the ESCI query set, the constraint-rich ESCI-based queries, MIMICS and ClariQ
requests). Gold comes from two places that share nothing with the runtime parser:

* **hand labels** (``real_v1.labels.jsonl``, frozen, labelled by the guide in
  ``docs/labelling_guide.md`` before the parser work): product type, in-catalog, acceptable
  catalog categories, budget, exclusions, attributes, needs-clarification, contradictions;
* **source-side rules**: ClariQ's ``clarification_need`` and, for WebShop instructions, WebShop's
  own budget suffix ", and price lower than X dollars" appended with a known X.

The split (dev / test) is a fixed hash of the normalised query text, so a query that occurs in
two sources lands on one side.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig

from rl_shop.paths import REPO_ROOT, SHARED_DATA_DIR

# Product words of the catalog's departments (computers, electronics, office, cameras). A build-time
# screen only: it decides which WebShop instructions are hand-labelled, never a gold value.
SCREEN_RE = re.compile(
    r"headphones?|earbuds?|earphones?|headsets?|speakers?|soundbar|subwoofer|amplifier|receiver|microphone|\bmic\b|"
    r"cameras?|camcorder|\blens\b|tripod|memory card|sd card|micro ?sd|flash drive|usb|hdmi|cable|charger|adapter|"
    r"power bank|batter(?:y|ies)|laptop|notebook|computer|\bpc\b|desktop|monitor|keyboard|\bmouse\b|\bmice\b|router|"
    r"modem|ethernet|printer|\bink\b|toner|scanner|shredder|projector|\btv\b|television|remote control|tablet|ipad|"
    r"kindle|phone|smartphone|iphone|screen protector|smart ?watch|\bgps\b|dash ?cam|radio|mp3|\bssd\b|hard drive|"
    r"graphics card|motherboard|webcam|label maker|laminat|calculator|stylus|antenna|surge protector|power strip|"
    r"bluetooth|wireless|stereo|dvd|blu-ray|electronic",
    re.I,
)


def norm_text(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def split_of(text: str) -> str:
    """dev or test, by a fixed hash of the normalised text."""
    return "dev" if int(hashlib.sha1(norm_text(text).encode()).hexdigest()[:8], 16) % 2 == 0 else "test"


def row_id(source: str, text: str) -> str:
    return "real-" + hashlib.sha1(f"{source}|{norm_text(text)}".encode()).hexdigest()[:10]


# ------------------------------------------------------------------------------------- sources


def webshop_instructions(shared: Path) -> list[str]:
    return [t for t in json.loads((shared / "intents" / "webshop_human_goals.json").read_text()) if t.strip()]


def webshop_typed(shared: Path) -> list[str]:
    mapping = json.loads((shared / "intents" / "webshop_goal_query_map.json").read_text())
    return sorted({q.strip() for qs in mapping.values() for q in qs if q.strip()})


def esci_queries(shared: Path) -> list[str]:
    data = json.loads((shared / "relevance" / "esci_us_queryset.json").read_text())
    return [q["queryText"].strip() for q in data["querySetQueries"] if q["queryText"].strip()]


def emadsidd_queries(shared: Path) -> list[str]:
    with open(shared / "relevance" / "emadsidd_queries_cell_phones_accessories.csv", newline="") as fh:
        return sorted({r["query"].strip() for r in csv.DictReader(fh) if r["query"].strip()})


def mimics_queries(shared: Path) -> list[str]:
    with open(shared / "clarification" / "MIMICS-Manual.tsv", newline="") as fh:
        return sorted({r["query"].strip() for r in csv.DictReader(fh, delimiter="\t") if r["query"].strip()})


def clariq_requests(shared: Path) -> dict[str, tuple[int, str]]:
    """initial_request -> (clarification_need, ClariQ split)."""
    out: dict[str, tuple[int, str]] = {}
    for split in ("train", "dev"):
        with open(shared / "clarification" / f"{split}.tsv", newline="") as fh:
            for r in csv.DictReader(fh, delimiter="\t"):
                out.setdefault(r["initial_request"].strip(), (int(r["clarification_need"]), split))
    return out


# ------------------------------------------------------------------------------------- build


def _take(rng: np.random.Generator, items: list[str], n: int, used: set[str]) -> list[str]:
    pool = [t for t in items if norm_text(t) not in used]
    picked = [pool[i] for i in sorted(rng.choice(len(pool), size=min(n, len(pool)), replace=False))]
    used.update(norm_text(t) for t in picked)
    return picked


def select_rows(cfg: DictConfig, shared: Path) -> list[dict[str, Any]]:
    """The benchmark's rows before labels: source, query, whether it goes to hand labelling."""
    rng = np.random.default_rng(int(cfg.seed))
    n = cfg.sizes
    used: set[str] = set()
    rows: list[dict[str, Any]] = []

    def add(source: str, texts: list[str], labelled: bool, extra: dict[str, Any] | None = None) -> None:
        for t in texts:
            rows.append({"source": source, "query": t, "labelled": labelled, **(extra or {})})

    instr = webshop_instructions(shared)
    screened = [t for t in instr if SCREEN_RE.search(t)]
    other = [t for t in instr if not SCREEN_RE.search(t)]
    add("webshop_instruction", _take(rng, screened, n.webshop_screened, used), True)
    add("webshop_instruction", _take(rng, other, n.webshop_other_labelled, used), True)
    add("webshop_instruction", _take(rng, other, n.webshop_other, used), False)
    typed = webshop_typed(shared)
    add("webshop_typed", _take(rng, typed, n.webshop_typed_labelled, used), True)
    add("webshop_typed", _take(rng, typed, n.webshop_typed, used), False)
    add("esci", _take(rng, esci_queries(shared), n.esci, used), True)
    add("esci_constraint", _take(rng, emadsidd_queries(shared), n.emadsidd, used), True)
    mimics = mimics_queries(shared)
    add("mimics", _take(rng, mimics, n.mimics_labelled, used), True)
    add("mimics", _take(rng, mimics, n.mimics, used), False)
    clariq = clariq_requests(shared)
    requests = sorted(clariq)
    labelled = _take(rng, requests, n.clariq_labelled, used)
    rest = _take(rng, requests, len(requests), used)
    for texts, lab in ((labelled, True), (rest, False)):
        for t in texts:
            need, csplit = clariq[t]
            add("clariq", [t], lab, {"rule_gold": {"clarification_need": need, "clariq_split": csplit}})
    for r in rows:
        r["id"] = row_id(r["source"], r["query"])
        r["split"] = split_of(r["query"])
        if r["source"] == "webshop_instruction":
            price = round(float(np.exp(rng.normal(cfg.webshop_price.mu, cfg.webshop_price.sigma))), 2)
            r.setdefault("rule_gold", {})["webshop_price_variant"] = {
                "query": f"{r['query'].rstrip(' .')}, and price lower than {price:.2f} dollars",
                "budget_max": price,
            }
    return rows


def load_labels(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            rec = json.loads(line)
            if "id" not in rec:
                raise ValueError(f"{path}:{n}: a label without an id")
            out[rec["id"]] = rec
    return out


def run(cfg: DictConfig) -> dict[str, Any]:
    shared = Path(SHARED_DATA_DIR)
    if not shared.exists():
        raise FileNotFoundError(f"shared data folder {shared} not found; the build reads the raw human text there")
    rows = select_rows(cfg, shared)
    if cfg.queue:
        with open(cfg.queue, "w") as fh:
            for r in rows:
                if r["labelled"]:
                    fh.write(json.dumps({"id": r["id"], "source": r["source"], "query": r["query"]}) + "\n")
    labels = load_labels(REPO_ROOT / str(cfg.labels))
    missing = [r["id"] for r in rows if r["labelled"] and r["id"] not in labels]
    out = REPO_ROOT / str(cfg.output)
    with open(out, "w") as fh:
        for r in rows:
            lab = labels.get(r["id"])
            rec = {
                "id": r["id"],
                "source": r["source"],
                "split": r["split"],
                "query": r["query"],
                "labels": None if lab is None else {k: v for k, v in lab.items() if k not in ("id", "query")},
                "rule_gold": r.get("rule_gold", {}),
            }
            fh.write(json.dumps(rec, sort_keys=True) + "\n")
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        c = counts.setdefault(r["source"], {"dev": 0, "test": 0, "labelled": 0})
        c[r["split"]] += 1
        c["labelled"] += int(r["id"] in labels)
    n_in = sum(1 for lab in labels.values() if lab.get("in_catalog"))
    card = {
        "version": str(cfg.version),
        "seed": int(cfg.seed),
        "n_queries": len(rows),
        "n_labelled": sum(1 for r in rows if r["id"] in labels),
        "n_labelled_in_catalog": n_in,
        "unlabelled_queue_rows": len(missing),
        "counts": counts,
        "labels": str(cfg.labels),
        "labelling_guide": "docs/labelling_guide.md",
        "generator": "experiments/build_real_benchmark.py (configs/benchmark_build/real_v1.yaml)",
    }
    out.with_suffix("").with_suffix(".card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card


@hydra.main(version_base="1.3", config_path="../configs/benchmark_build", config_name="real_v1")
def main(cfg: DictConfig) -> None:
    try:
        card = run(cfg)
    except (FileNotFoundError, ValueError) as exc:
        print(f"build_real_benchmark: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
