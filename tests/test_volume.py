"""The Volume dataclass: validation, immutability, geometry helpers."""

from __future__ import annotations

import numpy as np
import pytest
from synth import AXIAL, CORONAL, SAGITTAL, oblique_iop, synthetic_volume

from volume import Volume, axis_codes
from volume.volume import closest_plane, orientation_label


def test_validation() -> None:
    a = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="4x4"):
        Volume(a, np.eye(3))
    bad = np.eye(4)
    bad[3, 0] = 1
    with pytest.raises(ValueError, match="last row"):
        Volume(a, bad)
    with pytest.raises(ValueError, match="singular"):
        Volume(a, np.diag([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(S, R, C\)"):
        Volume(np.zeros((3, 4)), np.eye(4))
    with pytest.raises(ValueError, match="RGB"):
        Volume(np.zeros((2, 3, 4)), np.eye(4), rgb=True)
    with pytest.raises(ValueError, match="empty"):
        Volume(np.zeros((0, 3, 4)), np.eye(4))


def test_immutable() -> None:
    src = np.zeros((2, 3, 4), dtype=np.int16)
    aff = np.eye(4)
    vol = Volume(src, aff, {"a": 1})
    with pytest.raises(ValueError):
        vol.array[0, 0, 0] = 1
    with pytest.raises(ValueError):
        vol.affine[0, 0] = 2
    with pytest.raises(TypeError):
        vol.meta["a"] = 2  # type: ignore[index]
    aff[0, 0] = 5  # the caller's affine is copied
    assert vol.affine[0, 0] == 1
    with pytest.raises(AttributeError):
        vol.array = src  # type: ignore[misc]


@pytest.mark.parametrize(
    "iop,codes,plane",
    [(AXIAL, "SPL", "axial"), (CORONAL, "PIL", "coronal"), (SAGITTAL, "RIP", "sagittal")],
)
def test_axis_codes_and_orientation(iop, codes, plane) -> None:
    vol = synthetic_volume(shape=(3, 4, 5), iop=iop)
    assert vol.axcodes == codes
    assert vol.orientation == plane
    assert axis_codes(vol.affine) == codes


def test_oblique_label() -> None:
    vol = synthetic_volume(shape=(3, 4, 5), iop=oblique_iop(degrees=10.0, axis=(1, 0, 0)))
    assert vol.orientation == "axial (oblique 10.0°)"
    plane, angle = closest_plane(np.array([0, np.sin(0.1), np.cos(0.1)]))
    assert plane == "axial" and angle == pytest.approx(np.degrees(0.1))
    assert orientation_label(np.eye(4)) == "sagittal"  # slice axis along x
    assert orientation_label(np.eye(4)[:, [2, 1, 0, 3]]) == "axial"


def test_world_index_roundtrip_and_spacing() -> None:
    vol = synthetic_volume(shape=(6, 7, 8), iop=oblique_iop(degrees=27.0), spacing=(2.5, 0.7, 1.1))
    assert vol.spacing == pytest.approx((2.5, 0.7, 1.1))
    idx = np.array([[0, 0, 0], [5, 6, 7], [1.5, 2.25, 3.0]])
    np.testing.assert_allclose(vol.index(vol.world(idx)), idx, atol=1e-9)
    np.testing.assert_allclose(vol.direction.T @ vol.direction, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(vol.center, vol.world([2.5, 3, 3.5]))


def test_4d_frames_and_with_array() -> None:
    arr = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    vol = Volume(arr, np.eye(4), {"modality": "MR"})
    assert vol.is_4d and vol.n_frames == 2 and vol.shape == (3, 4, 5)
    np.testing.assert_array_equal(vol.frame(1).array, arr[1])
    assert [f.shape for f in vol.frames()] == [(3, 4, 5)] * 2
    three = vol.frame(0)
    assert three.frame(0) is three
    with pytest.raises(IndexError):
        three.frame(1)
    other = three.with_array(np.ones((3, 4, 5)), note="x")
    assert other.meta == {"modality": "MR", "note": "x"}
    assert "3x4x5" in repr(vol) and "2 frames" in repr(vol)


def test_rgb_shape() -> None:
    vol = Volume(np.zeros((2, 3, 4, 3), np.uint8), np.eye(4), rgb=True)
    assert vol.shape == (2, 3, 4) and not vol.is_4d and "RGB" in repr(vol)
