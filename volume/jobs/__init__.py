"""Whole-folder jobs: convert to NIfTI, pictures of every image (png), header tables (index)."""
