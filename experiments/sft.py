"""LoRA SFT of the Research Agent on synthesized trajectories (TRL SFTTrainer + PEFT).

    python experiments/sft.py data=results/research/<run>/sft.jsonl                  # CPU, embedded SmolLM2-135M
    python experiments/sft.py data=... hardware=gpu model_path=/models/Qwen3-30B-A3B max_length=32768 dtype=bfloat16

Writes <out_dir>/adapter (PEFT adapter, loadable with ``llm=transformers llm.model_path=<base>
llm.adapter_path=<out_dir>/adapter``), <out_dir>/checkpoints, <out_dir>/tensorboard and
sft_summary.json. Config mistakes print one clear message and exit with status 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from rl_shop.paths import CONFIG_DIR  # noqa: E402


@hydra.main(config_path=str(CONFIG_DIR), config_name="sft", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from rl_shop.research.config import node
    from rl_shop.research.sft import SFTSettings, train_sft
    from rl_shop.research.sft_data import SFTDataError

    try:
        if OmegaConf.is_missing(cfg, "data"):
            raise ValueError("data is required: data=results/research/<run>/sft.jsonl (from experiments/synthesize.py)")
        settings = node(
            SFTSettings, {**OmegaConf.to_container(cfg, resolve=True), "device": cfg.hardware.device}, "sft"
        )
        out = Path(settings.out_dir) if settings.out_dir else Path(settings.data).resolve().parent / "sft"
        outcome = train_sft(settings, out)
    except (ValueError, SFTDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(
        f"trained {outcome.steps} steps on {outcome.n_examples} examples ({outcome.tool_format} tool format, "
        f"{outcome.device}) in {outcome.seconds:.0f}s; losses {outcome.losses}; adapter -> {outcome.adapter_dir}"
    )


if __name__ == "__main__":
    main()
