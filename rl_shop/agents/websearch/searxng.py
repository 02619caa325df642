"""SearxNG backend: live web results from a self-hosted SearxNG instance's JSON API.

Why SearxNG: it is an open-source metasearch engine one can run locally (``/search?q=...&
format=json``), so a deployment gets real-time results without a commercial API key. The stdlib
``urllib`` client keeps the dependency list short; every failure becomes a
:class:`SearchBackendError` saying what to check.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from rl_shop.agents.types import WebDocument
from rl_shop.agents.websearch.backend import RetrievedDocument, SearchBackendError
from rl_shop.agents.websearch.corpus import parse_date


class SearxNGBackend:
    """Query a SearxNG server; authority comes from a per-domain table (suffix match)."""

    name = "searxng"

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 5.0,
        language: str = "en",
        categories: str = "general",
        authority_by_domain: Mapping[str, float] | None = None,
        default_authority: float = 0.4,
    ) -> None:
        parsed = urllib.parse.urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"SearxNG base_url must look like http://host:port, got {base_url!r}")
        if timeout_s <= 0:
            raise ValueError(f"SearxNG timeout_s must be > 0, got {timeout_s}")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.language = language
        self.categories = categories
        self.authority_by_domain = {k.lower(): float(v) for k, v in (authority_by_domain or {}).items()}
        self.default_authority = default_authority

    def authority(self, url: str) -> float:
        """Authority of a result's domain (longest matching suffix in the table, else default)."""
        host = (urllib.parse.urlparse(url).hostname or "").lower()
        best, best_len = self.default_authority, -1
        for domain, value in self.authority_by_domain.items():
            if (host == domain or host.endswith("." + domain)) and len(domain) > best_len:
                best, best_len = value, len(domain)
        return best

    def _get(self, query: str) -> dict[str, Any]:
        params = urllib.parse.urlencode(
            {"q": query, "format": "json", "language": self.language, "categories": self.categories}
        )
        url = f"{self.base_url}/search?{params}"
        request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "rl_shop-websearch"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:  # noqa: S310 - configured URL
                body = resp.read()
        except urllib.error.HTTPError as exc:
            hint = (
                (
                    " (SearxNG answers 403 when the JSON format is disabled: add `json` to search.formats "
                    "in its settings.yml)"
                )
                if exc.code == 403
                else ""
            )
            raise SearchBackendError(f"SearxNG at {self.base_url} returned HTTP {exc.code}{hint}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SearchBackendError(
                f"SearxNG at {self.base_url} is not reachable ({reason}); start it, fix websearch.searxng.base_url, "
                f"or set websearch.backend=local in configs/agents/websearch.yaml"
            ) from None
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise SearchBackendError(
                f"SearxNG at {self.base_url} did not return JSON (first bytes: {body[:60]!r}); is format=json enabled?"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("results", []), list):
            raise SearchBackendError(
                f"SearxNG at {self.base_url} returned an unexpected JSON shape "
                f"(expected an object with a 'results' list)"
            )
        return data

    def search(self, query: str, k: int) -> list[RetrievedDocument]:
        """Up to ``k`` results in SearxNG's order; its ``score`` (if any) is the backend score."""
        if not query.strip():
            return []
        data = self._get(query)
        out = []
        for rank, item in enumerate(data.get("results", [])):
            if not isinstance(item, dict) or not item.get("url"):
                continue
            url = str(item["url"])
            doc = WebDocument(
                url=url,
                title=str(item.get("title") or url),
                text=str(item.get("content") or ""),
                source=f"searxng:{item.get('engine') or 'unknown'}",
                authority=self.authority(url),
                published=parse_date(item.get("publishedDate")),
            )
            score = item.get("score")
            backend_score = float(score) if isinstance(score, (int, float)) else 1.0 / (rank + 1)
            out.append(RetrievedDocument(document=doc, backend_score=backend_score, query=query))
            if len(out) >= k:
                break
        return out
