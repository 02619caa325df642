"""Build an :class:`~rl_shop.llm.base.LLM` from the Hydra ``llm`` config group.

``make_llm(cfg)`` accepts the ``llm`` node itself or a whole app config that has one, as a
DictConfig or a plain dict. Keys are checked per backend so that a typo
(``llm.strucured_library``) fails loudly instead of being ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rl_shop.config_files import deep_update, read_config
from rl_shop.llm.base import LLM
from rl_shop.llm.cache import ResponseCache
from rl_shop.llm.types import LLMConfigError
from rl_shop.paths import CONFIG_DIR

_COMMON = {"backend", "seed", "structured_retries", "cache", "generation"}
_LOCAL = _COMMON | {"dtype", "top_p", "structured_library", "prefix_cache", "num_threads"}
ALLOWED_KEYS = {
    "embedded": _LOCAL | {"gguf_path", "engine", "n_ctx", "flash_attn", "lora_path"},
    "transformers": _LOCAL | {"model_path", "adapter_path", "merge_adapter", "device_map"},
    "openai": _COMMON
    | {"base_url", "model", "api_key", "timeout_s", "max_retries", "json_schema_mode", "tokenizer_path"},
}


def _to_dict(cfg: object) -> dict[str, Any]:
    try:
        from omegaconf import DictConfig, OmegaConf
    except ImportError:  # pragma: no cover - hydra-core is a core dependency
        pass  # without omegaconf, cfg cannot be a DictConfig
    else:
        if isinstance(cfg, DictConfig):
            try:
                cfg = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
            except Exception as exc:  # omegaconf's MissingMandatoryValue / InterpolationResolutionError
                raise LLMConfigError(f"llm config is incomplete: {exc}") from exc
    if not isinstance(cfg, Mapping):
        raise LLMConfigError(f"llm config must be a mapping, got {type(cfg).__name__}")
    cfg = dict(cfg)
    if "backend" not in cfg and isinstance(cfg.get("llm"), Mapping):
        cfg = dict(cfg["llm"])
    for key, value in cfg.items():
        if value == "???":
            raise LLMConfigError(f"llm.{key} is required (set llm.{key}=...)")
    return cfg


def load_llm_config(name: str = "embedded", overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read ``configs/llm/<name>.yaml`` and apply ``key=value`` overrides (no Hydra app needed)."""
    from omegaconf import OmegaConf

    path = Path(CONFIG_DIR) / "llm" / f"{name}.yaml"
    if not path.is_file():
        options = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise LLMConfigError(f"no LLM config {name!r}; choose one of {options}")
    data = read_config(path, what="LLM config", error=LLMConfigError)  # ${cfg:...} resolved
    try:
        cfg = OmegaConf.merge(OmegaConf.create(data), OmegaConf.from_dotlist(list(overrides)))
    except Exception as exc:
        raise LLMConfigError(f"bad llm override in {list(overrides)}: {exc}") from exc
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def make_llm(cfg: object) -> LLM:
    """The backend named by ``cfg.backend`` (embedded | transformers | openai), configured."""
    c = _to_dict(cfg)
    backend = c.get("backend")
    if backend not in ALLOWED_KEYS:
        raise LLMConfigError(f"llm.backend must be one of {sorted(ALLOWED_KEYS)}, got {backend!r}")
    unknown = set(c) - ALLOWED_KEYS[backend]
    if unknown:
        raise LLMConfigError(
            f"unknown key(s) {sorted(unknown)} for llm.backend={backend}; allowed: {sorted(ALLOWED_KEYS[backend])}"
        )
    # every key the caller leaves out is the backend's file's value: configs/llm/<backend>.yaml is the one home
    c = deep_update(read_config(CONFIG_DIR / "llm" / f"{backend}.yaml", what="LLM config", error=LLMConfigError), c)
    missing = [k for k, v in c.items() if v == "???"]
    if missing:
        raise LLMConfigError(f"llm.{missing[0]} is required for the {backend} backend (set llm.{missing[0]}=...)")
    cache = ResponseCache(c["cache"]["path"]) if c["cache"]["enabled"] else None
    base: dict[str, Any] = {
        "cache": cache,
        "default_seed": int(c["seed"]),
        "structured_retries": int(c["structured_retries"]),
    }
    if backend == "openai":
        return _make_openai(c, base)
    return _make_local(c, base)


def _make_openai(c: dict[str, Any], base: dict[str, Any]) -> LLM:
    from rl_shop.llm.openai_backend import OpenAILLM

    return OpenAILLM(
        model=c["model"] or "",
        base_url=c["base_url"],
        api_key=c["api_key"],
        timeout_s=float(c["timeout_s"]),
        max_retries=int(c["max_retries"]),
        json_schema_mode=c["json_schema_mode"],
        tokenizer_path=c["tokenizer_path"],
        **base,
    )


ENGINES = ("llama_cpp", "transformers")


def _make_local(c: dict[str, Any], base: dict[str, Any]) -> LLM:
    if c["backend"] == "embedded" and c["engine"] not in ENGINES:
        raise LLMConfigError(f"llm.engine must be one of {ENGINES}, got {c['engine']!r}")
    if c["backend"] == "embedded" and c["engine"] == "llama_cpp":
        return _make_llamacpp(c, base)
    if c.get("lora_path"):
        raise LLMConfigError(
            "llm.lora_path (a GGUF adapter) needs the llama.cpp engine; the transformers engine "
            "takes the PEFT directory: llm=transformers llm.adapter_path=<dir>"
        )
    if c.get("structured_library") == "gbnf":
        raise LLMConfigError(
            "structured_library=gbnf needs the llama.cpp engine (llm=embedded llm.engine=llama_cpp); "
            "the transformers engine uses xgrammar, outlines, lm-format-enforcer or none"
        )
    if c.get("num_threads"):
        import torch

        torch.set_num_threads(int(c["num_threads"]))
    prefix = c["prefix_cache"]
    local: dict[str, Any] = {
        "structured_library": c["structured_library"],
        "prefix_cache_entries": int(prefix["entries"]),
        "prefix_min_tokens": int(prefix["min_tokens"]),
        "top_p": float(c["top_p"]),
        **base,
    }
    dtype = str(c["dtype"])
    if c["backend"] == "embedded":
        from rl_shop.llm.embedded import load_embedded

        return load_embedded(c["gguf_path"], dtype=dtype, **local)
    from rl_shop.llm.hf_backend import TransformersLLM

    if not c.get("model_path"):
        raise LLMConfigError("llm.model_path is required for the transformers backend")
    return TransformersLLM.from_config(
        model_path=str(c["model_path"]),
        dtype=dtype,
        device_map=c["device_map"],
        adapter_path=c["adapter_path"],
        merge_adapter=bool(c["merge_adapter"]),
        **local,
    )


def _make_llamacpp(c: dict[str, Any], base: dict[str, Any]) -> LLM:
    """The embedded GGUF run by llama.cpp (the file found as for the transformers engine)."""
    from rl_shop.llm.embedded import check_gguf, find_packaged_gguf
    from rl_shop.llm.llamacpp_backend import LlamaCppLLM

    gguf = Path(c["gguf_path"]).expanduser() if c["gguf_path"] else find_packaged_gguf()
    check_gguf(gguf)
    prefix = c["prefix_cache"]
    return LlamaCppLLM(
        gguf,
        n_ctx=int(c["n_ctx"]),
        num_threads=c["num_threads"],
        structured_library=c["structured_library"],
        prefix_cache_entries=int(prefix["entries"]),
        prefix_min_tokens=int(prefix["min_tokens"]),
        top_p=float(c["top_p"]),
        flash_attn=bool(c["flash_attn"]),
        lora_path=c["lora_path"],
        cache_extra={"gguf": gguf.name},
        **base,
    )
