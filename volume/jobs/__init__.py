"""Whole-folder jobs: convert to NIfTI (in this process, a pool, or a dask cluster: ``cluster``),
pictures of every image (``png``, ``pictures``), header tables (``index``)."""
