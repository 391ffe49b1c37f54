"""Automatic display windows: chosen from the picture drawn (a projection's histogram is not a slice's),
constant pictures, and the default window of each modality in ``mip`` and ``reslice``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import real
from synth import AXIAL, write_series

from volume.cli import main
from volume.io.image import read_picture
from volume.ops.window import Window, air_threshold, apply_window, auto_window, choose_window, default_window

BALL_CENTRE = (0.0, 0.0, 0.0)


def _ball_in_air(x, y, z, radius=10.0, inside=400.0):
    """MR-like: ``inside`` in a ball of ``radius`` mm at the origin, 0 (air) elsewhere."""
    return np.where(x**2 + y**2 + z**2 <= radius**2, inside + 2.0 * z, 0.0)


def _ball_series(folder: Path, **kw):
    shape = (16, 24, 24)  # slices 3 mm, pixels 2 mm: the series spans 48 mm each way
    origin = (-23.0, -23.0, -22.5)
    return write_series(folder, shape=shape, iop=AXIAL, origin=origin, pixel_spacing=(2.0, 2.0),
                        slice_spacing=3.0, field_fn=_ball_in_air, names="ordered", **kw)


@pytest.mark.parametrize("value, grey", [(0.0, 0), (-1024.0, 0), (-3.5, 0), (500.0, 128), (0.25, 128), (70000.0, 128)])
@pytest.mark.parametrize("kind", ["slice", "projection"])
def test_a_constant_picture_is_black_at_air_and_grey_above(value, grey, kind):
    values = np.full((7, 9), value)
    assert (apply_window(values, auto_window(values, kind=kind)) == grey).all()
    assert (apply_window(values, choose_window(values, window="auto", kind=kind)[0]) == grey).all()


def test_a_projection_window_starts_at_the_darkest_tissue_not_at_air():
    rng = np.random.default_rng(3)
    air = rng.uniform(0.0, 60.0, 4000)  # a MIP's air: the brightest noise sample along each ray
    tissue = rng.uniform(400.0, 1000.0, 6000)
    values = np.concatenate([air, tissue])
    rng.shuffle(values)
    mip = auto_window(values, kind="projection")
    assert mip.low == pytest.approx(np.percentile(tissue, 0.5), rel=0.01)
    assert mip.high == pytest.approx(np.percentile(tissue, 99.5), rel=0.01)
    assert 60.0 < air_threshold(values) <= 400.0
    # a slice's background is only what sits at the minimum: the noise band counts as picture
    assert auto_window(values, kind="slice").low < 60.0
    # a projection with no air (a field of view inside the body): nothing is cut away
    no_air = np.concatenate([rng.uniform(100.0, 300.0, 4000), tissue])
    assert air_threshold(no_air) is None
    assert auto_window(no_air, kind="projection").low == pytest.approx(np.percentile(no_air, 0.5), rel=0.01)
    with pytest.raises(ValueError, match="kind"):
        auto_window(values, kind="mip")


def test_default_window_is_the_header_for_ct_only():
    assert default_window("CT") == "dicom" and default_window(" ct ") == "dicom"
    assert default_window("MR") == "auto" and default_window(None) == "auto" and default_window("PT") == "auto"


def test_a_whole_volume_minip_is_black_and_named_constant(tmp_path, capsys):
    s = _ball_series(tmp_path / "ball", series_number=31, description="ball")
    out = tmp_path / "min.png"
    assert main(["mip", str(s.folder), "--plane", "coronal", "--mode", "min", "--no-labels", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    picture = read_picture(out)
    assert picture.max() == 0  # air is black (it was drawn white)
    lines = [ln for ln in err.splitlines() if "constant" in ln]
    assert len(lines) == 1 and "series 31" in lines[0] and "every pixel 0" in lines[0] and "--slab" in lines[0]
    # the data output says it too, and thin slabs through the ball are not constant
    assert main(["mip", str(s.folder), "--plane", "coronal", "--mode", "min", "-o", str(tmp_path / "m.nii.gz")]) == 0
    assert "constant" in capsys.readouterr().err
    assert main(["mip", str(s.folder), "--plane", "coronal", "--mode", "min", "--slab", "4", "-o",
                 str(tmp_path / "slabs")]) == 0
    captured = capsys.readouterr()
    assert "constant" not in captured.err
    assert max(read_picture(Path(p)).max() for p in captured.out.split()) > 100


def test_mr_reslice_pictures_use_an_automatic_window_ct_keeps_its_header(tmp_path, capsys):
    # An MR header window set for something else (center 50, width 20) would draw the ball white.
    mr = _ball_series(tmp_path / "mr", extra={"WindowCenter": "50", "WindowWidth": "20"})
    assert main(["reslice", str(mr.folder), "--plane", "coronal", "--no-labels", "-o", str(tmp_path / "mr_png")]) == 0
    files = capsys.readouterr().out.split()
    middle = read_picture(Path(files[len(files) // 2]))
    inside = middle[middle > 0]
    assert inside.size > 50
    assert (inside == 255).mean() < 0.5 and inside.max() - inside.min() > 150  # the ball's gradient shows
    # CT: Hounsfield units mean the same everywhere, so the header's window (40/400) stays
    ct = write_series(tmp_path / "ct", shape=(6, 10, 12), field_fn=lambda x, y, z: 5.0 * x + 40.0,
                      modality="CT", stored_dtype=np.int16, extra={"WindowCenter": "40", "WindowWidth": "400"})
    assert main(["reslice", str(ct.folder), "--plane", "axial", "--spacing", "1.25", "--no-labels", "-o",
                 str(tmp_path / "ct_png")]) == 0
    first = read_picture(Path(capsys.readouterr().out.split()[0]))
    hu = sorted({5.0 * x + 40.0 for x in (-30.0, -30.0 + 1.25 * 11)})
    expected = apply_window(np.array(hu), Window(40.0, 400.0))
    assert first.min() == pytest.approx(expected.min(), abs=2) and first.max() == pytest.approx(expected.max(), abs=2)


def test_knee_mips_are_not_pale(tmp_path):
    """The issue's measure: the knee MIPs had a median grey of 210-222 (of 255) over the knee."""
    knee = real("dicom", "knee_t1_j2k")
    for plane in ("axial", "coronal", "sagittal"):
        out = tmp_path / f"{plane}.png"
        assert main(["mip", str(knee), "--plane", plane, "--no-labels", "-o", str(out)]) == 0
        grey = read_picture(out)
        knee_pixels = grey[grey > 20]
        assert 64 < np.median(knee_pixels) < 200, plane
        assert (grey >= 250).mean() > 0.001  # the brightest structures are still white
