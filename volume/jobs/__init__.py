"""Whole-folder jobs: convert to NIfTI (in this process, a pool, or a dask cluster: ``cluster``),
pictures of every image (``png``, ``pictures``), header tables (``index``), a session to a BIDS
dataset (``bids`` with ``bids_names``, ``bids_spec``, ``bids_config``)."""
