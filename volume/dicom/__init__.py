"""DICOM input: find files, read headers, group series, sort geometry, decode pixels."""

from .loader import Scan, choose_stack, load, load_stack, scan
from .series import Series, Stack

__all__ = ["Scan", "Series", "Stack", "choose_stack", "load", "load_stack", "scan"]
