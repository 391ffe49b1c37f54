"""The ``volume`` command line: one typer app, one module per command group.

Each module registers its commands on :data:`app` when imported. :func:`load_commands` imports
only the module of the command being run (typer builds every registered command's parameters on
each run: one module instead of eight saves a tenth of the start-up), or all of them for
``volume --help``, a typo, or no command. A command module is the command's declaration (options,
help, choices: light imports only); its work, numpy and the library, is in :mod:`volume.cli.work`,
imported when the command runs.
"""

from __future__ import annotations

import importlib
import os

# The command line does no large matrix products: OpenBLAS's thread pool only costs start-up
# (~60 ms of numpy's import on 2 cores, measured). Set before numpy is first imported; an
# explicit setting in the environment wins. Child processes (pools) inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .app import app, command_word, main, run  # noqa: E402

#: Command modules, in the order ``volume --help`` lists their commands.
COMMAND_MODULES = ("inspect", "convert", "mip", "reslice", "render", "png", "index", "sample")

#: The module that registers each command.
COMMANDS = {
    "ls": "inspect", "info": "inspect", "convert": "convert", "mip": "mip", "reslice": "reslice",
    "render": "render", "view": "render", "serve": "render", "mesh": "render", "png": "png", "index": "index",
    "sample": "sample",
}


def _import(name: str) -> None:
    try:
        importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:  # a command module not written yet
        if exc.name != f"{__name__}.{name}":
            raise


def load_commands(args: list[str] | None = None) -> None:
    """Register the command ``args`` names (its first word that is not an option), or every
    command when there is none or it is unknown. Safe to call repeatedly."""
    first = command_word(list(args or ()))
    module = COMMANDS.get(first) if first is not None else None
    for name in (module,) if module else COMMAND_MODULES:
        _import(name)


__all__ = ["COMMANDS", "COMMAND_MODULES", "app", "load_commands", "main", "run"]
