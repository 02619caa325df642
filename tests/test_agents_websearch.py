"""WebSearch Agent: Eq. 4 filter, freshness, backends (local bm25s corpus, fake SearxNG server),
query generation, integration, corpus build helpers."""

from __future__ import annotations

import importlib.util
import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pandas as pd
import pytest

from rl_shop.agents.types import WebDocument
from rl_shop.agents.websearch import (
    FilterConfig,
    LocalCorpusBackend,
    RetrievedDocument,
    SearchBackendError,
    SearxNGBackend,
    WebSearchAgent,
    WebSearchConfig,
    eq4_score,
    expand_queries,
    extractive_summary,
    filter_documents,
    freshness,
    generate_queries,
    load_corpus,
    write_corpus,
)
from rl_shop.agents.websearch.queries import QueryGenerationConfig, QueryList
from rl_shop.paths import DATA_DIR, REPO_ROOT

TODAY = date(2024, 1, 1)


def _doc(url, title, text, authority=0.5, published=None, source="test"):
    return WebDocument(url=url, title=title, text=text, source=source, authority=authority, published=published)


def test_freshness_half_life():
    assert freshness(date(2023, 1, 1), TODAY, 365, 0.3) == pytest.approx(0.5)
    assert freshness(date(2022, 1, 1), TODAY, 365, 0.3) == pytest.approx(0.25, abs=1e-3)  # 730 days
    assert freshness(date(2025, 1, 1), TODAY, 365, 0.3) == 1.0  # future counts as fresh
    assert freshness(None, TODAY, 365, 0.3) == 0.3


def test_eq4_hand_worked_and_filter_threshold():
    cfg = FilterConfig(
        alpha=0.5,
        beta=0.3,
        gamma=0.2,
        threshold=0.5,
        max_documents=5,
        half_life_days=365,
        relevance_coverage_weight=1.0,
    )
    assert eq4_score(1.0, 0.5, 0.5, cfg) == pytest.approx(0.5 + 0.15 + 0.1)
    q = "bluetooth headphones"
    good = _doc("u1", "Bluetooth headphones guide", "all about headphones", authority=0.5, published=date(2023, 1, 1))
    half = _doc("u2", "Headphones", "wired only", authority=1.0, published=date(2024, 1, 1))
    off = _doc("u3", "Coffee", "espresso", authority=1.0, published=date(2024, 1, 1))
    kept, dropped = filter_documents(
        [RetrievedDocument(document=d, backend_score=1.0, query=q) for d in (good, half, off)], cfg, TODAY
    )
    # good: rel 1.0 -> 0.5 + 0.3*0.5 + 0.2*0.5 = 0.75; half: rel 0.5 -> 0.25 + 0.3 + 0.2 = 0.75;
    # off: rel 0 -> 0 + 0.3 + 0.2 = 0.5 (kept, at threshold)
    assert [k.document.url for k in kept] == ["u1", "u2", "u3"]
    assert [k.score for k in kept] == pytest.approx([0.75, 0.75, 0.5])
    assert dropped == 0
    strict = cfg.model_copy(update={"threshold": 0.6})
    kept2, dropped2 = filter_documents(
        [RetrievedDocument(document=d, backend_score=1.0, query=q) for d in (good, half, off)], strict, TODAY
    )
    assert [k.document.url for k in kept2] == ["u1", "u2"] and dropped2 == 1


def test_filter_dedupes_urls_and_caps_count():
    cfg = FilterConfig(threshold=0.0, max_documents=2, relevance_coverage_weight=0.0)
    docs = [RetrievedDocument(document=_doc("same", "t", "x"), backend_score=s, query="q") for s in (1.0, 0.5)]
    docs += [RetrievedDocument(document=_doc(f"u{i}", "t", "x"), backend_score=0.1, query="q") for i in range(3)]
    kept, dropped = filter_documents(docs, cfg, TODAY)
    assert len(kept) == 2 and kept[0].document.url == "same" and kept[0].relevance == pytest.approx(1.0)
    assert dropped == 2  # 4 unique urls, 2 kept


def test_extractive_summary_hand_example():
    cfg = FilterConfig(threshold=0.0, relevance_coverage_weight=1.0)
    d1 = _doc("a", "Guide", "Coffee is hot. Bluetooth headphones cost $50 to $300. Tea is nice.", authority=1.0)
    d2 = _doc("b", "Other", "Wired headphones are cheap.", authority=0.0)
    kept, _ = filter_documents(
        [RetrievedDocument(document=d, backend_score=1.0, query="bluetooth headphones price") for d in (d1, d2)],
        cfg,
        TODAY,
    )
    summary = extractive_summary("bluetooth headphones price", kept, n_sentences=2, max_chars=500)
    assert summary == "Bluetooth headphones cost $50 to $300. [1] Wired headphones are cheap. [2]"
    assert extractive_summary("zebra", kept, 2, 500) == ""


def test_local_backend_and_corpus_io(tmp_path):
    docs = [
        _doc(
            "u1",
            "Headphones buying guide",
            "Bluetooth headphones cost between 20 and 300 dollars.",
            source="catalog_guide",
        ),
        _doc("u2", "Laptop guide", "Gaming laptops need 16 GB memory.", source="qulac"),
        _doc("u3", "Coffee makers", "Drip machines brew quickly.", source="qulac"),
    ]
    path = tmp_path / "docs.jsonl"
    assert write_corpus(docs, path) == 3
    backend = LocalCorpusBackend.from_path(path, authority_by_source={"qulac": 0.1})
    hits = backend.search("bluetooth headphone prices", 5)
    assert [h.document.url for h in hits] == ["u1"]
    assert backend.search("laptop", 5)[0].document.authority == 0.1  # authority overridden by config
    assert backend.search("zzzz qqqq", 5) == []
    assert backend.search("   ", 5) == []
    with pytest.raises(SearchBackendError, match="build_web_corpus"):
        load_corpus(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"url": "x"}\n')
    with pytest.raises(SearchBackendError, match="bad.jsonl:1"):
        load_corpus(bad)


class _FakeSearxNG(BaseHTTPRequestHandler):
    """Answers /search like SearxNG with format=json (and misbehaves on request)."""

    mode = "ok"
    seen: list[str] = []

    def do_GET(self):  # noqa: N802
        _FakeSearxNG.seen.append(self.path)
        if self.mode == "forbidden":
            self.send_response(403)
            self.end_headers()
            return
        body = (
            b"<html>not json</html>"
            if self.mode == "html"
            else json.dumps(
                {
                    "query": "q",
                    "number_of_results": 3,
                    "results": [
                        {
                            "url": "https://en.wikipedia.org/wiki/Headphones",
                            "title": "Headphones - Wikipedia",
                            "content": "Headphones are a pair of small loudspeaker drivers.",
                            "engine": "wikipedia",
                            "score": 3.0,
                            "publishedDate": "2023-06-01T00:00:00",
                        },
                        {
                            "url": "https://blog.example.com/bt",
                            "title": "Best bluetooth headphones",
                            "content": "Bluetooth headphones under $100 reviewed.",
                            "engine": "duckduckgo",
                            "score": 1.5,
                            "publishedDate": None,
                        },
                        {"title": "no url, skipped"},
                    ],
                }
            ).encode()
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture()
def fake_searxng():
    server = HTTPServer(("127.0.0.1", 0), _FakeSearxNG)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakeSearxNG.mode, _FakeSearxNG.seen = "ok", []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_searxng_backend_against_fake_server(fake_searxng):
    backend = SearxNGBackend(
        fake_searxng, timeout_s=2, authority_by_domain={"wikipedia.org": 0.8}, default_authority=0.3
    )
    hits = backend.search("bluetooth headphones", 5)
    assert "format=json" in _FakeSearxNG.seen[0] and "q=bluetooth+headphones" in _FakeSearxNG.seen[0]
    assert [h.document.url for h in hits] == ["https://en.wikipedia.org/wiki/Headphones", "https://blog.example.com/bt"]
    assert [h.document.authority for h in hits] == [0.8, 0.3]
    assert hits[0].document.published == date(2023, 6, 1) and hits[1].document.published is None
    assert hits[0].document.source == "searxng:wikipedia" and hits[0].backend_score == 3.0
    fcfg = FilterConfig(
        alpha=0.6,
        beta=0.25,
        gamma=0.15,
        relevance_coverage_weight=0.6,
        half_life_days=1095,
        unknown_date_freshness=0.3,
        threshold=0.0,
        reference_date=TODAY,
    )
    cfg = WebSearchConfig(
        backend="searxng", filter=fcfg, query_generation=QueryGenerationConfig(templates={"default": ["{q}"]})
    )
    result = WebSearchAgent(backend, cfg).run("bluetooth headphones under $100")
    # content terms {bluetooth, headphones, under, 100}. Wikipedia: coverage 1/4, score 3/3 -> relevance
    # 0.6*0.25 + 0.4*1 = 0.55; authority 0.8; age 214 days -> freshness 0.5**(214/1095) = 0.8733;
    # Eq. 4: 0.6*0.55 + 0.25*0.8 + 0.15*0.8733 = 0.6610. Blog: coverage 1, score 1.5/3 -> relevance 0.8;
    # authority 0.3; no date -> 0.3: 0.48 + 0.075 + 0.045 = 0.600.
    assert [d.document.url for d in result.documents] == [
        "https://en.wikipedia.org/wiki/Headphones",
        "https://blog.example.com/bt",
    ]
    assert [d.score for d in result.documents] == pytest.approx([0.6610, 0.600], abs=2e-4)
    assert result.summary_source == "extractive" and "[1]" in result.summary
    _FakeSearxNG.mode = "html"
    with pytest.raises(SearchBackendError, match="did not return JSON"):
        backend.search("x", 5)
    _FakeSearxNG.mode = "forbidden"
    with pytest.raises(SearchBackendError, match="403.*settings.yml"):
        backend.search("x", 5)


def test_searxng_down_is_a_clear_error():
    server = HTTPServer(("127.0.0.1", 0), _FakeSearxNG)
    port = server.server_address[1]
    server.server_close()  # nothing listens there now
    with pytest.raises(SearchBackendError, match="not reachable.*backend=local"):
        SearxNGBackend(f"http://127.0.0.1:{port}", timeout_s=1).search("x", 3)
    with pytest.raises(ValueError, match="base_url"):
        SearxNGBackend("localhost:8888")


def test_query_generation_deterministic_and_llm():
    cfg = QueryGenerationConfig(max_queries=3, templates={"default": ["{q}", "{c} buying guide", "{q}"]})
    assert expand_queries("wireless mouse", cfg) == ["wireless mouse", "wireless mouse buying guide"]

    class _LLM:
        def structured(self, messages, schema, **kw):
            assert schema is QueryList
            return SimpleNamespace(
                value=QueryList(queries=["mouse review 2024", "  ", "Wireless  Mouse"]), used_fallback=False
            )

    assert generate_queries("wireless mouse", cfg, llm=_LLM()) == ["wireless mouse", "mouse review 2024"]
    with pytest.raises(ValueError, match="non-empty"):
        generate_queries("  ", cfg)


def test_llm_summary_used_when_given_and_falls_back():
    docs = [_doc("u1", "Mouse guide", "Wireless mice cost $10 to $80.")]
    backend = LocalCorpusBackend(docs)
    cfg = WebSearchConfig(
        filter=FilterConfig(threshold=0.0, reference_date=TODAY),
        query_generation=QueryGenerationConfig(use_llm=False, templates={"default": ["{q}"]}),
    )

    class _Chat:
        def chat(self, messages, **kw):
            assert "Wireless mice cost" in messages[1]["content"]
            return SimpleNamespace(text="Wireless mice cost $10-$80 [1].")

    class _Broken:
        def chat(self, messages, **kw):
            raise RuntimeError("model crashed")

    assert WebSearchAgent(backend, cfg, llm=_Chat()).run("wireless mouse price").summary_source == "llm"
    fallback = WebSearchAgent(backend, cfg, llm=_Broken()).run("wireless mouse price")
    assert fallback.summary_source == "extractive" and fallback.summary.startswith("Wireless mice cost")


@pytest.mark.skipif(not (DATA_DIR / "web_corpus" / "documents.jsonl").is_file(), reason="web corpus not built")
def test_shipped_corpus_answers_shopping_questions():
    agent = WebSearchAgent.from_config()
    result = agent.run("bluetooth headphones price range", today=TODAY)
    assert result.documents
    assert any(d.document.source.startswith("catalog") for d in result.documents)
    assert result.summary
    srcs = {d.source for d in load_corpus(DATA_DIR / "web_corpus" / "documents.jsonl")}
    assert srcs == {"catalog_guide", "catalog_attribute", "qulac", "mimics"}  # no ClariQ (no licence)


def _build_module():
    spec = importlib.util.spec_from_file_location("build_web_corpus", REPO_ROOT / "experiments" / "build_web_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_catalog_guide_hand_example():
    mod = _build_module()
    frame = pd.DataFrame(
        {
            "category": ["mice"] * 5,
            "category_path": ["electronics > mice"] * 5,
            "brand": ["logitech", "logitech", "logitech", "hp", ""],
            "price": [10.0, 20.0, 30.0, 40.0, 50.0],
            "connectivity": [["bluetooth"], ["usb"], ["bluetooth"], [], []],
            "features": [["wireless"], [], [], [], []],
            "colour": ["black", "black", "", "", ""],
            "capacity_gb": [float("nan")] * 5,
            "size_in": [float("nan")] * 5,
        }
    )
    (doc,) = mod.catalog_guides(frame, date(2016, 3, 25), min_products=5, max_brands=3)
    assert doc.url == "rl-shop://guides/mice"
    assert "range from $10.00 to $50.00" in doc.text and "median price is $30.00" in doc.text
    assert "between $20.00 and $40.00" in doc.text  # quartiles of 10..50
    assert "logitech (3 products), hp (1 product)" in doc.text
    assert "bluetooth (40%), usb (20%)" in doc.text
    assert mod.catalog_guides(frame, date(2016, 3, 25), min_products=6, max_brands=3) == []


def test_clarification_sources_parse(shared_data):
    mod = _build_module()
    qulac = mod.qulac_docs(shared_data / "clarification" / "qulac.json", date(2019, 7, 21), max_topics=3)
    assert len(qulac) == 3 and "obama family tree" in qulac[0].text.lower()
    mimics = mod.mimics_docs(shared_data / "clarification" / "MIMICS-Manual.tsv", date(2020, 6, 1), 5, 1)
    assert len(mimics) == 5 and all("refine their search to" in d.text for d in mimics)
