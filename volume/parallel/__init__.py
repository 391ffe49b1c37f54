"""Running many items at once: a process pool here, a dask.distributed cluster (``dask``)."""
