"""DICOM input: find files, read headers, group series, sort geometry, decode pixels.

Every file is opened through :mod:`volume.dicom.read` (or the fast header reader of
:mod:`volume.dicom.fastheader` for the common ones); :mod:`volume.dicom.headers` makes the
records; :func:`scan` (a function: the module is ``headers``) groups them.
"""

from .loader import Scan, choose_stack, load, load_stack, scan
from .series import Series, Stack

__all__ = ["Scan", "Series", "Stack", "choose_stack", "load", "load_stack", "scan"]
