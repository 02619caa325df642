"""SFT data in TRL and a tiny LoRA SFT step on CPU with the embedded SmolLM2-135M (slow, loads the model)."""

from __future__ import annotations

import math

import pytest
from research_fixtures import two_round_trajectory

from rl_shop.research.internalize import internalize
from rl_shop.research.sft_data import load_sft_dataset, template_supports_tools, write_sft_jsonl
from rl_shop.research.tools import ResearchTools

pytestmark = [pytest.mark.slow, pytest.mark.llm]


@pytest.fixture(scope="module")
def sft_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sft") / "sft.jsonl"
    recs = []
    for i in range(2):
        t = two_round_trajectory()
        t.id = f"traj-{i}"
        recs.append({"id": t.id, "messages": internalize(t), "tools": ResearchTools.openai_tool_specs()})
    write_sft_jsonl(recs, path)
    return path


@pytest.fixture(scope="module")
def base_dir():
    from rl_shop.research.sft import embedded_base_path

    return embedded_base_path()


def test_smollm2_template_drops_tool_calls_so_text_format_is_used(sft_file, base_dir) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base_dir))
    assert not template_supports_tools(tok)
    native = load_sft_dataset(sft_file)[0]["messages"]
    rendered = tok.apply_chat_template(native, tokenize=False)
    assert '"query":"wireless headphones"' not in rendered  # the native tool call vanished
    text = load_sft_dataset(sft_file, text_tool_format=True)[0]["messages"]
    rendered = tok.apply_chat_template(text, tokenize=False)
    assert '"tool":"product_search","argument":"wireless headphones"' in rendered
    assert "<tool_response>" in rendered and "Reflection: I have drafted" in rendered


def test_sft_data_tokenizes_in_trl(sft_file, base_dir) -> None:
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(str(base_dir))
    model = AutoModelForCausalLM.from_pretrained(str(base_dir))
    args = SFTConfig(
        output_dir="/tmp/rl_shop_sft_probe", max_steps=1, max_length=2048, report_to=[], use_cpu=True, disable_tqdm=True
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=load_sft_dataset(sft_file, text_tool_format=True),
        processing_class=tok,
        peft_config=LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM"),
    )
    ids = trainer.train_dataset[0]["input_ids"]
    decoded = tok.decode(ids)
    assert len(trainer.train_dataset) == 2
    assert '"tool":"visit_product","argument":"amz-000002"' in decoded and decoded.count("<|im_start|>assistant") == 4


def test_tiny_sft_step_saves_a_loadable_adapter(sft_file, tmp_path) -> None:
    from safetensors.torch import load_file

    from rl_shop.llm import load_llm_config, make_llm
    from rl_shop.research.sft import SFTSettings, embedded_base_path, train_sft

    s = SFTSettings(
        data=str(sft_file),
        device="cpu",  # the hardware group's value (experiments/sft.py passes it)
        max_steps=2,
        max_length=256,
        save_steps=1,
        learning_rate=1e-3,
        lora={"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
    )
    out = train_sft(s, tmp_path / "run")
    assert out.steps == 2 and out.tool_format == "text" and out.device == "cpu"
    assert len(out.losses) == 2 and all(math.isfinite(v) and v > 0 for v in out.losses)
    weights = load_file(str(out.adapter_dir / "adapter_model.safetensors"))
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and any(float(v.abs().max()) > 0 for v in lora_b)  # B starts at zero: training moved it
    assert (tmp_path / "run" / "tensorboard").is_dir() and (tmp_path / "run" / "checkpoints").is_dir()
    cfg = load_llm_config(
        "transformers", [f"model_path={embedded_base_path()}", f"adapter_path={out.adapter_dir}", "cache.enabled=false"]
    )
    llm = make_llm(cfg)
    res = llm.chat([{"role": "user", "content": "hi"}], max_tokens=3)
    assert res.completion_tokens >= 1 and "+adapter" in llm.model_id
