"""Shared fixtures: where the real data lives (tests using it skip when it is absent)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

#: ``../shared/data`` beside the checkout (override with VOLUME_TEST_DATA).
DATA = Path(os.environ.get("VOLUME_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real DICOM data folder; skips the test when it is not there."""
    if not (DATA / "dicom").is_dir():
        pytest.skip(f"real DICOM data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def dcm2niix() -> str:
    """The dcm2niix executable (the references' author); skips the test when it is not installed."""
    exe = shutil.which("dcm2niix")
    if exe is None:
        pytest.skip("dcm2niix not installed")
    return exe


def real(*parts: str) -> Path:
    """A path under the real data folder (skip when missing)."""
    p = DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not found")
    return p
