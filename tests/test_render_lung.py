"""The ct-lung preset shows lung vessels: a behaviour test on a synthetic chest, not a golden image.

The chest: a soft-tissue body (+40 HU, a fat layer at -100 HU) in air, two lungs of aerated
parenchyma (-850 HU with noise) holding branching vessels (+40 HU), a trachea and bronchi (air
with soft-tissue walls), and a spine. Edges are blurred a little, as a scanner's resolution blurs
them. The same chest is rendered with and without its lung vessels; the pixels where the vessels
project (found by a MIP of the vessels alone, same grid, same camera) must be clearly brighter with
them than without, and brighter than the rest of the lungs in the same picture.
"""

from __future__ import annotations

import numpy as np
import pytest
from synth import synthetic_volume

from volume.render.offscreen import render

pytest.importorskip("vtkmodules")

SIZE = (200, 160)
"""Picture size (width, height)."""

SPACING = (3.0, 2.0, 2.0)
"""(slice, row, column) mm of the synthetic chest."""

BLUR_MM = 0.8
"""Gaussian blur (sigma, mm) standing in for the scanner's resolution."""

PARENCHYMA_HU, TISSUE_HU, FAT_HU, AIR_HU, BONE_HU = -850.0, 40.0, -100.0, -1000.0, 700.0

#: Lung vessels of the left lung as (start, end, radius) in LPS mm; the right lung mirrors them.
LEFT_VESSELS = [
    ((40, 0, 5), (70, -25, 50), 3.0), ((40, 0, 5), (75, 20, 45), 3.0), ((40, 0, 5), (75, -25, -40), 3.0),
    ((40, 0, 5), (72, 25, -45), 3.0), ((40, 0, 5), (90, 0, 5), 2.5), ((55, -12, 28), (68, 5, 40), 2.0),
]
#: Trachea and main bronchi (centre line, lumen radius); walls 1.5 mm of soft tissue.
AIRWAYS = [((0, 5, 75), (0, 5, 20), 7.0), ((0, 5, 20), (35, 5, 5), 5.0), ((0, 5, 20), (-35, 5, 5), 5.0)]
WALL_MM = 1.5


def _segment_distance(p: np.ndarray, a, b) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)


def _regions(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
    p = np.stack([x, y, z], axis=-1)
    lungs = np.zeros(x.shape, bool)
    for side in (1, -1):
        lungs |= ((x - side * 58) / 45) ** 2 + ((y - 5) / 55) ** 2 + (z / 80) ** 2 <= 1.0
    vessels = np.zeros(x.shape, bool)
    for side in (1, -1):
        for a, b, r in LEFT_VESSELS:
            mirror = np.array([side, 1, 1])
            vessels |= _segment_distance(p, np.multiply(a, mirror), np.multiply(b, mirror)) <= r
    airway = np.zeros(x.shape, bool)
    wall = np.zeros(x.shape, bool)
    for a, b, r in AIRWAYS:
        d = _segment_distance(p, a, b)
        airway |= d <= r
        wall |= d <= r + WALL_MM
    return {
        "body": (x / 120) ** 2 + (y / 80) ** 2 <= 1.0,
        "muscle": (x / 110) ** 2 + (y / 72) ** 2 <= 1.0,
        "lungs": lungs,
        "vessels": vessels & lungs & ~wall,
        "wall": wall,
        "airway": airway,
        "spine": (x / 15) ** 2 + ((y - 60) / 15) ** 2 <= 1.0,
    }


def chest_volumes() -> dict[str, object]:
    """The synthetic chest CT (``chest``), the same without lung vessels (``no-vessels``), and
    masks on the same grid (``vessels``, ``lungs``: 1000 inside, 0 outside), as Volumes."""
    from scipy import ndimage

    shape = (int(180 / SPACING[0]), int(170 / SPACING[1]), int(250 / SPACING[2]))
    origin = (-124.0, -84.0, -90.0)
    grid = synthetic_volume(shape=shape, origin=origin, spacing=SPACING, field_fn=lambda x, y, z: x, dtype=np.float32)
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    world = np.stack([k, j, i], axis=-1) @ grid.affine[:3, :3].T + grid.affine[:3, 3]
    r = _regions(world[..., 0], world[..., 1], world[..., 2])
    meta = {"modality": "CT", "series_description": "chest"}
    out = {}
    for kind in ("chest", "no-vessels"):
        hu = np.full(shape, AIR_HU)
        hu[r["body"]] = FAT_HU
        hu[r["muscle"]] = TISSUE_HU
        noise = np.random.default_rng(0).normal(0.0, 25.0, size=shape)
        hu[r["lungs"]] = PARENCHYMA_HU + noise[r["lungs"]]
        if kind == "chest":
            hu[r["vessels"]] = TISSUE_HU
        hu[r["wall"] & r["body"]] = TISSUE_HU
        hu[r["airway"] & r["body"]] = AIR_HU
        hu[r["spine"]] = BONE_HU
        blurred = ndimage.gaussian_filter(hu, [BLUR_MM / s for s in SPACING])
        out[kind] = grid.with_array(np.rint(blurred).astype(np.int16), **meta)
    for kind in ("vessels", "lungs"):
        out[kind] = grid.with_array(np.where(r[kind], 1000.0, 0.0).astype(np.float32), **meta)
    return out


def luminance(img: np.ndarray) -> np.ndarray:
    return img.astype(float) @ np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def pictures() -> dict[str, np.ndarray]:
    vols = chest_volumes()
    out = {}
    for view in ("anterior", "left"):
        for kind in ("chest", "no-vessels"):
            out[kind, view] = luminance(render(vols[kind], mode="vr", preset="ct-lung", view=view, size=SIZE))
        for kind in ("vessels", "lungs"):  # where they project: same grid, same camera
            out[kind, view] = luminance(render(vols[kind], mode="mip", window=(0, 1000), view=view, size=SIZE)) > 128
    return out


MIN_VESSEL_LUMINANCE = 50.0
"""Mean grey level (0..255) of the vessel pixels below which the vessels count as faint."""

MIN_GAIN = 12.0
"""Grey levels the vessels must add where they project (with minus without them)."""


@pytest.mark.parametrize("view", ["anterior", "left"])
def test_lung_vessels_are_visibly_brighter(pictures, view):
    from scipy import ndimage

    vessels = pictures["vessels", view]
    lungs = pictures["lungs", view]
    assert vessels.sum() > 0.01 * vessels.size, "the vessels should cover part of the picture"
    with_vessels = pictures["chest", view]
    without = pictures["no-vessels", view]
    shown = with_vessels[vessels].mean()
    assert shown > MIN_VESSEL_LUMINANCE, f"vessels faint: mean grey {shown:.1f}"
    # the same pixels with and without the vessels behind them: clearly brighter with them
    assert shown - without[vessels].mean() > MIN_GAIN
    assert shown > 1.15 * without[vessels].mean()
    # and brighter than the rest of the lungs in the same picture
    around = lungs & ~ndimage.binary_dilation(vessels, iterations=3)
    assert around.sum() > 0.01 * around.size
    assert shown > 1.25 * with_vessels[around].mean()
