"""What an MR image says beyond its geometry, read per image at scan time.

Diffusion weighting (b-value, gradient direction in patient LPS, directionality), the keys vendors
order the volumes of a 4D series by, the vendor's intensity scaling, and the time a slice was
acquired. Each comes from the standard element when the file has it, else from the vendor's
private elements (:data:`volume.dicom._tags.PRIVATE`, private creators checked). The result is one
small immutable :class:`MRFrame` per image (``None`` for images that say nothing of this: CT,
plain anatomical MR), shared between images that say the same.

Conventions (the vendors' and the standard's, written down once):

* gradient directions are unit vectors in the patient LPS frame, DICOM's own: the standard
  DiffusionGradientOrientation (0018,9089), Siemens (0019,100E) and Philips (2005,10B0-B2,
  x y z) already are; GE writes them in a frame tied to the image
  (:func:`volume.dicom.ge.ge_gradient`);
* a b-value above zero with a zero vector is an isotropic (trace) image, as is directionality
  ``ISOTROPIC`` or Philips (2001,1004) ``I``: derived, never a direction of the 4D series;
* a b-value above zero with no direction element at all (and nothing saying isotropic) has
  ``gradient`` None: its direction is unknown (:attr:`MRFrame.direction_unknown`), never zero;
* times are seconds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import canon, uih
from ._tags import MOVED_BLOCKS, PRIVATE, creator_keyword, moved_name
from .fastheader import element_value
from .ge import (
    GE_PEPOLAR_PSD,
    Pepolar,
    ge_b0map_locations,
    ge_bvalue,
    ge_component,
    ge_gradient,
    ge_pepolar,
    ge_reduced_bvalue,
    ge_trace_image,
)
from .values import in_groups, to_float, to_floats, to_int, to_str, value_of

Getter = Callable[[str], Any]
"""Looks a keyword (or a private element's name) up in one header: the value, or None."""

#: Directionality (0018,9075) values and what volume calls them.
DIRECTIONAL, ISOTROPIC, NO_WEIGHTING, BMATRIX = "DIRECTIONAL", "ISOTROPIC", "NONE", "BMATRIX"

#: ImageType values (any position) of derived diffusion images: maps a scanner computed.
DERIVED_DIFFUSION_TYPES = {"ADC": "ADC", "TRACEW": "trace", "TRACE": "trace", "FA": "FA", "EADC": "eADC",
                           "ISOTROPIC": "trace"}

PHILIPS_PRIVATE_FRAME_SEQUENCE = 0x2005140F
"""Philips' private per-frame functional group of enhanced files (holds ScaleSlope 2005,100E)."""

SIEMENS_XA_PRIVATE_FRAME_SEQUENCE = 0x002111FE
"""Siemens XA's private per-frame functional group of enhanced files."""

SIEMENS_XA_TIME_AFTER_START = 0x00211104
"""(0021,1104) TimeAfterStart, seconds: when a frame (slice) was acquired within its volume."""

PHILIPS_GRADIENT = ("PhilipsGradientRL", "PhilipsGradientAP", "PhilipsGradientFH")
"""Philips' private gradient components (2005,10B0-B2), patient LPS."""

GE_GRADIENT = ("GEGradientX", "GEGradientY", "GEGradientZ")
"""GE's private gradient components (0019,10BB-BD), in a frame tied to the image (:mod:`volume.dicom.ge`)."""

ZERO_VECTOR = 1e-3
"""A gradient vector shorter than this is no direction (b=0, or an isotropic image)."""

B0_THRESHOLD = 50.0
"""b-values (s/mm2) at or below this weight nothing: an image without a direction there is an
unweighted reference image (CMRR's sequences write b=5 on them), never an isotropic (trace) image;
dcm2niix's threshold."""


@dataclass(frozen=True, slots=True)
class MRFrame:
    """Diffusion, volume-order keys, vendor scaling and slice time of one MR image.

    ``order`` holds ``(name, value)`` pairs of the vendor keys that say which volume of a 4D series
    the image belongs to (e.g. ``("DiffusionOrder", 4)``); ``scale_slope`` is Philips' private
    ScaleSlope (2005,100E); ``rwv`` the (slope, intercept) of a RealWorldValueMapping and
    ``rwv_units`` the unit of the values (a RealWorldValueMapping's code, or ``Hz`` for GE's B0map
    field map); ``slice_time`` seconds from the start of the volume; ``component`` the complex
    component a vendor's private element names (GE's 0043,102F: ``ph``, ``real``, ``imag``; "" for
    magnitude or none); ``b0map_locations`` the slice locations of a GE B0map's field map
    (:func:`volume.dicom.ge.mark_b0map_field_map`); ``vendor_trace`` True when the vendor says a
    weighted image without a direction is a trace image, not b=0 (:func:`volume.dicom.ge.ge_trace_image`);
    ``pepolar`` what GE says of an ``epi_pepolar`` image (:func:`volume.dicom.ge.ge_pepolar`).
    """

    bvalue: float | None = None
    gradient: tuple[float, float, float] | None = None
    directionality: str = ""
    order: tuple[tuple[str, Any], ...] = ()
    scale_slope: float | None = None
    rwv: tuple[float, float] | None = None
    rwv_units: str = ""
    slice_time: float | None = None
    component: str = ""
    b0map_locations: int | None = None
    vendor_trace: bool = False
    pepolar: Pepolar | None = None

    def key(self, name: str) -> Any:
        """The value of order key ``name`` (None when the image has none)."""
        for key, value in self.order:
            if key == name:
                return value
        return None

    @property
    def is_diffusion(self) -> bool:
        """True when the image carries a b-value (b=0 images of a diffusion series included)."""
        return self.bvalue is not None

    @property
    def direction_unknown(self) -> bool:
        """True for a weighted image (b above :data:`B0_THRESHOLD`) whose files give no gradient
        direction (no element, standard or the vendor's) and do not say it is isotropic: its direction
        is not in the files. (At or below the threshold a direction-less image is a nominal b=0, as
        Siemens writes b=5 on its reference volumes.)"""
        return (self.bvalue is not None and self.bvalue > B0_THRESHOLD and self.gradient is None
                and self.directionality != ISOTROPIC)

    @property
    def is_isotropic(self) -> bool:
        """True for a weighted image (b above :data:`B0_THRESHOLD`) without a direction (a zero
        vector, ISOTROPIC, or none given): in a series that also holds directions, the trace image a
        scanner computed (``series.py``); :attr:`direction_unknown` tells the files saying so from
        the files saying nothing."""
        if self.bvalue is None or self.bvalue <= B0_THRESHOLD:
            return False
        if self.directionality == ISOTROPIC:
            return True
        return self.gradient is None or math.hypot(*self.gradient) < ZERO_VECTOR


#: Private element name -> (the keyword its creator is read under, the creator in upper case).
_OWNERS = {name: (creator_keyword(tag), creator.upper()) for name, (tag, _vr, creator) in PRIVATE.items()}

#: Private element name -> (creator keyword, element name) in each other block it may have been moved to.
_MOVED = {name: [(creator_keyword((tag & 0xFFFF00FF) | (block << 8)), moved_name(name, block))
                 for block in MOVED_BLOCKS if block != (tag >> 8) & 0xFF]
          for name, (tag, _vr, _creator) in PRIVATE.items()}

#: Private creators (their first letters, upper case) -> Manufacturer (0008,0070) prefixes of the vendor.
_VENDOR_OF_CREATOR = (("SIEMENS", ("SIEMENS", "CPS")), ("GEMS", ("GE",)), ("PHILIPS", ("PHILIPS",)),
                      ("IMAGE PRIVATE HEADER", ("UIH", "UNITED IMAGING")))


def private(get: Getter, name: str, maker: str | None = None) -> Any:
    """A private element's value, or None when absent or when its block belongs to another creator.

    At its usual place when the creator there is the vendor's (or there is none: files stripped of
    their creators); else, in a file of that vendor, in whichever block the vendor's creator owns
    (a PACS or an anonymizer may renumber blocks: :data:`volume.dicom._tags.MOVED_BLOCKS`).
    ``maker`` is the file's Manufacturer (0008,0070) in upper case, read once by a caller that
    reads many elements of one file (None: read here).
    """
    value = get(name)
    keyword, creator = _OWNERS[name]
    if maker is None:
        maker = to_str(get("Manufacturer")).upper()
    if value is None and not maker.startswith(_VENDOR_PREFIXES[name] or _NO_VENDOR):
        return None  # the common case: another vendor's element, absent (no moved block to look for)
    owner = get(keyword)
    if owner is None and value is not None:
        return value
    if owner is not None and to_str(owner).upper() == creator:
        return value
    return _moved(get, name, creator, maker)


#: Private element name -> the Manufacturer prefixes of the vendor its creator belongs to (empty: none known).
_VENDOR_PREFIXES = {name: next((prefixes for first, prefixes in _VENDOR_OF_CREATOR if creator.startswith(first)), ())
                    for name, (_keyword, creator) in _OWNERS.items()}


_NO_VENDOR = ("\0",)
"""A prefix no Manufacturer starts with (creators of no known vendor: never looked for elsewhere)."""


def _moved(get: Getter, name: str, creator: str, maker: str) -> Any:
    """Element ``name`` in the block its vendor's ``creator`` owns elsewhere, in that vendor's files
    (Manufacturer ``maker``) only."""
    if not maker.startswith(_VENDOR_PREFIXES[name] or _NO_VENDOR):
        return None
    for creator_key, moved in _MOVED[name]:
        owner = get(creator_key)
        if owner is not None and to_str(owner).upper() == creator:
            return get(moved)
    return None


def _unit(vector: tuple[float, ...] | None) -> tuple[float, float, float] | None:
    """``vector`` scaled to unit length; a zero vector stays zero; None stays None."""
    if vector is None:
        return None
    n = math.sqrt(sum(v * v for v in vector))
    if n < ZERO_VECTOR:
        return (0.0, 0.0, 0.0)
    return (vector[0] / n, vector[1] / n, vector[2] / n)


def _directionality(text: Any) -> str:
    d = to_str(text).upper()
    return d if d in (DIRECTIONAL, ISOTROPIC, NO_WEIGHTING, BMATRIX) else ""


def _diffusion_uih(get: Getter, b: float | None, gradient: tuple[float, ...] | None, maker: str
                   ) -> tuple[float | None, tuple[float, ...] | None]:
    """UIH's b-value (0065,1009) and image-frame gradient (0065,1037) before the standard ones
    (:mod:`volume.dicom.uih`); the arguments come back unchanged without them."""
    ub, ug = to_float(private(get, "UIHBValue", maker)), to_floats(private(get, "UIHGradientDirection", maker), 3)
    if ug is not None:
        gradient = uih.gradient_lps(ug, to_floats(get("ImageOrientationPatient"), 6)) or gradient
    return (ub if ub is not None else b), gradient


def _canon_comment_gradient(get: Getter, b: float | None) -> tuple[float, float, float] | None:
    """The direction Canon writes in ImageComments (:mod:`volume.dicom.canon`), by GE's image-frame
    rule; None when absent, or when the rule's conditions (head first supine, a phase direction) fail."""
    if not canon.is_canon(get("Manufacturer")):
        return None
    components = canon.comment_components(get("ImageComments"), b)
    phase = to_str(get("InPlanePhaseEncodingDirection")).upper()[:3]
    iop = to_floats(get("ImageOrientationPatient"), 6)
    if components is None or iop is None or phase not in ("ROW", "COL"):
        return None
    if to_str(get("PatientPosition")).upper() != canon.HEAD_FIRST_SUPINE:
        return None
    return ge_gradient(components, iop, phase)


def _diffusion_classic(get: Getter, maker: str) -> tuple[float | None, tuple[float, float, float] | None, str]:
    """(b-value, LPS gradient, directionality) of a single-frame image.

    The b-value from UIH's own (0065,1009), else the standard DiffusionBValue, else Siemens', Philips'
    or GE's private one; an image the standard marks unweighted (directionality NONE) without one is
    b=0 (Canon writes none on them). The direction, wherever the b-value came from: UIH's image-frame
    (0065,1037) first (UIH fills the standard direction before rotating it), else the standard
    DiffusionGradientOrientation, else the vendor's private elements (each read only under its
    vendor's private creator), else Canon's ImageComments: a GE series with the standard b-value and
    GE's own gradient gets GE's gradient, never none.
    """
    standard_direction = _directionality(get("DiffusionDirectionality"))
    b, gradient = _diffusion_uih(get, to_float(get("DiffusionBValue")),
                                 to_floats(get("DiffusionGradientOrientation"), 3), maker)
    if b is None:
        b = to_float(private(get, "SiemensBValue", maker))
    if b is None:
        b = to_float(private(get, "PhilipsBValue", maker))
    if b is None:
        b = ge_bvalue(private(get, "GEBValue", maker))
    if b is None and standard_direction == NO_WEIGHTING:
        b = 0.0  # the standard's unweighted image (Canon writes no b-value on them)
    if b is None:
        return None, None, ""
    direction = standard_direction or _directionality(private(get, "SiemensDiffusionDirectionality", maker))
    if not direction and to_str(private(get, "PhilipsDiffusionDirection", maker)).upper() == "I":
        direction = ISOTROPIC
    gradient = (gradient
                or to_floats(private(get, "SiemensDiffusionGradientDirection", maker), 3)
                or to_floats(tuple(private(get, n, maker) for n in PHILIPS_GRADIENT), 3))
    if gradient is None:
        raw = to_floats(tuple(private(get, n, maker) for n in GE_GRADIENT), 3)
        if raw is not None:
            b, raw = ge_reduced_bvalue(b, raw)
            gradient = ge_gradient(raw, to_floats(get("ImageOrientationPatient"), 6),  # type: ignore[arg-type]
                                   to_str(get("InPlanePhaseEncodingDirection")).upper())
    if gradient is None:
        gradient = _canon_comment_gradient(get, b)
    return max(b, 0.0), _unit(gradient), direction


def _philips_order(get: Getter, maker: str) -> tuple[tuple[str, Any], ...]:
    keys = []
    order = to_int(private(get, "PhilipsDiffusionOrder", maker))
    if order is not None and order > 0:
        keys.append(("DiffusionOrder", order))
    bnum, gnum = to_int(private(get, "PhilipsBValueNumber", maker)), to_int(private(get, "PhilipsGradientOrientationNumber", maker))
    if bnum is not None and gnum is not None:
        keys.append(("BValueNumber,GradientOrientationNumber", (bnum, gnum)))
    phase = to_int(private(get, "PhilipsPhaseNumber", maker))
    if phase is not None:
        keys.append(("PhaseNumber", phase))
    return tuple(keys)


def _rwv(mapping: Any) -> tuple[tuple[float, float] | None, str]:
    """(slope, intercept) and unit code of the first item of a RealWorldValueMappingSequence."""
    if not mapping:
        return None, ""
    item = mapping[0]
    slope = to_float(value_of(item, "RealWorldValueSlope"))
    intercept = to_float(value_of(item, "RealWorldValueIntercept")) or 0.0
    units = ""
    code = value_of(item, "MeasurementUnitsCodeSequence")
    if code:
        units = to_str(value_of(code[0], "CodeValue"))
    if slope is None or slope == 0 or abs(slope) > 1e30:
        return None, units
    return (slope, intercept), units


GE_MAKER = "GE"
"""Manufacturer (0008,0070) of GE's files, in upper case: ``GE MEDICAL SYSTEMS``, ``GE HEALTHCARE``."""


def _ge_image(get: Getter, maker: str, b: float | None) -> tuple[str, int | None, bool, Pepolar | None]:
    """GE's complex component, B0map field-map locations, trace marker and ``epi_pepolar`` state of one
    image (:func:`volume.dicom.ge.ge_component`, :func:`~volume.dicom.ge.ge_b0map_locations`,
    :func:`~volume.dicom.ge.ge_trace_image`, :func:`~volume.dicom.ge.ge_pepolar`)."""
    component = ge_component(private(get, "GEImageTypeComponent", maker))
    psd, internal = private(get, "GEPulseSequenceName", maker), private(get, "GEInternalPulseSequenceName", maker)
    b0map = (ge_b0map_locations(psd, internal, private(get, "GELocationsInAcquisition", maker))
             if psd is not None or internal is not None else None)
    trace = b is not None and ge_trace_image(private(get, "GEDiffusionDirectionType", maker),
                                             private(get, "GEVasCollapseFlag", maker),
                                             private(get, "GENumberOfDiffusionDirections", maker))
    pepolar = None
    if GE_PEPOLAR_PSD in to_str(psd).lower():  # only then the volume number (it differs file to file)
        pepolar = ge_pepolar(psd, private(get, "GEUserData12", maker), get("TemporalPositionIdentifier"),
                             get("InPlanePhaseEncodingDirection"))
    return component, b0map, trace, pepolar


def classic_mr_frame(get: Getter) -> MRFrame | None:
    """The :class:`MRFrame` of a single-frame image (``get`` reads its header), None when empty."""
    maker = to_str(get("Manufacturer")).upper()
    b, gradient, direction = _diffusion_classic(get, maker)
    order = _philips_order(get, maker)
    scale = to_float(private(get, "PhilipsScaleSlope", maker))
    rwv, units = _rwv(get("RealWorldValueMappingSequence"))
    slice_time = to_float(private(get, "SiemensTimeAfterStart", maker))  # XA files of one slice each
    component, b0map, trace, pepolar = (_ge_image(get, maker, b) if maker.startswith(GE_MAKER)
                                        else ("", None, False, None))
    if (b is None and not order and scale is None and rwv is None and slice_time is None and not component
            and b0map is None and pepolar is None):
        return None
    return MRFrame(bvalue=b, gradient=gradient, directionality=direction, order=order,
                   scale_slope=scale if scale not in (None, 0.0) else None, rwv=rwv, rwv_units=units,
                   slice_time=slice_time, component=component, b0map_locations=b0map, vendor_trace=trace,
                   pepolar=pepolar)


def with_csa_diffusion(mr: MRFrame | None, csa: dict[str, list[Any]]) -> MRFrame | None:
    """``mr`` completed by the diffusion weighting of a Siemens CSA image header (``B_value``,
    ``DiffusionGradientDirection`` in patient LPS, ``DiffusionDirectionality``) where the private
    elements (0019,100C/100E) gave none: exports that drop group 0019 keep the CSA header."""
    if mr is not None and mr.bvalue is not None:
        if mr.gradient is None and csa.get("DiffusionGradientDirection"):
            return dataclasses.replace(mr, gradient=_unit(to_floats(csa["DiffusionGradientDirection"], 3)))
        return mr
    b = to_float((csa.get("B_value") or [None])[0])
    if b is None:
        return mr
    gradient = to_floats(csa.get("DiffusionGradientDirection"), 3)
    direction = _directionality((csa.get("DiffusionDirectionality") or [""])[0])
    return dataclasses.replace(mr or MRFrame(), bvalue=max(b, 0.0), gradient=_unit(gradient),
                               directionality=direction)


def enhanced_mr_frame(per: Any, shared: Any) -> MRFrame | None:
    """The :class:`MRFrame` of one frame of an enhanced multi-frame file (its functional groups)."""
    b = direction = gradient = None
    for group in (per, shared):
        seq = value_of(group, "MRDiffusionSequence") if group is not None else None
        if seq:
            item = seq[0]
            b = to_float(value_of(item, "DiffusionBValue"))
            direction = _directionality(value_of(item, "DiffusionDirectionality"))
            inner = value_of(item, "DiffusionGradientDirectionSequence")
            if inner:
                gradient = to_floats(value_of(inner[0], "DiffusionGradientOrientation"), 3)
            break
    order: tuple[tuple[str, Any], ...] = ()
    div = in_groups(per, None, "FrameContentSequence", "DimensionIndexValues")
    if div is not None:
        values = tuple(int(v) for v in (div if isinstance(div, (list, tuple)) or type(div).__name__ == "MultiValue"
                                        else [div]))
        order = (("DimensionIndexValues", values),)
    scale = None
    for group in (per, shared):
        block = element_value(group, PHILIPS_PRIVATE_FRAME_SEQUENCE, "SQ") if group is not None else None
        if block:
            scale = scale or to_float(element_value(block[0], PRIVATE["PhilipsScaleSlope"][0], "FL"))
            diffusion_order = to_int(element_value(block[0], PRIVATE["PhilipsDiffusionOrder"][0], "IS"))
            if group is per and diffusion_order is not None and diffusion_order > 0:
                order = (("DiffusionOrder", diffusion_order), *order)
    rwv, units = None, ""
    for group in (per, shared):
        if group is not None and value_of(group, "RealWorldValueMappingSequence"):
            rwv, units = _rwv(value_of(group, "RealWorldValueMappingSequence"))
            break
    slice_time = None
    block = element_value(per, SIEMENS_XA_PRIVATE_FRAME_SEQUENCE, "SQ") if per is not None else None
    if block:
        slice_time = to_float(element_value(block[0], SIEMENS_XA_TIME_AFTER_START, "DS"))
    if b is None and direction == NO_WEIGHTING:
        b = 0.0  # the standard's unweighted frame (Canon writes no b-value on them)
    if b is None and not order and scale is None and rwv is None and slice_time is None:
        return None
    if b is not None and b < 0:
        b = 0.0
    return MRFrame(bvalue=b, gradient=_unit(gradient), directionality=direction or "", order=order,
                   scale_slope=scale if scale not in (None, 0.0) else None, rwv=rwv, rwv_units=units,
                   slice_time=slice_time)
