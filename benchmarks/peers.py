"""What the benchmarks compare against, found the same way by every script."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def dcm2niix_binary() -> str | None:
    """The dcm2niix executable itself: the PyPI package's ``bin/dcm2niix`` is a Python script that
    starts it as a child process (~0.05 s of interpreter start and a second process to measure)."""
    try:
        import dcm2niix as package

        binary = Path(package.__file__).with_name("dcm2niix")
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    except ImportError:
        pass
    return shutil.which("dcm2niix")
