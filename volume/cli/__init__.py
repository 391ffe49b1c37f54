"""The ``volume`` command line: one typer app, one module per command group."""

from __future__ import annotations

from . import inspect as _inspect  # noqa: F401  (registers ls, info)
from .app import app, main, run

__all__ = ["app", "main", "run"]
