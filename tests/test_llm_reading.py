"""The LLM's reading of a request: the grounding checks, the fine-tuning target, how it fills the
rule parser's gaps, and a PEFT adapter converted for llama.cpp changing what the model says."""

from __future__ import annotations

import json

import pytest

from rl_shop.agents.understanding.llm_reading import (
    LLMReading,
    check_reading,
    fill_gaps,
    reading_messages,
    target_reading,
)

CATS = ["speakers", "hdmi cables", "watches"]


def test_only_values_the_request_supports_are_accepted() -> None:
    text = "i need a purple hdmi cable, not the amazonbasics one, and price lower than 40.00 dollars"
    ok, notes = check_reading(
        LLMReading(product_type="hdmi cable", category="hdmi cables", budget_max=40, exclusions=["amazonbasics"]),
        text,
        CATS,
    )
    assert (
        ok
        == {"product_type": "hdmi cable", "category": "hdmi cables", "budget_max": 40.0, "exclusions": ["amazonbasics"]}
        and notes == []
    )
    bad, notes = check_reading(
        LLMReading(product_type="IntentGuess", category="cables", budget_max=2, exclusions=["sony"]), text, CATS
    )
    assert bad == {} and len(notes) == 4
    assert "budget 2 is not written" in notes[2] and "'cables' is not a catalog category" in notes[1]


def test_product_type_head_may_sit_inside_a_compound_word() -> None:
    ok, _ = check_reading(LLMReading(product_type="watch band"), "black stainless steel smartwatch bands", CATS)
    assert ok == {"product_type": "watch band"}


def test_budget_must_be_written_as_a_number_in_the_request() -> None:
    assert check_reading(LLMReading(budget_max=39.99), "a mouse under $39.99", CATS)[0] == {"budget_max": 39.99}
    assert check_reading(LLMReading(budget_max=40), "a mouse under $40.00", CATS)[0] == {"budget_max": 40.0}
    assert check_reading(LLMReading(budget_max=4), "a mouse under $40", CATS)[0] == {}  # 4 is inside 40


def test_target_comes_from_the_hand_labels() -> None:
    labels = {
        "product_type": "hdmi cable",
        "in_catalog": True,
        "catalog_categories": ["hdmi cables", "data cables"],
        "budget_max": 25.0,
        "exclusions": ["gold plated"],
    }
    assert target_reading(labels) == LLMReading(
        product_type="hdmi cable", category="hdmi cables", budget_max=25.0, exclusions=["gold plated"]
    )
    ooc = target_reading({"product_type": "eye cream", "in_catalog": False, "catalog_categories": []})
    assert ooc.category is None and ooc.model_dump_json().startswith('{"product_type":"eye cream","category":null')
    assert reading_messages("x")[1] == {"role": "user", "content": "Request: x"}


def test_fill_gaps_never_overwrites_the_rules() -> None:
    rules = {"budget_max": 30.0, "exclusions": ["sugar"], "category": "speakers", "in_catalog": True}
    llm = {"budget_max": 40.0, "exclusions": ["sugar free", "soy"], "category": "watches"}
    assert fill_gaps(rules, llm) == {
        "budget_max": 30.0,
        "exclusions": ["sugar", "soy"],
        "category": "speakers",
        "in_catalog": True,
    }
    empty = {"budget_max": None, "exclusions": [], "category": None, "in_catalog": False}
    assert fill_gaps(empty, llm) == {
        "budget_max": 40.0,
        "exclusions": ["sugar free", "soy"],
        "category": None,
        "in_catalog": False,
    }  # an uncarried verdict stands


def test_parser_sft_rows_are_training_sides_only(tmp_path) -> None:
    import importlib.util

    from rl_shop.evaluation.real_benchmark import load_real_benchmark
    from rl_shop.paths import REPO_ROOT

    spec = importlib.util.spec_from_file_location("bps", REPO_ROOT / "experiments" / "build_parser_sft.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--out", str(tmp_path / "sft.jsonl")]) == 0
    rows = [json.loads(x) for x in (tmp_path / "sft.jsonl").read_text().splitlines()]
    test_queries = {r["query"] for r in load_real_benchmark(split="test")}
    users = [r["messages"][1]["content"].removeprefix("Request: ") for r in rows]
    assert not test_queries & set(users)
    from collections import defaultdict

    from rl_shop.sim.benchmark import DEFAULT_BENCHMARK

    seen: dict[str, int] = defaultdict(int)
    position = {}
    for line in DEFAULT_BENCHMARK.read_text().splitlines():
        item = json.loads(line)
        position[item["id"]] = seen[item["query_type"]]
        seen[item["query_type"]] += 1
    eccd = [position[r["id"]] for r in rows if r["meta"]["source"] == "eccd_v1_train_side"]
    assert eccd and min(eccd) >= 50  # the evaluation slices take at most the first 25 of each type
    answers = [LLMReading.model_validate_json(r["messages"][2]["content"]) for r in rows]
    priced = [a for r, a in zip(rows, answers) if r["meta"]["source"] == "real_v1_dev_price_suffix"]
    assert priced and all(a.budget_max is not None for a in priced)
    assert rows[0]["messages"][2]["content"].startswith('{"product_type": ')  # the grammar's separators


def _matcher():
    import xgrammar as xgr

    from rl_shop.llm.constrained import compile_json_grammar

    compiler = xgr.GrammarCompiler(xgr.TokenizerInfo(["a"]), max_threads=1)
    compiled = compile_json_grammar(compiler, json.dumps(LLMReading.model_json_schema()))  # as the backends do
    return xgr.GrammarMatcher(compiled, terminate_without_stop_token=True)


@pytest.mark.parametrize(
    "reading",
    [
        LLMReading(product_type="bluetooth speaker", category="speakers", budget_max=40.0, exclusions=["apple", "red"]),
        LLMReading(product_type="eye cream"),
    ],
)
def test_fine_tuning_target_is_text_the_constrained_decoder_can_write(reading: LLMReading) -> None:
    # A target the grammar cannot produce trains the model on token sequences it never meets at
    # inference: compact {"a":1} was rejected here while the decoder writes {"a": 1}.
    from rl_shop.llm.structured import grammar_json

    matcher = _matcher()
    assert matcher.accept_string(grammar_json(reading)) and matcher.is_terminated()
    assert not _matcher().accept_string(reading.model_dump_json())


@pytest.mark.slow
@pytest.mark.llm
@pytest.mark.timeout(900)
def test_a_converted_adapter_changes_what_llama_cpp_says(tmp_path) -> None:
    """A PEFT LoRA with non-zero weights, converted by llama.cpp's own script, loads through
    ``llm.lora_path`` and changes the greedy answer; a missing adapter file is a clear error."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from rl_shop.llm import load_llm_config, make_llm
    from rl_shop.llm.embedded import ensure_converted
    from rl_shop.llm.lora_gguf import AdapterConversionError, convert_adapter
    from rl_shop.llm.types import ModelLoadError

    base_dir = ensure_converted()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32)
    peft = get_peft_model(
        model,
        LoraConfig(
            r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False
        ),
    )
    peft.save_pretrained(tmp_path / "adapter")
    gguf = convert_adapter(tmp_path / "adapter", base_dir)
    assert gguf == tmp_path / "adapter" / "adapter.gguf" and gguf.stat().st_size > 10_000
    msgs = [{"role": "user", "content": "Name a fruit."}]
    answers = {}
    for name, over in (("base", []), ("lora", [f"lora_path={gguf}"])):
        llm = make_llm(load_llm_config("embedded", ["cache.enabled=false", *over]))
        answers[name] = llm.chat(msgs, max_tokens=12).text
        llm.close()
    assert answers["base"] != answers["lora"]
    with pytest.raises(ModelLoadError, match="does not exist; convert a PEFT adapter"):
        make_llm(load_llm_config("embedded", [f"lora_path={tmp_path / 'nope.gguf'}"]))
    with pytest.raises(AdapterConversionError, match="not a PEFT adapter directory"):
        convert_adapter(tmp_path, base_dir)


def test_adapter_check_needs_the_embedded_base(tmp_path, capsys) -> None:
    import importlib.util

    from rl_shop.paths import REPO_ROOT

    spec = importlib.util.spec_from_file_location("ca", REPO_ROOT / "experiments" / "convert_adapter.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.raises(SystemExit) as exc:
        mod.main([str(tmp_path), "--check", str(tmp_path / "sft.jsonl"), "--base", str(tmp_path)])
    assert exc.value.code == 2 and "needs the default --base" in capsys.readouterr().err
