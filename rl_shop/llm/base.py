"""The one LLM interface that agents, research and evaluation code program against.

Backends implement three hooks (``_chat``, ``_stream``, ``count_tokens``); this base class adds
what every backend needs identically: argument checks with readable errors, the on-disk response
cache, usage metrics, and the structured-output loop (constrained decode -> pydantic / caller
validation -> one corrective retry -> documented fallback, counted in the metrics).
"""

from __future__ import annotations

import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any

from pydantic import BaseModel

from rl_shop.llm.cache import ResponseCache, make_key
from rl_shop.llm.metrics import LLMMetrics
from rl_shop.llm.structured import (
    SchemaSpec,
    Validator,
    as_schema,
    default_fallback,
    run_validator,
    with_schema_instruction,
)
from rl_shop.llm.types import (
    VALID_ROLES,
    ChatResult,
    InvalidMessagesError,
    LLMError,
    LLMUnavailableError,
    Message,
    StructuredResult,
)

# A backend's streaming hook yields text chunks and returns the final ChatResult.
ChunkGenerator = Generator[str, None, ChatResult]


def check_messages(messages: object) -> list[Message]:
    """Validate the OpenAI chat shape; a clear error instead of a template crash deep inside."""
    if isinstance(messages, str):
        raise InvalidMessagesError(
            "messages must be a list of {'role', 'content'} dicts, not a string; "
            "wrap it as [{'role': 'user', 'content': text}]"
        )
    if not isinstance(messages, Sequence) or len(messages) == 0:
        raise InvalidMessagesError("messages must be a non-empty list of {'role', 'content'} dicts")
    out: list[Message] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
            raise InvalidMessagesError(f"messages[{i}] must be a dict with 'role' and 'content', got {msg!r:.80}")
        if msg["role"] not in VALID_ROLES:
            raise InvalidMessagesError(f"messages[{i}] has role {msg['role']!r}; expected one of {VALID_ROLES}")
        if not isinstance(msg["content"], str):
            raise InvalidMessagesError(f"messages[{i}].content must be a string, got {type(msg['content']).__name__}")
        out.append({"role": msg["role"], "content": msg["content"]})
    return out


def _check_params(max_tokens: int, temperature: float) -> None:
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise ValueError(f"temperature must be a number >= 0, got {temperature!r}")


class ChatStream(Iterator[str]):
    """Iterator over text chunks; ``result`` holds the full :class:`ChatResult` once exhausted."""

    def __init__(
        self, gen: ChunkGenerator, on_done: Callable[[ChatResult], None], on_error: Callable[[], None] | None = None
    ) -> None:
        self._gen = gen
        self._on_done = on_done
        self._on_error = on_error
        self.result: ChatResult | None = None

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> str:
        if self.result is not None:
            raise StopIteration
        try:
            return next(self._gen)
        except StopIteration as stop:
            self.result = stop.value
            if self.result is not None:
                self._on_done(self.result)
            raise
        except LLMError:
            if self._on_error is not None:
                self._on_error()
            raise

    def close(self) -> None:
        """Stop early (the backend cancels generation)."""
        self._gen.close()

    def text(self) -> str:
        """Consume the rest and return the whole text."""
        parts = list(self)
        return self.result.text if self.result is not None else "".join(parts)


class LLM(ABC):
    """Abstract chat model. Subclasses set ``backend`` and ``model_id`` and implement the hooks."""

    backend: str = "abstract"
    model_id: str = "unknown"

    def __init__(
        self,
        *,
        cache: ResponseCache | None = None,
        default_seed: int = 0,
        structured_retries: int = 1,
        metrics: LLMMetrics | None = None,
    ) -> None:
        if structured_retries < 0:
            raise ValueError(f"structured_retries must be >= 0, got {structured_retries}")
        self.cache = cache
        self.default_seed = int(default_seed)
        self.structured_retries = int(structured_retries)
        self.metrics = metrics if metrics is not None else LLMMetrics()

    # ------------------------------------------------------------------ backend hooks
    @abstractmethod
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
        """Generate one completion (``json_schema`` set: constrain the output to it if possible)."""

    @abstractmethod
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
        """Yield text chunks, then return the finished ChatResult."""

    @abstractmethod
    def count_tokens(self, text_or_messages: str | Sequence[Message]) -> int:
        """Tokens of a plain text, or of a conversation rendered with the chat template."""

    # ------------------------------------------------------------------ public API
    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> ChatResult:
        """One completion; greedy at temperature 0; the same seed gives the same text.

        ``json_schema`` constrains the raw text to the schema (no validation / fallback: use
        :meth:`structured` for that); the server maps ``response_format`` onto it.
        """
        spec = as_schema(json_schema) if json_schema is not None else None
        return self._cached_chat(check_messages(messages), max_tokens, temperature, seed, stop, spec)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: Sequence[str] | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> ChatStream:
        """Text chunks as they are generated; ``.result`` carries timings and counts at the end."""
        msgs = check_messages(messages)
        _check_params(max_tokens, temperature)
        seed_ = self.default_seed if seed is None else int(seed)
        stop_ = _norm_stop(stop)
        spec = as_schema(json_schema) if json_schema is not None else None
        key = self._key(msgs, max_tokens, temperature, seed_, stop_, spec)
        hit = self._cache_get(key)
        if hit is not None:
            return ChatStream(_replay(hit), lambda r: None)
        gen = self._stream(
            msgs,
            max_tokens=max_tokens,
            temperature=float(temperature),
            seed=seed_,
            stop=stop_,
            json_schema=spec.json_schema if spec else None,
        )

        def done(res: ChatResult) -> None:
            self._record(res)
            self._cache_put(key, res)

        return ChatStream(gen, done, lambda: self.metrics.add(errors=1))

    def structured(
        self,
        messages: Sequence[Message],
        schema: type[BaseModel] | dict[str, Any],
        *,
        max_tokens: int = 256,
        validate: Validator | None = None,
        fallback: Callable[[str], Any] | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
        schema_in_prompt: bool = True,
        retries: int | None = None,
    ) -> StructuredResult[Any]:
        """A value of ``schema``, decoded under the schema's grammar where the backend can.

        Never raises on bad model output: after ``1 + retries`` attempts (default
        ``structured_retries``) the ``fallback`` (or :func:`~rl_shop.llm.structured.default_fallback`)
        is used and counted in ``self.metrics.fallbacks``; if that fails too, ``value`` is None and
        ``errors`` says why. Nor on an unreachable server (:class:`LLMUnavailableError`: down,
        killed mid-request, timed out): the fallback is applied to the text received so far (none),
        counted in ``metrics.fallbacks`` and ``metrics.errors``, and ``errors`` carries the message.
        ``schema_in_prompt=False`` leaves the schema text out of the prompt (the grammar alone
        enforces the format): for prompts that must match fine-tuning data.
        """
        spec = as_schema(schema)
        checked = check_messages(messages)
        base_msgs = with_schema_instruction(checked, spec) if schema_in_prompt else checked
        msgs = base_msgs
        errors: list[str] = []
        raw = ""
        last: ChatResult | None = None
        self.metrics.add(structured_calls=1)
        attempts = 0
        n_retries = self.structured_retries if retries is None else int(retries)
        for attempt in range(1 + n_retries):
            attempts += 1
            if attempt > 0:
                self.metrics.add(retries=1)
            try:
                last = self._cached_chat(msgs, max_tokens, temperature, seed, None, spec)
            except LLMUnavailableError as exc:
                errors.append(f"attempt {attempt + 1}: LLM unavailable: {exc}")
                raw = ""
                break
            raw = last.text
            try:
                value = spec.validate_text(raw)
                problems = run_validator(validate, value)
            except ValueError as exc:
                value, problems = None, [str(exc)]
            if not problems:
                return StructuredResult(value, raw, attempts, False, errors, last.cached, last)
            errors.extend(f"attempt {attempt + 1}: {p}" for p in problems)
            msgs = base_msgs + [
                {"role": "assistant", "content": raw},
                {
                    "role": "user",
                    "content": "That answer was invalid: "
                    + "; ".join(problems)[:500]
                    + ". Reply again with corrected JSON only.",
                },
            ]
        self.metrics.add(fallbacks=1)
        value = self._fallback(spec, raw, validate, fallback, errors)
        if value is None:
            self.metrics.add(failures=1)
        cached = bool(last and last.cached)
        return StructuredResult(value, raw, attempts, True, errors, cached, last)

    # ------------------------------------------------------------------ helpers
    def _fallback(
        self,
        spec: SchemaSpec,
        raw: str,
        validate: Validator | None,
        fallback: Callable[[str], Any] | None,
        errors: list[str],
    ) -> Any | None:
        if fallback is not None:
            try:
                value = fallback(raw)
            except Exception as exc:  # the caller's parser must not crash the agent either
                errors.append(f"fallback: caller's fallback raised {type(exc).__name__}: {exc}")
                return None
            if value is None:
                errors.append("fallback: caller's fallback returned None")
                return None
            if not isinstance(value, BaseModel):
                try:
                    value = spec.validate_obj(value)
                except ValueError as exc:
                    errors.append(f"fallback: caller's fallback value invalid: {exc}")
                    return None
            return value
        value, problems = default_fallback(spec, raw)
        errors.extend(problems)
        if value is None:
            return None
        domain = run_validator(validate, value)
        if domain:
            errors.extend(f"fallback: {p}" for p in domain)
            return None
        return value

    def _cached_chat(
        self,
        msgs: list[Message],
        max_tokens: int,
        temperature: float,
        seed: int | None,
        stop: Sequence[str] | None,
        spec: SchemaSpec | None,
    ) -> ChatResult:
        _check_params(max_tokens, temperature)
        seed_ = self.default_seed if seed is None else int(seed)
        stop_ = _norm_stop(stop)
        key = self._key(msgs, max_tokens, temperature, seed_, stop_, spec)
        hit = self._cache_get(key)
        if hit is not None:
            return hit
        try:
            res = self._chat(
                msgs,
                max_tokens=max_tokens,
                temperature=float(temperature),
                seed=seed_,
                stop=stop_,
                json_schema=spec.json_schema if spec else None,
            )
        except LLMError:
            self.metrics.add(errors=1)
            raise
        self._record(res)
        self._cache_put(key, res)
        return res

    def _key(
        self,
        msgs: list[Message],
        max_tokens: int,
        temperature: float,
        seed: int,
        stop: list[str] | None,
        spec: SchemaSpec | None,
    ) -> str:
        return make_key(
            backend=self.backend,
            model=self.model_id,
            messages=msgs,
            max_tokens=max_tokens,
            temperature=float(temperature),
            seed=seed,
            stop=stop,
            schema=spec.fingerprint() if spec else None,
            extra=self._cache_extra(),
        )

    def _cache_extra(self) -> object:
        """Backend settings that change outputs beyond the model id (e.g. an adapter)."""
        return None

    def _cache_get(self, key: str) -> ChatResult | None:
        if self.cache is None:
            return None
        data = self.cache.get(key)
        if data is None:
            return None
        self.metrics.add(calls=1, cache_hits=1)
        data["cached"] = True
        return ChatResult(**data)

    def _cache_put(self, key: str, res: ChatResult) -> None:
        if self.cache is not None and res.finish_reason != "error":
            self.cache.put(key, res.to_dict())

    def _record(self, res: ChatResult) -> None:
        self.metrics.add(
            calls=1, prompt_tokens=res.prompt_tokens, completion_tokens=res.completion_tokens, total_s=res.total_s
        )

    def describe(self) -> str:
        """``backend:model`` for logs and reports."""
        return f"{self.backend}:{self.model_id}"

    def close(self) -> None:
        """Release resources (cache connection); the object is unusable afterwards."""
        if self.cache is not None:
            self.cache.close()
            self.cache = None


def _norm_stop(stop: Sequence[str] | str | None) -> list[str] | None:
    if stop is None:
        return None
    if isinstance(stop, str):
        stop = [stop]
    out = [s for s in stop if isinstance(s, str) and s]
    if len(out) != len(list(stop)):
        raise ValueError(f"stop must be a list of non-empty strings, got {stop!r}")
    return out or None


def _replay(res: ChatResult) -> ChunkGenerator:
    if res.text:
        yield res.text
    return res


def trim_at_stop(text: str, stop: list[str] | None) -> tuple[str, bool]:
    """Cut ``text`` before the first stop string; returns (text, whether a stop string was hit)."""
    if not stop:
        return text, False
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class Stopwatch:
    """Wall-clock timer with a first-token mark (TTFT)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.first: float | None = None

    def mark_first(self) -> None:
        """Record the first token's arrival (idempotent)."""
        if self.first is None:
            self.first = time.perf_counter()

    @property
    def ttft(self) -> float:
        return (self.first if self.first is not None else time.perf_counter()) - self.t0

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


__all__ = ["LLM", "ChatStream", "check_messages", "trim_at_stop", "Stopwatch", "LLMError"]


class LocalLLM(LLM):
    """An in-process model whose subclass implements one ``generate`` (with ``on_text`` and
    ``cancel`` hooks); chat is a plain call, streaming runs it in a worker thread.

    Decoding runs in the worker and hands text chunks over a queue as tokens are made; closing the
    stream sets ``cancel``, which stops decoding after the current token.
    """

    @abstractmethod
    def generate(
        self,
        msgs: list[Message],
        *,
        max_tokens: int,
        temperature: float,
        seed: int,
        stop: list[str] | None = None,
        json_schema: dict[str, Any] | None = None,
        on_text: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> ChatResult:
        """One completion; ``on_text`` receives new text as it is decoded."""

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
        return self.generate(
            messages, max_tokens=max_tokens, temperature=temperature, seed=seed, stop=stop, json_schema=json_schema
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
        chunks: queue.Queue[object] = queue.Queue()
        cancel = threading.Event()
        box: dict[str, Any] = {}
        end = object()

        def work() -> None:
            try:
                box["result"] = self.generate(
                    messages,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    seed=seed,
                    stop=stop,
                    json_schema=json_schema,
                    on_text=chunks.put,
                    cancel=cancel,
                )
            except BaseException as exc:  # re-raised in the consumer's thread below
                box["error"] = exc
            finally:
                chunks.put(end)

        worker = threading.Thread(target=work, name=f"rl_shop-{self.backend}-stream", daemon=True)
        worker.start()
        try:
            while (item := chunks.get()) is not end:
                yield str(item)
        finally:
            cancel.set()
            worker.join()
        if "error" in box:
            raise box["error"]
        return box["result"]
