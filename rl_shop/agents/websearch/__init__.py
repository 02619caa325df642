"""WebSearch Agent (MACDF 3.6): Retrieve-Filter-Integrate.

Retrieve: :mod:`queries` (LLM or template expansion) + a :class:`SearchBackend`
(:class:`LocalCorpusBackend` over the shipped ``data/web_corpus``, or :class:`SearxNGBackend`).
Filter: :mod:`filter` (Eq. 4). Integrate: :mod:`integrate` (LLM or extractive summary).
"""

from rl_shop.agents.websearch.agent import WebSearchAgent, WebSearchConfig, make_backend
from rl_shop.agents.websearch.backend import RetrievedDocument, SearchBackend, SearchBackendError
from rl_shop.agents.websearch.corpus import LocalCorpusBackend, load_corpus, write_corpus
from rl_shop.agents.websearch.filter import FilterConfig, eq4_score, filter_documents, freshness
from rl_shop.agents.websearch.integrate import extractive_summary
from rl_shop.agents.websearch.queries import expand_queries, generate_queries
from rl_shop.agents.websearch.searxng import SearxNGBackend

__all__ = [
    "FilterConfig",
    "LocalCorpusBackend",
    "RetrievedDocument",
    "SearchBackend",
    "SearchBackendError",
    "SearxNGBackend",
    "WebSearchAgent",
    "WebSearchConfig",
    "eq4_score",
    "expand_queries",
    "extractive_summary",
    "filter_documents",
    "freshness",
    "generate_queries",
    "load_corpus",
    "make_backend",
    "write_corpus",
]
