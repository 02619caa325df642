"""`rl-shop serve-llm` (llama-cpp-python's own OpenAI-compatible server) with the ``openai`` backend.

Every server here is started by the test, on 127.0.0.1 and a free port, as a subprocess running
the real command line, and stopped (or killed) by it.
"""

from __future__ import annotations

import threading
import time

import pytest
from llm_server import Server
from pydantic import BaseModel, Field

from rl_shop.llm import LLMUnavailableError, make_llm

pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is installed by `make venv`")

pytestmark = [pytest.mark.slow, pytest.mark.llm]

USER = [{"role": "user", "content": "Recommend running headphones in one sentence."}]
LONG = [{"role": "user", "content": "Write a very long story about a shop that sells everything, in many chapters."}]


def _client(url: str, **over):
    cfg = {
        "backend": "openai",
        "base_url": url,
        "model": "smol",
        "timeout_s": 60.0,
        "max_retries": 0,
        "cache": {"enabled": False},
    }
    cfg.update(over)
    return make_llm(cfg)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("serve"))
    yield srv
    srv.stop()


class Clarify(BaseModel):
    question: str = Field(min_length=1, max_length=60)
    slot: str = Field(max_length=20)


def test_normal_request_chat_stream_structured(server) -> None:
    assert [m["id"] for m in server.models["data"]] == ["smol"]
    llm = _client(server.url)
    res = llm.chat(USER, max_tokens=16, seed=0, temperature=0.0)
    assert res.text.strip() and res.backend == "openai"
    assert 0 < res.completion_tokens <= 16 and res.prompt_tokens > 10  # usage reported by the server
    again = llm.chat(USER, max_tokens=16, seed=0, temperature=0.0)
    assert again.text == res.text  # greedy on the server is deterministic
    stream = llm.stream(USER, max_tokens=16, seed=0, temperature=0.0)
    chunks = list(stream)
    assert len(chunks) > 1 and "".join(chunks) == res.text
    out = llm.structured(USER, Clarify, max_tokens=48)
    assert out.ok and not out.used_fallback and out.attempts == 1
    # llama_cpp.server refuses OpenAI's json_schema form (HTTP 422); the client switched to its
    # json_object + schema form, which the server turns into a grammar.
    assert llm._schema_forms[0] == "json_object" and llm._schema_supported is True


def test_prompt_only_mode_sends_no_response_format(server) -> None:
    llm = _client(server.url, json_schema_mode="never")
    out = llm.structured(USER, Clarify, max_tokens=48)
    assert llm._schema_supported is False
    assert out.ok or out.used_fallback  # the 135M model alone rarely gets the shape right; never raises


def test_eight_concurrent_clients_get_their_own_answers(server) -> None:
    prompts = [
        [{"role": "user", "content": f"Suggest a gift for a friend who likes {topic}."}]
        for topic in ("tea", "running", "chess", "jazz", "hiking", "cooking", "cats", "films")
    ]
    alone = [_client(server.url).chat(p, max_tokens=12, seed=0, temperature=0.0).text for p in prompts]
    results: dict[int, str] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(prompts))

    def ask(i: int) -> None:
        try:
            llm = _client(server.url)
            barrier.wait()
            results[i] = llm.chat(prompts[i], max_tokens=12, seed=0, temperature=0.0).text
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert [results.get(i) for i in range(len(prompts))] == alone  # no answer crossed to another client
    assert time.perf_counter() - t0 < 120


def test_server_killed_mid_request(tmp_path) -> None:
    srv = Server(tmp_path)
    try:
        llm = _client(srv.url, cache={"enabled": True, "path": str(tmp_path / "cache.sqlite")})
        done = llm.chat(USER, max_tokens=8, seed=0)  # completed before the kill: kept in the cache
        # 1) a stream cut off: the chunks received so far stay with the caller, the error is clear
        stream = llm.stream(LONG, max_tokens=400, seed=0, temperature=0.0)
        received = [next(stream)]
        srv.kill()
        with pytest.raises(LLMUnavailableError, match=f"127.0.0.1:{srv.port}"):
            for chunk in stream:
                received.append(chunk)
        assert "".join(received).strip() and stream.result is None
        assert llm.metrics.errors == 1
        # 2) a structured call while the server is gone: the fallback is used and counted
        fallbacks = llm.metrics.fallbacks
        out = llm.structured(
            USER, Clarify, max_tokens=32, fallback=lambda raw: {"question": "Which size?", "slot": "size"}
        )
        assert out.used_fallback and out.value == Clarify(question="Which size?", slot="size")
        assert llm.metrics.fallbacks == fallbacks + 1 and llm.metrics.errors == 2
        assert any("unavailable" in e and "running" in e for e in out.errors)
        # 3) nothing lost: the answer completed before the kill is still served
        again = llm.chat(USER, max_tokens=8, seed=0)
        assert again.cached and again.text == done.text
    finally:
        srv.stop()


def test_plain_request_in_flight_when_the_server_dies(tmp_path) -> None:
    srv = Server(tmp_path)
    try:
        llm = _client(srv.url)
        box: dict[str, BaseException] = {}

        def ask() -> None:
            try:
                llm.chat(LONG, max_tokens=600, seed=0, temperature=0.0)
            except BaseException as exc:
                box["error"] = exc

        worker = threading.Thread(target=ask)
        worker.start()
        time.sleep(1.0)  # the request is being generated (600 tokens take several seconds)
        assert worker.is_alive()
        srv.kill()
        worker.join(timeout=30)
        assert isinstance(box.get("error"), LLMUnavailableError), box
        assert f"127.0.0.1:{srv.port}" in str(box["error"])
        assert llm.metrics.errors == 1
    finally:
        srv.stop()


def test_a_refused_schema_form_is_not_retried(tmp_path) -> None:
    """llama_cpp.server refuses OpenAI's json_schema form with HTTP 500; the client's retries
    (max_retries=1 here) must not send that probe twice before the backend switches forms."""
    srv = Server(tmp_path, "--verbose")
    try:
        llm = _client(srv.url, max_retries=1)
        out = llm.structured(USER, Clarify, max_tokens=48)
        assert out.ok and llm._schema_forms[0] == "json_object"
    finally:
        srv.stop()
    access = [line for line in srv.log.read_text().splitlines() if '"POST /v1/chat/completions HTTP/1.1"' in line]
    assert [line.split('"')[-1].split()[0] for line in access] == ["500", "200"], access
