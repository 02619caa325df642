"""Convert a PEFT LoRA adapter (experiments/sft.py) into a GGUF adapter that llama.cpp applies.

    python experiments/convert_adapter.py results/llm_parser/sft/adapter          # -> <adapter>/adapter.gguf
    python experiments/convert_adapter.py <adapter> --base <HF model dir> --out x.gguf
    python experiments/convert_adapter.py <adapter> --check results/llm_parser/sft.jsonl --n 20

The base defaults to the HF-format conversion of the embedded GGUF that the project caches (the
base the SFT path trains on). Use it with ``llm=embedded llm.lora_path=<adapter>/adapter.gguf``.

``--check`` asks whether the converted adapter behaves like the PEFT one: on the prompts of the
first ``n`` rows of an SFT JSONL, greedy answers of transformers + PEFT and of llama.cpp + the
GGUF adapter, beside the same comparison without adapters (the two engines differ a little even
then: llama.cpp runs the Q4_1 weights, transformers their de-quantised copy), and how often each
answer equals the row's reference answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rl_shop.llm.lora_gguf import AdapterConversionError, convert_adapter


def check(adapter: Path, gguf: Path, data: Path, n: int) -> dict[str, float]:
    """Exact-match rates of greedy answers: engine vs engine (tuned, base) and each vs reference."""
    from rl_shop.llm import load_llm_config, make_llm
    from rl_shop.llm.embedded import ensure_converted

    rows = [json.loads(x) for x in data.read_text().splitlines()[:n]]
    common, hf_base = ["cache.enabled=false"], f"model_path={ensure_converted()}"
    llms = {
        "tuned_llama_cpp": load_llm_config("embedded", common + [f"lora_path={gguf}"]),
        "tuned_peft": load_llm_config("transformers", common + [hf_base, f"adapter_path={adapter}"]),
        "base_llama_cpp": load_llm_config("embedded", common),
        "base_transformers": load_llm_config("transformers", common + [hf_base]),
    }
    answers: dict[str, list[str]] = {}
    for name, cfg in llms.items():
        llm = make_llm(cfg)
        answers[name] = [llm.chat(r["messages"][:-1], max_tokens=96).text.strip() for r in rows]
        llm.close()
    refs = [r["messages"][-1]["content"].strip() for r in rows]

    def same(a: list[str], b: list[str]) -> float:
        return round(sum(x == y for x, y in zip(a, b)) / len(rows), 3)

    return {
        "n": len(rows),
        "tuned_engines_agree": same(answers["tuned_llama_cpp"], answers["tuned_peft"]),
        "base_engines_agree": same(answers["base_llama_cpp"], answers["base_transformers"]),
        **{f"{name}_equals_reference": same(ans, refs) for name, ans in answers.items()},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("adapter", help="PEFT adapter directory (adapter_config.json + adapter_model.safetensors)")
    ap.add_argument("--base", default=None, help="HF model directory the adapter was trained on (default: embedded)")
    ap.add_argument("--out", default=None, help="output file (default: <adapter>/adapter.gguf)")
    ap.add_argument("--outtype", default="f32", choices=["f32", "f16", "bf16", "q8_0"])
    ap.add_argument("--check", default=None, type=Path, help="SFT JSONL whose prompts compare the two engines")
    ap.add_argument("--n", type=int, default=20, help="rows of --check to use")
    args = ap.parse_args(argv)
    if args.check is not None and args.base is not None:
        ap.error("--check runs the embedded model on both engines; it needs the default --base")
    try:
        if args.base is None:
            from rl_shop.llm.embedded import ensure_converted

            args.base = ensure_converted()
        out = convert_adapter(args.adapter, args.base, args.out, args.outtype)
    except AdapterConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    if args.check is not None:
        print(json.dumps(check(Path(args.adapter), Path(out), args.check, args.n)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
