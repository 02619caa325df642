"""The ``rl-shop`` console script: a small subcommand dispatcher.

Each subcommand is a :class:`rl_shop.commands.Command` (a name, a help line, a function adding its
arguments, and a function running it). The modules that offer commands export them as ``COMMANDS``
and this dispatcher collects them; :func:`register` adds one at run time (tests, plugins).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from rl_shop.agents import chat_cli, parse_cli  # import nothing heavy at module level
from rl_shop.commands import Command

COMMANDS: dict[str, Command] = {}


def register(
    name: str, help: str, configure: Callable[[argparse.ArgumentParser], None], run: Callable[[argparse.Namespace], int]
) -> None:
    """Add a subcommand (a later registration with the same name replaces the earlier one)."""
    COMMANDS[name] = Command(name, help, configure, run)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(prog="rl-shop", description="rl_shop command-line tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
    return parser


# ------------------------------------------------------------------ serve-llm


def _serve_llm_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", default="llama_cpp", help="server config name under configs/llm/server/ (default: llama_cpp)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a server config key, e.g. --set limit_concurrency=4 (repeatable)",
    )
    p.add_argument("--host", default=None, help="bind address (default from config: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=None, help="TCP port (default from config: 8000)")
    p.add_argument("--model-name", default=None, help="model id to serve (default from config: rl-shop-embedded)")
    p.add_argument("--gguf", default=None, help="a .gguf chat model (default: the packaged SmolLM2-135M)")
    p.add_argument("--verbose", action="store_true", help="log every request")


def _serve_llm(args: argparse.Namespace) -> int:
    from rl_shop.llm.serve import load_server_config, serve

    over = list(args.set)
    for key, value in (
        ("host", args.host),
        ("port", args.port),
        ("model_name", args.model_name),
        ("gguf_path", args.gguf),
    ):
        if value is not None:
            over.append(f"{key}={value}")
    if args.verbose:
        over.append("verbose=true")
    return serve(load_server_config(args.config, over))


register(
    "serve-llm",
    "serve the embedded GGUF model with llama-cpp-python's OpenAI-compatible server",
    _serve_llm_args,
    _serve_llm,
)
for _cmd in (*chat_cli.COMMANDS, *parse_cli.COMMANDS):
    COMMANDS[_cmd.name] = _cmd


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rl-shop`` script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from rl_shop.llm.types import LLMError

    try:
        return COMMANDS[args.command].run(args)
    except LLMError as exc:
        print(f"rl-shop {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
