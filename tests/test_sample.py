"""The bundled sample series: the marker is where the module says, through the whole chain."""

from __future__ import annotations

import numpy as np

import volume
from volume.cli import main
from volume.sample import MARKER_LPS, MARKER_RADIUS_MM, phantom_hu


def test_sample_ct_loads_with_the_marker_at_its_patient_position(tmp_path, capfd):
    assert main(["sample", str(tmp_path / "ct"), "--slices", "24", "--size", "64"]) == 0
    vol = volume.load(tmp_path / "ct")
    assert vol.shape == (24, 64, 64) and vol.array.dtype == np.int16
    assert vol.axcodes == "SPL"
    centre = vol.world(np.argwhere(vol.array > 1500).mean(axis=0))
    assert np.linalg.norm(centre - MARKER_LPS) < MARKER_RADIUS_MM / 2
    # every voxel holds the phantom's value at its patient position
    k, j, i = np.meshgrid(*(np.arange(n) for n in vol.shape), indexing="ij")
    w = vol.world(np.stack([k, j, i], -1))
    np.testing.assert_array_equal(vol.array, phantom_hu(w[..., 0], w[..., 1], w[..., 2]))


def test_sample_refuses_a_folder_with_files(tmp_path, capfd):
    (tmp_path / "x").write_text("keep me")
    assert main(["sample", str(tmp_path)]) == 5
    assert "--force" in capfd.readouterr().err
    assert (tmp_path / "x").read_text() == "keep me"
