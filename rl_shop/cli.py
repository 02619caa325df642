"""The ``rl-shop`` console script: a small subcommand dispatcher.

Each subcommand is registered with :func:`register` (a name, a help line, a function adding its
arguments, and a function running it), so other parts of the project add ``chat`` / ``ask`` etc.
without touching the dispatcher.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One subcommand."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def register(name: str, help: str, configure: Callable[[argparse.ArgumentParser], None],
             run: Callable[[argparse.Namespace], int]) -> None:
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
    p.add_argument("--llm", default="embedded", help="config name under configs/llm/ (default: embedded)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set structured_library=none (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (0 = any free port)")
    p.add_argument("--model-name", default=None, help="model id to serve (default: rl-shop-<backend>)")
    p.add_argument("--verbose", action="store_true", help="log every request")


def _serve_llm(args: argparse.Namespace) -> int:
    from rl_shop.llm import load_llm_config, make_llm
    from rl_shop.llm.server import make_server

    cfg = load_llm_config(args.llm, args.set)
    llm = make_llm(cfg)
    server = make_server(llm, host=args.host, port=args.port, model_name=args.model_name,
                         defaults=dict(cfg.get("generation") or {}), verbose=args.verbose)
    host, port = server.server_address[:2]
    print(f"serving {llm.describe()} at http://{host}:{port}/v1 (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


register("serve-llm", "serve an LLM backend over an OpenAI-compatible HTTP API", _serve_llm_args, _serve_llm)

import rl_shop.agents.chat_cli  # noqa: E402,F401  (registers `chat` and `ask`; imports nothing heavy)


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
    from rl_shop.cli import main as _main  # the imported module holds the registrations of other modules

    sys.exit(_main())
