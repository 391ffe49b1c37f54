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
    assert not any(p.visible for p in viewer.planes.values())
    viewer.press("2")
    assert viewer.planes["coronal"].visible and viewer.active == "coronal"
    with_coronal = viewer.screenshot()
    assert differs(start, with_coronal) > 1
    index = viewer.planes["coronal"].index
    viewer.press("Prior")
    viewer.press("Prior")
    assert viewer.planes["coronal"].index == index + 2
    viewer.press("Next")
    assert viewer.planes["coronal"].index == index + 1
    viewer.press("2")
    assert not viewer.planes["coronal"].visible and viewer.active is None
    assert differs(start, viewer.screenshot()) < 0.5


def status(viewer) -> str:
    return viewer.status.GetInput()


def test_first_view_is_not_cut_by_a_plane(viewer):
    """The first picture is the volume alone: no plane edge-on across the face (issue 15)."""
    first = viewer.screenshot()
    assert "planes hidden" in status(viewer)
    for plane in viewer.planes.values():
        plane.set_visible(False)
    alone = viewer.screenshot()
    assert differs(first, alone) < 0.05
    viewer.planes["coronal"].set_visible(True)
    assert differs(alone, viewer.screenshot()) > 1  # a plane would show: the comparison can fail


def test_keys_2_and_3_show_their_plane_and_the_status_follows(viewer):
    """Every plane key shows its plane, makes it active, and the status line says so (issue 15)."""
    viewer.press("i")
    before = viewer.screenshot()
    viewer.press("2")
    assert "active plane: coronal" in status(viewer)
    coronal = viewer.screenshot()
    assert differs(before, coronal) > 1  # seen face-on from the front: a new picture
    viewer.press("3")
    assert "active plane: sagittal" in status(viewer)
    sagittal = viewer.screenshot()
    # Edge-on from the front: a vertical line through the middle of the body.
    body = (slice(30, -30), slice(0, 250))  # away from the status line, help and orientation cube
    change = np.abs(sagittal[body].astype(int) - coronal[body].astype(int)).sum(axis=(0, 2))
    cols = np.nonzero(change > 0)[0]
    assert cols.size and abs(np.median(cols) - SIZE[0] / 2) < SIZE[0] / 8
    viewer.press("Prior")
    assert "active plane: sagittal 18/32" in status(viewer)
    viewer.press("3")  # hiding the active plane hands the role to the one still shown
    assert "active plane: coronal" in status(viewer)
    viewer.press("1")
    assert "active plane: axial" in status(viewer) and viewer.planes["axial"].visible
    viewer.press("1")
    viewer.press("2")
    assert "planes hidden" in status(viewer)
    assert differs(before, viewer.screenshot()) < 0.5


def drag_frame(viewer) -> tuple[np.ndarray, np.ndarray]:
    """The picture while the left button rotates the camera, and the still picture of that camera.

    The interactor asks for 1000 frames/s while dragging: no render meets that budget, so a
    mapper that trades resolution for speed always does (deterministically, whatever the machine).
    """
    it = viewer.interactor
    it.SetDesiredUpdateRate(1000.0)
    it.SetEventInformation(160, 120, 0, 0, "\0", 0)
    it.InvokeEvent("LeftButtonPressEvent")
    for k in range(1, 4):
        it.SetEventInformation(160 + 6 * k, 120, 0, 0, "\0", 0)
        it.InvokeEvent("MouseMoveEvent")
    moving = snapshot_now(viewer)
    it.InvokeEvent("LeftButtonReleaseEvent")
    return moving, viewer.screenshot()


def snapshot_now(viewer) -> np.ndarray:
    from volume.render.offscreen import snapshot

    return snapshot(viewer.window)  # re-renders at the window's current (interactive) rate


def test_mip_stays_sharp_while_the_mouse_turns_it(viewer):
    """MIP frames drawn while dragging have the still picture's resolution (issue 15: blocky)."""
    viewer.press("m")
    moving, still = drag_frame(viewer)
    assert differs(moving, still) < 0.01  # the same picture (a lowered resolution differs by 0.04+)
    viewer.press("v")  # composite rendering may still lower its resolution while moving
    assert viewer.scene.mapper.GetAutoAdjustSampleDistances() == 1


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
    viewer.press("2")  # the coronal plane shows the window/level
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
    viewer.press("m")  # planes start hidden: only the volume
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


def test_frame_keys_step_through_a_4d_series(display, monkeypatch):
    """[ and ] show the previous and next frame of a 4D series: volume and planes, status line too."""
    import volume

    monkeypatch.setenv("DISPLAY", display)
    base = synthetic_volume(shape=(16, 32, 32), origin=(-47.0, -47.0, -45.0), spacing=(6.0, 3.0, 3.0), field_fn=phantom)
    moved = np.asarray(base.array)[:, :, ::-1]  # frame 1: the ball on the patient's right
    vol = volume.Volume(np.stack([np.asarray(base.array), moved]), base.affine, dict(base.meta))
    v = build_viewer(vol, mode="mip", size=SIZE)
    try:
        first = v.screenshot()
        assert "frame 1/2" in v.status.GetInput()
        v.press("bracketright")
        assert v.scene.frame == 1 and "frame 2/2" in v.status.GetInput()
        second = v.screenshot()
        body = (slice(30, -30), slice(0, 250))
        g1, g2 = (s[body].astype(float).sum(-1) for s in (first, second))
        x1 = np.nonzero(g1 >= 0.9 * g1.max())[1].mean()
        x2 = np.nonzero(g2 >= 0.9 * g2.max())[1].mean()
        assert x1 > x2 + 20  # the ball moved from the picture's right (patient's left) to its left
        v.press("2")
        assert np.array_equal(np.asarray(v.planes["coronal"].actor.GetInput().GetPointData().GetScalars()),
                              np.asarray(v.scene.image.GetPointData().GetScalars()))  # planes show frame 2 too
        v.press("bracketright")  # no frame 3: stays
        assert v.scene.frame == 1
        v.press("bracketleft")
        assert v.scene.frame == 0 and differs(first, v.screenshot()) > 1  # the plane is shown now
    finally:
        v.close()
        v.__dict__.clear()
        gc.collect()
