"""Peak memory of ``volume convert`` (issue 24): what a run loads and keeps.

Memory is not timed: these tests check what decides it (a module that maps a big shared library,
the size of the slabs a stack is streamed in: ``tests/test_convert_stream.py``).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import synth

from volume.dicom import scan

#: Loads OpenSSL's libcrypto (3.5 MiB of every process's peak): only a series without a number needs it.
OPENSSL_MODULE = "_hashlib"

PROBE = """
import json, sys
from volume.cli import main
code = main(["convert", sys.argv[1], "-o", sys.argv[2], "--format", "nii"])
print(json.dumps({"code": code, "openssl": sys.argv[3] in sys.modules}))
"""


def test_convert_does_not_load_openssl(tmp_path) -> None:
    synth.write_series(tmp_path / "in", shape=(3, 8, 6))
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "in"), str(tmp_path / "out"), OPENSSL_MODULE],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    found = json.loads(out.splitlines()[-1])
    assert found == {"code": 0, "openssl": False}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["7_synthetic.json", "7_synthetic.nii"]


def test_a_series_without_a_number_is_named_by_its_uid(tmp_path) -> None:
    """The name that needs ``hashlib`` (imported there, not at start-up): 8 hex digits of the
    SHA-1 of the SeriesInstanceUID."""
    written = synth.write_series(tmp_path / "in", shape=(3, 8, 6), series_number=None)
    (stack,) = scan(tmp_path / "in").stacks
    assert stack.series_number is None
    assert stack.id == hashlib.sha1(written.series_uid.encode()).hexdigest()[:8]
