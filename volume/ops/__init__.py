"""Pure operations on Volumes: projections, reslicing, windowing. Volume in, Volume or 2D image out."""
