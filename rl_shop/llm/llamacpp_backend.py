"""The embedded GGUF model run by llama.cpp (``llama-cpp-python``): the default embedded engine.

Same interface as every backend (:class:`~rl_shop.llm.base.LLM`): ``chat``, ``stream``,
``structured``, ``count_tokens``. What it adds on top of ``llama_cpp.Llama``:

* the prompt is rendered with the GGUF's own chat template (the same Jinja template transformers
  uses, rendered by llama-cpp-python's ``Jinja2ChatFormatter``) and tokenised once, so prompt
  token counts and prefix matching work on token ids;
* grammar-constrained JSON: ``structured_library`` ``gbnf`` (llama.cpp's own grammar sampler,
  the schema converted by ``LlamaGrammar.from_json_schema``) or ``xgrammar`` (a token bitmask
  applied as a llama.cpp custom sampler), or ``none``; measured in experiments/bench_llm.py;
* reuse of the KV cache of shared system-prompt prefixes: llama-cpp-python already keeps the KV of
  the previous call and re-evaluates only after the longest common prefix; on top of that the KV
  state of each recent system prompt is saved (``llama_state_seq_get_data``, an LRU of
  ``prefix_cache.entries``) and restored when an agent with another system prompt spoke in
  between;
* streaming with stop strings held back until they cannot match, TTFT, cancellation (closing the
  stream stops decoding), and one lock: a ``Llama`` context is not re-entrant.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rl_shop.llm.base import LocalLLM, Stopwatch, check_messages, trim_at_stop
from rl_shop.llm.constrained import compile_json_grammar
from rl_shop.llm.types import ChatResult, LLMConfigError, LLMError, Message, ModelLoadError

if TYPE_CHECKING:
    from llama_cpp.llama_types import ChatCompletionRequestMessage

GRAMMAR_LIBRARIES = ("gbnf", "xgrammar", "none")

# Open models are closed before interpreter teardown: llama-cpp-python's own __del__ otherwise runs
# after its ctypes functions are gone and prints "Exception ignored ... NoneType is not callable".
_OPEN: weakref.WeakSet[LlamaCppLLM] = weakref.WeakSet()


@atexit.register
def _close_open_models() -> None:
    for llm in list(_OPEN):
        llm.close()


def import_llama_cpp() -> Any:
    """The ``llama_cpp`` module, or a :class:`ModelLoadError` that says how to get it."""
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelLoadError(
            f"the llama.cpp engine needs llama-cpp-python ({exc}); build it with `make venv` (it compiles "
            "the PyPI sdist with gcc + cmake), or use the transformers engine: llm.engine=transformers"
        ) from exc
    return llama_cpp


def default_threads(num_threads: int | None) -> int:
    """``num_threads``, else ``OMP_NUM_THREADS``, else half the CPUs (llama-cpp-python's default)."""
    if num_threads:
        return int(num_threads)
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, (os.cpu_count() or 2) // 2)


# ------------------------------------------------------------------ structured output
class _XGrammarMask:
    """xgrammar as a llama.cpp custom sampler: masks every token the JSON grammar forbids.

    llama-cpp-python calls it with the evaluated ids (prompt + tokens sampled so far) and the
    logits of the whole vocabulary in id order; tokens sampled since the last call are fed to the
    matcher first.
    """

    def __init__(self, xgr: Any, compiled: Any, n_prompt: int, vocab_size: int) -> None:
        import numpy as np

        self._np = np
        self.matcher = xgr.GrammarMatcher(compiled)
        self.bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self.seen = n_prompt
        self.vocab_size = vocab_size

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        np = self._np
        for tok in input_ids[self.seen :]:
            self.matcher.accept_token(int(tok))
        self.seen = len(input_ids)
        self.matcher.fill_next_token_bitmask(self.bitmask)
        bits = np.unpackbits(self.bitmask.numpy().view(np.uint8), bitorder="little")[: len(scores)]
        scores[bits == 0] = -np.inf
        return scores


class LlamaCppConstrainer:
    """Compiles JSON schemas for one loaded model, per library; compiled grammars are cached."""

    def __init__(self, library: str, llama: Any) -> None:
        if library not in GRAMMAR_LIBRARIES:
            raise LLMConfigError(
                f"structured_library for the llama.cpp engine must be one of {GRAMMAR_LIBRARIES}, got {library!r}"
            )
        self.name = library
        self._llama = llama
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._xgr: Any = None
        self._compiler: Any = None

    def _xgrammar_compiler(self) -> Any:
        if self._compiler is None:
            import xgrammar as xgr

            llama = self._llama
            # RAW vocabulary: each token's bytes as llama.cpp detokenises it; control tokens decode to
            # b"" and are treated as special (only the end-of-generation token may close the object).
            vocab = [llama.detokenize([i], special=False) for i in range(llama.n_vocab())]
            stops = [i for i, piece in enumerate(vocab) if not piece and _is_eog(llama, i)]  # control tokens only
            info = xgr.TokenizerInfo(
                vocab, vocab_type=xgr.VocabType.RAW, vocab_size=llama.n_vocab(), stop_token_ids=stops
            )
            self._xgr = xgr
            self._compiler = xgr.GrammarCompiler(info, max_threads=1)
        return self._compiler

    def prepare(self) -> None:
        """Build the vocabulary index now (xgrammar), so the first structured call is not slower."""
        if self.name == "xgrammar":
            self._xgrammar_compiler()

    def compile(self, json_schema: dict[str, Any]) -> Any:
        """The compiled grammar for ``json_schema`` (raises on a schema the library refuses)."""
        key = json.dumps(json_schema, sort_keys=True)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        text = json.dumps(json_schema)
        if self.name == "xgrammar":
            compiled = compile_json_grammar(self._xgrammar_compiler(), text)
        else:
            import xgrammar as xgr
            from llama_cpp import LlamaGrammar
            from llama_cpp.llama_grammar import json_schema_to_gbnf

            # Also convert the schema with xgrammar (no vocabulary needed): an unsatisfiable schema
            # (e.g. minimum > maximum) must fail here, in Python, and not inside the C sampler.
            xgr.Grammar.from_json_schema(text, any_whitespace=False, strict_mode=True)
            compiled = LlamaGrammar.from_string(json_schema_to_gbnf(text), verbose=False)
        self._cache[key] = compiled
        while len(self._cache) > 64:
            self._cache.popitem(last=False)
        return compiled

    def sampling_args(self, json_schema: dict[str, Any], n_prompt: int) -> dict[str, Any]:
        """Keyword arguments for ``Llama.generate`` that constrain one generation."""
        compiled = self.compile(json_schema)
        if self.name == "xgrammar":
            from llama_cpp import LogitsProcessorList

            mask = _XGrammarMask(self._xgr, compiled, n_prompt, self._llama.n_vocab())
            return {"logits_processor": LogitsProcessorList([mask])}
        return {"grammar": compiled}


def _is_eog(llama: Any, token: int) -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_token_is_eog(llama._model.vocab, int(token)))


# ------------------------------------------------------------------ prefix KV states
class PrefixStates:
    """LRU of saved KV states of system-prompt prefixes (token ids -> bytes of sequence 0)."""

    def __init__(self, max_entries: int = 4, min_tokens: int = 16) -> None:
        if max_entries < 0 or min_tokens < 1:
            raise ValueError("prefix cache needs max_entries >= 0 and min_tokens >= 1")
        self.max_entries = max_entries
        self.min_tokens = min_tokens
        self._entries: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def ensure(self, llama: Any, ids: list[int], prefix_len: int) -> None:
        """Leave the KV of ``ids[:prefix_len]`` in the context (restored, or computed and saved)."""
        if not self.enabled or prefix_len < self.min_tokens or prefix_len >= len(ids):
            return
        import llama_cpp

        key = tuple(ids[:prefix_len])
        held = llama.n_tokens >= prefix_len and list(llama.input_ids[:prefix_len]) == list(key)
        ctx = llama._ctx.ctx
        if held:
            self.hits += 1
        elif key in self._entries:
            self.hits += 1
            blob = self._entries[key]
            buf = (ctypes.c_uint8 * len(blob)).from_buffer_copy(blob)
            if llama_cpp.llama_state_seq_set_data(ctx, buf, len(blob), 0) != len(blob):
                llama.reset()  # restoring failed: fall back to a full prefill
                return
            llama.input_ids[:prefix_len] = key
            llama.n_tokens = prefix_len
            llama._requires_eval = True
        else:
            self.misses += 1
            common = 0
            for a, b in zip(llama.input_ids[: llama.n_tokens], key):
                if a != b:
                    break
                common += 1
            llama.n_tokens = common
            llama.eval(list(key[common:]))
            llama._requires_eval = True
        if key not in self._entries:
            if llama.n_tokens > prefix_len:  # save the prefix only, not the previous call's tail
                llama._ctx.kv_cache_seq_rm(-1, prefix_len, -1)
                llama.n_tokens = prefix_len
                llama._requires_eval = True
            size = llama_cpp.llama_state_seq_get_size(ctx, 0)
            buf = (ctypes.c_uint8 * size)()
            n = llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0)
            self._entries[key] = bytes(buf[:n])
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every saved prefix."""
        self._entries.clear()


# ------------------------------------------------------------------ the backend
class LlamaCppLLM(LocalLLM):
    """A GGUF chat model run by llama.cpp behind the :class:`~rl_shop.llm.base.LLM` interface."""

    backend = "embedded"
    engine = "llama_cpp"

    def __init__(
        self,
        gguf_path: str | Path,
        *,
        model_id: str | None = None,
        n_ctx: int = 4096,
        n_batch: int = 512,
        num_threads: int | None = None,
        structured_library: str = "xgrammar",
        prefix_cache_entries: int = 4,
        prefix_min_tokens: int = 16,
        top_p: float = 1.0,
        flash_attn: bool = True,
        lora_path: str | Path | None = None,
        cache_extra: Any = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        llama_cpp = import_llama_cpp()
        if structured_library not in GRAMMAR_LIBRARIES:
            raise LLMConfigError(
                f"structured_library for the llama.cpp engine must be one of {GRAMMAR_LIBRARIES}, "
                f"got {structured_library!r}"
            )
        path = Path(gguf_path)
        lora = Path(lora_path).expanduser() if lora_path else None
        if lora is not None and not lora.is_file():
            raise ModelLoadError(
                f"llm.lora_path={str(lora)!r} does not exist; convert a PEFT adapter with "
                "`python experiments/convert_adapter.py <adapter dir>`"
            )
        self.n_threads = default_threads(num_threads)
        try:
            self.llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=int(n_ctx),
                n_batch=int(n_batch),
                n_ubatch=int(n_batch),
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                flash_attn=bool(flash_attn),
                lora_path=str(lora) if lora else None,
                seed=self.default_seed,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            what = f"{path} with the adapter {lora}" if lora else str(path)
            raise ModelLoadError(
                f"llama.cpp could not load {what} ({exc}); a corrupt file, an unsupported "
                "architecture or an adapter made for another base model: reinstall or reconvert it, "
                "or point llm.gguf_path / llm.lora_path elsewhere"
            ) from exc
        self.model_id = model_id or path.stem + (f"+{lora.parent.name}/{lora.name}" if lora else "")
        self.gguf_path = path
        self.top_p = float(top_p)
        self.structured_library = structured_library
        self.constrainer = None if structured_library == "none" else LlamaCppConstrainer(structured_library, self.llama)
        self.prefix_cache = PrefixStates(prefix_cache_entries, prefix_min_tokens)
        # flash attention changes float rounding, so cached answers are kept apart by it
        self._extra = {"engine": self.engine, "flash_attn": bool(flash_attn), **(cache_extra or {})}
        if lora is not None:  # the adapter's content, not its name, keys the cached answers
            import hashlib

            self._extra["lora_sha256"] = hashlib.sha256(lora.read_bytes()).hexdigest()[:16]
        self._lock = threading.Lock()
        meta = self.llama.metadata
        template = meta.get("tokenizer.chat_template")
        if not template:
            raise ModelLoadError(f"{path} has no chat template (tokenizer.chat_template); use a chat model")

        def token_text(key: str) -> str:
            idx = meta.get(key)
            return self.llama.detokenize([int(idx)], special=True).decode("utf-8", "replace") if idx else ""

        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        bos, eos = token_text("tokenizer.ggml.bos_token_id"), token_text("tokenizer.ggml.eos_token_id")
        self._fmt_gen = Jinja2ChatFormatter(template, eos, bos, add_generation_prompt=True)
        self._fmt_prefix = Jinja2ChatFormatter(template, eos, bos, add_generation_prompt=False)
        _OPEN.add(self)

    def _cache_extra(self) -> object:
        return self._extra

    def describe(self) -> str:
        return f"{self.backend}[{self.engine}]:{self.model_id}"

    # ------------------------------------------------------------------ tokens
    def _template_ids(self, msgs: Sequence[Message], generation_prompt: bool) -> list[int]:
        fmt = self._fmt_gen if generation_prompt else self._fmt_prefix
        # A Message is an OpenAI chat message: the shape that llama_cpp's per-role TypedDicts
        # describe (mypy cannot match one TypedDict with a role union against them).
        text = fmt(messages=cast("list[ChatCompletionRequestMessage]", list(msgs))).prompt
        return self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, text_or_messages: str | Sequence[Message]) -> int:
        if isinstance(text_or_messages, str):
            if not text_or_messages:
                return 0
            return len(self.llama.tokenize(text_or_messages.encode("utf-8"), add_bos=False, special=False))
        return len(self._template_ids(check_messages(text_or_messages), True))

    def _encode(self, msgs: list[Message]) -> tuple[list[int], int]:
        ids = self._template_ids(msgs, True)
        prefix_len = 0
        if self.prefix_cache.enabled and msgs[0]["role"] == "system" and len(msgs) > 1:
            prefix = self._template_ids(msgs[:1], False)
            if ids[: len(prefix)] == prefix:
                prefix_len = len(prefix)
        return ids, prefix_len

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
        """Decode once; ``chat``/``stream`` and the benchmark call this."""
        with self._lock:
            watch = Stopwatch()
            llama = self.llama
            ids, prefix_len = self._encode(msgs)
            if len(ids) + max_tokens > llama.n_ctx():
                raise LLMError(
                    f"prompt ({len(ids)} tokens) + max_tokens ({max_tokens}) exceeds the context "
                    f"window n_ctx={llama.n_ctx()} of {self.describe()}; raise llm.n_ctx"
                )
            extra: dict[str, Any] = {}
            if json_schema is not None and self.constrainer is not None:
                try:
                    extra = self.constrainer.sampling_args(json_schema, len(ids))
                except Exception as exc:  # e.g. an unsatisfiable schema (minimum > maximum)
                    warnings.warn(
                        f"{self.structured_library} cannot compile this schema ({str(exc).strip()[:200]}); "
                        "generating without constraint",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            if use_prefix_cache:
                self.prefix_cache.ensure(llama, ids, prefix_len)
            else:
                llama.reset()  # no reuse at all: prefill the whole prompt
            llama.set_seed(int(seed))
            sampling = (
                {"temp": 0.0}
                if temperature <= 0
                else {"temp": float(temperature), "top_p": self.top_p, "top_k": 0, "min_p": 0.0}
            )
            out: list[int] = []
            raw = b""
            emitted = 0
            hit_stop = ended = False
            text = ""
            gen = llama.generate(ids, repeat_penalty=1.0, **sampling, **extra)
            try:
                for tok in gen:
                    watch.mark_first()
                    out.append(int(tok))
                    if _is_eog(llama, tok):
                        ended = True
                        break
                    raw += llama.detokenize([int(tok)], special=False)
                    text, hit_stop = trim_at_stop(raw.decode("utf-8", "replace"), stop)
                    if on_text is not None:
                        emitted = _emit(text, emitted, stop, hit_stop, on_text)
                    if hit_stop or len(out) >= max_tokens or (cancel is not None and cancel.is_set()):
                        break
            except (RuntimeError, ValueError, AssertionError) as exc:
                raise LLMError(f"generation failed on {self.describe()}: {exc}") from exc
            finally:
                gen.close()
            text, hit_stop = trim_at_stop(raw.decode("utf-8", "replace"), stop)
            if on_text is not None and len(text) > emitted:
                on_text(text[emitted:])
            finish = "stop" if (hit_stop or ended or len(out) < max_tokens) else "length"
            return ChatResult(
                text=text,
                prompt_tokens=len(ids),
                completion_tokens=len(out),
                ttft_s=watch.ttft,
                total_s=watch.elapsed,
                cached=False,
                backend=self.backend,
                model=self.model_id,
                finish_reason=finish,
            )

    def close(self) -> None:
        """Free the llama.cpp model and context (and the cache connection); unusable afterwards."""
        super().close()
        llama = getattr(self, "llama", None)
        if llama is not None:
            with self._lock:
                llama.close()
                self.llama = None
        _OPEN.discard(self)


def _emit(text: str, emitted: int, stop: list[str] | None, hit_stop: bool, on_text: Callable[[str], None]) -> int:
    """Send the safe new part of ``text``: no half character, no possible start of a stop string."""
    if not hit_stop:
        if text.endswith("\ufffd"):
            return emitted
        hold = max((k for s in stop or [] for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
        text = text[: len(text) - hold]
    if len(text) > emitted:
        on_text(text[emitted:])
        return len(text)
    return emitted
