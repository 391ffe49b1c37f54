"""The ``volume`` command line: one typer app, one module per command group.

Each module registers its commands on :data:`app` when imported. :func:`load_commands` imports
only the module of the command being run (typer builds every registered command's parameters on
each run: one module instead of eight saves a tenth of the start-up), or all of them for
``volume --help``, a typo, or no command. A command module is the command's declaration (options,
help, choices: light imports only); its work, numpy and the library, is in :mod:`volume.cli.work`,
imported when the command runs.
"""

from __future__ import annotations

import gc
import os

# The command line does no large matrix products: OpenBLAS's thread pool only costs start-up
# (~60 ms of numpy's import on 2 cores, measured). Set before numpy is first imported; an
# explicit setting in the environment wins. Child processes (pools) inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

#: The cyclic collector's thresholds while a command runs, set as the command line is imported
#: (CPython's default: 700, 10, 10). A header scan makes tens of objects per file, none of them in
#: reference cycles, and so do the imports: at the default the collector ran 161 young and 15
#: middle collections during a 4,692-file session's conversion (0.035-0.04 s of CPU, 3%), 22 of
#: them while typer and the command line were imported; at these, 2 in all (0.008-0.009 s). Reference counting still
#: frees everything else at once; only cyclic garbage waits longer, and a command makes little.
GC_THRESHOLDS = (50_000, 20, 100)
gc.set_threshold(*GC_THRESHOLDS)

from .app import COMMAND_MODULES, COMMANDS, app, load_commands, main, run  # noqa: E402

__all__ = ["COMMANDS", "COMMAND_MODULES", "app", "load_commands", "main", "run"]
