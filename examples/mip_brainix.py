"""Make the BRAINIX example pictures of the docs (docs/img/brainix_*.png) with the library API.

Run from the checkout (the data sits in ../shared/data beside it)::

    python examples/mip_brainix.py [BRAINIX_FOLDER] [OUT_FOLDER] [--force]

The same pictures from the command line::

    volume mip ../shared/data/dicom/brainix --series 301 --plane coronal -o brainix_t2_mip_coronal.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import volume
from volume.display import display_picture, edge_labels
from volume.io.image import write_picture
from volume.ops.projection import project
from volume.ops.window import choose_window

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "dicom" / "brainix"
PIXEL_MM = 0.6
"""Picture pixel size (mm): a little coarser than the 0.45 mm acquisition keeps each PNG small."""

SERIES = "301"
"""BRAINIX T2 TSE (512 x 512 x 22, 6 mm apart): bright fluid makes a telling MIP."""


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    force = "--force" in argv
    data = Path(args[0]) if args else DEFAULT_DATA
    out = Path(args[1]) if len(args) > 1 else HERE.parent / "docs" / "img"
    vol = volume.load(data, series=SERIES)
    print(vol)
    for plane in ("coronal", "sagittal", "axial"):
        proj = project(vol, plane, "max")
        window, source = choose_window(proj.array, window="auto", kind="projection")  # a MIP, not a slice
        picture, pixel_mm = display_picture(proj, plane, window, pixel_mm=PIXEL_MM)
        path = write_picture(out / f"brainix_t2_mip_{plane}.png", picture, force=force,
                             labels=edge_labels(plane), scale_bar_mm_per_px=pixel_mm)
        print(f"{path}  {picture.shape[1]}x{picture.shape[0]} px, {pixel_mm:.2f} mm/px, "
              f"window {window.center:.0f}/{window.width:.0f} ({source})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
