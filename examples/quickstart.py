"""The main job end to end on generated data: write a sample CT, list it, convert it, project it.

Run from the repository root after ``pip install -e .``::

    python examples/quickstart.py [OUT]        # OUT defaults to ./quickstart-out

It writes a synthetic CT head (bright marker at the patient's left-anterior-superior), then runs
``volume ls``, ``volume convert`` (NIfTI + JSON sidecar) and ``volume mip`` (coronal, bone
window), and checks with the Python API that the marker is where the DICOM says it is.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np


def run(*args: str) -> None:
    print("$ volume " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "volume", *args], check=True)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "quickstart-out")
    if out.exists():
        shutil.rmtree(out)
    run("sample", str(out / "dicom"))
    run("ls", str(out / "dicom"))
    run("convert", str(out / "dicom"), "-o", str(out / "nifti"))
    run("mip", str(out / "dicom"), "--plane", "coronal", "--preset", "bone", "-o", str(out / "coronal_mip.png"))

    import nibabel as nib

    import volume
    from volume.sample import MARKER_LPS

    vol = volume.load(out / "dicom")
    where = vol.world(np.argwhere(vol.array > 1500).mean(axis=0))  # centre of the marker ball
    print(f"\nloaded {vol}")
    print(f"marker found at LPS {np.round(where, 1)} mm; it was written at {MARKER_LPS}")
    nii = nib.load(next((out / "nifti").glob("*.nii.gz")))
    ras = nib.affines.apply_affine(nii.affine, np.argwhere(np.asarray(nii.dataobj) > 1500).mean(axis=0))
    print(f"in the NIfTI (RAS): {np.round(ras, 1)} mm (RAS = LPS with x and y negated)")
    assert np.linalg.norm(where - MARKER_LPS) < 10, "the marker is not where it was written"
    print(f"\noutputs in {out}/")


if __name__ == "__main__":
    main()
