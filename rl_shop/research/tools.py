"""The Research Agent's four tools (paper: Search_Product, Visit_Product, Web_Search, Web_Visit).

Product search runs the project's hybrid catalog index directly (BM25 + MiniLM, hard filters from
``rl_shop.catalog.filters``); visit-product returns the full catalog record; web search and web
visit go through the WebSearch Agent's backend (the shipped local corpus or SearxNG). Every call
returns a :class:`ToolResult` and never raises for a bad argument: a failed tool is an
observation the agent (and the trajectory filter) must see, not a crash.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Literal, SupportsFloat, cast

import pandas as pd
from pydantic import BaseModel, Field

from rl_shop.catalog.filters import FilterColumns, SearchFilters
from rl_shop.config_files import defaults_from_yaml
from rl_shop.research.trajectory import TOOL_ARGUMENT, TOOL_NAMES, ToolCall, ToolResult

if TYPE_CHECKING:
    from rl_shop.agents.websearch.backend import SearchBackend
    from rl_shop.catalog.index import HybridIndex


@defaults_from_yaml("research/tools.yaml", what="research config")
class ToolsConfig(BaseModel):
    """``configs/research/tools.yaml``."""

    model_config = {"extra": "forbid"}

    search_k: int = Field(ge=1)  # products per product_search
    search_mode: Literal["hybrid", "bm25", "dense"]
    web_k: int = Field(ge=1)  # documents per web_search
    max_description_chars: int = Field(ge=0)
    max_specs_chars: int = Field(ge=0)
    max_document_chars: int = Field(ge=50)  # web_visit text shown
    snippet_chars: int = Field(ge=20)  # web_search snippet


def _fmt_price(value: object) -> str:
    return (
        f"${float(cast(SupportsFloat, value)):.2f}"
        if value is not None and not (isinstance(value, float) and math.isnan(value))
        else "price unknown"
    )


def _num(value: object) -> float | None:
    try:
        v = float(cast("SupportsFloat | str", value))  # anything else: TypeError
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


class ResearchTools:
    """Executes :class:`ToolCall`s against the catalog index and a web backend."""

    def __init__(
        self, catalog: pd.DataFrame, index: HybridIndex, web_backend: SearchBackend, config: ToolsConfig | None = None
    ) -> None:
        self.catalog = catalog
        self.index = index
        self.web = web_backend
        self.config = config or ToolsConfig.model_validate({})
        self._rows = {str(pid): i for i, pid in enumerate(catalog["product_id"].astype(str))}
        self._filter_columns: FilterColumns | None = None  # built on the first filtered citation check
        # Documents a web_search returned (any backend), so web_visit can open them by url.
        self._seen_docs: dict[str, Any] = {}
        for doc in getattr(web_backend, "documents", []) or []:  # the local corpus: every url is visitable
            self._seen_docs[doc.url] = doc

    # ------------------------------------------------------------------ dispatch
    def execute(
        self, call: ToolCall, filters: SearchFilters | None = None, preferred: SearchFilters | None = None
    ) -> ToolResult:
        """Run one call (a product_search within ``preferred`` if that finds anything, else within
        ``filters``); unknown tools and bad arguments give ``ok=False`` with the reason."""
        if call.name not in TOOL_NAMES:
            return self._fail(call, f"unknown tool {call.name!r}; tools are {list(TOOL_NAMES)}")
        arg = str(call.arguments.get(TOOL_ARGUMENT[call.name], "")).strip()
        if not arg:
            return self._fail(call, f"{call.name} needs a non-empty {TOOL_ARGUMENT[call.name]!r} argument")
        try:
            if call.name == "product_search":
                found = self.product_search(call, arg, preferred) if preferred is not None else None
                return found if found is not None and found.product_ids else self.product_search(call, arg, filters)
            return getattr(self, call.name)(call, arg)
        except Exception as exc:  # noqa: BLE001 - a backend error is an observation, not a crash
            return self._fail(call, f"{type(exc).__name__}: {str(exc)[:200]}")

    def admitted(
        self, pids: list[str], filters: SearchFilters | None, preferred: SearchFilters | None = None
    ) -> list[str]:
        """The products of ``pids`` (known ids, order kept) that ``preferred`` admits, or, if it
        admits none, that ``filters`` admit."""
        if preferred is not None:
            kept = self.admitted(pids, preferred)
            if kept:
                return kept
        if filters is None:
            return list(pids)
        if self._filter_columns is None:
            self._filter_columns = FilterColumns(self.catalog)
        mask = self._filter_columns.mask(filters)
        return [p for p in pids if mask is None or mask[self._rows[p]]]

    @staticmethod
    def _fail(call: ToolCall, message: str) -> ToolResult:
        return ToolResult(call_id=call.id, name=call.name, ok=False, content=f"ERROR: {message}", error=message)

    # ------------------------------------------------------------------ tools
    def product_search(self, call: ToolCall, query: str, filters: SearchFilters | None = None) -> ToolResult:
        hits = self.index.search(query, k=self.config.search_k, filters=filters, mode=self.config.search_mode)
        if not hits:
            return ToolResult(call_id=call.id, name=call.name, ok=True, content="No products found.")
        lines, ids = [], []
        for h in hits:
            row = self.catalog.iloc[self._rows[h.product_id]]
            ids.append(h.product_id)
            lines.append(
                f"[{h.product_id}] {row['title'][:90]} | brand: {row['brand'] or 'unknown'} | "
                f"{_fmt_price(row['price'])} | {row['category']}"
            )
        return ToolResult(call_id=call.id, name=call.name, ok=True, content="\n".join(lines), product_ids=ids)

    def visit_product(self, call: ToolCall, product_id: str) -> ToolResult:
        pid = product_id.strip("[] ")
        if pid not in self._rows:
            return self._fail(call, f"no product with id {pid!r}; use an id from product_search results")
        return ToolResult(call_id=call.id, name=call.name, ok=True, content=self.record_text(pid), product_ids=[pid])

    def record_text(self, pid: str) -> str:
        """The full catalog record of ``pid`` as the agent sees it (visit_product's observation)."""
        r = self.catalog.iloc[self._rows[pid]]
        c = self.config
        parts = [
            f"[{pid}] {r['title']}",
            f"brand: {r['brand'] or 'unknown'}",
            f"price: {_fmt_price(r['price'])}",
            f"category: {r['category_path']}",
        ]
        if r["colour"]:
            parts.append(f"colour: {r['colour']}")
        if _num(r["capacity_gb"]) is not None:
            parts.append(f"capacity: {float(r['capacity_gb']):g} GB")
        if _num(r["size_in"]) is not None:
            parts.append(f"size: {float(r['size_in']):g} inches")
        if len(r["connectivity"]):
            parts.append("connectivity: " + ", ".join(r["connectivity"]))
        if len(r["features"]):
            parts.append("features: " + ", ".join(r["features"]))
        if r["description"] and c.max_description_chars:
            parts.append("description: " + str(r["description"])[: c.max_description_chars])
        specs = str(r["specs"] or "")
        if specs not in ("", "{}") and c.max_specs_chars:
            parts.append("specs: " + specs[: c.max_specs_chars])
        return "\n".join(parts)

    def web_search(self, call: ToolCall, query: str) -> ToolResult:
        found = self.web.search(query, self.config.web_k)
        if not found:
            return ToolResult(call_id=call.id, name=call.name, ok=True, content="No web results.")
        lines, urls = [], []
        for r in found:
            doc = r.document
            self._seen_docs[doc.url] = doc
            urls.append(doc.url)
            lines.append(f"{doc.url} | {doc.title} | {doc.text[: self.config.snippet_chars]}")
        return ToolResult(call_id=call.id, name=call.name, ok=True, content="\n".join(lines), urls=urls)

    def web_visit(self, call: ToolCall, url: str) -> ToolResult:
        doc = self._seen_docs.get(url)
        if doc is None:
            return self._fail(
                call, f"url {url!r} was not returned by web_search; search first, then visit a listed url"
            )
        return ToolResult(
            call_id=call.id,
            name=call.name,
            ok=True,
            urls=[url],
            content=f"{doc.title}\n{doc.text[: self.config.max_document_chars]}",
        )

    # ------------------------------------------------------------------ schemas
    @staticmethod
    def openai_tool_specs() -> list[dict[str, Any]]:
        """The tools as OpenAI function specs (the ``tools`` column of the SFT data)."""
        desc = {
            "product_search": "Search the product catalog; returns ids, titles, brands, prices.",
            "visit_product": "Open the full catalog record of one product id.",
            "web_search": "Search the web (buying guides, explanations); returns urls and snippets.",
            "web_visit": "Open a url returned by web_search and read its text.",
        }
        return [
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": desc[name],
                    "parameters": {
                        "type": "object",
                        "properties": {TOOL_ARGUMENT[name]: {"type": "string"}},
                        "required": [TOOL_ARGUMENT[name]],
                    },
                },
            }
            for name in TOOL_NAMES
        ]


def product_facts(catalog: pd.DataFrame, pid: str) -> dict[str, Any]:
    """Title / brand / price of one product, for the report renderer (facts come from the catalog)."""
    rows = catalog.index[catalog["product_id"].astype(str) == pid]
    if len(rows) == 0:
        raise KeyError(pid)
    r = catalog.loc[rows[0]]
    return {
        "title": str(r["title"]),
        "brand": str(r["brand"]),
        "price": _num(r["price"]),
        "category": str(r["category"]),
    }


def tool_call_json(call: ToolCall) -> str:
    """Compact JSON of a call's arguments (the OpenAI ``function.arguments`` string)."""
    return json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":"))
