"""The embedded SmolLM2 model on the llama.cpp engine (the default): the same interface as every backend.

One model instance serves the module (llama.cpp loads the 100 MB GGUF in well under a second);
generations are kept short.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from rl_shop.llm import LLMConfigError, ModelLoadError, load_llm_config, make_llm

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is built by `make venv`")

pytestmark = [pytest.mark.llm]

SYSTEM = (
    "You are a helpful shopping assistant for an online electronics store. You answer briefly, "
    "recommend products from the catalog, and ask a clarifying question when needed."
)
MSGS = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "I need headphones for running."}]
OTHER_SYSTEM = "You rank products for a shopper. Reply with the best product first, then the rest. " * 3


def _gen(llm, msgs, n, **kw):
    return llm.generate(
        msgs,
        max_tokens=n,
        temperature=kw.pop("temperature", 0.0),
        seed=kw.pop("seed", 0),
        stop=kw.pop("stop", None),
        json_schema=kw.pop("json_schema", None),
        **kw,
    )


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    path = tmp_path_factory.mktemp("llmcache") / "responses.sqlite"
    model = make_llm(load_llm_config("embedded", [f"cache.path={path}"]))
    yield model
    model.close()


class Clarify(BaseModel):
    question: str = Field(min_length=1, max_length=60)
    slot: str = Field(max_length=20)


def test_default_embedded_config_runs_on_llama_cpp(llm) -> None:
    assert llm.engine == "llama_cpp" and llm.backend == "embedded"
    assert llm.describe().startswith("embedded[llama_cpp]:") and "SmolLM2" in llm.model_id


def test_generates_nonempty_text_offline(llm) -> None:
    res = llm.chat(MSGS, max_tokens=12, seed=1)
    assert res.backend == "embedded" and res.text.strip() and not res.cached
    assert 0 < res.completion_tokens <= 12
    assert res.prompt_tokens == llm.count_tokens(MSGS)
    assert 0 < res.ttft_s <= res.total_s
    assert res.finish_reason in ("stop", "length")


def test_second_identical_call_is_a_cache_hit(llm) -> None:
    first = llm.chat(MSGS, max_tokens=6, seed=7)
    second = llm.chat(MSGS, max_tokens=6, seed=7)
    assert second.cached and not first.cached and second.text == first.text


def test_greedy_is_deterministic_and_max_tokens_is_respected(llm) -> None:
    a = _gen(llm, MSGS, 20)
    b = _gen(llm, MSGS, 20, use_prefix_cache=False)
    assert a.text == b.text
    assert a.completion_tokens == 20 and a.finish_reason == "length"


def test_sampling_is_seeded(llm) -> None:
    msgs = [{"role": "user", "content": "Name a colour for a sofa."}]
    one = [_gen(llm, msgs, 12, temperature=1.0, seed=s).text for s in (3, 3)]
    assert one[0] == one[1]


def test_stream_chunks_join_to_the_full_text(llm) -> None:
    full = _gen(llm, MSGS, 10)
    stream = llm.stream(MSGS, max_tokens=10, seed=0)
    chunks = list(stream)
    assert len(chunks) > 1 and "".join(chunks) == full.text == stream.result.text
    assert stream.result.completion_tokens == full.completion_tokens


def test_closing_a_stream_stops_generation(llm) -> None:
    stream = llm.stream([{"role": "user", "content": "Write a long story about a shop."}], max_tokens=200, seed=11)
    first = next(stream)
    stream.close()
    assert first and stream.result is None
    after = _gen(llm, MSGS, 4)  # the engine is free again (the lock was released)
    assert after.completion_tokens == 4


def test_prefix_reuse_gives_same_greedy_text_and_survives_other_prompts(llm) -> None:
    other = [MSGS[0], {"role": "user", "content": "Any cheap laptop?"}]
    ranker = [{"role": "system", "content": OTHER_SYSTEM}, {"role": "user", "content": "rank a, b"}]
    without = _gen(llm, other, 8, use_prefix_cache=False)
    _gen(llm, other, 1)  # saves the system prompt's KV state
    _gen(llm, ranker, 1)  # another agent's prompt replaces the context
    hits = llm.prefix_cache.hits
    with_reuse = _gen(llm, other, 8)  # restored from the saved state
    assert llm.prefix_cache.hits == hits + 1
    assert with_reuse.text == without.text
    # the restore is faster than prefilling the whole prompt again (TTFT includes no decode step)
    assert with_reuse.prompt_tokens == without.prompt_tokens


def test_stop_string_cuts_output(llm) -> None:
    full = _gen(llm, MSGS, 10).text
    word = full.split()[2]
    cut = llm.chat(MSGS, max_tokens=10, seed=0, stop=[word])
    assert word not in cut.text and full.startswith(cut.text) and cut.finish_reason == "stop"
    streamed = "".join(llm.stream(MSGS, max_tokens=10, seed=0, stop=[word]))
    assert streamed == cut.text


def _check_structured(llm) -> None:
    import json

    res = llm.structured(MSGS, Clarify, max_tokens=40)
    assert res.ok and isinstance(res.value, Clarify)
    assert not res.used_fallback and res.attempts == 1  # constrained: right shape on the first try
    raw = llm.chat(
        MSGS,
        max_tokens=40,
        json_schema={
            "type": "object",
            "properties": {"n": {"type": "integer"}},
            "required": ["n"],
            "additionalProperties": False,
        },
    )
    value = json.loads(raw.text)
    assert list(value) == ["n"] and isinstance(value["n"], int)


@pytest.mark.slow  # the first structured call imports xgrammar (torch) and indexes the vocabulary
def test_structured_output_is_valid_with_xgrammar(llm) -> None:
    assert llm.structured_library == "xgrammar"  # the default
    _check_structured(llm)


@pytest.mark.slow
def test_structured_output_is_valid_with_llama_cpp_grammar() -> None:
    llm = make_llm(load_llm_config("embedded", ["structured_library=gbnf", "cache.enabled=false"]))
    try:
        _check_structured(llm)
    finally:
        llm.close()


def test_token_counts(llm) -> None:
    assert llm.count_tokens("") == 0
    assert llm.count_tokens("hello hello hello hello") == 4  # "hello" + 3 x " hello"
    # ChatML: per message <|im_start|> role \n ... <|im_end|> \n = 5 tokens, and the generation
    # prompt <|im_start|> ass istant \n = 4 tokens: 2 * 5 + 4 = 14 around the contents.
    contents = llm.count_tokens(SYSTEM) + llm.count_tokens(MSGS[1]["content"])
    assert llm.count_tokens(MSGS) == contents + 14


def test_impossible_schema_falls_back_and_is_counted(llm) -> None:
    class Impossible(BaseModel):
        n: int = Field(ge=10, le=5)

    before = llm.metrics.fallbacks
    with pytest.warns(RuntimeWarning, match="cannot compile"):
        res = llm.structured(MSGS, Impossible, max_tokens=8)
    assert res.used_fallback and res.value is None and res.attempts == 2
    assert llm.metrics.fallbacks == before + 1


def test_prompt_longer_than_context_is_a_clear_error(tmp_path) -> None:
    from rl_shop.llm import LLMError

    small = make_llm(load_llm_config("embedded", ["n_ctx=256", "cache.enabled=false"]))
    try:
        with pytest.raises(LLMError, match="n_ctx=256"):
            small.chat([{"role": "user", "content": "tell me more " * 100}], max_tokens=8)
        assert small.metrics.errors == 1
    finally:
        small.close()


def test_bad_engine_settings_are_clear() -> None:
    with pytest.raises(LLMConfigError, match="llm.engine must be one of"):
        make_llm(load_llm_config("embedded", ["engine=vllm", "cache.enabled=false"]))
    with pytest.raises(LLMConfigError, match="llama.cpp engine must be one of"):
        make_llm(load_llm_config("embedded", ["structured_library=outlines", "cache.enabled=false"]))
    with pytest.raises(LLMConfigError, match="needs the llama.cpp engine"):
        make_llm(load_llm_config("embedded", ["engine=transformers", "structured_library=gbnf", "cache.enabled=false"]))


def test_corrupt_gguf_is_clear(tmp_path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF but truncated")
    with pytest.raises(ModelLoadError, match="llama.cpp could not load"):
        make_llm({"backend": "embedded", "engine": "llama_cpp", "gguf_path": str(bad), "cache": {"enabled": False}})
