"""The public API: every exported name resolves, and ``import volume`` stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

import volume
from tests.synth import linear_field, synthetic_volume


def test_every_exported_name_resolves():
    for name in volume.__all__:
        assert getattr(volume, name) is not None, name
    assert set(volume.__all__) <= set(dir(volume))


def test_unknown_name_is_an_attribute_error():
    try:
        volume.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, json, volume; "
        "print(json.dumps([m for m in ('numpy', 'vtk', 'SimpleITK', 'scipy', 'nibabel', 'dask', 'typer', 'pydicom') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_api_round_trip_through_the_top_level_names(tmp_path):
    import nibabel as nib

    vol = synthetic_volume(shape=(12, 16, 20), spacing=(2.0, 1.0, 1.5), field_fn=linear_field)
    mip = volume.project(vol, "axial", "max")
    # Axial acquisition: the axial MIP is the maximum over the slice axis, pixel for pixel.
    assert np.allclose(np.squeeze(mip.array), vol.array.max(axis=0))
    path = tmp_path / "mip.nii.gz"
    volume.write_nifti(mip, path)
    img = nib.load(path)
    # The NIfTI affine is RAS of the projection's own LPS affine.
    assert np.allclose(img.affine, volume.LPS_TO_RAS @ mip.affine @ _perm(), atol=1e-4)
    iso = volume.reslice(vol, spacing=2.0)
    assert np.allclose(iso.spacing, 2.0)


def _perm():
    p = np.zeros((4, 4))
    p[0, 2] = p[1, 1] = p[2, 0] = p[3, 3] = 1.0
    return p


def test_console_entry_keeps_exit_semantics(tmp_path):
    """``volume`` freezes the collector before it exits (a faster teardown): exit code, atexit
    handlers, buffered output and running threads must still behave as in a normal exit."""
    marker = tmp_path / "thread-finished"
    code = (
        "import atexit, sys, threading, time\n"
        "atexit.register(lambda: print('atexit ran'))\n"
        f"threading.Thread(target=lambda: (time.sleep(0.3), open({str(marker)!r}, 'w').close())).start()\n"
        "sys.stdout.write('buffered, no newline')\n"
        f"sys.argv = ['volume', 'ls', {str(tmp_path / 'missing')!r}]\n"
        "from volume.cli import run\n"
        "run()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout.startswith("buffered, no newline")
    assert "atexit ran" in proc.stdout
    assert marker.exists()
    assert len(proc.stderr.strip().splitlines()) == 1 and "missing" in proc.stderr


def test_cli_needs_no_standalone_click(tmp_path):
    """typer vendors click; the standalone package (pulled in only by extras such as dask) must
    not be needed for a run or for a usage error."""
    block = "import sys; sys.modules['click'] = None; from volume.cli.app import main; import volume.cli; "
    ok = subprocess.run([sys.executable, "-c", block + f"sys.exit(main(['sample', {str(tmp_path / 's')!r}]))"],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-c", block + "sys.exit(main(['ls', '--no-such-option', '.']))"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_command_map_names_every_command_and_loads_only_one():
    """``volume X`` imports only X's module; the map must know every registered command."""
    import typer.main

    import volume.cli

    code = (
        "import sys, volume.cli; volume.cli.load_commands(['convert', 'in/', '-o', 'out/']); "
        "import typer.main; print(sorted(typer.main.get_command(volume.cli.app).commands))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['convert']"
    volume.cli.load_commands(None)
    assert sorted(typer.main.get_command(volume.cli.app).commands) == sorted(volume.cli.COMMANDS)


def test_exported_functions_stay_functions_whatever_was_imported_first():
    """Names shared with submodules (``volume.jobs.convert``, ``volume.render``) would turn into modules
    once the submodule is imported; the exports must not depend on import order."""
    code = (
        "import volume, volume.jobs.convert, volume.render.offscreen, volume.render.mesh, json; "
        "volume.ConvertOptions; volume.isosurface; "
        "print(json.dumps({n: callable(getattr(volume, n)) and not isinstance(getattr(volume, n), type(volume)) "
        "for n in volume.__all__ if not n.isupper() and n != '__version__'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert all(json.loads(out).values()), out
