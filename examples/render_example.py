"""Make the rendering example pictures of the docs (docs/img/render_*.png) from real series, with the library API.

Run from the checkout (the data sits in ../shared/data beside it)::

    python examples/render_example.py [DICOM_FOLDER] [OUT_FOLDER] [--force]

No display is needed (VTK renders offscreen through EGL). The same pictures from the command line::

    volume render ../shared/data/dicom/brainix/T1 --view anterior --azimuth -35 --elevation 10 \\
        --size 360x300 -o render_brainix_t1_vr.png
    volume render ../shared/data/dicom/brainix/T1 --mode mip --view left --size 360x300 -o render_brainix_t1_mip_left.png
    volume render ../shared/data/dicom/knee_t1_j2k --view anterior --size 300x300 -o render_knee_vr.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import volume
from volume.errors import OutputExistsError
from volume.io.image import write_picture
from volume.render.offscreen import render

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "dicom"

PICTURES = {
    "render_brainix_t1_vr.png": ("brainix/T1", dict(mode="vr", view="anterior", azimuth=-35.0, elevation=10.0, size=(360, 300))),
    "render_brainix_t1_mip_left.png": ("brainix/T1", dict(mode="mip", view="left", size=(360, 300))),
    "render_knee_vr.png": ("knee_t1_j2k", dict(mode="vr", view="anterior", size=(300, 300))),
}
"""Output name -> (series folder under the data folder, rendering options)."""


def main(argv: list[str]) -> int:
    force = "--force" in argv
    args = [a for a in argv if a != "--force"]
    data = Path(args[0]) if args else DEFAULT_DATA
    out = Path(args[1]) if len(args) > 1 else HERE.parent / "docs" / "img"
    loaded: dict[str, volume.Volume] = {}
    for name, (series, options) in PICTURES.items():
        vol = loaded.setdefault(series, volume.load(data / series))
        pixels = render(vol, marker=True, **options)
        try:
            print(write_picture(out / name, pixels, force=force))
        except OutputExistsError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
