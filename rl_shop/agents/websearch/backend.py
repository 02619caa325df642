"""The search-backend contract of the WebSearch Agent's Web Retriever.

Why a protocol: the paper calls a commercial web search API; this project must run offline with a
shipped corpus and, where one is available, against a self-hosted SearxNG. Both return the same
``RetrievedDocument`` so the Eq. 4 filter and the integration step do not care which ran.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel

from rl_shop.agents.types import WebDocument


class SearchBackendError(RuntimeError):
    """A backend could not answer (server down, bad response, missing corpus); says what to do."""


class RetrievedDocument(BaseModel):
    """A document as a backend returned it, with the backend's own (unnormalized) score."""

    document: WebDocument
    backend_score: float = 0.0
    query: str = ""


@runtime_checkable
class SearchBackend(Protocol):
    """Anything that answers a text query with up to ``k`` documents, best first."""

    name: str

    def search(self, query: str, k: int) -> list[RetrievedDocument]: ...
