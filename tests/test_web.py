"""``volume serve`` / ``volume view --web`` for real: the server as a process, the page in headless Chromium.

The browser tests need Debian's chromium and chromium-driver (``.ci/run`` installs them), selenium
and the ``web`` extra; they skip, saying which is missing, when one is absent. The phantom is the
one of the window tests: an ellipsoid body with a bright ball at the patient's left-anterior-superior.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from io import BytesIO

import numpy as np
import pytest
from PIL import Image
from synth import AXIAL, write_series

from volume.cli import main

MARKER = np.array([20.0, -15.0, 25.0])
"""Bright ball at the patient's left-anterior-superior (LPS mm)."""
PATIENT = "Doe^Jane"
"""The synthetic series' patient name (tests/synth.py): must not reach the page."""
START_S = 60
"""Longest wait for the server to print its URL, or for the first picture."""
WINDOW = (1100, 800)
"""Browser window size."""


def phantom(x, y, z):
    ball = (x - MARKER[0]) ** 2 + (y - MARKER[1]) ** 2 + (z - MARKER[2]) ** 2 <= 64
    body = (x / 40) ** 2 + (y / 30) ** 2 + (z / 42) ** 2 <= 1
    return np.where(ball, 1000.0, np.where(body, 300.0, 0.0))


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web-series")
    write_series(folder, shape=(20, 32, 32), iop=AXIAL, origin=(-47.0, -47.0, -47.5), pixel_spacing=(3.0, 3.0),
                 slice_spacing=5.0, field_fn=phantom)
    return folder


def start_server(*args: str) -> tuple[subprocess.Popen, str]:
    """``volume serve ARGS --port 0`` as a process; returns it and the URL it printed."""
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # offscreen, as on a server
    proc = subprocess.Popen(
        [sys.executable, "-m", "volume", "serve", *args, "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + START_S
    url = ""
    while time.monotonic() < deadline:
        url = proc.stdout.readline().strip()
        if url or proc.poll() is not None:
            break
    if not url.startswith("http://"):
        proc.kill()
        raise AssertionError(f"no URL printed: {url!r} {proc.stderr.read()}")
    return proc, url


def stop_server(proc: subprocess.Popen) -> tuple[int, str]:
    """Ctrl-C; returns the exit code and what it printed on stderr."""
    proc.send_signal(signal.SIGINT)
    try:
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return rc, proc.stderr.read()


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def base_of(url: str) -> str:
    return url.split("/index.html")[0]


@pytest.fixture(scope="module")
def server(series):
    pytest.importorskip("trame", reason="the web extra is not installed (pip install 'volume[web]')")
    proc, url = start_server(str(series), "--mode", "mip")
    try:
        yield proc, url
    finally:
        if proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):  # (stop_server kills it then)
                stop_server(proc)


def chromium_paths() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("Chromium is not installed (apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium", reason="selenium is not installed (pip install 'volume[web-test]')")
    return browser, driver


def new_browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = chromium_paths()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='volume-chromium-')}",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.fixture
def browser():
    chromium_paths()
    d = new_browser()
    try:
        yield d
    finally:
        d.quit()


def view_picture(d) -> np.ndarray:
    """The 3D view's pixels as the browser shows them, ``(H, W, 3)`` uint8."""
    from selenium.webdriver.common.by import By

    png = d.find_element(By.ID, "view").screenshot_as_png
    return np.array(Image.open(BytesIO(png)).convert("RGB"))


def wait_for(d, check, what: str, timeout: float = START_S) -> np.ndarray:
    """Poll the view's picture until ``check(picture)`` holds."""
    from selenium.common.exceptions import NoSuchElementException

    deadline = time.monotonic() + timeout
    while True:
        try:
            pic = view_picture(d)
            if check(pic):
                return pic
        except NoSuchElementException:  # the page is still being built
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def rendered(pic: np.ndarray) -> bool:
    """The view shows a rendering: the black background around something bright (not a white page)."""
    return (pic.sum(-1) < 30).mean() > 0.3 and body_region(pic).max() > 150


def body_region(pic: np.ndarray) -> np.ndarray:
    """The picture without the status line (top) and the orientation cube (upper right)."""
    h, w = pic.shape[:2]
    out = pic.copy()
    out[: int(0.08 * h)] = 0
    out[: int(0.35 * h), int(0.78 * w):] = 0
    return out


def bright_centroid(pic: np.ndarray) -> tuple[float, float]:
    g = pic.astype(float).sum(-1)
    ys, xs = np.nonzero(g >= 0.9 * g.max())
    return float(xs.mean()), float(ys.mean())


def differs(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return 255.0
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def red_rows(pic: np.ndarray) -> np.ndarray:
    """Rows where the axial plane's red outline is drawn."""
    r, g, b = (pic[..., i].astype(int) for i in range(3))
    return np.nonzero(((r > 180) & (g < 140) & (b < 140)).sum(axis=1) > 10)[0]


def click(d, element_id: str) -> None:
    from selenium.webdriver.common.by import By

    d.find_element(By.ID, element_id).click()


def test_page_shows_the_volume_and_follows_its_controls(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _proc, url = server
    d = browser
    d.get(url)
    first = wait_for(d, rendered, "the first picture")
    assert PATIENT.split("^")[0] not in d.title and "volume" in d.title
    assert PATIENT.split("^")[0] not in d.page_source
    # The page's script asks the server for its websocket first (wslink's launcher): answered, no 405.
    errors = [e["message"] for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    pic = body_region(first)
    h, w = pic.shape[:2]
    assert (pic.sum(-1) > 60).mean() > 0.05, "the body is not drawn"
    x, y = bright_centroid(pic)
    assert x > w / 2 and y < h / 2, (x, y)  # anterior view: patient's left on the right, superior up

    click(d, "mode-iso")
    iso = wait_for(d, lambda p: differs(p, first) > 2, "the isosurface")
    assert "isosurface" in d.find_element(By.ID, "status").text
    click(d, "mode-mip")
    wait_for(d, lambda p: differs(p, first) < 1, "the MIP again")

    click(d, "show-axial")  # the axial plane, edge-on from the front: its red outline is a line
    shown = wait_for(d, lambda p: red_rows(body_region(p)).size > 0, "the axial plane")
    assert "active plane: axial" in d.find_element(By.ID, "status").text
    before = red_rows(body_region(shown)).mean()
    thumb = d.find_element(By.CSS_SELECTOR, "#slider-axial input")
    thumb.send_keys(*[Keys.ARROW_RIGHT] * 6)  # six slices up: 30 mm superior
    # 30 mm up on a picture whose height covers the volume's 95 mm (plus a margin): about a quarter.
    moved = wait_for(d, lambda p: red_rows(body_region(p)).size > 0
                     and red_rows(body_region(p)).mean() < before - 0.15 * h, "the axial plane to move 30 mm up")
    after = red_rows(body_region(moved)).mean()
    assert before - after < 0.4 * h, (before, after, h)
    assert "axial 17/20" in d.find_element(By.ID, "status").text
    assert differs(iso, moved) > 1


@pytest.fixture(scope="module")
def local_server(series):
    pytest.importorskip("trame", reason="the web extra is not installed (pip install 'volume[web]')")
    proc, url = start_server(str(series), "--local")
    try:
        yield proc, url
    finally:
        if proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):  # (stop_server kills it then)
                stop_server(proc)


def test_local_view_is_drawn_by_the_browser(local_server, browser):
    """--local: vtk.js draws the scene in a WebGL canvas (no picture comes from the server)."""
    from selenium.webdriver.common.by import By

    _proc, url = local_server
    d = browser
    d.get(url)
    first = wait_for(d, rendered, "the browser's first picture")
    assert d.find_elements(By.CSS_SELECTOR, "#view canvas") and not d.find_elements(By.CSS_SELECTOR, "#view img")
    assert PATIENT.split("^")[0] not in d.title and PATIENT.split("^")[0] not in d.page_source
    x, y = bright_centroid(first)
    h, w = first.shape[:2]
    assert x > w / 2 and y < h / 2, (x, y)  # anterior view: patient's left on the right, superior up
    click(d, "mode-iso")
    wait_for(d, lambda p: differs(p, first) > 2, "the browser's isosurface")
    assert "isosurface" in d.find_element(By.ID, "status").text


def test_two_browsers_share_the_server_and_closing_one_keeps_it(server, browser):
    _proc, url = server
    first = browser
    first.get(url)
    wait_for(first, rendered, "the first browser's picture")
    second = new_browser()
    try:
        second.get(url)
        wait_for(second, rendered, "the second browser's picture")
    finally:
        second.quit()
    assert _proc.poll() is None  # still serving
    assert status_of(url) == 200
    before = view_picture(first)
    click(first, "mode-minip")
    wait_for(first, lambda p: differs(p, before) > 2, "a new picture after the other browser left")
    click(first, "mode-mip")


def test_requests_without_the_token_are_refused(server):
    _proc, url = server
    base = base_of(url)
    assert status_of(url) == 200
    for path in ("/", "/index.html", "/ws", "/index.html?token=wrong", "/index.html?token="):
        assert status_of(base + path) == 403, path
    host, port = base.removeprefix("http://").split(":")
    assert host == "127.0.0.1"  # loopback unless asked


def test_ctrl_c_stops_the_server_cleanly(series):
    pytest.importorskip("trame", reason="the web extra is not installed (pip install 'volume[web]')")
    proc, url = start_server(str(series))
    assert status_of(url) == 200
    rc, err = stop_server(proc)
    assert rc == 130
    assert "Traceback" not in err
    host, port = base_of(url).removeprefix("http://").split(":")
    with pytest.raises(OSError):  # nothing left listening
        socket.create_connection((host, int(port)), timeout=5).close()


def test_other_host_only_when_asked_and_with_a_warning(series):
    pytest.importorskip("trame", reason="the web extra is not installed (pip install 'volume[web]')")
    proc, url = start_server(str(series), "--host", "0.0.0.0")
    try:
        assert status_of(url) == 200
    finally:
        rc, err = stop_server(proc)
    assert rc == 130
    assert "reachable from other machines" in err


def test_a_series_too_big_is_refused_before_serving(series, capsys):
    assert main(["serve", str(series), "--max-memory", "1K", "--port", "0"]) == 4
    err = capsys.readouterr().err
    assert "max-memory" in err and "Traceback" not in err and "http://" not in err


def test_without_the_web_extra_one_line_says_what_to_install(series, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "trame", None)  # import trame fails as if it were absent
    assert main(["view", str(series), "--web", "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "volume[web]" in err


def test_page_title_hides_identity_unless_asked():
    import volume
    from volume.render.web import page_title

    vol = volume.Volume(np.zeros((2, 2, 2), np.int16), np.eye(4),
                        {"series_description": "T1 axial", "identity": {"PatientName": PATIENT, "PatientID": "PID-0042"}})
    assert page_title(vol) == "volume: T1 axial"
    assert page_title(vol, keep_phi=True) == f"volume: T1 axial ({PATIENT} PID-0042)"


def test_token_middleware_sets_a_cookie_that_lets_the_page_load_its_files():
    pytest.importorskip("aiohttp")
    import asyncio

    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from volume.render.web import TOKEN_COOKIE, token_middleware

    async def run() -> None:
        async def ok(_request):
            return web.Response(text="ok")

        app = web.Application(middlewares=[token_middleware("s3cret")])
        app.router.add_get("/{name}", ok)
        async with TestClient(TestServer(app)) as client:
            assert (await client.get("/app.js")).status == 403
            first = await client.get("/index.html?token=s3cret")
            assert first.status == 200 and TOKEN_COOKIE in first.cookies
            assert (await client.get("/app.js")).status == 200  # the cookie now opens the page's files

    asyncio.run(run())


def test_dragging_a_slow_mip_renders_smaller_pictures_never_a_fast_one():
    from volume.render.web import MIN_INTERACTIVE_RATIO, interactive_ratio

    assert interactive_ratio("vr", 5.0) == 1.0  # VTK lowers composite sampling itself
    assert interactive_ratio("mip", 0.1) == 1.0  # fast enough at full size
    assert interactive_ratio("mip", 0.8) == pytest.approx(0.5)  # a quarter of the pixels: 0.2 s
    assert interactive_ratio("minip", 100.0) == MIN_INTERACTIVE_RATIO


def test_picture_requests_in_a_burst_get_one_quick_picture_then_the_full_one():
    """The page asks for a picture at every size its layout passes through while it loads; the
    server draws one quick picture after the burst, then the full one when no request follows."""
    pytest.importorskip("trame", reason="the web extra is not installed (pip install 'volume[web]')")
    import asyncio

    from synth import synthetic_volume
    from trame_vtk.modules.vtk.protocols import vtkWebPublishImageDelivery

    from volume.render.interactive import build_viewer
    from volume.render.web import COALESCE_SECONDS, SETTLE_SECONDS, progressive_delivery

    viewer = build_viewer(synthetic_volume(shape=(8, 12, 12)), mode="mip", size=(80, 60), offscreen=True)
    drawn: list[tuple[str, bool, float]] = []

    def record(self, v_id, ignore_animation=False, stale_count=0):
        drawn.append((v_id, viewer.layer.preview, viewer.window.GetDesiredUpdateRate()))

    class App:
        def InvalidateCache(self, _view):  # noqa: N802 - vtkWebApplication's name
            pass

    async def burst() -> None:
        delivery = progressive_delivery(viewer)
        delivery.get_view = lambda v_id: viewer.window
        type(delivery).app = property(lambda self: App())
        for _ in range(5):
            delivery.push_render("7")
        await asyncio.sleep(COALESCE_SECONDS + SETTLE_SECONDS + 0.5)

    saved = vtkWebPublishImageDelivery.push_render
    vtkWebPublishImageDelivery.push_render = record
    try:
        asyncio.run(burst())
    finally:
        vtkWebPublishImageDelivery.push_render = saved
        viewer.close()
    quick_rate = viewer.interactor.GetDesiredUpdateRate()
    assert drawn == [("7", True, quick_rate), ("7", False, viewer.interactor.GetStillUpdateRate())]


def test_local_option_needs_the_web_view(series, capsys):
    assert main(["view", str(series), "--local"]) == 2
    err = capsys.readouterr().err
    assert "--web" in err and "Traceback" not in err


def test_a_port_in_use_is_one_clear_line(series):
    pytest.importorskip("trame", reason="the web extra is not installed (pip install 'volume[web]')")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
        done = subprocess.run([sys.executable, "-m", "volume", "serve", str(series), "--port", str(port)],
                              env=env, capture_output=True, text=True, timeout=START_S)
    assert done.returncode == 2
    assert done.stdout == ""  # no URL printed
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "--port" in lines[0]
