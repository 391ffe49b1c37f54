"""The work of the ``volume`` commands, apart from their declaration.

Each command is two modules. ``volume/cli/<command>.py`` declares it: the typer function with its
options, help texts and choices, importing only the standard library, typer and the light
project modules (:mod:`volume.choices`, :mod:`volume.errors`, :mod:`volume.cli.app`). ``volume
--help``, ``volume --version`` and ``volume convert --help`` import every declaration (see
:func:`volume.cli.load_commands`) and must not pay for numpy, pydicom or the library.

The command's body is one import of its work module here, inside the function, and one call:
``volume/cli/work/<command>.py`` holds the helpers and the body, with its imports (numpy, the
library) at the top. Only the heavy or optional packages docs/design.md lists (VTK, trame,
imageio, dask, pyarrow, Pillow..., and the dask job :mod:`volume.jobs.cluster`) are imported
inside functions, where they are needed. ``tests/test_startup_imports.py`` checks the
declarations, ``tests/test_design.py`` the work modules.
"""
