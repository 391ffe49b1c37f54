"""VTK rendering: offscreen snapshots and interactive windows (vtk is imported inside functions)."""
