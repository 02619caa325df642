"""A tiny OpenAI-compatible HTTP server over any :class:`~rl_shop.llm.base.LLM` backend.

Lets the agent runtime, other processes, or off-the-shelf OpenAI tooling use the embedded model
through the same wire protocol as vLLM / Ollama. Stdlib only (``ThreadingHTTPServer``); requests
are served concurrently but generation is serialised by the backend's lock.

Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions`` (``stream: true`` as server-sent
events; ``response_format`` ``json_schema`` / ``json_object`` mapped to constrained decoding).
Loopback by default: there is no authentication.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rl_shop.llm.base import LLM
from rl_shop.llm.structured import SchemaError
from rl_shop.llm.types import InvalidMessagesError, LLMError

MAX_BODY_BYTES = 4 << 20


class BadRequest(ValueError):
    """A request the server refuses with HTTP 400 (message goes back to the client)."""


def parse_request(body: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Map an OpenAI chat-completions body to :meth:`LLM.chat` keyword arguments."""
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    if "messages" not in body:
        raise BadRequest("'messages' is required")
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or defaults.get("max_tokens", 256)
    temperature = body.get("temperature")
    args: dict[str, Any] = {
        "messages": body["messages"],
        "max_tokens": max_tokens,
        "temperature": defaults.get("temperature", 0.0) if temperature is None else temperature,
        "seed": body.get("seed"),
        "stop": body.get("stop"),
    }
    if body.get("n", 1) != 1:
        raise BadRequest("only n=1 is supported")
    fmt = body.get("response_format")
    if fmt:
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema")
            if not isinstance(schema, dict):
                raise BadRequest("response_format.json_schema.schema must be a JSON-schema object")
            args["json_schema"] = schema
        elif kind == "json_object":
            args["json_schema"] = {"type": "object"}
        elif kind != "text":
            raise BadRequest(f"response_format.type must be text, json_object or json_schema, got {kind!r}")
    return args


def make_handler(llm: LLM, model_name: str, defaults: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    """A request-handler class bound to one backend."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "rl-shop-llm/0.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet by default
            if getattr(self.server, "verbose", False):
                super().log_message(fmt, *args)

        # ---------------------------------------------------------- responses
        def _json(self, status: int, payload: dict[str, Any]) -> None:
            blob = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)

        def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
            self._json(status, {"error": {"message": message, "type": kind, "code": status}})

        # ---------------------------------------------------------- routes
        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._json(200, {"object": "list", "data": [
                    {"id": model_name, "object": "model", "created": 0, "owned_by": "rl_shop",
                     "backend": llm.describe()}]})
            elif self.path.rstrip("/") in ("", "/health"):
                self._json(200, {"status": "ok", "model": model_name})
            else:
                self._error(404, f"no route GET {self.path}; try /v1/models")

        def do_POST(self) -> None:
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._error(404, f"no route POST {self.path}; try /v1/chat/completions")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length <= 0 or length > MAX_BODY_BYTES:
                    raise BadRequest(f"body must be 1..{MAX_BODY_BYTES} bytes of JSON")
                body = json.loads(self.rfile.read(length))
                args = parse_request(body, defaults)
                if body.get("model") not in (None, model_name):
                    self._error(404, f"model {body.get('model')!r} is not served here; use {model_name!r}",
                                "model_not_found")
                    return
                if body.get("stream"):
                    self._stream(args, bool((body.get("stream_options") or {}).get("include_usage")))
                else:
                    self._complete(args)
            except (BadRequest, InvalidMessagesError, SchemaError, ValueError) as exc:
                self._error(400, str(exc))
            except LLMError as exc:
                self._error(500, str(exc), "server_error")

        def _complete(self, args: dict[str, Any]) -> None:
            res = llm.chat(**args)
            self._json(200, {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
                "created": int(time.time()), "model": model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": res.text},
                             "finish_reason": res.finish_reason}],
                "usage": _usage(res.prompt_tokens, res.completion_tokens),
            })

        def _stream(self, args: dict[str, Any], include_usage: bool) -> None:
            stream = llm.stream(**args)  # argument errors raise here, before headers go out
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
            created = int(time.time())

            def event(choices: list[dict[str, Any]], **extra: Any) -> None:
                payload = {"id": cid, "object": "chat.completion.chunk", "created": created,
                           "model": model_name, "choices": choices, **extra}
                self.wfile.write(b"data: " + json.dumps(payload).encode("utf-8") + b"\n\n")
                self.wfile.flush()

            try:
                event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
                for piece in stream:
                    event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
                res = stream.result
                event([{"index": 0, "delta": {}, "finish_reason": res.finish_reason if res else "stop"}])
                if include_usage and res is not None:
                    event([], usage=_usage(res.prompt_tokens, res.completion_tokens))
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                stream.close()  # the client went away: stop generating

    return Handler


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def make_server(llm: LLM, *, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None,
                defaults: dict[str, Any] | None = None, verbose: bool = False) -> ThreadingHTTPServer:
    """A bound (not yet serving) server; ``port=0`` picks a free port (see ``server_address``)."""
    name = model_name or f"rl-shop-{llm.backend}"
    try:
        server = ThreadingHTTPServer((host, port), make_handler(llm, name, defaults or {}))
    except OSError as exc:
        raise LLMError(f"cannot listen on {host}:{port} ({exc}); pick another --port") from exc
    server.daemon_threads = True
    server.verbose = verbose  # type: ignore[attr-defined]
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    """Run ``server`` in a daemon thread (tests, notebooks); stop with ``server.shutdown()``."""
    thread = threading.Thread(target=server.serve_forever, name="rl_shop-llm-server", daemon=True)
    thread.start()
    return thread
