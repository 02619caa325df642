"""What a ``rl-shop`` subcommand is: a name, a help line, its arguments and its run function.

Modules that offer subcommands (``rl_shop.agents.chat_cli``, ``rl_shop.agents.parse_cli``) export
``COMMANDS``, a tuple of :class:`Command`; the dispatcher ``rl_shop.cli`` collects them. The
commands never import the dispatcher, so imports point down only.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One subcommand."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
