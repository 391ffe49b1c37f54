"""Which numbers a voxel holds: DICOM's display values, or the vendor's measured ("precise") ones.

DICOM's Rescale Slope/Intercept give *display* values. Philips scales every image for display
with its own factors, and writes the factor that recovers the scanner's floating-point values in
a private element, ScaleSlope (2005,100E): precise = (stored x RS + RI) / (RS x SS). Philips
also writes a RealWorldValueMapping (0040,9096) where the values have units (a B0 map in Hz...).
Research tools compare signal across scans, so ``precise`` (dcm2niix's default, and volume's) is:

* for Philips images with ScaleSlope: the precise value above, where a RealWorldValueMapping
  stands in for an absent Rescale Slope (RS = 1) or Intercept (RI = 0);
* for Philips images without ScaleSlope: the RealWorldValueMapping when the Rescale Slope is absent;
* for everyone else: the display value.

``display`` keeps DICOM's display values (what dicom2nifti writes). The factors and the choice are
recorded (``Stack.scaling``, then the sidecar's ``PhilipsRescaleSlope``... fields).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import choices
from ..errors import UsageError
from .series import Stack

PRECISE, DISPLAY = "precise", "display"

SCALINGS = choices.SCALINGS
"""The scalings volume writes (``--philips-scaling``): the vendor's measured values, or DICOM's display values."""

DEFAULT_SCALING = PRECISE
"""Research users get the numbers dcm2niix gives them by default."""

FLOAT32_DIGITS = 7
"""Significant digits of the factors recorded (ScaleSlope is a 32-bit float: 0.025, not 0.02500000037)."""


def _is_philips(stack: Stack) -> bool:
    return str(stack.first.acquisition.get("Manufacturer", "")).strip().upper().startswith("PHILIPS")


def _factors(f: Any) -> tuple[float, float, float | None, tuple[float, float] | None]:
    """(RS, RI, SS, RWV) of one image: the effective Rescale Slope/Intercept (a RealWorldValueMapping
    filling an absent one), Philips' ScaleSlope, and the mapping itself."""
    rs, ri = f.slope, f.intercept
    mr = f.mr
    ss = mr.scale_slope if mr is not None else None
    rwv = mr.rwv if mr is not None else None
    if rwv is not None:
        if rs == 1.0:
            rs = rwv[0]
        if ri == 0.0:
            ri = rwv[1]
    return rs, ri, ss, rwv


def vendor_scaling(stack: Stack, scaling: str = DEFAULT_SCALING) -> Stack:
    """``stack`` with each image's slope and intercept giving ``scaling``'s values (a new Stack whose
    ``scaling`` records the factors; ``stack`` itself is returned when nothing changes).

    Applying it to a stack it was applied to already changes nothing (``stack.scaling`` is set).

    Raises
    ------
    UsageError
        An unknown ``scaling``.
    """
    if scaling not in SCALINGS:
        raise UsageError(f"scaling must be one of {', '.join(SCALINGS)}, got {scaling!r}")
    if stack.scaling or stack.problem or not _is_philips(stack) or all(f.mr is None for f in stack.frames):
        return stack  # done already (the record says how), or nothing to do
    first = _factors(stack.first)
    rs0, ri0, ss0, rwv0 = first
    record: dict[str, Any] = {}
    if rwv0 is not None:
        record.update(PhilipsRWVSlope=rwv0[0], PhilipsRWVIntercept=rwv0[1])
    if ss0 is not None:
        record.update(PhilipsRescaleSlope=rs0, PhilipsRescaleIntercept=ri0, PhilipsScaleSlope=ss0)
    if not record:
        return stack
    record = {k: float(f"{v:.{FLOAT32_DIGITS}g}") for k, v in record.items()}  # FL/DS values: no float noise
    record["UsePhilipsFloatNotDisplayScaling"] = 1 if scaling == PRECISE else 0
    if scaling == DISPLAY:
        return dataclasses.replace(stack, scaling=record)
    frames = []
    varies = False
    for f in stack.frames:
        factors = _factors(f)
        varies = varies or factors != first
        rs, ri, ss, _rwv = factors
        if ss is not None and rs != 0:
            slope, intercept = 1.0 / ss, ri / (rs * ss)
        else:
            slope, intercept = rs, ri
        frames.append(f if (slope, intercept) == (f.slope, f.intercept)
                      else dataclasses.replace(f, slope=slope, intercept=intercept))
    if varies:
        record["PhilipsScalingVaries"] = True  # each image was scaled with its own factors
    return dataclasses.replace(stack, frames=frames, scaling=record)
