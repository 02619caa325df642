"""The OpenAI-compatible path end to end: our server <-> the official ``openai`` client.

Fast tests serve the scripted test backend (see test_llm_scripted.py) so that the wire protocol is
checked exactly; the slow test serves the embedded model itself.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from pydantic import BaseModel
from test_llm_scripted import ScriptedLLM

from rl_shop.llm import LLMUnavailableError, make_llm
from rl_shop.llm.server import make_server, serve_in_thread

USER = [{"role": "user", "content": "say hi"}]


def _client(port: int, **over):
    cfg = {"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": "test-model",
           "timeout_s": 10.0, "max_retries": 0, "cache": {"enabled": False}}
    cfg.update(over)
    return make_llm(cfg)


@pytest.fixture()
def scripted_server():
    backend = ScriptedLLM(['{"answer": "hi there", "score": 2}'])
    server = make_server(backend, port=0, model_name="test-model")
    serve_in_thread(server)
    yield backend, server.server_address[1]
    server.shutdown()
    server.server_close()


class Answer(BaseModel):
    answer: str
    score: int


def test_chat_stream_structured_over_http(scripted_server) -> None:
    backend, port = scripted_server
    llm = _client(port)
    res = llm.chat(USER, max_tokens=16, seed=5, stop=["NEVER"])
    assert res.text == '{"answer": "hi there", "score": 2}' and res.backend == "openai"
    assert res.completion_tokens == 5  # the scripted backend counts 5 words: usage is passed through
    assert backend.calls[-1]["seed"] == 5 and backend.calls[-1]["stop"] == ["NEVER"]

    stream = llm.stream(USER, max_tokens=16)
    chunks = list(stream)
    assert len(chunks) == 5 and "".join(chunks) == res.text
    assert stream.result is not None and stream.result.completion_tokens == 5

    out = llm.structured(USER, Answer)
    assert out.value == Answer(answer="hi there", score=2) and not out.used_fallback
    # response_format json_schema reached the backend as a decoding constraint
    assert backend.calls[-1]["json_schema"] == Answer.model_json_schema()


def test_models_endpoint_and_unknown_model(scripted_server) -> None:
    _, port = scripted_server
    llm = _client(port)
    assert [m.id for m in llm.client.models.list().data] == ["test-model"]
    with pytest.raises(LLMUnavailableError, match="does not serve model"):
        _client(port, model="other-model").chat(USER)


def test_server_down_names_the_url() -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(LLMUnavailableError, match=f"127.0.0.1:{port}.*running"):
        _client(port).chat(USER)


def test_timeout_is_a_clear_error() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def silent() -> None:  # accepts connections and never answers
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    threading.Thread(target=silent, daemon=True).start()
    try:
        t0 = time.perf_counter()
        with pytest.raises(LLMUnavailableError, match="timed out"):
            _client(port, timeout_s=0.5).chat(USER)
        assert time.perf_counter() - t0 < 5
    finally:
        stop.set()
        for conn in accepted:
            conn.close()
        listener.close()


def test_bad_request_is_400_with_message(scripted_server) -> None:
    import openai

    _, port = scripted_server
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="role"):
        client.chat.completions.create(model="test-model", messages=[{"role": "robot", "content": "x"}])


def test_server_without_json_schema_support_falls_back_to_prompt(scripted_server, monkeypatch) -> None:
    """A server that refuses response_format: the client drops it and relies on validation."""
    from rl_shop.llm import server as server_mod

    backend, port = scripted_server
    real = server_mod.parse_request

    def refuse(body, defaults):
        if body.get("response_format"):
            raise server_mod.BadRequest("response_format not supported")
        return real(body, defaults)

    monkeypatch.setattr(server_mod, "parse_request", refuse)
    llm = _client(port)
    out = llm.structured(USER, Answer)
    assert out.value == Answer(answer="hi there", score=2)
    assert llm._schema_supported is False and backend.calls[-1]["json_schema"] is None
