"""The web view: time to the first picture in a browser, and frames per second while rotating.

Usage::

    python benchmarks/make_ct.py benchmarks/data/ct300 --slices 300
    python benchmarks/bench_web.py benchmarks/data/ct300 [--mode vr] [--mode mip] [--drag-s 4]

For each mode: ``volume serve SERIES --mode MODE --port 0`` is started as a process (offscreen, as
on a server without a screen) and the page opened in headless Chromium (Debian's chromium and
chromedriver, driven by selenium). Measured:

* command start -> URL printed (the series loaded, the scene built, the socket listening);
* page requested -> first picture shown (the page's scripts, the websocket, the first render,
  JPEG encoding and transfer);
* while the left button drags across the view for ``--drag-s`` seconds: pictures the browser
  shows per second, from the button press to the last picture the drag produced (a
  MutationObserver counts the view's image updates).

Peer measured in the same run: the same Viewer in-process (offscreen, the page's view size):
time of one still render and of one render while interacting. The ratio says what the web
(JPEG, websocket, browser) adds to the rendering itself.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WINDOW = (1200, 800)

COUNT_FRAMES = """
const img = document.querySelector('#view img');
window.__frames = [];
window.__start = performance.now();
new MutationObserver(() => window.__frames.push(performance.now()))
    .observe(img, {attributes: true, attributeFilter: ['src']});
"""


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='bench-chromium-')}", f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def first_picture_s(d, url: str, timeout: float = 300) -> float:
    t0 = time.perf_counter()
    d.get(url)
    while time.perf_counter() - t0 < timeout:
        ok = d.execute_script("const i = document.querySelector('#view img');"
                              "return !!(i && i.src && i.complete && i.naturalWidth > 0);")
        if ok:
            return time.perf_counter() - t0
        time.sleep(0.05)
    raise TimeoutError("no picture")


def drag_fps(d, seconds: float) -> tuple[float, int]:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    view = d.find_element(By.ID, "view")
    d.execute_script(COUNT_FRAMES)
    steps = max(2, int(seconds / 0.05))
    chain = ActionChains(d, duration=50)
    chain.move_to_element(view).click_and_hold()
    for k in range(steps):
        chain.move_by_offset(4 if (k // 40) % 2 == 0 else -4, 0)
    chain.release().perform()
    time.sleep(3.0)  # the last pictures of a slow mode arrive after the button is released
    stamps, start = d.execute_script("return [window.__frames, window.__start];")
    if not stamps:
        return 0.0, 0
    # From the button press to the last picture: counts every picture the drag produced.
    return len(stamps) / ((stamps[-1] - start) / 1000.0), len(stamps)


def view_size(d) -> tuple[int, int]:
    from selenium.webdriver.common.by import By

    r = d.find_element(By.ID, "view").rect
    return int(r["width"]), int(r["height"])


def peer(series: Path, mode: str, size: tuple[int, int]) -> tuple[float, float]:
    """(still, interactive) seconds per render of the same Viewer in-process."""
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("series", type=Path)
    ap.add_argument("--mode", action="append", choices=("vr", "mip", "minip", "iso"))
    ap.add_argument("--drag-s", type=float, default=4.0)
    args = ap.parse_args()
    modes = args.mode or ["vr", "mip"]
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  {os.uname().machine}, {os.cpu_count()} cores, "
          f"browser window {WINDOW[0]}x{WINDOW[1]}")
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    for mode in modes:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "volume", "serve", str(args.series), "--mode", mode, "--port", "0"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = proc.stdout.readline().strip()
            t_url = time.perf_counter() - t0
            d = browser()
            try:
                t_first = first_picture_s(d, url)
                size = view_size(d)
                fps, n = drag_fps(d, args.drag_s)
            finally:
                d.quit()
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        still, interactive = peer(args.series, mode, size)
        print(f"{mode}: command -> URL {t_url:.1f} s; page -> first picture {t_first:.1f} s; "
              f"command -> first picture {t_url + t_first:.1f} s (view {size[0]}x{size[1]})")
        print(f"{mode}: dragging: {fps:.1f} pictures/s in the browser ({n} pictures)")
        print(f"{mode}: peer, same Viewer in-process at {size[0]}x{size[1]}: still render {still:.2f} s, "
              f"interactive render {interactive:.2f} s ({1 / interactive:.1f}/s); "
              f"browser rate / in-process interactive rate = {fps * interactive:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
