"""JSON-schema constrained decoding for transformers models, as a ``LogitsProcessor``.

Three libraries are wrapped behind one small interface so that they can be measured against each
other on the same model and prompts (``experiments/bench_llm.py``; figures in ``docs/llm.md``).
The backends use the one chosen in config (``structured_library``, default ``xgrammar``).

Each constrainer compiles a tokenizer-level index once, caches compiled grammars per schema, and
hands out a *fresh* processor per ``generate`` call (the processors are stateful).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Protocol

from rl_shop.llm.structured import JSON_SEPARATORS
from rl_shop.llm.types import LLMConfigError


class Constrainer(Protocol):
    """Builds a fresh logits processor that forces output to match a JSON schema."""

    name: str

    def processor(self, json_schema: dict[str, Any]) -> Any:
        """A new ``transformers.LogitsProcessor`` for one generate call."""


class _LRU(OrderedDict[str, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def get_or(self, key: str, build: Any) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = build()
        self[key] = value
        while len(self) > self.size:
            self.popitem(last=False)
        return value


def compile_json_grammar(compiler: Any, schema_text: str) -> Any:
    """xgrammar's compiled JSON grammar as every backend compiles it: no free whitespace,
    :data:`~rl_shop.llm.structured.JSON_SEPARATORS` (what fine-tuning targets are written with)."""
    return compiler.compile_json_schema(schema_text, any_whitespace=False, separators=JSON_SEPARATORS, strict_mode=True)


class XGrammarConstrainer:
    """xgrammar: grammar compiled to a token bitmask automaton (C++), applied each step."""

    name = "xgrammar"

    def __init__(self, tokenizer: Any, vocab_size: int, cache_size: int = 64) -> None:
        import xgrammar as xgr

        self._xgr = xgr
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        self._compiler = xgr.GrammarCompiler(info, max_threads=1)
        self._cache = _LRU(cache_size)

    def processor(self, json_schema: dict[str, Any]) -> Any:
        from xgrammar.contrib.hf import LogitsProcessor

        # Property order is kept (it is the order the model writes fields in); the key is sorted.
        text = json.dumps(json_schema)
        compiled = self._cache.get_or(
            json.dumps(json_schema, sort_keys=True),
            lambda: compile_json_grammar(self._compiler, text),
        )
        return LogitsProcessor(compiled)


class OutlinesConstrainer:
    """outlines (outlines-core): schema -> regex -> token-level index (Rust)."""

    name = "outlines"

    def __init__(self, model: Any, tokenizer: Any, cache_size: int = 64) -> None:
        import outlines
        from outlines.backends.outlines_core import OutlinesCoreBackend

        self._backend = OutlinesCoreBackend(outlines.from_transformers(model, tokenizer))
        self._cache = _LRU(cache_size)

    def processor(self, json_schema: dict[str, Any]) -> Any:
        text = json.dumps(json_schema)
        # The compiled index is what is expensive; the processor wrapping it is stateful, so reset it.
        proc = self._cache.get_or(
            json.dumps(json_schema, sort_keys=True), lambda: self._backend.get_json_schema_logits_processor(text)
        )
        proc.reset()
        return proc


class FormatEnforcerConstrainer:
    """lm-format-enforcer: character-level JSON-schema parser walked over a token prefix tree.

    Its own transformers integration (0.11.3) imports ``transformers.tokenization_utils``, which
    transformers 5 removed, so the tokenizer data is built here with the same recipe.
    """

    name = "lm-format-enforcer"

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        from lmformatenforcer import TokenEnforcerTokenizerData

        special = set(tokenizer.all_special_ids)
        token_0 = tokenizer.encode("0", add_special_tokens=False)[-1]
        regular = []
        for idx in range(min(vocab_size, len(tokenizer))):
            if idx in special:
                continue
            # Decoding after "0" reveals whether the token starts a new word (a leading space).
            after_0 = tokenizer.decode([token_0, idx])[1:]
            alone = tokenizer.decode([idx])
            regular.append((idx, after_0, len(after_0) > len(alone)))

        def decode(ids: list[int]) -> str:
            return tokenizer.decode(ids).rstrip("\ufffd")

        self._data = TokenEnforcerTokenizerData(regular, decode, tokenizer.eos_token_id, False, vocab_size)

    def processor(self, json_schema: dict[str, Any]) -> Any:
        from lmformatenforcer import JsonSchemaParser, TokenEnforcer
        from transformers.generation.logits_process import PrefixConstrainedLogitsProcessor

        enforcer = TokenEnforcer(self._data, JsonSchemaParser(json_schema))

        def allowed(batch_id: int, sent: Any) -> list[int]:
            return enforcer.get_allowed_tokens(sent.tolist()).allowed_tokens

        return PrefixConstrainedLogitsProcessor(allowed, num_beams=1)


LIBRARIES = ("xgrammar", "outlines", "lm-format-enforcer", "none")


def make_constrainer(library: str, model: Any, tokenizer: Any, check_only: bool = False) -> Constrainer | None:
    """The constrainer for ``library`` (one of :data:`LIBRARIES`); None for "none".

    ``check_only`` validates the name without building anything. A library that is missing or
    fails to initialise raises :class:`LLMConfigError` naming it.
    """
    if library not in LIBRARIES:
        raise LLMConfigError(f"structured_library must be one of {LIBRARIES}, got {library!r}")
    if library == "none" or check_only:
        return None
    vocab_size = int(model.get_output_embeddings().weight.shape[0])
    try:
        if library == "xgrammar":
            return XGrammarConstrainer(tokenizer, vocab_size)
        if library == "outlines":
            return OutlinesConstrainer(model, tokenizer)
        return FormatEnforcerConstrainer(tokenizer, vocab_size)
    except ImportError as exc:
        raise LLMConfigError(
            f"structured_library={library!r} is not installed ({exc}); install it or set "
            "llm.structured_library=xgrammar (or none for prompt-only JSON)"
        ) from exc
