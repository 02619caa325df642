"""A PEFT LoRA adapter as a GGUF adapter for llama.cpp, converted by llama.cpp's own script.

llama.cpp applies LoRA adapters stored as GGUF (``Llama(lora_path=...)``, the ``llm.lora_path``
option of the embedded engine). The converter, ``convert_lora_to_gguf.py``, ships in the
llama.cpp tree inside llama-cpp-python's source distribution, with the ``gguf-py`` package it is
written against. :func:`converter_dir` extracts those files once from the sdist of the installed
llama-cpp-python version (downloaded by pip when the wheel cache has none) into the project cache;
:func:`convert_adapter` runs the script against the base model's HF directory.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from rl_shop.paths import cache_dir

SCRIPT = "convert_lora_to_gguf.py"
NEEDED = ("convert_lora_to_gguf.py", "convert_hf_to_gguf.py", "conversion", "gguf-py")


class AdapterConversionError(RuntimeError):
    """The adapter could not be converted (no converter, bad adapter, the script failed)."""


def llama_cpp_version() -> str:
    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        raise AdapterConversionError("llama-cpp-python is not installed; run `make venv` (it builds it)") from None


def converter_dir(version: str | None = None, root: Path | None = None) -> Path:
    """The directory holding llama.cpp's converter scripts for ``version``, extracted once."""
    version = version or llama_cpp_version()
    target = (root or cache_dir()) / "llama.cpp-convert" / version
    if all((target / name).exists() for name in NEEDED):
        return target
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            f"llama-cpp-python=={version}",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
            tmp,
            "-q",
        ]
        res = subprocess.run(cmd, capture_output=True, text=True)
        sdists = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if res.returncode != 0 or not sdists:
            raise AdapterConversionError(
                f"could not fetch the llama-cpp-python {version} source distribution, which "
                f"carries {SCRIPT} (pip said: {res.stderr.strip()[-300:] or 'nothing'})"
            )
        prefix = f"{sdists[0].name[: -len('.tar.gz')]}/vendor/llama.cpp/"
        with tarfile.open(sdists[0]) as tar:
            members = [
                m
                for m in tar.getmembers()
                if m.name.startswith(prefix)
                and m.name[len(prefix) :].split("/")[0] in NEEDED
                and (m.isfile() or m.isdir())
            ]
            for m in members:
                m.name = m.name[len(prefix) :]
            target.mkdir(parents=True, exist_ok=True)
            tar.extractall(target, members=members, filter="data")
    missing = [n for n in NEEDED if not (target / n).exists()]
    if missing:
        raise AdapterConversionError(f"the llama-cpp-python {version} sdist lacks {missing}")
    return target


def convert_adapter(
    adapter_dir: str | Path, base_dir: str | Path, out_file: str | Path | None = None, outtype: str = "f32"
) -> Path:
    """``adapter_dir`` (PEFT: adapter_config.json + weights) as a GGUF LoRA file for ``base_dir``'s model."""
    adapter_dir, base_dir = Path(adapter_dir), Path(base_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise AdapterConversionError(
            f"{adapter_dir} is not a PEFT adapter directory (no adapter_config.json); train one with experiments/sft.py"
        )
    if not (base_dir / "config.json").is_file():
        raise AdapterConversionError(f"{base_dir} is not an HF model directory (no config.json)")
    out = Path(out_file) if out_file else adapter_dir / "adapter.gguf"
    tools = converter_dir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tools / "gguf-py"), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
    }
    cmd = [
        sys.executable,
        str(tools / SCRIPT),
        "--base",
        str(base_dir),
        "--outtype",
        outtype,
        "--outfile",
        str(out),
        str(adapter_dir),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0 or not out.is_file():
        raise AdapterConversionError(f"{SCRIPT} failed ({res.returncode}): {(res.stderr or res.stdout).strip()[-800:]}")
    return out


def adapter_gguf(adapter: str | Path, base_dir: str | Path | Callable[[], Path]) -> Path:
    """A GGUF LoRA file for ``adapter``: the file itself when it is one, else the PEFT directory's
    ``adapter.gguf``, converted against ``base_dir`` on first use and reused after (``base_dir``
    may be a callable, called only when a conversion is needed: finding the base can be costly)."""
    adapter = Path(adapter).expanduser()
    if adapter.suffix == ".gguf":
        if not adapter.is_file():
            raise AdapterConversionError(f"no GGUF LoRA file at {adapter}")
        return adapter
    gguf = adapter / "adapter.gguf"
    if gguf.is_file():
        return gguf
    if not (adapter / "adapter_config.json").is_file():
        raise AdapterConversionError(
            f"{adapter} is neither a GGUF LoRA file nor a PEFT adapter directory (no adapter_config.json); "
            "train one with experiments/sft.py"
        )
    return convert_adapter(adapter, base_dir() if callable(base_dir) else base_dir, gguf)


__all__ = ["AdapterConversionError", "adapter_gguf", "convert_adapter", "converter_dir", "llama_cpp_version"]
