"""The ``volume`` command line: one typer app, one module per command group.

Each module registers its commands on :data:`app` when imported. :func:`load_commands` imports
only the module of the command being run (typer builds every registered command's parameters on
each run: one module instead of eight saves a tenth of the start-up), or all of them for
``volume --help``, a typo, or no command. A command module is the command's declaration (options,
help, choices: light imports only); its work, numpy and the library, is in :mod:`volume.cli.work`,
imported when the command runs.
"""

from __future__ import annotations

import os

# The command line does no large matrix products: OpenBLAS's thread pool only costs start-up
# (~60 ms of numpy's import on 2 cores, measured). Set before numpy is first imported; an
# explicit setting in the environment wins. Child processes (pools) inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .app import COMMAND_MODULES, COMMANDS, app, load_commands, main, run  # noqa: E402

__all__ = ["COMMANDS", "COMMAND_MODULES", "app", "load_commands", "main", "run"]
