"""Backend for any OpenAI-compatible server (vLLM, Ollama, llama.cpp server, ``rl-shop serve-llm``).

Uses the official ``openai`` client. Connection failures and timeouts become
:class:`LLMUnavailableError` naming the URL. Structured output asks the server for
``response_format={"type": "json_schema", ...}`` (OpenAI, vLLM); a server that rejects it (HTTP
400/404/422, or llama_cpp.server's HTTP 500 naming ``response_format``) is asked with llama-cpp-python's form ``{"type": "json_object", "schema": ...}``
(``rl-shop serve-llm``); a server that rejects both is remembered, and later calls rely on the
prompt instruction plus validation and fallback instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from rl_shop.llm.base import LLM, ChunkGenerator, Stopwatch, check_messages
from rl_shop.llm.types import ChatResult, LLMConfigError, LLMUnavailableError, Message

if TYPE_CHECKING:
    from transformers import BatchEncoding

# json_schema_mode -> the response_format forms tried, in order.
SCHEMA_FORMS: dict[str, tuple[str, ...]] = {
    "auto": ("json_schema", "json_object"),
    "always": ("json_schema",),
    "json_object": ("json_object",),
    "never": (),
}


def _response_format(form: str, json_schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's ``json_schema`` form, or llama-cpp-python's ``json_object`` + ``schema`` form."""
    if form == "json_object":
        return {"type": "json_object", "schema": json_schema}
    return {
        "type": "json_schema",
        "json_schema": {
            "name": str(json_schema.get("title", "output"))[:64] or "output",
            "schema": json_schema,
            "strict": True,
        },
    }


class OpenAILLM(LLM):
    """Chat completions over HTTP."""

    backend = "openai"

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 1,
        json_schema_mode: str = "auto",
        tokenizer_path: str | None = None,
        **base: Any,
    ) -> None:
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
        if json_schema_mode not in SCHEMA_FORMS:
            raise LLMConfigError(
                f"llm.json_schema_mode must be one of {sorted(SCHEMA_FORMS)}, got {json_schema_mode!r}"
            )
        if timeout_s <= 0 or max_retries < 0:
            raise LLMConfigError("llm.timeout_s must be > 0 and llm.max_retries >= 0")
        self.model_id = model
        self.json_schema_mode = json_schema_mode
        # The response_format forms still to try, first = in use; confirmed once a server accepted
        # one (or the mode names a single form): then a refusal is an error, not a probe.
        self._schema_forms: list[str] = list(SCHEMA_FORMS[json_schema_mode])
        self._form_confirmed = json_schema_mode != "auto"
        self.client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=timeout_s, max_retries=max_retries)
        self._tokenizer = None
        if tokenizer_path:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)

    def _cache_extra(self) -> object:
        return {"base_url": self.base_url}

    @property
    def _schema_supported(self) -> bool | None:
        """True: the server constrains to a schema; False: it refuses; None: not known yet."""
        if not self._schema_forms:
            return False
        return True if self._form_confirmed else None

    # ------------------------------------------------------------------ tokens
    def count_tokens(self, text_or_messages: str | Sequence[Message]) -> int:
        """Exact with ``tokenizer_path``; else a documented estimate (chars / 4, + 4 per message)."""
        if isinstance(text_or_messages, str):
            if self._tokenizer is not None:
                return len(self._tokenizer.encode(text_or_messages, add_special_tokens=False))
            return max(1, round(len(text_or_messages) / 4)) if text_or_messages else 0
        msgs = check_messages(text_or_messages)
        if self._tokenizer is not None:
            # transformers annotates ``conversation`` as list[dict[str, str]] (a Message TypedDict
            # has that shape but is not a dict[str, str] to mypy) and has no overload for
            # return_dict=True, which returns a BatchEncoding.
            enc = cast(
                "BatchEncoding",
                self._tokenizer.apply_chat_template(
                    msgs,  # type: ignore[arg-type]  # transformers' stub: list[dict[str, str]], see above
                    add_generation_prompt=True,
                    tokenize=True,
                    return_dict=True,
                ),
            )
            return len(enc["input_ids"])
        return sum(4 + self.count_tokens(m["content"]) for m in msgs)

    def served_models(self) -> list[str]:
        """The model ids the server lists (GET <base_url>/models). Check a name against it before a
        run: llama_cpp.server answers a request for an unknown model with its default model."""
        try:
            return [m.id for m in self.client.models.list()]
        except self._openai.APIError as exc:
            raise LLMUnavailableError(f"cannot list the models of the LLM server {self.base_url}: {exc}") from exc

    # ------------------------------------------------------------------ requests
    def _params(
        self,
        messages: list[Message],
        max_tokens: int,
        temperature: float,
        seed: int,
        stop: list[str] | None,
        json_schema: dict[str, Any] | None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model_id,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
        }
        if stop:
            params["stop"] = stop
        if json_schema is not None and self._schema_forms:
            params["response_format"] = _response_format(self._schema_forms[0], json_schema)
            params["_schema"] = json_schema  # removed before sending; lets _create switch forms
        return params

    def _call(self, params: dict[str, Any]) -> Any:
        openai = self._openai
        probing = "response_format" in params and not self._form_confirmed
        params = {k: v for k, v in params.items() if k != "_schema"}
        # A probe's refusal is an answer, not a fault: retrying it (llama_cpp.server refuses with
        # HTTP 500, which the client retries) would only send the same request again.
        client = self.client.with_options(max_retries=0) if probing else self.client
        try:
            return client.chat.completions.create(**params)
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
            if probing:
                raise
            raise LLMUnavailableError(
                f"LLM server {self.base_url} does not serve model {self.model_id!r} (HTTP 404); "
                "list models with GET /models and set llm.model"
            ) from exc
        except openai.APIStatusError as exc:
            if probing:
                raise
            raise LLMUnavailableError(
                f"LLM server {self.base_url} answered HTTP {exc.status_code}: {str(exc)[:300]}"
            ) from exc

    def _create(self, params: dict[str, Any]) -> Any:
        """One request; on a server that rejects ``response_format``, try the next form, then none."""
        while True:
            try:
                out = self._call(params)
            except self._openai.APIStatusError as exc:
                # llama_cpp.server answers a request it cannot validate with HTTP 500 (its error
                # handler wraps every exception), naming the field: count that as a refusal too.
                refused = exc.status_code in (400, 404, 422) or (
                    exc.status_code == 500 and "response_format" in str(exc)
                )
                if not refused or "response_format" not in params:
                    raise LLMUnavailableError(
                        f"LLM server {self.base_url}: HTTP {exc.status_code}: {str(exc)[:300]}"
                    ) from exc
                self._schema_forms.pop(0)
                if self._schema_forms:
                    params = {**params, "response_format": _response_format(self._schema_forms[0], params["_schema"])}
                    continue
                self._form_confirmed = True
                params = {k: v for k, v in params.items() if k not in ("response_format", "_schema")}
                return self._call(params)
            if "response_format" in params:
                self._form_confirmed = True
            return out

    def _chat(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        seed: int,
        stop: list[str] | None,
        json_schema: dict[str, Any] | None,
    ) -> ChatResult:
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
            ttft_s=watch.ttft,
            total_s=watch.elapsed,
            cached=False,
            backend=self.backend,
            model=self.model_id,
            finish_reason=choice.finish_reason or "stop",
        )

    def _stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        seed: int,
        stop: list[str] | None,
        json_schema: dict[str, Any] | None,
    ) -> ChunkGenerator:
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
        except Exception as exc:  # the client's transport errors (httpx / httpx2 / openai.APIError)
            # e.g. the server was killed mid-answer: the chunks already yielded stay with the caller
            raise LLMUnavailableError(
                f"stream from {self.base_url} broke off after {len(parts)} chunk(s) "
                f"({type(exc).__name__}: {exc}); check that the server is still running"
            ) from exc
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        text = "".join(parts)
        return ChatResult(
            text=text,
            prompt_tokens=int(usage.prompt_tokens) if usage else self.count_tokens(messages),
            completion_tokens=int(usage.completion_tokens) if usage else self.count_tokens(text),
            ttft_s=watch.ttft,
            total_s=watch.elapsed,
            cached=False,
            backend=self.backend,
            model=self.model_id,
            finish_reason=finish,
        )
