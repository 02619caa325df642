"""WebSearch Agent (MACDF 3.6): Retrieve-Filter-Integrate over a pluggable search backend."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field

from rl_shop.agents.config import AgentConfigError, defaults_from, load_agent_config, validate_config
from rl_shop.agents.llm_protocols import SupportsChat
from rl_shop.agents.types import IntentLike, IntentSpec, WebSearchResult
from rl_shop.agents.websearch.backend import RetrievedDocument, SearchBackend
from rl_shop.agents.websearch.corpus import LocalCorpusBackend
from rl_shop.agents.websearch.filter import FilterConfig, filter_documents
from rl_shop.agents.websearch.integrate import IntegrationConfig, extractive_summary, llm_summary
from rl_shop.agents.websearch.queries import QueryGenerationConfig, generate_queries
from rl_shop.agents.websearch.searxng import SearxNGBackend
from rl_shop.paths import REPO_ROOT


@defaults_from("websearch", "local")
class LocalBackendConfig(BaseModel):
    corpus_dir: str
    documents_file: str


@defaults_from("websearch", "searxng")
class SearxNGConfig(BaseModel):
    base_url: str
    timeout_s: float
    language: str
    categories: str
    default_authority: float = Field(ge=0.0, le=1.0)
    authority_by_domain: dict[str, float]


@defaults_from("websearch")
class WebSearchConfig(BaseModel):
    """``configs/agents/websearch.yaml`` (the ``build`` section is read by the corpus build script)."""

    model_config = {"extra": "ignore"}

    backend: Literal["local", "searxng"]
    results_per_query: int = Field(ge=1)
    local: LocalBackendConfig
    searxng: SearxNGConfig
    authority_by_source: dict[str, float]
    query_generation: QueryGenerationConfig
    filter: FilterConfig
    integration: IntegrationConfig


def make_backend(cfg: WebSearchConfig) -> SearchBackend:
    """The backend named in the config (the local corpus is loaded and indexed here)."""
    if cfg.backend == "local":
        path = REPO_ROOT / cfg.local.corpus_dir / cfg.local.documents_file
        return LocalCorpusBackend.from_path(path, cfg.authority_by_source)
    if cfg.backend == "searxng":
        s = cfg.searxng
        return SearxNGBackend(
            s.base_url, s.timeout_s, s.language, s.categories, s.authority_by_domain, s.default_authority
        )
    raise AgentConfigError(f"unknown websearch backend {cfg.backend!r}; use 'local' or 'searxng'")


class WebSearchAgent:
    """Generate queries, retrieve from the backend, filter with Eq. 4, integrate into a summary."""

    def __init__(
        self, backend: SearchBackend, config: WebSearchConfig | dict[str, Any] | None = None, llm: Any | None = None
    ) -> None:
        if config is None:
            config = load_agent_config("websearch")
        self.config: WebSearchConfig = (
            config
            if isinstance(config, WebSearchConfig)
            else validate_config(WebSearchConfig, config, "agents/websearch")
        )
        self.backend = backend
        self.llm = llm

    @classmethod
    def from_config(
        cls, config: WebSearchConfig | dict[str, Any] | None = None, llm: Any | None = None
    ) -> WebSearchAgent:
        """Build the agent and its configured backend."""
        if config is None:
            config = load_agent_config("websearch")
        cfg = (
            config
            if isinstance(config, WebSearchConfig)
            else validate_config(WebSearchConfig, config, "agents/websearch")
        )
        return cls(make_backend(cfg), cfg, llm)

    def retrieve(self, queries: list[str]) -> list[RetrievedDocument]:
        """Results of every query, in query order (the backend's errors propagate with their hint)."""
        out: list[RetrievedDocument] = []
        for q in queries:
            out.extend(self.backend.search(q, self.config.results_per_query))
        return out

    def run(
        self, request: str, intent: IntentLike | None = None, purpose: str = "default", today: date | None = None
    ) -> WebSearchResult:
        """Retrieve-Filter-Integrate for one request (``purpose`` picks the query templates)."""
        spec = IntentSpec.from_intent(intent) if intent is not None else None
        use_llm = self.llm if (self.llm is not None and hasattr(self.llm, "structured")) else None
        queries = generate_queries(request, self.config.query_generation, purpose, spec, use_llm)
        retrieved = self.retrieve(queries)
        kept, dropped = filter_documents(retrieved, self.config.filter, today, request=request)
        summary, source = "", "none"
        icfg = self.config.integration
        if kept and self.llm is not None and icfg.use_llm and isinstance(self.llm, SupportsChat):
            try:
                summary = llm_summary(self.llm, request, kept, icfg)
                source = "llm" if summary else "none"
            except Exception:  # noqa: BLE001 - fall back to extractive
                summary = ""
        if kept and not summary:
            summary = extractive_summary(request, kept, icfg.summary_sentences, icfg.summary_max_chars)
            source = "extractive" if summary else "none"
        return WebSearchResult(queries=queries, documents=kept, dropped=dropped, summary=summary, summary_source=source)
