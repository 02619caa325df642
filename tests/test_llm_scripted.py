"""Tests of the LLM interface's machinery with a scripted stand-in backend (no model needed).

``ScriptedLLM`` is for TESTS ONLY: it replays fixed replies so that the cache, retries, fallback,
metrics and server plumbing can be checked quickly and exactly. It is never presented as a
language model; the real backends are tested in test_llm_embedded.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rl_shop.llm.base import LLM, ChunkGenerator, trim_at_stop
from rl_shop.llm.types import ChatResult, Message


class ScriptedLLM(LLM):
    backend = "scripted-test"
    model_id = "scripted"

    def __init__(self, replies: Sequence[str], **kw: Any) -> None:
        super().__init__(**kw)
        self.replies = list(replies)
        self.calls: list[dict[str, Any]] = []

    def _next(self) -> str:
        return self.replies[min(len(self.calls) - 1, len(self.replies) - 1)]

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
        self.calls.append({"messages": messages, "json_schema": json_schema, "seed": seed, "stop": stop})
        text, _ = trim_at_stop(self._next(), stop)
        return ChatResult(
            text, self.count_tokens(messages), self.count_tokens(text), 0.0, 0.0, False, self.backend, self.model_id
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
        res = self._chat(
            messages, max_tokens=max_tokens, temperature=temperature, seed=seed, stop=stop, json_schema=json_schema
        )
        for piece in re.split(r"(?<= )", res.text):
            if piece:
                yield piece
        return res

    def count_tokens(self, text_or_messages: str | Sequence[Message]) -> int:
        if isinstance(text_or_messages, str):
            return len(text_or_messages.split())
        return sum(len(m["content"].split()) for m in text_or_messages)


# ====================================================================== tests

import json  # noqa: E402

import pytest  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from rl_shop.llm import InvalidMessagesError, LLMConfigError, load_llm_config, make_llm  # noqa: E402
from rl_shop.llm.cache import ResponseCache  # noqa: E402
from rl_shop.llm.metrics import GLOBAL  # noqa: E402

USER = [{"role": "user", "content": "find me headphones"}]


class Intent(BaseModel):
    category: str
    budget: float = Field(ge=0)
    brands: list[str] = []


def test_valid_json_first_try_no_fallback() -> None:
    llm = ScriptedLLM(['{"category": "headphones", "budget": 120, "brands": ["Sony"]}'])
    res = llm.structured(USER, Intent)
    assert res.ok and not res.used_fallback and res.attempts == 1
    assert res.value == Intent(category="headphones", budget=120.0, brands=["Sony"])
    # the schema went to the backend (for constrained decoding) and into the prompt
    assert llm.calls[0]["json_schema"] == Intent.model_json_schema()
    assert '"budget"' in llm.calls[0]["messages"][-1]["content"]
    assert llm.metrics.fallbacks == 0 and llm.metrics.retries == 0


def test_garbage_output_retries_once_then_falls_back_and_counts() -> None:
    before = GLOBAL.fallbacks
    llm = ScriptedLLM(["I am not JSON at all !!", "still garbage"])
    res = llm.structured(USER, Intent)
    assert res.used_fallback and res.attempts == 2 and len(llm.calls) == 2
    # the retry told the model what was wrong
    assert "invalid" in llm.calls[1]["messages"][-1]["content"]
    assert llm.calls[1]["messages"][-2] == {"role": "assistant", "content": "I am not JSON at all !!"}
    # default fallback: no JSON found -> required fields get documented empty values
    assert res.value == Intent(category="", budget=0.0, brands=[])
    assert llm.metrics.fallbacks == 1 and llm.metrics.retries == 1 and llm.metrics.structured_calls == 1
    assert GLOBAL.fallbacks == before + 1
    assert any("not valid JSON" in e for e in res.errors)


def test_fallback_keeps_valid_fields_of_partial_json() -> None:
    # truncated object with one invalid field (negative budget)
    llm = ScriptedLLM(['Sure! {"category": "laptop", "budget": -5, "brands": ["Acer"'])
    res = llm.structured(USER, Intent)
    assert res.used_fallback
    assert res.value == Intent(category="laptop", budget=0.0, brands=["Acer"])


def test_caller_validate_rejects_then_caller_fallback_used() -> None:
    catalog_brands = {"Sony", "Bose"}

    def check(v: Intent) -> list[str]:
        return [f"unknown brand {b}" for b in v.brands if b not in catalog_brands]

    llm = ScriptedLLM(['{"category": "headphones", "budget": 50, "brands": ["Sonny"]}'])
    res = llm.structured(USER, Intent, validate=check, fallback=lambda raw: Intent(category="headphones", budget=50))
    assert res.used_fallback and res.attempts == 2
    assert res.value == Intent(category="headphones", budget=50, brands=[])
    assert "unknown brand Sonny" in llm.calls[1]["messages"][-1]["content"]


def test_caller_validate_second_attempt_succeeds() -> None:
    llm = ScriptedLLM(
        ['{"category": "x", "budget": 1, "brands": ["Nope"]}', '{"category": "x", "budget": 1, "brands": ["Sony"]}']
    )
    res = llm.structured(USER, Intent, validate=lambda v: v.brands == ["Sony"])
    assert res.ok and not res.used_fallback and res.attempts == 2
    assert llm.metrics.retries == 1 and llm.metrics.fallbacks == 0


def test_impossible_constraint_gives_no_value_and_counts_failure() -> None:
    class Impossible(BaseModel):
        n: int = Field(ge=10, le=5)

    llm = ScriptedLLM(['{"n": 7}'])
    res = llm.structured(USER, Impossible)
    assert res.used_fallback and res.value is None and not res.ok
    assert llm.metrics.fallbacks == 1 and llm.metrics.failures == 1
    with pytest.raises(Exception, match="structured output failed"):
        res.unwrap()


def test_dict_schema_validated_with_jsonschema() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string", "minLength": 3}}, "required": ["q"]}
    ok = ScriptedLLM(['{"q": "which size?"}']).structured(USER, schema)
    assert ok.value == {"q": "which size?"} and not ok.used_fallback
    bad = ScriptedLLM(['{"q": "a"}']).structured(USER, schema)
    assert bad.used_fallback and bad.value == {"q": "???"}  # minLength 3 -> documented filler


def test_cache_hit_on_identical_call(tmp_path) -> None:
    llm = ScriptedLLM(["hello there"], cache=ResponseCache(tmp_path / "c.sqlite"))
    first = llm.chat(USER, max_tokens=8, seed=3)
    second = llm.chat(USER, max_tokens=8, seed=3)
    assert not first.cached and second.cached and second.text == "hello there"
    assert len(llm.calls) == 1 and llm.metrics.cache_hits == 1
    llm.chat(USER, max_tokens=8, seed=4)  # another seed is another key
    assert len(llm.calls) == 2
    # the cache persists on disk across instances
    other = ScriptedLLM(["different"], cache=ResponseCache(tmp_path / "c.sqlite"))
    assert other.chat(USER, max_tokens=8, seed=3).text == "hello there"


def test_stream_chunks_join_to_text_and_result_is_available() -> None:
    llm = ScriptedLLM(["one two three STOP four"])
    stream = llm.stream(USER, stop=["STOP"])
    chunks = list(stream)
    assert len(chunks) == 3 and "".join(chunks) == "one two three "
    assert stream.result is not None and stream.result.text == "one two three "


@pytest.mark.parametrize(
    "bad, msg",
    [
        ("just a string", "not a string"),
        ([], "non-empty"),
        ([{"role": "robot", "content": "x"}], "role"),
        ([{"role": "user", "content": 3}], "content must be a string"),
        ([{"content": "x"}], "'role' and 'content'"),
    ],
)
def test_malformed_messages_have_clear_errors(bad, msg) -> None:
    with pytest.raises(InvalidMessagesError, match=msg):
        ScriptedLLM(["x"]).chat(bad)


def test_bad_params_rejected() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        ScriptedLLM(["x"]).chat(USER, max_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        ScriptedLLM(["x"]).chat(USER, temperature=-1)


def test_factory_config_errors() -> None:
    with pytest.raises(LLMConfigError, match="backend must be one of"):
        make_llm({"backend": "gpt9"})
    with pytest.raises(LLMConfigError, match="strucured_library"):
        make_llm({"backend": "embedded", "strucured_library": "xgrammar"})
    with pytest.raises(LLMConfigError, match="model_path"):
        make_llm(load_llm_config("transformers"))
    with pytest.raises(LLMConfigError, match="choose one of"):
        load_llm_config("nonexistent")
    with pytest.raises(LLMConfigError, match="must be a mapping"):
        make_llm("embedded")


def test_transformers_backend_unknown_model_dir_is_clear(tmp_path) -> None:
    from rl_shop.llm import ModelLoadError

    with pytest.raises(ModelLoadError, match="no config.json"):
        make_llm({"backend": "transformers", "model_path": str(tmp_path), "cache": {"enabled": False}})
    with pytest.raises(ModelLoadError, match="offline|could not load"):
        make_llm({"backend": "transformers", "model_path": "some-org/not-a-local-model", "cache": {"enabled": False}})


def test_adapter_dir_without_config_is_clear(tmp_path) -> None:
    from rl_shop.llm import ModelLoadError

    with pytest.raises(ModelLoadError, match="not a PEFT adapter directory"):
        make_llm(
            {
                "backend": "transformers",
                "model_path": str(tmp_path),
                "adapter_path": str(tmp_path),
                "cache": {"enabled": False},
            }
        )


def test_hydra_compose_selects_llm_group() -> None:
    from hydra import compose, initialize_config_dir

    from rl_shop.paths import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR / "llm"), version_base=None):
        cfg = compose("openai", overrides=["timeout_s=5"])
    assert cfg.backend == "openai" and cfg.timeout_s == 5
    assert json.loads(json.dumps(dict(cfg.cache))) == {"enabled": True, "path": None}


class DownLLM(ScriptedLLM):
    """A backend whose server is gone: every call raises LLMUnavailableError."""

    def _chat(self, messages, **kw):
        from rl_shop.llm import LLMUnavailableError

        self.calls.append({"messages": messages})
        raise LLMUnavailableError("cannot reach the LLM server at http://127.0.0.1:9/v1; check that it is running")


def test_unavailable_server_structured_uses_fallback_and_counts() -> None:
    from rl_shop.llm import LLMUnavailableError

    llm = DownLLM([""])
    res = llm.structured(USER, Intent, fallback=lambda raw: {"category": "headphones", "budget": 0})
    assert res.used_fallback and res.value == Intent(category="headphones", budget=0)
    assert res.attempts == 1 and len(llm.calls) == 1  # no pointless retry against a dead server
    assert any("LLM unavailable" in e and "127.0.0.1:9" in e for e in res.errors)
    assert llm.metrics.fallbacks == 1 and llm.metrics.errors == 1
    with pytest.raises(LLMUnavailableError, match="running"):  # plain chat still raises, clearly
        llm.chat(USER)
    assert llm.metrics.errors == 2


def test_llm_scope_counts_calls_per_agent() -> None:
    from rl_shop.llm.metrics import current_scope, llm_scope

    llm = ScriptedLLM(['{"category": "tv", "budget": 300}', "not json"])
    with llm_scope("leader"):
        assert current_scope() == "leader"
        llm.structured(USER, Intent)
        with llm_scope("decider"):
            llm.chat(USER)
    llm.chat(USER)  # outside any scope: counted in the totals only
    by = llm.metrics.scope_snapshot()
    assert set(by) == {"leader", "decider"} and current_scope() is None
    assert by["leader"]["calls"] == 1 and by["decider"]["calls"] == 1
    assert llm.metrics.calls == 3
    assert "by_scope" not in llm.metrics.snapshot()
    llm.metrics.reset()
    assert llm.metrics.scope_snapshot() == {}


def test_scope_delta_reports_only_what_a_run_added() -> None:
    from rl_shop.llm.metrics import llm_scope, scope_delta

    llm = ScriptedLLM(["ok"])
    with llm_scope("Leader"):
        llm.chat(USER)
    before = llm.metrics.scope_snapshot()
    with llm_scope("Decider"):
        llm.chat(USER)
        llm.metrics.add(discarded=1)
    delta = scope_delta(llm.metrics.scope_snapshot(), before)
    assert set(delta) == {"Decider"}  # the Leader made no call in between
    assert delta["Decider"]["calls"] == 1 and delta["Decider"]["discarded"] == 1
    assert llm.metrics.discarded == 1
