"""``volume view`` for real: an X window on a virtual screen (Xvfb), keys sent through the interactor.

The tests start their own Xvfb on a free display number (``-displayfd``) and skip cleanly when
Xvfb is not installed (CI's ``.ci/run`` installs it).
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image
from synth import AXIAL, synthetic_volume, write_series

from volume.cli import main
from volume.render.interactive import build_viewer

MARKER = np.array([20.0, -15.0, 25.0])
"""Bright ball at the patient's left-anterior-superior (LPS mm)."""
SIZE = (320, 240)
"""Window size (width, height)."""
STARTUP_S = 20
"""Longest wait for Xvfb or the viewer process to come up."""


def phantom(x, y, z):
    ball = (x - MARKER[0]) ** 2 + (y - MARKER[1]) ** 2 + (z - MARKER[2]) ** 2 <= 64
    body = (x / 40) ** 2 + (y / 30) ** 2 + (z / 42) ** 2 <= 1
    return np.where(ball, 1000.0, np.where(body, 300.0, 0.0))


@pytest.fixture(scope="module")
def display():
    """A fresh Xvfb server; yields its DISPLAY string (":N")."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    number = b""
    deadline = time.monotonic() + STARTUP_S
    while not number.endswith(b"\n") and time.monotonic() < deadline:
        chunk = os.read(read_fd, 16)
        if not chunk:
            break
        number += chunk
    os.close(read_fd)
    if not number.strip():
        proc.kill()
        pytest.skip("Xvfb did not start")
    try:
        yield f":{int(number)}"
    finally:
        gc.collect()  # free the viewers' X connections before the server goes away
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def viewer(display, monkeypatch, tmp_path):
    monkeypatch.setenv("DISPLAY", display)
    vol = synthetic_volume(shape=(16, 32, 32), origin=(-47.0, -47.0, -45.0), spacing=(6.0, 3.0, 3.0), field_fn=phantom)
    v = build_viewer(vol, size=SIZE, screenshot_dir=tmp_path)
    try:
        yield v
    finally:
        v.close()
        # pytest keeps the fixture value until the end of the test's teardown: drop the VTK
        # objects now, so the X connection closes while the server still runs.
        v.__dict__.clear()
        gc.collect()


def differs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def test_window_is_an_x_window_of_the_requested_size(viewer):
    assert "X" in type(viewer.window).__name__  # a real on-screen window, not EGL offscreen
    shot = viewer.screenshot()
    assert shot.shape == (SIZE[1], SIZE[0], 3)
    assert shot.max() > 100
    assert viewer.marker.GetEnabled() == 1


def test_mode_keys_change_the_picture(viewer):
    shots = {"v": viewer.screenshot()}
    for key, mode in (("m", "mip"), ("n", "minip"), ("i", "iso"), ("v", "vr")):
        viewer.press(key)
        assert viewer.scene.mode == mode
        shots[mode] = viewer.screenshot()
    assert differs(shots["v"], shots["mip"]) > 1
    assert differs(shots["mip"], shots["iso"]) > 1
    assert differs(shots["mip"], shots["minip"]) > 1
    assert differs(shots["vr"], shots["v"]) < 0.5  # back to where we started
    assert viewer.marker.GetEnabled() == 1  # 'i' must not toggle the orientation widget


def test_plane_keys_and_page_keys(viewer):
    viewer.press("i")  # isosurface of the marker only: the planes are what shows of the body
    start = viewer.screenshot()
    assert all(p.visible for p in viewer.planes.values())
    viewer.press("2")
    assert not viewer.planes["coronal"].visible
    no_coronal = viewer.screenshot()
    assert differs(start, no_coronal) > 1
    viewer.press("2")
    assert viewer.planes["coronal"].visible and viewer.active == "coronal"
    index = viewer.planes["coronal"].index
    viewer.press("Prior")
    viewer.press("Prior")
    assert viewer.planes["coronal"].index == index + 2
    viewer.press("Next")
    assert viewer.planes["coronal"].index == index + 1
    for key in ("1", "3"):
        viewer.press(key)
    assert not viewer.planes["axial"].visible and not viewer.planes["sagittal"].visible


def test_reset_camera_restores_the_anterior_view(viewer):
    before = viewer.screenshot()
    viewer.scene.renderer.GetActiveCamera().Azimuth(70)
    turned = viewer.screenshot()
    assert differs(before, turned) > 1
    viewer.press("r")
    assert differs(before, viewer.screenshot()) < 0.5


def test_screenshot_key_writes_numbered_pngs(viewer, tmp_path):
    viewer.press("s")
    viewer.press("s")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["volume-screenshot-001.png", "volume-screenshot-002.png"]
    img = np.array(Image.open(tmp_path / names[0]).convert("RGB"))
    assert img.shape == (SIZE[1], SIZE[0], 3) and img.max() > 100


def test_right_drag_changes_window_level(viewer):
    before = viewer.screenshot()
    wl = list(viewer.wl)
    it = viewer.interactor
    it.SetEventInformation(100, 100, 0, 0, "\0", 0)
    it.InvokeEvent("RightButtonPressEvent")
    it.SetEventInformation(160, 60, 0, 0, "\0", 0)
    it.InvokeEvent("MouseMoveEvent")
    it.InvokeEvent("RightButtonReleaseEvent")
    assert viewer.wl[0] > wl[0]  # dragged right: wider window
    assert viewer.wl[1] > wl[1]  # dragged down: higher level (darker)
    assert differs(before, viewer.screenshot()) > 0.2
    # The camera did not move (the default right-drag would zoom).
    cam = viewer.scene.renderer.GetActiveCamera()
    scale = cam.GetParallelScale()
    it.SetEventInformation(10, 10, 0, 0, "\0", 0)
    it.InvokeEvent("MouseMoveEvent")
    assert cam.GetParallelScale() == scale


def test_anterior_view_marker_upper_right_in_the_window(viewer):
    for key in ("1", "2", "3"):  # planes off: only the volume
        viewer.press(key)
    viewer.press("m")
    shot = viewer.screenshot().astype(float).sum(-1)
    body = shot[30:-30, 20:-70]  # away from the status/help text and the orientation cube
    ys, xs = np.nonzero(body >= 0.9 * body.max())
    assert xs.mean() + 20 > SIZE[0] / 2 and ys.mean() + 30 < SIZE[1] / 2


def test_view_command_opens_and_closes_on_ctrl_c(display, tmp_path):
    folder = tmp_path / "series"
    write_series(folder, shape=(8, 24, 24), iop=AXIAL, origin=(-36.0, -36.0, -20.0), pixel_spacing=(3.0, 3.0),
                 slice_spacing=5.0, field_fn=phantom)
    env = {**os.environ, "DISPLAY": display}
    proc = subprocess.Popen(
        [sys.executable, "-m", "volume", "view", str(folder), "--size", "300x200", "--screenshots", str(tmp_path)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stderr.readline()  # blocks until the window is open (or the process died)
        assert "window open" in line, line + proc.stderr.read()
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=STARTUP_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 130
    assert "Traceback" not in proc.stderr.read()


def test_view_without_a_display_is_a_clear_usage_error(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "series"
    write_series(folder, shape=(4, 8, 8), field_fn=phantom)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["view", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "display" in err and "volume render" in err
