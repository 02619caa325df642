"""The embedded SmolLM2 model on the transformers engine (``llm.engine=transformers``), for real.

The default engine is llama.cpp (tests/test_llm_llamacpp.py); this keeps the transformers path
working: offline generation, streaming, structured output, KV reuse, LoRA adapters. One model
instance serves the whole module (loading takes ~1 s from the converted cache, ~40 s the very
first time when the GGUF file is converted). Generations are kept short.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from rl_shop.llm import ModelLoadError, load_llm_config, make_llm
from rl_shop.llm.embedded import check_gguf, convert_gguf

pytestmark = [pytest.mark.slow, pytest.mark.llm]

SYSTEM = (
    "You are a helpful shopping assistant for an online electronics store. You answer briefly, "
    "recommend products from the catalog, and ask a clarifying question when needed."
)
MSGS = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "I need headphones for running."}]


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    path = tmp_path_factory.mktemp("llmcache") / "responses.sqlite"
    model = make_llm(load_llm_config("embedded", ["engine=transformers", f"cache.path={path}"]))
    yield model
    model.close()


class Clarify(BaseModel):
    question: str = Field(min_length=1, max_length=60)
    slot: str = Field(max_length=20)


def test_generates_nonempty_text_offline(llm) -> None:
    res = llm.chat(MSGS, max_tokens=12, seed=1)
    assert res.backend == "embedded" and res.text.strip()
    assert llm.describe().startswith("embedded[transformers]:")
    assert 0 < res.completion_tokens <= 12
    assert res.prompt_tokens == llm.count_tokens(MSGS)
    assert 0 < res.ttft_s <= res.total_s


def test_second_identical_call_is_a_cache_hit(llm) -> None:
    first = llm.chat(MSGS, max_tokens=6, seed=7)
    second = llm.chat(MSGS, max_tokens=6, seed=7)
    assert second.cached and not first.cached and second.text == first.text


def test_stream_chunks_join_to_the_full_text(llm) -> None:
    full = llm.generate(MSGS, max_tokens=10, temperature=0.0, seed=0, stop=None, json_schema=None)
    stream = llm.stream(MSGS, max_tokens=10, seed=0)
    chunks = list(stream)
    assert len(chunks) > 1 and "".join(chunks) == full.text == stream.result.text


def test_prefix_reuse_gives_same_greedy_text(llm) -> None:
    hits = llm.prefix_cache.hits
    other = [MSGS[0], {"role": "user", "content": "Any cheap laptop?"}]
    with_reuse = [
        llm.generate(other, max_tokens=8, temperature=0.0, seed=0, stop=None, json_schema=None) for _ in range(2)
    ]
    without = llm.generate(
        other, max_tokens=8, temperature=0.0, seed=0, stop=None, json_schema=None, use_prefix_cache=False
    )
    assert llm.prefix_cache.hits >= hits + 1
    assert with_reuse[1].text == without.text


def test_stop_string_cuts_output(llm) -> None:
    full = llm.generate(MSGS, max_tokens=10, temperature=0.0, seed=0, stop=None, json_schema=None).text
    word = full.split()[2]
    cut = llm.chat(MSGS, max_tokens=10, seed=0, stop=[word])
    assert word not in cut.text and full.startswith(cut.text)


def test_structured_output_is_valid(llm) -> None:
    res = llm.structured(MSGS, Clarify, max_tokens=40)
    assert res.ok and isinstance(res.value, Clarify)
    assert not res.used_fallback  # constrained decoding: right shape on the first try


def test_token_counts(llm) -> None:
    assert llm.count_tokens("") == 0
    assert llm.count_tokens("hello hello hello hello") == 4  # "hello" + 3 x " hello"
    # ChatML by hand: per message <|im_start|> role \n ... <|im_end|> \n = 5 tokens, and the
    # generation prompt <|im_start|> ass istant \n = 4 tokens: 2 * 5 + 4 = 14 around the contents.
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


def test_transformers_backend_with_lora_adapter(llm, tmp_path) -> None:
    """A fresh LoRA adapter (B = 0) must not change greedy output: base and adapted texts agree."""
    from peft import LoraConfig, get_peft_model

    from rl_shop.llm.embedded import ensure_converted
    from rl_shop.llm.hf_backend import load_hf_model

    base_dir = ensure_converted()
    model, _ = load_hf_model(base_dir)
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(tmp_path / "lora")
    adapted = make_llm(
        {
            "backend": "transformers",
            "model_path": str(base_dir),
            "adapter_path": str(tmp_path / "lora"),
            "cache": {"enabled": False},
        }
    )
    assert adapted.model_id.endswith("+lora")
    want = llm.generate(MSGS, max_tokens=6, temperature=0.0, seed=0, stop=None, json_schema=None).text
    assert adapted.chat(MSGS, max_tokens=6).text == want


def test_corrupt_or_missing_gguf_is_clear(tmp_path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"this is not a model")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        make_llm({"backend": "embedded", "engine": "transformers", "gguf_path": str(bad), "cache": {"enabled": False}})
    with pytest.raises(ModelLoadError, match="does not exist"):
        check_gguf(tmp_path / "missing.gguf")
    truncated = tmp_path / "trunc.gguf"
    truncated.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="corrupt"):
        convert_gguf(truncated, tmp_path / "out")
