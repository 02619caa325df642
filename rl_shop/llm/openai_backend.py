"""Backend for any OpenAI-compatible server (vLLM, Ollama, llama.cpp server, ``rl-shop serve-llm``).

Uses the official ``openai`` client. Connection failures and timeouts become
:class:`LLMUnavailableError` naming the URL. Structured output asks the server for
``response_format={"type": "json_schema", ...}``; a server that rejects it (HTTP 400/404/422) is
remembered, and later calls rely on the prompt instruction plus validation and fallback instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from rl_shop.llm.base import LLM, ChunkGenerator, Stopwatch, check_messages
from rl_shop.llm.types import ChatResult, LLMConfigError, LLMUnavailableError, Message


class OpenAILLM(LLM):
    """Chat completions over HTTP."""

    backend = "openai"

    def __init__(self, *, model: str, base_url: str | None = None, api_key: str | None = None,
                 timeout_s: float = 60.0, max_retries: int = 1, json_schema_mode: str = "auto",
                 tokenizer_path: str | None = None, **base: Any) -> None:
        super().__init__(**base)
        import openai

        self._openai = openai
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            # Local servers ignore the key; the client insists on one.
            key = "not-needed"
        if not model:
            raise LLMConfigError("llm.model must name the served model (see GET <base_url>/models)")
        if json_schema_mode not in ("auto", "always", "never"):
            raise LLMConfigError(f"llm.json_schema_mode must be auto, always or never, got {json_schema_mode!r}")
        if timeout_s <= 0 or max_retries < 0:
            raise LLMConfigError("llm.timeout_s must be > 0 and llm.max_retries >= 0")
        self.model_id = model
        self.json_schema_mode = json_schema_mode
        self._schema_supported: bool | None = None if json_schema_mode == "auto" else json_schema_mode == "always"
        self.client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=timeout_s,
                                    max_retries=max_retries)
        self._tokenizer = None
        if tokenizer_path:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)

    def _cache_extra(self) -> Any:
        return {"base_url": self.base_url}

    # ------------------------------------------------------------------ tokens
    def count_tokens(self, text_or_messages: str | Sequence[Message]) -> int:
        """Exact with ``tokenizer_path``; else a documented estimate (chars / 4, + 4 per message)."""
        if isinstance(text_or_messages, str):
            if self._tokenizer is not None:
                return len(self._tokenizer.encode(text_or_messages, add_special_tokens=False))
            return max(1, round(len(text_or_messages) / 4)) if text_or_messages else 0
        msgs = check_messages(text_or_messages)
        if self._tokenizer is not None:
            enc = self._tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True,
                                                      return_dict=True)
            return len(enc["input_ids"])
        return sum(4 + self.count_tokens(m["content"]) for m in msgs)

    # ------------------------------------------------------------------ requests
    def _params(self, messages: list[Message], max_tokens: int, temperature: float, seed: int,
                stop: list[str] | None, json_schema: dict[str, Any] | None) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model_id, "messages": messages, "max_tokens": max_tokens,
                                  "temperature": temperature, "seed": seed}
        if stop:
            params["stop"] = stop
        if json_schema is not None and self._schema_supported is not False:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": str(json_schema.get("title", "output"))[:64] or "output",
                                "schema": json_schema, "strict": True},
            }
        return params

    def _call(self, params: dict[str, Any]) -> Any:
        openai = self._openai
        try:
            return self.client.chat.completions.create(**params)
        except openai.APITimeoutError as exc:
            raise LLMUnavailableError(
                f"LLM server {self.base_url} timed out after {self.client.timeout}s; check that it is "
                "not overloaded, or raise llm.timeout_s"
            ) from exc
        except openai.APIConnectionError as exc:
            raise LLMUnavailableError(
                f"cannot reach the LLM server at {self.base_url} ({exc}); check that it is running "
                "(e.g. `rl-shop serve-llm --port N`) and that llm.base_url / OPENAI_BASE_URL are right"
            ) from exc
        except openai.AuthenticationError as exc:
            raise LLMUnavailableError(
                f"LLM server {self.base_url} rejected the API key; set OPENAI_API_KEY or llm.api_key"
            ) from exc
        except openai.NotFoundError as exc:
            if "response_format" in params and self._schema_supported is None:
                raise
            raise LLMUnavailableError(
                f"LLM server {self.base_url} does not serve model {self.model_id!r} (HTTP 404); "
                "list models with GET /models and set llm.model"
            ) from exc
        except openai.APIStatusError as exc:
            if "response_format" in params and self._schema_supported is None:
                raise
            raise LLMUnavailableError(
                f"LLM server {self.base_url} answered HTTP {exc.status_code}: {str(exc)[:300]}"
            ) from exc

    def _create(self, params: dict[str, Any]) -> Any:
        """One request; on a server that rejects ``response_format``, retry once without it."""
        try:
            out = self._call(params)
        except self._openai.APIStatusError as exc:
            if exc.status_code not in (400, 404, 422) or "response_format" not in params:
                raise LLMUnavailableError(f"LLM server {self.base_url}: HTTP {exc.status_code}") from exc
            self._schema_supported = False
            params = {k: v for k, v in params.items() if k != "response_format"}
            return self._call(params)
        if "response_format" in params:
            self._schema_supported = True
        return out

    def _chat(self, messages: list[Message], *, max_tokens: int, temperature: float, seed: int,
              stop: list[str] | None, json_schema: dict[str, Any] | None) -> ChatResult:
        watch = Stopwatch()
        resp = self._create(self._params(messages, max_tokens, temperature, seed, stop, json_schema))
        watch.mark_first()
        choice = resp.choices[0]
        usage = resp.usage
        text = choice.message.content or ""
        return ChatResult(
            text=text,
            prompt_tokens=int(usage.prompt_tokens) if usage else self.count_tokens(messages),
            completion_tokens=int(usage.completion_tokens) if usage else self.count_tokens(text),
            ttft_s=watch.ttft, total_s=watch.elapsed, cached=False, backend=self.backend,
            model=self.model_id, finish_reason=choice.finish_reason or "stop",
        )

    def _stream(self, messages: list[Message], *, max_tokens: int, temperature: float, seed: int,
                stop: list[str] | None, json_schema: dict[str, Any] | None) -> ChunkGenerator:
        watch = Stopwatch()
        params = self._params(messages, max_tokens, temperature, seed, stop, json_schema)
        params.update(stream=True, stream_options={"include_usage": True})
        stream = self._create(params)
        parts: list[str] = []
        usage = None
        finish = "stop"
        try:
            for chunk in stream:
                if getattr(chunk, "usage", None):
                    usage = chunk.usage
                for choice in chunk.choices or []:
                    delta = choice.delta.content if choice.delta else None
                    if choice.finish_reason:
                        finish = choice.finish_reason
                    if delta:
                        watch.mark_first()
                        parts.append(delta)
                        yield delta
        except self._openai.APIConnectionError as exc:
            raise LLMUnavailableError(f"stream from {self.base_url} broke off: {exc}") from exc
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        text = "".join(parts)
        return ChatResult(
            text=text,
            prompt_tokens=int(usage.prompt_tokens) if usage else self.count_tokens(messages),
            completion_tokens=int(usage.completion_tokens) if usage else self.count_tokens(text),
            ttft_s=watch.ttft, total_s=watch.elapsed, cached=False, backend=self.backend,
            model=self.model_id, finish_reason=finish,
        )
