"""The shared 2D display layer: from array axes in the patient to a picture a radiologist expects.

Display conventions (``docs/conventions.md``), as LPS unit vectors of the picture's "up" and "right":

============  ==========================  ===============================
plane         up (top of the picture)     right (right edge of picture)
============  ==========================  ===============================
axial         anterior   ``(0, -1, 0)``   patient's left ``(1, 0, 0)``
coronal       superior   ``(0, 0, 1)``    patient's left ``(1, 0, 0)``
sagittal      superior   ``(0, 0, 1)``    posterior ``(0, 1, 0)``
============  ==========================  ===============================

(axial is viewed from the feet, coronal faces the patient, sagittal has anterior on the left.)

The functions are pure numpy (scipy only inside :func:`square_pixels`):

* :func:`display_grid` gives ``(up_lps, right_lps)`` of a plane; :func:`edge_labels` the letters.
* :func:`orient_for_display` flips/transposes a 2D array whose two axes step along known LPS
  vectors so that rows run "down" and columns run "right"; it returns the pixel size in mm.
* :func:`square_pixels` resamples a picture to square pixels over the same physical extent.
* :func:`slice_axes` / :func:`volume_picture` take a Volume (e.g. a projection with one voxel along
  an axis, or one slice of a reslice) straight to an oriented, square-pixel 2D array;
  :func:`display_picture` also windows it to uint8.
* :func:`display_volume` relabels a Volume's axes exactly (no interpolation) so that each slice
  is already a display picture: what DICOM output of projections and reslices should write.

Typical use (a PNG of slice ``k`` of a Volume resliced onto a coronal grid)::

    image, (row_mm, col_mm) = orient_for_display(vol.array[k], slice_axes(vol.affine, 0), "coronal")
    image, pixel_mm = square_pixels(image, row_mm, col_mm)
    grey = apply_window(image, window)                     # volume.ops.window
    write_picture("out.png", grey, labels=edge_labels("coronal"), scale_bar_mm_per_px=pixel_mm)
"""

from __future__ import annotations

import numpy as np

from .conventions import DISPLAY, plane_name
from .ops.window import apply_window
from .volume import PLANE_NORMALS, nearest_axis

DISPLAY_GRID = DISPLAY
"""``plane -> (up, right)``: LPS unit vectors of the top and the right edge of a picture (the one
table of :mod:`volume.conventions`)."""

MAX_PICTURE_PIXELS = 4096
"""Longest side (pixels) :func:`square_pixels` produces unless told otherwise (guards silly spacings)."""

_LETTERS = {(0, 1): "L", (0, -1): "R", (1, 1): "P", (1, -1): "A", (2, 1): "S", (2, -1): "I"}


_plane = plane_name


def display_grid(plane: str) -> tuple[np.ndarray, np.ndarray]:
    """LPS unit vectors ``(up, right)`` of a picture of ``plane`` (``axial``, ``coronal``, ``sagittal``).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Two float64 arrays of shape (3,). "Down" (the direction rows increase) is ``-up``.
    """
    up, right = DISPLAY_GRID[_plane(plane)]
    return np.array(up, dtype=float), np.array(right, dtype=float)


def direction_letter(vector: np.ndarray) -> str:
    """The LPS letter (R/L/A/P/I/S) of the patient axis closest to ``vector`` (shape (3,))."""
    v = np.asarray(vector, dtype=float)
    axis = int(np.argmax(np.abs(v)))
    return _LETTERS[(axis, 1 if v[axis] > 0 else -1)]


def edge_labels(plane: str) -> dict[str, str]:
    """Orientation letters at the picture edges: ``{"top", "bottom", "left", "right"}``.

    >>> edge_labels("axial")
    {'top': 'A', 'bottom': 'P', 'left': 'R', 'right': 'L'}
    """
    up, right = display_grid(plane)
    return {
        "top": direction_letter(up),
        "bottom": direction_letter(-up),
        "left": direction_letter(-right),
        "right": direction_letter(right),
    }


def slice_axes(affine: np.ndarray, axis: int) -> np.ndarray:
    """LPS step vectors (mm) of the two in-plane axes left when ``axis`` of a Volume is dropped.

    Parameters
    ----------
    affine
        (4, 4) ``(slice, row, column) -> LPS`` affine of a Volume.
    axis
        The dropped spatial axis: 0 (slice), 1 (row) or 2 (column).

    Returns
    -------
    numpy.ndarray
        float64 (2, 3): row ``i`` is the LPS displacement of one step along the ``i``-th remaining
        array axis, in increasing axis order (e.g. ``axis=1`` leaves (slice, column)).
    """
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    keep = [a for a in (0, 1, 2) if a != axis]
    return np.asarray(affine, dtype=float)[:3, keep].T.copy()


def display_transform(axes_lps: np.ndarray, plane: str) -> tuple[bool, bool, bool]:
    """How to bring an image with axes stepping along ``axes_lps`` into display order.

    Returns ``(transpose, flip_rows, flip_cols)``: first transpose (when array axis 0 runs more
    along "right" than along "down"), then flip rows, then flip columns. Each array axis is matched
    to the display direction it is closest to; for oblique planes this is the nearest mapping
    (no interpolation), as workstations show them.
    """
    axes = np.asarray(axes_lps, dtype=float).reshape(2, 3)
    norms = np.linalg.norm(axes, axis=1)
    if np.any(norms == 0):
        raise ValueError("an image axis has zero length")
    unit = axes / norms[:, None]
    up, right = display_grid(plane)
    down = -up
    # cosines of each array axis with display (down, right)
    cos = unit @ np.stack([down, right]).T  # (2 array axes, 2 display dirs)
    straight = abs(cos[0, 0]) + abs(cos[1, 1])
    crossed = abs(cos[0, 1]) + abs(cos[1, 0])
    transpose = bool(crossed > straight)
    if transpose:
        cos = cos[::-1]
    return transpose, bool(cos[0, 0] < 0), bool(cos[1, 1] < 0)


def orient_for_display(
    image2d: np.ndarray, axes_lps: np.ndarray, plane: str
) -> tuple[np.ndarray, tuple[float, float]]:
    """Flip/transpose a 2D image so rows run "down" and columns "right" in the plane's display grid.

    Parameters
    ----------
    image2d
        Shape (A, B), or (A, B, 3) for RGB; any dtype (returned as a view when possible).
    axes_lps
        float (2, 3): LPS displacement (mm) of one step along array axis 0 and along axis 1
        (e.g. :func:`slice_axes` of a Volume's affine). Their lengths are the pixel sizes.
    plane
        ``axial``, ``coronal`` or ``sagittal``: which display convention applies.

    Returns
    -------
    (numpy.ndarray, (float, float))
        The oriented image, shape (H, W[, 3]), same dtype; and ``(row_mm, col_mm)``, the pixel
        height and width in mm (generally not equal: pass them to :func:`square_pixels`).
    """
    img = np.asarray(image2d)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(f"image must be (H, W) or (H, W, 3), got shape {img.shape}")
    axes = np.asarray(axes_lps, dtype=float).reshape(2, 3)
    transpose, flip_rows, flip_cols = display_transform(axes, plane)
    mm = np.linalg.norm(axes, axis=1)
    if transpose:
        img = img.swapaxes(0, 1)
        mm = mm[::-1]
    if flip_rows:
        img = img[::-1]
    if flip_cols:
        img = img[:, ::-1]
    return img, (float(mm[0]), float(mm[1]))


def _resample_axis(a: np.ndarray, coords: np.ndarray, axis: int, order: int) -> np.ndarray:
    """Sample ``a`` at fractional ``coords`` along ``axis`` (edges clamped): nearest or linear."""
    n = a.shape[axis]
    x = np.clip(coords, 0, n - 1)
    if order == 0:
        return np.take(a, np.floor(x + 0.5).astype(np.intp), axis=axis)
    i0 = np.floor(x).astype(np.intp)
    i1 = np.minimum(i0 + 1, n - 1)
    f = (x - i0).astype(a.dtype if a.dtype.kind == "f" else np.float32)
    shape = [1] * a.ndim
    shape[axis] = len(coords)
    f = f.reshape(shape)
    lo = np.take(a, i0, axis=axis)
    hi = np.take(a, i1, axis=axis)
    return lo + (hi - lo) * f


def square_pixels(
    image: np.ndarray,
    row_mm: float,
    col_mm: float,
    *,
    pixel_mm: float | None = None,
    max_size: int = MAX_PICTURE_PIXELS,
    order: int = 1,
) -> tuple[np.ndarray, float]:
    """Resample ``image`` to square pixels covering the same physical extent.

    The output has ``round(H * row_mm / pixel_mm)`` rows and ``round(W * col_mm / pixel_mm)``
    columns; pixel centres are placed so both images cover the same rectangle (edge to edge).
    BRAINIX coronal: 22 slices x 6 mm = 132 mm at 0.45 mm pixels -> 293 rows.

    Parameters
    ----------
    image
        (H, W) or (H, W, 3), any numeric dtype.
    row_mm, col_mm
        Current pixel height and width in mm.
    pixel_mm
        Output pixel size; default ``min(row_mm, col_mm)`` (no detail lost), enlarged when the
        longest side would exceed ``max_size``.
    order
        Spline order: 1 (linear, default), 0 (nearest; for labels and masks), 3 (cubic).

    Returns
    -------
    (numpy.ndarray, float)
        The resampled image (same dtype; integers are rounded and clipped to their range) and the
        pixel size in mm. The input is returned unchanged when already square at ``pixel_mm``.
    """
    img = np.asarray(image)
    if row_mm <= 0 or col_mm <= 0:
        raise ValueError(f"pixel sizes must be positive, got {row_mm} x {col_mm} mm")
    h, w = img.shape[:2]
    height_mm, width_mm = h * row_mm, w * col_mm
    p = float(pixel_mm) if pixel_mm else min(row_mm, col_mm)
    p = max(p, max(height_mm, width_mm) / max_size)
    out_h = max(1, int(round(height_mm / p)))
    out_w = max(1, int(round(width_mm / p)))
    if out_h == h and out_w == w and np.isclose(row_mm, p) and np.isclose(col_mm, p):
        return img, p
    # output pixel centre i sits at (i + 0.5) * height_mm / out_h mm from the top edge
    rows = (np.arange(out_h) + 0.5) * (height_mm / out_h) / row_mm - 0.5
    cols = (np.arange(out_w) + 0.5) * (width_mm / out_w) / col_mm - 0.5
    src = img.astype(np.float32) if img.dtype.kind in "iub" or img.dtype == np.float16 else img
    if order in (0, 1):  # separable, pure numpy (no scipy import on the picture path)
        out = _resample_axis(_resample_axis(src, rows, 0, order), cols, 1, order)
    else:
        from scipy import ndimage

        rr, cc = np.meshgrid(rows, cols, indexing="ij")

        def sample(plane2d: np.ndarray) -> np.ndarray:
            return ndimage.map_coordinates(plane2d, [rr, cc], order=order, mode="nearest")

        out = np.stack([sample(src[..., c]) for c in range(3)], axis=-1) if img.ndim == 3 else sample(src)
    if img.dtype.kind in "iu":
        info = np.iinfo(img.dtype)
        out = np.clip(np.rint(out), info.min, info.max).astype(img.dtype)
    elif img.dtype.kind == "b":
        out = out >= 0.5
    else:
        out = out.astype(img.dtype, copy=False)
    # the true pixel size after rounding the output shape (rows and columns agree to < 1 pixel)
    return out, float(height_mm / out_h)


def volume_picture(vol, plane: str, *, axis: int | None = None, index: int = 0, frame: int = 0,
                   square: bool = True, pixel_mm: float | None = None) -> tuple[np.ndarray, float | tuple[float, float]]:
    """One slice of a Volume as a display-oriented 2D array (not yet windowed).

    Parameters
    ----------
    vol
        A :class:`volume.Volume` (3D or 4D; RGB allowed).
    plane
        The display convention to follow.
    axis
        The spatial axis the picture is taken across (0 slice, 1 row, 2 column). Default: the axis
        with a single voxel (a projection), else the axis closest to the plane's normal.
    index
        Which position along ``axis``.
    frame
        Which frame of a 4D volume.
    square, pixel_mm
        Resample to square pixels (see :func:`square_pixels`).

    Returns
    -------
    (numpy.ndarray, float or (float, float))
        The picture, (H, W) or (H, W, 3), in the volume's dtype (float32 when resampled from
        integers is not wanted: cast beforehand); and the pixel size in mm (a single float when
        ``square``, else ``(row_mm, col_mm)``).
    """
    plane = _plane(plane)
    if axis is None:
        ones = [a for a, n in enumerate(vol.shape) if n == 1]
        if len(ones) == 1:
            axis = ones[0]
        else:
            axis = nearest_axis(vol.affine, PLANE_NORMALS[plane])[0]
    arr = vol.frame(frame).array if vol.is_4d else vol.array
    image = np.take(arr, index, axis=axis)
    image, (row_mm, col_mm) = orient_for_display(image, slice_axes(vol.affine, axis), plane)
    if not square:
        return image, (row_mm, col_mm)
    return square_pixels(image, row_mm, col_mm, pixel_mm=pixel_mm)


def display_picture(vol, plane: str, window, *, axis: int | None = None, index: int = 0, frame: int = 0, invert: bool = False,
                    pixel_mm: float | None = None) -> tuple[np.ndarray, float]:
    """A windowed uint8 display picture of slice ``index`` along ``axis`` (e.g. a projection's slab).

    Orients (:func:`volume_picture`), resamples to square pixels in float32 (so grey levels are
    interpolated before windowing), then applies ``window`` (:class:`volume.ops.window.Window`).

    Returns
    -------
    (numpy.ndarray, float)
        uint8 (H, W) picture and its pixel size in mm.
    """
    if vol.rgb:
        raise ValueError("display_picture windows grey volumes; RGB volumes are pictures already")
    image, (row_mm, col_mm) = volume_picture(vol, plane, axis=axis, index=index, frame=frame, square=False)
    image, p = square_pixels(np.asarray(image, dtype=np.float32), row_mm, col_mm, pixel_mm=pixel_mm)
    return apply_window(image, window, invert=invert), p


def display_volume(vol, plane: str, *, axis: int | None = None):
    """Relabel a Volume's axes so axis 0 crosses the plane, rows run "down" and columns "right".

    Exact: only a permutation and flips of the voxel axes, with the affine updated to match, so
    every voxel keeps its patient position. Slice ``k`` of the result is already a display
    picture (:func:`orient_for_display` would do nothing). Used to write projections and
    reslices as DICOM that viewers show in the radiological orientation.

    Parameters
    ----------
    vol
        A :class:`volume.Volume`, 3D or 4D (frames stay leading), RGB allowed.
    axis
        The axis to put first; default as in :func:`volume_picture` (the single-voxel axis, else the
        axis closest to the plane's normal).

    Returns
    -------
    Volume
        Same voxels, array axes permuted/flipped (a view), affine columns permuted/negated.
    """
    plane = _plane(plane)
    if axis is None:
        ones = [a for a, n in enumerate(vol.shape) if n == 1]
        axis = ones[0] if len(ones) == 1 else nearest_axis(vol.affine, PLANE_NORMALS[plane])[0]
    rest = [a for a in (0, 1, 2) if a != axis]
    transpose, flip_rows, flip_cols = display_transform(slice_axes(vol.affine, axis), plane)
    order = [axis] + (rest[::-1] if transpose else rest)
    flips = [False, flip_rows, flip_cols]
    affine = np.array(vol.affine, dtype=float)
    new = np.eye(4)
    new[:3, 3] = affine[:3, 3]
    shape = vol.shape
    lead = 1 if vol.is_4d else 0
    arr = np.asarray(vol.array)
    perm = list(range(lead)) + [lead + a for a in order] + list(range(lead + 3, arr.ndim))
    arr = arr.transpose(perm)
    for out_axis, (src_axis, flip) in enumerate(zip(order, flips, strict=True)):
        column = affine[:3, src_axis]
        if flip:
            new[:3, 3] += column * (shape[src_axis] - 1)
            column = -column
            index = [slice(None)] * arr.ndim
            index[lead + out_axis] = slice(None, None, -1)
            arr = arr[tuple(index)]
        new[:3, out_axis] = column
    return vol.with_array(arr, affine=new)


__all__ = [
    "DISPLAY_GRID",
    "MAX_PICTURE_PIXELS",
    "direction_letter",
    "display_grid",
    "display_picture",
    "display_transform",
    "display_volume",
    "edge_labels",
    "orient_for_display",
    "slice_axes",
    "square_pixels",
    "volume_picture",
]
