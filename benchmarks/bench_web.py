"""The web view: time to the first picture in a browser, and pictures per second while dragging.

Usage::

    python benchmarks/make_ct.py benchmarks/data/ct300 --slices 300
    python benchmarks/bench_web.py benchmarks/data/ct300 ../shared/data/dicom/brainix/T1 \\
        [--mode vr] [--mode mip] [--local/--no-local] [--drag-s 4] [--runs 2]

For each series, mode and view (the server-rendered one, and with ``--local`` the one the
browser draws): ``volume serve SERIES --mode MODE --port 0 [--local]`` runs as a process
(offscreen, as on a server without a screen) and headless Chromium (Debian's chromium and
chromedriver, driven by selenium; ``--headless --no-sandbox --disable-gpu
--disable-background-networking --disable-component-update --disable-sync --no-first-run``, plus
``--enable-unsafe-swiftshader``: without a GPU, WebGL is Chromium's software SwiftShader, which
newer versions no longer fall back to on their own) opens the page. Measured:

* command start -> URL printed (Python, the series read, the scene built, the socket listening);
* page -> first picture: from the browser's navigation start (``performance.timeOrigin``) to the
  first picture of the view's size (server-rendered: received, at least 0.9 of the view's width;
  local: the view's screenshot shows the body, as the tests judge it, taken every 50 ms);
* page -> full picture (server-rendered view): the second picture of the view's size, the full
  one that follows the quick first one (``volume.render.web.progressive_delivery``);
* dragging: the left button moves across the view for ``--drag-s`` seconds; pictures per second
  the page shows: new pictures received (server-rendered view) or frames vtk.js drew (local view),
  over the drag's time (a hook counts WebGL draws per animation frame).

Peer measured in the same run (server-rendered view): the same Viewer in-process, offscreen, at the
view's size: one still picture and one picture at the interactive rate. The web adds JPEG,
websocket and the browser to that.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WINDOW = (1200, 800)

FULL_WIDTH = 0.9
"""A picture at least this fraction of the view's width is "of the view's size"."""

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-unsafe-swiftshader")

HOOK = """
window.__draw = {frames: [], pictures: []};
let drew = false;
for (const C of [WebGL2RenderingContext, WebGLRenderingContext]) {
  for (const f of ['drawArrays', 'drawElements']) {
    const o = C.prototype[f];
    C.prototype[f] = function (...a) { drew = true; return o.apply(this, a); };
  }
}
(function tick() { if (drew) { window.__draw.frames.push(performance.now()); drew = false; } requestAnimationFrame(tick); })();
new MutationObserver(() => {
  const i = document.querySelector('#view img');
  if (i && !i.__watched) {
    i.__watched = true;
    i.addEventListener('load', () => window.__draw.pictures.push([performance.now(), i.naturalWidth]));
  }
}).observe(document, {subtree: true, childList: true});
"""
"""Injected in the page before its scripts: WebGL frames (local view) and pictures received (remote)."""


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for flag in (*FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='bench-chromium-')}",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        opts.add_argument(flag)
    d = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOOK})
    return d


def shows_body(png: bytes) -> bool:
    """The view shows a rendering: black around something bright (the tests' criterion)."""
    import numpy as np
    from PIL import Image

    pic = np.asarray(Image.open(BytesIO(png)).convert("RGB")).astype(int)
    return bool((pic.sum(-1) < 30).mean() > 0.3 and pic.max() > 150)


def first_picture_s(d, url: str, local: bool, timeout: float = 300) -> float:
    """Seconds from the page's navigation start to the first picture of the view's size.

    Server-rendered view: the first picture received at least :data:`FULL_WIDTH` of the view's
    width (the page asks for pictures at the sizes its layout passes through while loading, 30x30
    among them; the old page showed those stretched first). Local view: the first time the view's
    screenshot shows the body (black around something bright, as the tests judge it; every 50 ms).
    """
    from selenium.common.exceptions import NoSuchElementException, WebDriverException
    from selenium.webdriver.common.by import By

    d.get(url)
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            if local:
                if shows_body(d.find_element(By.ID, "view").screenshot_as_png):
                    return d.execute_script("return performance.now()") / 1000.0
            else:
                width = d.find_element(By.ID, "view").rect["width"]
                for t, natural in d.execute_script("return window.__draw.pictures"):
                    if natural >= FULL_WIDTH * width:
                        return t / 1000.0
        except (NoSuchElementException, WebDriverException):
            pass
        time.sleep(0.05)
    raise TimeoutError("no picture")


def full_picture_s(d, width: float, quiet_s: float = 1.5, timeout: float = 120) -> float | None:
    """Seconds from navigation start to the full picture: the second picture of the view's size
    (the first is the quick one), or the last one before ``quiet_s`` without any."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        full = [t for t, natural in d.execute_script("return window.__draw.pictures") if natural >= FULL_WIDTH * width]
        now = d.execute_script("return performance.now()")
        if len(full) >= 2 and now - full[-1] > quiet_s * 1000:
            return full[1] / 1000.0
        time.sleep(0.2)
    return None


def drag_rate(d, seconds: float, local: bool) -> tuple[float, int]:
    """Pictures (remote) or frames (local) per second while the left button drags across the view."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    view = d.find_element(By.ID, "view")
    key = "frames" if local else "pictures"
    before = len(d.execute_script(f"return window.__draw.{key}"))
    t0 = d.execute_script("return performance.now()")
    steps = max(2, int(seconds / 0.05))
    chain = ActionChains(d, duration=50)
    chain.move_to_element(view).click_and_hold()
    for k in range(steps):
        chain.move_by_offset(4 if (k // 40) % 2 == 0 else -4, 0)
    chain.release().perform()
    t1 = d.execute_script("return performance.now()")
    if not local:
        time.sleep(3.0)  # the last pictures of a slow mode arrive after the button is released
    stamps = [s[0] if isinstance(s, list) else s for s in d.execute_script(f"return window.__draw.{key}")[before:]]
    stamps = [s for s in stamps if s >= t0 and (not local or s <= t1)]
    if not stamps:
        return 0.0, 0
    end = t1 if local else max(stamps[-1], t1)
    return len(stamps) / ((end - t0) / 1000.0), len(stamps)


def view_size(d) -> tuple[int, int]:
    from selenium.webdriver.common.by import By

    r = d.find_element(By.ID, "view").rect
    return int(r["width"]), int(r["height"])


def peer(series: Path, mode: str, size: tuple[int, int]) -> tuple[float, float]:
    """(still, interactive) seconds per picture of the same Viewer in-process."""
    from volume import load
    from volume.render.interactive import build_viewer

    vol = load(series)
    v = build_viewer(vol, mode=mode, size=size, offscreen=True)
    try:
        v.window.Render()
        t = time.perf_counter()
        for _ in range(3):
            v.scene.renderer.GetActiveCamera().Azimuth(2)
            v.window.Render()
        still = (time.perf_counter() - t) / 3
        v.window.SetDesiredUpdateRate(v.interactor.GetDesiredUpdateRate())
        for _ in range(2):  # let the mappers adapt their sampling to the interactive rate
            v.scene.renderer.GetActiveCamera().Azimuth(2)
            v.window.Render()
        t = time.perf_counter()
        for _ in range(5):
            v.scene.renderer.GetActiveCamera().Azimuth(2)
            v.window.Render()
        interactive = (time.perf_counter() - t) / 5
    finally:
        v.close()
    return still, interactive


def run(series: Path, mode: str, local: bool, drag_s: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "volume", "serve", str(series), "--mode", mode, "--port", "0", *(["--local"] if local else [])]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: dict = {"series": series.name, "mode": mode, "view": "local" if local else "server"}
    try:
        url = proc.stdout.readline().strip()
        out["url_s"] = time.perf_counter() - t0
        d = browser()
        try:
            out["first_s"] = first_picture_s(d, url, local)
            out["size"] = view_size(d)
            out["full_s"] = None if local else full_picture_s(d, out["size"][0])
            time.sleep(1.0)
            out["rate"], out["n"] = drag_rate(d, drag_s, local)
            out["errors"] = [e["message"] for e in d.get_log("browser") if e["level"] == "SEVERE"]
        finally:
            d.quit()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("series", type=Path, nargs="+")
    ap.add_argument("--mode", action="append", choices=("vr", "mip", "minip", "iso"))
    ap.add_argument("--local", action=argparse.BooleanOptionalAction, default=True,
                    help="also measure the view the browser draws (--local)")
    ap.add_argument("--drag-s", type=float, default=4.0)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--peer", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()
    modes = args.mode or ["vr", "mip"]
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  {os.uname().machine}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}, browser window {WINDOW[0]}x{WINDOW[1]}")
    for series in args.series:
        for mode in modes:
            for local in ([False, True] if args.local else [False]):
                for _ in range(args.runs):
                    r = run(series, mode, local, args.drag_s)
                    full = f", full picture {r['full_s']:.2f} s" if r.get("full_s") else ""
                    print(f"{r['series']} {mode} {r['view']}: command -> URL {r['url_s']:.1f} s; page -> first picture "
                          f"{r['first_s']:.2f} s{full}; dragging {r['rate']:.1f} pictures/s ({r['n']}); "
                          f"view {r['size'][0]}x{r['size'][1]}; load {os.getloadavg()[0]:.1f}"
                          + (f"; browser errors: {r['errors']}" if r["errors"] else ""), flush=True)
            if args.peer:
                still, interactive = peer(series, mode, r["size"])
                print(f"{series.name} {mode} peer in-process at {r['size'][0]}x{r['size'][1]}: still picture "
                      f"{still:.2f} s, interactive {interactive:.2f} s ({1 / interactive:.1f}/s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
