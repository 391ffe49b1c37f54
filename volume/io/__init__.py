"""Writers and readers at the edges: NIfTI, pictures, DICOM output. The only modules that know file formats."""

TEMP_PREFIX = ".volume-tmp-"
"""Name prefix of every temporary file or folder an output is written through before it is renamed
into place (:func:`volume.io.atomic.atomic_output`): what a crash can leave behind, and all it can."""
