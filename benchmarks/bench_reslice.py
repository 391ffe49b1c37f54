"""Benchmark: resample a 300-slice 512x512 CT to 1 mm isotropic, volume vs SimpleITK vs scipy.

Usage::

    python benchmarks/bench_reslice.py [--slices 300] [--slice-spacing 1.25] [--repeat 3] [--series DIR]

The CT is built in memory with the phantom of ``benchmarks/make_ct.py`` (0.68 mm pixels), or
loaded from ``--series`` (e.g. a folder ``make_ct.py`` wrote). All contenders run in this process on
the same int16 array and produce float32 linear-interpolated voxels on the same 1 mm grid:

* ``volume``: ``volume.ops.reslice.reslice(vol, spacing=1.0)`` (numpy array in, Volume out);
* ``sitk end-to-end``: ``GetImageFromArray`` + ``ResampleImageFilter.Execute`` + ``GetArrayFromImage``,
  what a SimpleITK user with a numpy volume runs;
* ``sitk Execute only``: the filter on a ready ``sitk.Image`` (no conversions);
* ``scipy``: ``ndimage.affine_transform(order=1)`` (single-threaded).

Best of ``--repeat`` runs, taken round-robin (scipy runs once: it is slow); ratios are time / volume's time (> 1: slower than volume).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def build_ct(slices: int, slice_spacing: float) -> object:
    """An in-memory CT Volume: make_ct's phantom, 512x512, int16 HU, axial, LPS."""
    from make_ct import INTERCEPT, PIXEL_SPACING_MM, phantom_slice

    from volume import Volume

    rng = np.random.default_rng(0)
    size = 512
    data = np.empty((slices, size, size), dtype=np.int16)
    for k in range(slices):
        data[k] = phantom_slice(size, k / max(1, slices - 1), rng) + INTERCEPT
    affine = np.eye(4)
    affine[:3, :3] = np.diag([PIXEL_SPACING_MM, PIXEL_SPACING_MM, slice_spacing])[:, ::-1]
    affine[:3, 3] = (-175.0, -175.0, -slices * slice_spacing / 2)
    return Volume(data, affine, {"modality": "CT"})


def race(contenders: dict, repeat: int) -> dict[str, float]:
    """Best time of each contender, running them round-robin so load from other processes hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeat):
        for name, (fn, rounds) in contenders.items():
            if len(times[name]) >= rounds:
                continue
            t = time.perf_counter()
            result = fn()
            times[name].append(time.perf_counter() - t)
            del result
    return {name: min(v) for name, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--slice-spacing", type=float, default=1.25, help="mm between slices of the in-memory CT")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--series", help="load this DICOM folder instead of building a CT in memory")
    args = parser.parse_args(argv)

    import SimpleITK as sitk
    from scipy import ndimage

    import volume
    from volume.ops.reslice import isotropic_grid, reslice

    if args.series:
        vol = volume.load(args.series)
    else:
        vol = build_ct(args.slices, args.slice_spacing)
    affine, shape = isotropic_grid(vol, 1.0)
    print(f"source {vol!r}")
    print(f"target {'x'.join(map(str, shape))} at 1 mm ({int(np.prod(shape)) / 1e6:.1f} M voxels); "
          f"cores {os.cpu_count()}, SimpleITK threads {sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}")

    src = np.asarray(vol.array)
    a = np.asarray(vol.affine)

    def itk_geometry(m: np.ndarray):
        cols = m[:3, :3][:, ::-1]
        sp = np.linalg.norm(cols, axis=0)
        return tuple(m[:3, 3]), tuple(sp), tuple((cols / sp).ravel())

    def make_image() -> sitk.Image:
        img = sitk.GetImageFromArray(src)
        o, s, d = itk_geometry(a)
        img.SetOrigin(o)
        img.SetSpacing(s)
        img.SetDirection(d)
        return img

    def sitk_filter() -> sitk.ResampleImageFilter:
        f = sitk.ResampleImageFilter()
        o, s, d = itk_geometry(affine)
        f.SetOutputOrigin(o)
        f.SetOutputSpacing(s)
        f.SetOutputDirection(d)
        f.SetSize(shape[::-1])
        f.SetInterpolator(sitk.sitkLinear)
        f.SetDefaultPixelValue(-1024.0)
        f.SetOutputPixelType(sitk.sitkFloat32)
        return f

    ready = make_image()
    m = np.linalg.inv(a) @ affine
    contenders = {
        "volume": (lambda: reslice(vol, spacing=1.0), args.repeat),
        "sitk end-to-end": (lambda: sitk.GetArrayFromImage(sitk_filter().Execute(make_image())), args.repeat),
        "sitk Execute only": (lambda: sitk_filter().Execute(ready), args.repeat),
        "scipy affine_transform": (
            lambda: ndimage.affine_transform(src, m[:3, :3], offset=m[:3, 3], output_shape=shape, order=1,
                                             mode="nearest", output=np.float32), 1),
    }
    results = race(contenders, args.repeat)
    ours = np.asarray(reslice(vol, spacing=1.0).array)
    peer = sitk.GetArrayFromImage(sitk_filter().Execute(ready))
    diff = float(np.max(np.abs(ours - peer)))
    base = results["volume"]
    for name, t in results.items():
        print(f"{name:24s} {t:7.3f} s   ratio {t / base:5.2f}")
    print(f"max |volume - sitk| = {diff:.3g} HU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
