"""Writers and readers at the edges: NIfTI, pictures, DICOM output. The only modules that know file formats."""
