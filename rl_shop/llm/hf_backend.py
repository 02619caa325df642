"""Backend for any local Hugging Face causal LM (optionally with a PEFT LoRA adapter on top).

Generation goes through ``model.generate`` so that everything transformers offers (stop strings,
sampling, logits processors) applies; on top of it this adds: a JSON-schema ``LogitsProcessor``
for structured output, reuse of the system-prompt KV cache (:mod:`rl_shop.llm.prefix_cache`),
streaming through a ``BaseStreamer`` run in a worker thread, and time-to-first-token measurement.
One lock serialises generation: a model instance is not re-entrant, and the global torch RNG is
seeded per call.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList, StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from rl_shop.llm.base import LocalLLM, Stopwatch, trim_at_stop
from rl_shop.llm.constrained import Constrainer, make_constrainer
from rl_shop.llm.prefix_cache import PrefixKVCache
from rl_shop.llm.types import ChatResult, LLMConfigError, LLMError, Message, ModelLoadError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


def load_hf_model(
    path: str | Path, *, dtype: str = "float32", device_map: str | dict | None = None, gguf_file: str | None = None
) -> tuple[Any, Any]:
    """Load (model, tokenizer) from a local directory or hub id, with errors that say what to do."""
    if dtype not in DTYPES:
        raise LLMConfigError(f"llm.dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    src = str(path)
    local = Path(src).expanduser()
    if local.exists() and local.is_dir() and gguf_file is None and not (local / "config.json").is_file():
        raise ModelLoadError(
            f"{local} is a directory but has no config.json: point llm.model_path at a Hugging Face "
            "model directory (config.json + weights + tokenizer files)"
        )
    extra: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(src, **extra)
        model = AutoModelForCausalLM.from_pretrained(src, dtype=DTYPES[dtype], device_map=device_map, **extra)
    except (OSError, ValueError, RuntimeError) as exc:
        where = "local directory" if local.exists() else "hub id (the hub is offline: HF_HUB_OFFLINE=1)"
        raise ModelLoadError(
            f"could not load model {src!r} as a {where}: {str(exc).splitlines()[0][:300]}. "
            "Use a local model directory (config.json, weights, tokenizer), or the embedded backend "
            "(llm=embedded)"
        ) from exc
    model.eval()
    return model, tokenizer


def check_adapter_dir(adapter_path: str | Path) -> Path:
    """The adapter directory, or a clear error when it is not a PEFT adapter."""
    path = Path(adapter_path).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise ModelLoadError(
            f"llm.adapter_path={str(path)!r} is not a PEFT adapter directory (no adapter_config.json); "
            "point it at the output directory of the SFT run, or set it to null"
        )
    return path


def apply_adapter(model: Any, adapter_path: str | Path, *, merge: bool = True) -> Any:
    """Put a PEFT LoRA adapter (e.g. the ProductResearch SFT output) on top of ``model``."""
    path = check_adapter_dir(adapter_path)
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ModelLoadError("LoRA adapters need the 'peft' package: pip install 'rl_shop[research]'") from exc
    try:
        wrapped = PeftModel.from_pretrained(model, str(path))
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"adapter {path} does not fit this base model: {exc}") from exc
    wrapped.eval()
    return wrapped.merge_and_unload() if merge else wrapped


class _Cancel(StoppingCriteria):
    """Stops generation when the consumer of a stream goes away."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.Tensor:
        """A ``(batch,)`` bool tensor (transformers documents it as ``torch.BoolTensor``)."""
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool)


class _Collector(BaseStreamer):
    """Receives tokens from ``generate``: marks TTFT and emits text deltas (stop strings held back)."""

    def __init__(
        self, tokenizer: Any, watch: Stopwatch, stop: list[str] | None, on_text: Callable[[str], None] | None
    ) -> None:
        self.tokenizer = tokenizer
        self.watch = watch
        self.stop = stop
        self.on_text = on_text
        self.ids: list[int] = []
        self._prompt_seen = False
        self._emitted = 0

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate() first hands over the prompt
            self._prompt_seen = True
            return
        self.watch.mark_first()
        self.ids.extend(int(t) for t in value.reshape(-1).tolist())
        if self.on_text is not None:
            self._emit(final=False)

    def end(self) -> None:
        if self.on_text is not None:
            self._emit(final=True)

    def text(self) -> tuple[str, bool]:
        raw = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        return trim_at_stop(raw, self.stop)

    def _emit(self, final: bool) -> None:
        text, hit = self.text()
        if not final and not hit:
            if text.endswith("\ufffd"):  # an unfinished multi-byte character
                return
            hold = max((k for s in self.stop or [] for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
            text = text[: len(text) - hold]
        if len(text) > self._emitted:
            assert self.on_text is not None
            self.on_text(text[self._emitted :])
            self._emitted = len(text)


class TransformersLLM(LocalLLM):
    """A local transformers model behind the :class:`~rl_shop.llm.base.LLM` interface."""

    backend = "transformers"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_id: str,
        structured_library: str = "xgrammar",
        prefix_cache_entries: int = 4,
        prefix_min_tokens: int = 16,
        top_p: float = 1.0,
        cache_extra: Any = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.top_p = float(top_p)
        self.structured_library = structured_library
        make_constrainer(structured_library, None, None, check_only=True)
        self._constrainer: Constrainer | None = None
        self.prefix_cache = PrefixKVCache(model, prefix_cache_entries, prefix_min_tokens)
        self._extra = cache_extra
        self._lock = threading.Lock()
        self.device = next(model.parameters()).device

    @classmethod
    def from_config(
        cls,
        *,
        model_path: str,
        dtype: str = "float32",
        device_map: str | dict | None = None,
        adapter_path: str | None = None,
        merge_adapter: bool = True,
        **kwargs: Any,
    ) -> TransformersLLM:
        """Load from a directory / hub id, optionally with a LoRA adapter."""
        if adapter_path:
            check_adapter_dir(adapter_path)  # fail before the (slow) base-model load
        model, tokenizer = load_hf_model(model_path, dtype=dtype, device_map=device_map)
        model_id = str(model_path)
        if adapter_path:
            model = apply_adapter(model, adapter_path, merge=merge_adapter)
            model_id = f"{model_path}+{Path(adapter_path).name}"
        return cls(model, tokenizer, model_id=model_id, cache_extra={"adapter": str(adapter_path)}, **kwargs)

    def _cache_extra(self) -> object:
        return self._extra

    @property
    def constrainer(self) -> Constrainer | None:
        """The structured-output library, initialised on first use (it indexes the vocabulary)."""
        if self._constrainer is None and self.structured_library != "none":
            self._constrainer = make_constrainer(self.structured_library, self.model, self.tokenizer)
        return self._constrainer

    # ------------------------------------------------------------------ tokens
    def _template_ids(self, msgs: Sequence[Message], generation_prompt: bool) -> list[int]:
        enc = self.tokenizer.apply_chat_template(
            list(msgs), add_generation_prompt=generation_prompt, tokenize=True, return_dict=True
        )
        return list(enc["input_ids"])

    def count_tokens(self, text_or_messages: str | Sequence[Message]) -> int:
        if isinstance(text_or_messages, str):
            return len(self.tokenizer.encode(text_or_messages, add_special_tokens=False))
        from rl_shop.llm.base import check_messages

        return len(self._template_ids(check_messages(text_or_messages), True))

    def _encode(self, msgs: list[Message]) -> tuple[torch.Tensor, int]:
        ids = self._template_ids(msgs, True)
        prefix_len = 0
        if self.prefix_cache.enabled and msgs[0]["role"] == "system" and len(msgs) > 1:
            prefix = self._template_ids(msgs[:1], False)
            if ids[: len(prefix)] == prefix:
                prefix_len = len(prefix)
        return torch.tensor([ids], dtype=torch.long, device=self.device), prefix_len

    # ------------------------------------------------------------------ generation
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
        use_prefix_cache: bool = True,
    ) -> ChatResult:
        """Run ``model.generate`` once; the hooks below and the benchmark call this."""
        with self._lock:
            watch = Stopwatch()
            input_ids, prefix_len = self._encode(msgs)
            collector = _Collector(self.tokenizer, watch, stop, on_text)
            kwargs: dict[str, Any] = {
                "input_ids": input_ids,
                "attention_mask": torch.ones_like(input_ids),
                "max_new_tokens": max_tokens,
                "streamer": collector,
                "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            }
            if temperature > 0:
                kwargs.update(do_sample=True, temperature=temperature, top_p=self.top_p, top_k=None)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if stop:
                kwargs.update(stop_strings=stop, tokenizer=self.tokenizer)
            if json_schema is not None and self.constrainer is not None:
                try:
                    processor = self.constrainer.processor(json_schema)
                    kwargs["logits_processor"] = LogitsProcessorList([processor])
                except Exception as exc:  # e.g. an unsatisfiable schema (minimum > maximum)
                    # Decode unconstrained; validation, retry and the fallback deal with the result.
                    warnings.warn(
                        f"{self.structured_library} cannot compile this schema ({str(exc).strip()[:200]}); "
                        "generating without constraint",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            if cancel is not None:
                kwargs["stopping_criteria"] = [_Cancel(cancel)]
            if use_prefix_cache:
                past = self.prefix_cache.past_for(input_ids, prefix_len)
                if past is not None:
                    kwargs["past_key_values"] = past
            torch.manual_seed(seed)
            try:
                with torch.no_grad():
                    self.model.generate(**kwargs)
            except (RuntimeError, ValueError, AssertionError) as exc:
                raise LLMError(f"generation failed on {self.describe()}: {exc}") from exc
            text, hit_stop = collector.text()
            n_new = len(collector.ids)
            ended = bool(collector.ids) and collector.ids[-1] in _eos_ids(self.model, self.tokenizer)
            finish = "stop" if (hit_stop or ended or n_new < max_tokens) else "length"
            return ChatResult(
                text=text,
                prompt_tokens=int(input_ids.shape[1]),
                completion_tokens=n_new,
                ttft_s=watch.ttft,
                total_s=watch.elapsed,
                cached=False,
                backend=self.backend,
                model=self.model_id,
                finish_reason=finish,
            )


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    eos = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif isinstance(eos, (list, tuple)):
        ids.update(int(e) for e in eos)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids
