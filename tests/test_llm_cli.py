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
    assert "--port" in out and "--llm" in out and "--set" in out


def test_unknown_llm_config_is_a_clear_error(capsys) -> None:
    assert cli.main(["serve-llm", "--llm", "no-such-config"]) == 1
    err = capsys.readouterr().err
    assert "no LLM config 'no-such-config'" in err and "embedded" in err


def test_bad_override_is_a_clear_error(capsys) -> None:
    assert cli.main(["serve-llm", "--set", "backend=nonsense"]) == 1
    assert "llm.backend must be one of" in capsys.readouterr().err


def test_register_adds_a_subcommand() -> None:
    seen = {}
    cli.register("echo-test", "test command", lambda p: p.add_argument("word"),
                 lambda a: seen.setdefault("word", a.word) and 0)
    try:
        assert cli.main(["echo-test", "hi"]) == 0 and seen == {"word": "hi"}
    finally:
        cli.COMMANDS.pop("echo-test")
