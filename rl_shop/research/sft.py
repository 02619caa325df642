"""LoRA fine-tuning of a Research Agent on the internalized trajectories (TRL SFTTrainer + PEFT).

The adapter directory it writes is what the LLM layer's transformers backend loads
(``llm=transformers llm.model_path=<base> llm.adapter_path=<out>/adapter``). For the embedded
SmolLM2-135M the base is its converted HF directory (:func:`embedded_base_path`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from rl_shop.config_files import defaults_from_yaml
from rl_shop.research.sft_data import load_sft_dataset, template_supports_tools


class LoraSettings(BaseModel):
    model_config = {"extra": "forbid"}

    r: int = Field(ge=1)
    alpha: int = Field(ge=1)
    dropout: float = Field(ge=0.0, lt=1.0)
    target_modules: list[str]


@defaults_from_yaml("sft.yaml", what="fine-tuning config")
class SFTSettings(BaseModel):
    """The ``configs/sft.yaml`` keys this module reads."""

    model_config = {"extra": "ignore"}

    data: str
    model_path: str | None
    out_dir: str | None
    tool_format: str
    seed: int
    max_length: int = Field(ge=32)
    max_steps: int
    epochs: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    grad_accum: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    warmup_ratio: float = Field(ge=0.0, lt=1.0)  # passed as warmup_steps (a float < 1 is a ratio)
    logging_steps: int = Field(ge=1)
    save_steps: int = Field(ge=1)
    dtype: str
    gradient_checkpointing: bool
    completion_only: bool  # loss on the final assistant turn only (single-answer tasks)
    device: str
    lora: LoraSettings


@dataclass
class SFTOutcome:
    adapter_dir: Path
    base_model: str
    tool_format: str
    n_examples: int
    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return {
            "adapter_dir": str(self.adapter_dir),
            "base_model": self.base_model,
            "tool_format": self.tool_format,
            "n_examples": self.n_examples,
            "steps": self.steps,
            "losses": self.losses,
            "seconds": round(self.seconds, 1),
            "device": self.device,
        }


def embedded_base_path() -> Path:
    """The converted HF directory of the embedded SmolLM2 (converted once, cached)."""
    from rl_shop.llm.embedded import ensure_converted

    return ensure_converted()


def resolve_device(device: str) -> str:
    """cpu | cuda from the hardware config (auto = cuda when available)."""
    import torch

    if device not in ("cpu", "cuda", "auto"):
        raise ValueError(f"hardware.device must be cpu, cuda or auto, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("hardware.device=cuda but no CUDA GPU is visible; use hardware=cpu")
    return device


def train_sft(s: SFTSettings, out_dir: Path) -> SFTOutcome:
    """Fine-tune with LoRA; saves checkpoints, TensorBoard logs and ``out_dir/adapter``."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from rl_shop.llm.hf_backend import DTYPES

    if s.tool_format not in ("auto", "native", "text"):
        raise ValueError(f"tool_format must be auto, native or text, got {s.tool_format!r}")
    if s.dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {s.dtype!r}")
    device = resolve_device(s.device)
    base = Path(s.model_path).expanduser() if s.model_path else embedded_base_path()
    if not (base / "config.json").is_file():
        raise ValueError(f"model_path={str(base)!r} is not a local Hugging Face model directory (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    fmt = s.tool_format if s.tool_format != "auto" else ("native" if template_supports_tools(tokenizer) else "text")
    dataset = load_sft_dataset(s.data, text_tool_format=(fmt == "text"), completion_only=s.completion_only)
    torch.manual_seed(s.seed)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=DTYPES[s.dtype])
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(out_dir / "tensorboard")
    args = SFTConfig(
        output_dir=str(out_dir / "checkpoints"),
        max_steps=s.max_steps if s.max_steps > 0 else -1,
        num_train_epochs=s.epochs,
        per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum,
        learning_rate=s.learning_rate,
        warmup_steps=s.warmup_ratio,
        logging_steps=s.logging_steps,
        save_steps=s.save_steps,
        save_total_limit=2,
        seed=s.seed,
        data_seed=s.seed,
        max_length=s.max_length,
        packing=False,
        report_to=["tensorboard"],
        use_cpu=(device == "cpu"),
        bf16=(s.dtype == "bfloat16" and device == "cuda"),
        activation_checkpointing=s.gradient_checkpointing,
        dataloader_num_workers=0,
        disable_tqdm=True,
        assistant_only_loss=False,
        completion_only_loss=s.completion_only,
    )
    lora = LoraConfig(
        r=s.lora.r,
        lora_alpha=s.lora.alpha,
        lora_dropout=s.lora.dropout,
        target_modules=list(s.lora.target_modules),
        task_type="CAUSAL_LM",
    )
    t0 = time.perf_counter()
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora)
    trainer.train()
    adapter = out_dir / "adapter"
    trainer.save_model(str(adapter))
    tokenizer.save_pretrained(str(adapter))
    losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
    outcome = SFTOutcome(
        adapter, str(base), fmt, len(dataset), int(trainer.state.global_step), losses, time.perf_counter() - t0, device
    )
    (out_dir / "sft_summary.json").write_text(json.dumps(outcome.to_dict(), indent=2))
    return outcome
