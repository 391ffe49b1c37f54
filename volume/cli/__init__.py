"""The ``volume`` command line: one typer app, one module per command group.

Each module registers its commands on :data:`app` when imported; modules not present are skipped.
"""

from __future__ import annotations

import importlib
import os

# The command line does no large matrix products: OpenBLAS's thread pool only costs start-up
# (~60 ms of numpy's import on 2 cores, measured). Set before numpy is first imported; an
# explicit setting in the environment wins. Child processes (pools) inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .app import app, main, run

#: Command modules, in the order ``volume --help`` lists their commands.
COMMAND_MODULES = ("inspect", "convert", "mip", "reslice", "render", "png", "index", "sample")

for _name in COMMAND_MODULES:
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as _exc:  # a command module not written yet
        if _exc.name != f"{__name__}.{_name}":
            raise

__all__ = ["app", "main", "run"]
