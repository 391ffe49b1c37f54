"""Turntables: the rotating MIP two ways, and MP4/WebM against GIF for the same frames.

Usage::

    python benchmarks/make_ct.py benchmarks/data/ct300 --slices 300
    python benchmarks/bench_turntable.py benchmarks/data/ct300 [--frames 36] [--size 600]

1. Rotating MIP of the CT, ``--frames`` views about the patient's long axis at ``--size`` pixels:
   a. VTK's ray cast (the CPU fixed-point caster on llvmpipe, as ``volume render --mode mip``);
   b. exact in mm: for every angle the volume resampled (SimpleITK, trilinear) onto a grid turned
      with the camera, pixels of the picture's size in mm and depth samples every half smallest
      voxel, then the maximum along the depth axis, slab by slab.
   Time per frame for each, and sharpness: mean gradient magnitude of the same frame (grey
   levels per pixel; higher is sharper), and the mean difference between the two pictures.
2. The ray-cast MIP frames, and a volume-rendering turntable of the same CT (colour, shading),
   written as GIF (Pillow, 255 colours), MP4 (H.264, CRF 18) and WebM (VP9, CRF 24): file size,
   encode time, and fidelity (PSNR of the decoded frames against the rendered ones).

Prints ratios between the peers measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from volume import load  # noqa: E402
from volume.ops.reslice import resample  # noqa: E402
from volume.ops.window import projection_window  # noqa: E402
from volume.render.offscreen import TURN_AXES, rotation, turntable  # noqa: E402

SLAB_SAMPLES = 24
"""Depth samples resampled at a time by the exact MIP (bounds its memory)."""


def exact_mip_frames(vol, angles: list[float], size: int, axis: str = "S") -> list[np.ndarray]:
    """Rotating MIP computed in mm at ``angles`` (degrees from the anterior view): (size, size) float32."""
    corners = vol.world(np.array([[k, j, i] for k in (0, vol.shape[0] - 1) for j in (0, vol.shape[1] - 1)
                                  for i in (0, vol.shape[2] - 1)], dtype=float))
    centre = (corners.min(0) + corners.max(0)) / 2
    diameter = float(np.linalg.norm(corners - centre, axis=1).max()) * 2
    pixel = diameter / size
    step = min(vol.spacing) / 2
    depth = int(np.ceil(diameter / step))
    out = []
    for degrees in angles:
        rot = rotation(TURN_AXES[axis], degrees)
        right = rot @ np.array([1.0, 0.0, 0.0])  # anterior view: patient's left on the right
        down = rot @ np.array([0.0, 0.0, -1.0])  # rows run from superior to inferior
        into = rot @ np.array([0.0, 1.0, 0.0])  # from the camera into the patient
        best = None
        for start in range(0, depth, SLAB_SAMPLES):
            n = min(SLAB_SAMPLES, depth - start)
            affine = np.eye(4)
            affine[:3, 0] = into * step
            affine[:3, 1] = down * pixel
            affine[:3, 2] = right * pixel
            affine[:3, 3] = (centre - into * (diameter / 2 - start * step) - down * (diameter / 2 - pixel / 2)
                             - right * (diameter / 2 - pixel / 2))
            slab = np.asarray(resample(vol, affine, (n, size, size), interp="linear").array, dtype=np.float32).max(0)
            best = slab if best is None else np.maximum(best, slab)
        out.append(best)
    return out


def to_grey(frames: list[np.ndarray]) -> list[np.ndarray]:
    w = projection_window(frames[0][frames[0] > frames[0].min()])
    return [np.clip((f - w.low) / (w.high - w.low) * 255, 0, 255).astype(np.uint8) for f in frames]


def sharpness(grey: np.ndarray) -> float:
    g = grey.astype(float)
    gy, gx = np.gradient(g)
    return float(np.hypot(gx, gy).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("series", type=Path)
    ap.add_argument("--frames", type=int, default=36)
    ap.add_argument("--size", type=int, default=600)
    ap.add_argument("--exact-frames", type=int, default=4, help="frames of the exact MIP to time (it is slow)")
    args = ap.parse_args()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  {os.uname().machine}, {os.cpu_count()} cores")
    vol = load(args.series)
    print(f"series {args.series}: {vol.shape} voxels, spacing {tuple(round(s, 3) for s in vol.spacing)} mm")

    t = time.perf_counter()
    rc = turntable(vol, args.frames, mode="mip", size=(args.size, args.size))
    t_rc = (time.perf_counter() - t) / args.frames
    print(f"ray cast MIP: {args.frames} frames of {args.size}x{args.size}, {t_rc:.2f} s per frame")

    n_exact = min(args.exact_frames, args.frames)
    t = time.perf_counter()
    # The first frames only: every frame costs the same.
    exact = exact_mip_frames(vol, [360.0 * k / args.frames for k in range(n_exact)], args.size)
    t_ex = (time.perf_counter() - t) / n_exact
    print(f"exact MIP (resampled in mm): {t_ex:.2f} s per frame ({n_exact} frames timed)")
    print(f"  exact / ray cast time per frame: {t_ex / t_rc:.1f}x")
    grey_ex = to_grey(exact)
    for k in range(n_exact):
        s_rc = sharpness(rc[k][..., 0])
        s_ex = sharpness(grey_ex[k])
        print(f"  frame {k} ({360 * k / args.frames:.0f} deg): sharpness ray cast {s_rc:.2f}, exact {s_ex:.2f} "
              f"(exact / ray cast {s_ex / s_rc:.2f})")
    write_pictures(rc[0], grey_ex[0])

    t = time.perf_counter()
    vr = turntable(vol, args.frames, mode="vr", size=(args.size, args.size))
    print(f"ray cast VR (default preset): {args.frames} frames, {(time.perf_counter() - t) / args.frames:.2f} s per frame")
    for name, frames in (("MIP", rc), ("VR", vr)):
        compare_formats(name, frames)
    return 0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(float) - b.astype(float)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def compare_formats(name: str, frames: list[np.ndarray]) -> None:
    """GIF, MP4, WebM of the same frames: size, encode time, fidelity (PSNR of the decoded frames)."""
    from PIL import Image

    from volume.io.movie import read_movie, write_movie
    from volume.render.offscreen import write_gif

    with tempfile.TemporaryDirectory() as tmp:
        sizes, times = {}, {}
        for suffix, writer in ((".gif", write_gif), (".mp4", write_movie), (".webm", write_movie)):
            path = Path(tmp) / f"spin{suffix}"
            t = time.perf_counter()
            writer(frames, path)
            times[suffix] = time.perf_counter() - t
            sizes[suffix] = path.stat().st_size
            if suffix == ".gif":
                gif = Image.open(path)
                decoded = []
                for k in range(gif.n_frames):
                    gif.seek(k)
                    decoded.append(np.array(gif.convert("RGB")))
            else:
                decoded = read_movie(path)
            quality = np.mean([psnr(a, b) for a, b in zip(frames, decoded, strict=True)])
            print(f"{name} {suffix:5s}: {sizes[suffix] / 1e6:6.2f} MB, encoded in {times[suffix]:.2f} s, "
                  f"PSNR {quality:.1f} dB against the rendered frames")
        for suffix in (".mp4", ".webm"):
            print(f"  {name} {suffix} / .gif: size {sizes[suffix] / sizes['.gif']:.2f}x, "
                  f"encode time {times[suffix] / times['.gif']:.2f}x")
    return 0


def write_pictures(rc: np.ndarray, exact: np.ndarray) -> None:
    from PIL import Image

    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    Image.fromarray(rc).save(out / "turntable_mip_raycast.png")
    Image.fromarray(exact).save(out / "turntable_mip_exact.png")


if __name__ == "__main__":
    sys.exit(main())
