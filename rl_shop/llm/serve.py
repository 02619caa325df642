"""``rl-shop serve-llm``: a thin launcher of llama-cpp-python's own OpenAI-compatible server.

The server is ``llama_cpp.server`` (FastAPI + uvicorn, the component llama.cpp users already run;
installed with the ``llama-cpp-python[server]`` extra). This module only turns
``configs/llm/server/<name>.yaml`` (+ ``key=value`` overrides) into its ``ModelSettings`` /
``ServerSettings`` and uvicorn's options, finds the packaged GGUF when no model file is given, and
runs it. Timeouts and concurrency come from the config:

* ``limit_concurrency``: connections served at once; beyond it uvicorn answers HTTP 503 at once
  (requests queue inside llama-cpp-python's lock and are generated one at a time);
* ``backlog``: TCP connections waiting to be accepted;
* ``timeout_keep_alive_s`` / ``timeout_graceful_shutdown_s``: uvicorn's idle keep-alive and
  shutdown timeouts; the per-request timeout is the client's (``llm.timeout_s`` of the ``openai``
  backend);
* ``interrupt_requests``: llama-cpp-python stops a running stream when another request waits
  (off by default: concurrent clients would cut each other short).

``adapters`` serves fine-tuned variants beside the base model, each under its own name (as vLLM's
``--lora-modules`` does): the base GGUF with a LoRA adapter on top. llama_cpp.server keeps one
model loaded and swaps on a request for another name (well under a second for the 135M model).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rl_shop.config_files import deep_update, read_config
from rl_shop.llm.types import LLMConfigError, ModelLoadError
from rl_shop.paths import CONFIG_DIR

SERVER_DIR = Path(CONFIG_DIR) / "llm" / "server"
ALLOWED = {
    "host",
    "port",
    "model_name",
    "gguf_path",
    "n_ctx",
    "n_batch",
    "num_threads",
    "flash_attn",
    "seed",
    "limit_concurrency",
    "backlog",
    "timeout_keep_alive_s",
    "timeout_graceful_shutdown_s",
    "interrupt_requests",
    "prompt_cache",
    "api_key",
    "verbose",
    "adapters",
}


def load_server_config(name: str = "llama_cpp", overrides: Sequence[str] = ()) -> dict[str, Any]:
    """``configs/llm/server/<name>.yaml`` with ``key=value`` overrides; unknown keys are errors."""
    from omegaconf import OmegaConf

    path = SERVER_DIR / f"{name}.yaml"
    if not path.is_file():
        options = sorted(p.stem for p in SERVER_DIR.glob("*.yaml"))
        raise LLMConfigError(f"no server config {name!r} in {SERVER_DIR}; choose one of {options}")
    data = read_config(path, what="server config", error=LLMConfigError)  # ${cfg:...} resolved
    try:
        cfg = OmegaConf.merge(OmegaConf.create(data), OmegaConf.from_dotlist(list(overrides)))
    except Exception as exc:
        raise LLMConfigError(f"bad server override in {list(overrides)}: {exc}") from exc
    out: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    unknown = set(out) - ALLOWED
    if unknown:
        raise LLMConfigError(f"unknown server key(s) {sorted(unknown)}; allowed: {sorted(ALLOWED)}")
    return out


def import_server() -> Any:
    """``llama_cpp.server.app`` and uvicorn, or an error that says what to install."""
    try:
        import uvicorn
        from llama_cpp.server import app as server_app
    except ImportError as exc:
        raise ModelLoadError(
            f"serve-llm runs llama-cpp-python's server, which is not importable here ({exc}); "
            "install it with `make venv` (llama-cpp-python[server] is part of rl_shop[all])"
        ) from exc
    return server_app, uvicorn


def complete_server_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` over ``configs/llm/server/llama_cpp.yaml``: every key it leaves out is the file's
    value (the one home of the server's defaults)."""
    base = read_config(SERVER_DIR / "llama_cpp.yaml", what="server config", error=LLMConfigError)
    return deep_update(base, cfg)


def build_app(cfg: dict[str, Any]) -> Any:
    """The FastAPI app of ``llama_cpp.server`` for ``cfg`` (loads the model)."""
    from rl_shop.llm.embedded import check_gguf, find_packaged_gguf
    from rl_shop.llm.llamacpp_backend import default_threads

    cfg = complete_server_config(cfg)
    gguf = Path(cfg["gguf_path"]).expanduser() if cfg["gguf_path"] else find_packaged_gguf()
    check_gguf(gguf)
    server_app, _ = import_server()
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    threads = default_threads(cfg["num_threads"])

    def settings(alias: str, lora: Path | None = None) -> ModelSettings:
        return ModelSettings(
            model=str(gguf),
            model_alias=alias,
            lora_path=str(lora) if lora else None,
            n_ctx=int(cfg["n_ctx"]),
            n_batch=int(cfg["n_batch"]),
            n_ubatch=int(cfg["n_batch"]),
            n_threads=threads,
            n_threads_batch=threads,
            flash_attn=bool(cfg["flash_attn"]),
            seed=int(cfg["seed"]),
            logits_all=False,  # no logprobs: True would keep n_ctx x vocab floats (~0.8 GB at 4096)
            cache=bool(cfg["prompt_cache"]),
            verbose=bool(cfg["verbose"]),
        )

    models = [settings(str(cfg["model_name"]))]
    models += [settings(name, lora) for name, lora in adapter_files(cfg, gguf).items()]
    server = ServerSettings(
        host=str(cfg["host"]),
        port=int(cfg["port"]),
        api_key=cfg["api_key"] or None,
        interrupt_requests=bool(cfg["interrupt_requests"]),
    )
    return server_app.create_app(server_settings=server, model_settings=models)


def adapter_files(cfg: dict[str, Any], gguf: Path) -> dict[str, Path]:
    """``cfg["adapters"]`` (served name -> GGUF LoRA file or PEFT directory) as GGUF LoRA files; a
    PEFT directory is converted once against ``gguf``'s own weights (``<dir>/adapter.gguf``)."""
    from rl_shop.llm.embedded import ensure_converted
    from rl_shop.llm.lora_gguf import AdapterConversionError, adapter_gguf

    adapters = cfg.get("adapters") or {}
    if not isinstance(adapters, dict):
        raise LLMConfigError(f"adapters must map a served name to an adapter path, got {adapters!r}")
    out: dict[str, Path] = {}
    for name, path in adapters.items():
        if not str(name).strip() or str(name) == str(cfg["model_name"]) or not path:
            raise LLMConfigError(
                f"adapters: {name!r} -> {path!r}: each adapter needs a path and a name other than the "
                f"base model's ({cfg['model_name']!r})"
            )
        try:
            out[str(name)] = adapter_gguf(str(path), lambda: ensure_converted(gguf))
        except AdapterConversionError as exc:
            raise ModelLoadError(f"adapter {name!r}: {exc}") from exc
    return out


def uvicorn_options(cfg: dict[str, Any]) -> dict[str, Any]:
    """uvicorn.run keyword arguments from the config (timeouts, concurrency)."""
    cfg = complete_server_config(cfg)
    limit = cfg["limit_concurrency"]
    return {
        "host": str(cfg["host"]),
        "port": int(cfg["port"]),
        "limit_concurrency": int(limit) if limit else None,
        "backlog": int(cfg["backlog"]),
        "timeout_keep_alive": int(cfg["timeout_keep_alive_s"]),
        "timeout_graceful_shutdown": int(cfg["timeout_graceful_shutdown_s"]),
        "log_level": "info" if cfg["verbose"] else "warning",
    }


def serve(cfg: dict[str, Any]) -> int:
    """Load the model and serve until interrupted."""
    app = build_app(cfg)
    _, uvicorn = import_server()
    opts = uvicorn_options(cfg)
    print(
        f"serving {cfg.get('model_name') or 'rl-shop-embedded'} (llama_cpp.server) at "
        f"http://{opts['host']}:{opts['port']}/v1 (Ctrl-C to stop)",
        flush=True,
    )
    uvicorn.run(app, **opts)
    return 0
