"""The optional compiled part of volume: the header reader's element walk (``volume/dicom/_walk.c``).

Everything else is declared in ``pyproject.toml``. The extension is optional: where no C compiler
is found, the build goes on without it and the same walk runs in Python (slower, same results;
``docs/libraries.md``).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("volume.dicom._walk", ["volume/dicom/_walk.c"], optional=True)])
