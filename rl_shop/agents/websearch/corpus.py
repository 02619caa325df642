"""Local document corpus backend: the shipped ``data/web_corpus`` indexed with bm25s.

Why: the project must run without internet, yet the WebSearch Agent needs external knowledge
beyond product records. The corpus (buying guides and attribute explanations computed from the
catalog, clarifying facets from Qulac and query refinements from MIMICS) is built by
``experiments/build_web_corpus.py``; each document carries url, title, text, source, authority
and published date, so the Eq. 4 filter treats it exactly like a live web result.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from pydantic import ValidationError

from rl_shop.agents.types import WebDocument
from rl_shop.agents.websearch.backend import RetrievedDocument, SearchBackendError

BUILD_HINT = "run `python experiments/build_web_corpus.py` to (re)build data/web_corpus/"


def write_corpus(documents: Iterable[WebDocument], path: str | Path) -> int:
    """Write documents as JSON lines (one document per line, sorted keys); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for doc in documents:
            fh.write(json.dumps(doc.model_dump(mode="json"), sort_keys=True, ensure_ascii=False) + "\n")
            n += 1
    return n


def load_corpus(path: str | Path) -> list[WebDocument]:
    """Read a JSON-lines corpus; a clear error names the file and line of any bad record."""
    path = Path(path)
    if not path.is_file():
        raise SearchBackendError(f"web corpus not found at {path}; {BUILD_HINT}")
    docs = []
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                docs.append(WebDocument.model_validate(json.loads(line)))
            except (json.JSONDecodeError, ValidationError) as exc:
                raise SearchBackendError(f"{path}:{i} is not a valid web document ({exc}); {BUILD_HINT}") from None
    if not docs:
        raise SearchBackendError(f"web corpus {path} is empty; {BUILD_HINT}")
    return docs


class LocalCorpusBackend:
    """BM25 (bm25s, English stemming and stopwords) over a list of :class:`WebDocument`."""

    name = "local"

    def __init__(self, documents: list[WebDocument], authority_by_source: Mapping[str, float] | None = None) -> None:
        if not documents:
            raise SearchBackendError(f"LocalCorpusBackend needs at least one document; {BUILD_HINT}")
        overrides = dict(authority_by_source or {})
        self.documents = [
            d.model_copy(update={"authority": overrides[d.source]}) if d.source in overrides else d for d in documents
        ]
        self._stemmer = _stemmer()
        corpus_tokens = bm25s.tokenize(
            [f"{d.title}\n{d.text}" for d in self.documents], stopwords="en", stemmer=self._stemmer, show_progress=False
        )
        self._retriever = bm25s.BM25()
        self._retriever.index(corpus_tokens, show_progress=False)

    @classmethod
    def from_path(cls, path: str | Path, authority_by_source: Mapping[str, float] | None = None) -> LocalCorpusBackend:
        """Load the JSON-lines corpus at ``path`` and index it."""
        return cls(load_corpus(path), authority_by_source)

    def search(self, query: str, k: int) -> list[RetrievedDocument]:
        """Top ``k`` documents by BM25 (documents with score 0 are not returned)."""
        if not query.strip():
            return []
        q = bm25s.tokenize([query], stopwords="en", stemmer=self._stemmer, show_progress=False)
        if not q.vocab:
            return []
        k = max(1, min(k, len(self.documents)))
        try:
            ids, scores = self._retriever.retrieve(q, k=k, show_progress=False, n_threads=1)
        except (ValueError, KeyError):  # bm25s raises when no query token is in the vocabulary
            return []
        out = []
        for idx, score in zip(np.asarray(ids)[0], np.asarray(scores)[0]):
            if float(score) <= 0.0:
                continue
            out.append(RetrievedDocument(document=self.documents[int(idx)], backend_score=float(score), query=query))
        return out


def _stemmer() -> Any:
    try:
        import Stemmer  # PyStemmer

        return Stemmer.Stemmer("english")
    except ImportError:  # bm25s works without stemming, just less recall
        return None


def parse_date(value: object) -> date | None:
    """A ``date`` from ISO text (``2020-06-01`` or ``2020-06-01T10:00:00``), or None."""
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
