"""Turntables as movies: decoded frame by frame, the patient turns the way the rotation says.

The phantom: an ellipsoid body with a bright ball at the patient's left-anterior-superior, centred
on the origin, written as DICOM. The camera turns counter-clockwise seen from the head of the axis
(``S``: anterior, then the patient's left, posterior, right); where the ball should appear in each
frame follows from the camera's right and up vectors at that angle.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from synth import AXIAL, write_series

from volume.cli import main
from volume.render.offscreen import TURN_AXES, rotation

MARKER = np.array([24.0, -18.0, 20.0])
"""Centre of the bright ball (LPS mm): patient's left, anterior, superior."""
FOV = 96.0
SIZE = (160, 120)
FRAMES = 8


def phantom(x, y, z):
    ball = (x - MARKER[0]) ** 2 + (y - MARKER[1]) ** 2 + (z - MARKER[2]) ** 2 <= 7.0**2
    body = (x / 40) ** 2 + (y / 32) ** 2 + (z / 44) ** 2 <= 1
    return np.where(ball, 1000.0, np.where(body, 200.0, 0.0))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("turntable")
    spacing = (4.0, 3.0, 3.0)
    shape = tuple(int(round(FOV / s)) for s in spacing)
    origin = tuple(-(n - 1) / 2 * s for n, s in zip((shape[2], shape[1], shape[0]), (spacing[2], spacing[1], spacing[0]),
                                                     strict=True))
    write_series(out, shape=shape, iop=AXIAL, origin=origin, pixel_spacing=spacing[1:], slice_spacing=spacing[0],
                 field_fn=phantom)
    return out


@pytest.fixture(autouse=True)
def movie_extra():
    pytest.importorskip("imageio_ffmpeg", reason="the movie extra is not installed (pip install 'volume[movie]')")


def read(path):
    from volume.io.movie import read_movie

    return read_movie(path)


def marker_position(frame: np.ndarray) -> tuple[float, float]:
    """(x, y) picture position of the brightest pixels (the ball)."""
    g = frame.astype(float).sum(-1)
    ys, xs = np.nonzero(g >= 0.85 * g.max())
    return float(xs.mean()), float(ys.mean())


def predicted_offsets(axis: str, n: int) -> np.ndarray:
    """(n, 2) mm of the ball from the picture centre (right, down) in each frame, from the camera."""
    out = []
    for k in range(n):
        rot = rotation(TURN_AXES[axis], 360.0 * k / n)
        right, up = rot @ [1.0, 0.0, 0.0], rot @ [0.0, 0.0, 1.0]  # the anterior view's, turned
        out.append([MARKER @ right, -(MARKER @ up)])
    return np.array(out)


def check_path(frames: list[np.ndarray], axis: str) -> None:
    """The ball sits where the turned camera puts it, in every frame, at one scale for all."""
    measured = np.array([marker_position(f) for f in frames]) - np.array([SIZE[0] / 2, SIZE[1] / 2])
    expected = predicted_offsets(axis, len(frames))
    scale = float((measured * expected).sum() / (expected**2).sum())  # pixels per mm, least squares
    assert scale > 0.5  # positive: the ball turns the way the rotation says, not mirrored
    residual = np.abs(measured - scale * expected).max()
    assert residual < 3.0, (measured, scale * expected)


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_render_mip_turntable_movie(folder, tmp_path, suffix):
    out = tmp_path / f"spin{suffix}"
    rc = main(["render", str(folder), "--mode", "mip", "--turntable", str(FRAMES), "--size", f"{SIZE[0]}x{SIZE[1]}",
               "--no-marker", "-o", str(out)])
    assert rc == 0
    frames = read(out)
    assert len(frames) == FRAMES and frames[0].shape == (SIZE[1], SIZE[0], 3)
    # 180 degrees about the long axis: the MIP from behind is the one from the front, mirrored.
    first, half = frames[0].astype(float), frames[FRAMES // 2].astype(float)
    assert np.abs(half - first[:, ::-1]).mean() < 3.0
    assert np.abs(half - first).mean() > 3 * np.abs(half - first[:, ::-1]).mean()  # and not symmetric
    check_path(frames, "S")
    x0, y0 = marker_position(frames[0])
    x2, _ = marker_position(frames[FRAMES // 4])
    assert x0 > SIZE[0] / 2 and y0 < SIZE[1] / 2  # anterior view: left on the right, superior up
    assert x2 < SIZE[0] / 2  # 90 degrees on: seen from the patient's left, anterior on the left


def test_mip_turntable_about_the_left_right_axis(folder, tmp_path):
    out = tmp_path / "tumble.mp4"
    rc = main(["mip", str(folder), "--turntable", str(FRAMES), "--axis", "L", "--size", f"{SIZE[0]}x{SIZE[1]}",
               "-o", str(out)])
    assert rc == 0
    frames = read(out)
    assert len(frames) == FRAMES
    # Over the head and back: at 180 degrees the camera is behind, upside down: the first picture
    # turned by half a turn.
    first, half = frames[0].astype(float), frames[FRAMES // 2].astype(float)
    assert np.abs(half - first[::-1, ::-1]).mean() < 3.0
    check_path(frames, "L")


def test_existing_movie_is_kept_without_force(folder, tmp_path, capsys):
    out = tmp_path / "spin.mp4"
    out.write_bytes(b"keep me")
    args = ["render", str(folder), "--mode", "mip", "--turntable", "2", "--size", "40x30", "-o", str(out)]
    assert main(args) == 5
    assert out.read_bytes() == b"keep me"
    assert main([*args, "--force"]) == 0
    assert len(read(out)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spin.mp4"]  # no temporary file left


def test_odd_sizes_are_padded_to_even(folder, tmp_path):
    out = tmp_path / "odd.mp4"
    assert main(["render", str(folder), "--mode", "mip", "--turntable", "2", "--size", "41x31", "-o", str(out)]) == 0
    frame = read(out)[0]
    assert frame.shape == (32, 42, 3)
    assert frame[31].max() < 20 and frame[:, 41].max() < 20  # the added row and column are black


@pytest.mark.parametrize("args,message", [
    (["--turntable", "4", "-o", "x.avi"], ".mp4"),
    (["--turntable", "4", "--view", "superior", "--axis", "S", "-o", "x.mp4"], "line of sight"),
    (["--turntable", "0", "-o", "x.mp4"], "1.."),
])
def test_bad_turntables_are_usage_errors(folder, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["render", str(folder), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["render", "--mode", "mip"], ["mip"]])
def test_without_the_movie_extra_one_line_names_it(folder, tmp_path, monkeypatch, capsys, command):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if it were not installed
    out = tmp_path / "spin.mp4"
    assert main([command[0], str(folder), *command[1:], "--turntable", "4", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "volume[movie]" in err and ".mp4" in err
    assert not out.exists()
