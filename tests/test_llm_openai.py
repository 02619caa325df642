"""The ``openai`` backend's own behaviour, without a model: clear errors for a server that is down or
silent, and the order in which it tries the structured-output request forms.

The backend against a real server (``rl-shop serve-llm`` = llama_cpp.server, started on loopback
by the test) is in test_llm_llamacpp_server.py.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from pydantic import BaseModel

from rl_shop.llm import LLMUnavailableError, make_llm

USER = [{"role": "user", "content": "say hi"}]


def _client(port: int, **over):
    cfg = {
        "backend": "openai",
        "base_url": f"http://127.0.0.1:{port}/v1",
        "model": "test-model",
        "timeout_s": 10.0,
        "max_retries": 0,
        "cache": {"enabled": False},
    }
    cfg.update(over)
    return make_llm(cfg)


class Answer(BaseModel):
    answer: str
    score: int


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


class _FakeCompletions:
    """Stands in for ``client.chat.completions``: refuses the response_format forms in ``refuse``."""

    def __init__(self, refuse: set[str]) -> None:
        self.refuse = refuse
        self.sent: list[dict] = []

    def create(self, **params):
        import httpx2
        import openai

        self.sent.append(params)
        fmt = (params.get("response_format") or {}).get("type")
        if fmt in self.refuse:
            request = httpx2.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
            raise openai.UnprocessableEntityError(
                f"{fmt} not supported", body=None, response=httpx2.Response(422, request=request)
            )
        from types import SimpleNamespace as NS

        text = '{"answer": "hi", "score": 2}'
        return NS(
            choices=[NS(message=NS(content=text), finish_reason="stop")], usage=NS(prompt_tokens=3, completion_tokens=5)
        )


@pytest.mark.parametrize(
    ("refuse", "forms", "supported"),
    [
        (set(), ["json_schema"], True),  # OpenAI / vLLM
        ({"json_schema"}, ["json_schema", "json_object"], True),  # llama_cpp.server (rl-shop serve-llm)
        ({"json_schema", "json_object"}, ["json_schema", "json_object", None], False),  # prompt only
    ],
)
def test_response_format_forms_are_tried_in_order(refuse, forms, supported) -> None:
    llm = _client(1)
    fake = _FakeCompletions(refuse)
    chat = type("Ch", (), {"completions": fake})()
    llm.client = type("C", (), {"chat": chat, "with_options": lambda self, **_: self})()
    out = llm.structured(USER, Answer)
    assert out.value == Answer(answer="hi", score=2) and not out.used_fallback
    assert [(p.get("response_format") or {}).get("type") for p in fake.sent] == forms
    assert all("_schema" not in p for p in fake.sent)
    assert llm._schema_supported is supported
    if supported:  # the accepted form is kept: the next call sends it directly
        fake.sent.clear()
        llm.structured(USER, Answer)
        assert [(p.get("response_format") or {}).get("type") for p in fake.sent] == [forms[-1]]
    json_object = [p for p in fake.sent if (p.get("response_format") or {}).get("type") == "json_object"]
    for p in json_object:
        assert p["response_format"]["schema"] == Answer.model_json_schema()
