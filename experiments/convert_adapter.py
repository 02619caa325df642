"""Convert a PEFT LoRA adapter (experiments/sft.py) into a GGUF adapter that llama.cpp applies.

    python experiments/convert_adapter.py results/llm_parser/sft/adapter          # -> <adapter>/adapter.gguf
    python experiments/convert_adapter.py <adapter> --base <HF model dir> --out x.gguf

The base defaults to the HF-format conversion of the embedded GGUF that the project caches (the
base the SFT path trains on). Use it with ``llm=embedded llm.lora_path=<adapter>/adapter.gguf``.
"""

from __future__ import annotations

import argparse
import sys

from rl_shop.llm.lora_gguf import AdapterConversionError, convert_adapter


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("adapter", help="PEFT adapter directory (adapter_config.json + adapter_model.safetensors)")
    ap.add_argument("--base", default=None, help="HF model directory the adapter was trained on (default: embedded)")
    ap.add_argument("--out", default=None, help="output file (default: <adapter>/adapter.gguf)")
    ap.add_argument("--outtype", default="f32", choices=["f32", "f16", "bf16", "q8_0"])
    args = ap.parse_args(argv)
    try:
        if args.base is None:
            from rl_shop.llm.embedded import ensure_converted

            args.base = ensure_converted()
        out = convert_adapter(args.adapter, args.base, args.out, args.outtype)
    except AdapterConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
