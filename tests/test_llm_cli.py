"""The ``rl-shop`` dispatcher and its ``serve-llm`` subcommand (argument handling only)."""

from __future__ import annotations

import pytest

from rl_shop import cli


def test_no_command_prints_help_and_returns_2(capsys) -> None:
    assert cli.main([]) == 2
    assert "serve-llm" in capsys.readouterr().out


def test_serve_llm_help_lists_options(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve-llm", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--port" in out and "--config" in out and "--set" in out and "--gguf" in out


def test_unknown_server_config_is_a_clear_error(capsys) -> None:
    assert cli.main(["serve-llm", "--config", "no-such-config"]) == 1
    err = capsys.readouterr().err
    assert "no server config 'no-such-config'" in err and "llama_cpp" in err


def test_unknown_server_key_is_a_clear_error(capsys) -> None:
    assert cli.main(["serve-llm", "--set", "limit_concurency=4"]) == 1
    assert "unknown server key(s) ['limit_concurency']" in capsys.readouterr().err


def test_missing_gguf_is_a_clear_error(capsys, tmp_path) -> None:
    assert cli.main(["serve-llm", "--gguf", str(tmp_path / "nope.gguf")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_server_options_come_from_config_and_flags() -> None:
    from rl_shop.llm.serve import load_server_config, uvicorn_options

    cfg = load_server_config("llama_cpp", ["port=8123", "limit_concurrency=4", "timeout_keep_alive_s=9"])
    opts = uvicorn_options(cfg)
    assert opts["host"] == "127.0.0.1" and opts["port"] == 8123  # loopback unless told otherwise
    assert opts["limit_concurrency"] == 4 and opts["timeout_keep_alive"] == 9
    assert opts["timeout_graceful_shutdown"] == cfg["timeout_graceful_shutdown_s"]


def test_register_adds_a_subcommand() -> None:
    seen = {}
    cli.register(
        "echo-test", "test command", lambda p: p.add_argument("word"), lambda a: seen.setdefault("word", a.word) and 0
    )
    try:
        assert cli.main(["echo-test", "hi"]) == 0 and seen == {"word": "hi"}
    finally:
        cli.COMMANDS.pop("echo-test")


@pytest.mark.parametrize(
    ("adapter", "message"),
    [
        ("nope", "is neither a GGUF LoRA file nor a PEFT adapter directory (no adapter_config.json)"),
        ("nope.gguf", "no GGUF LoRA file at"),
    ],
)
def test_a_missing_adapter_is_a_clear_error_before_the_model_loads(capsys, tmp_path, adapter, message) -> None:
    assert cli.main(["serve-llm", "--set", f"adapters.tuned={tmp_path / adapter}"]) == 1
    err = capsys.readouterr().err
    assert "adapter 'tuned'" in err and message in err


def test_an_adapter_may_not_take_the_base_model_name(capsys, tmp_path) -> None:
    lora = tmp_path / "lora.gguf"
    lora.write_bytes(b"GGUF")
    assert cli.main(["serve-llm", "--model-name", "base", "--set", f"adapters.base={lora}"]) == 1
    assert "a name other than the base model's ('base')" in capsys.readouterr().err
