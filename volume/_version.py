"""The version of volume, in one place: the package (``volume.__version__``), its metadata
(``pyproject.toml`` reads it from here) and every file that says which volume wrote it (NIfTI
descriptions, sidecars, DICOM de-identification notes, reports) import it from this module alone,
which imports nothing."""

__version__ = "0.1.0"
