"""The house as docs/design.md draws it: which part of ``volume`` may import which, where imports
are written, and one table per choice. These tests read the source (every import statement,
at module top or inside functions), so a change that breaks the layering fails here by name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import volume
from volume import choices

PACKAGE = Path(volume.__file__).resolve().parent

#: Base modules: plain data types and policies every part may use.
BASE = {"volume", "errors", "conventions", "choices", "sources", "phi", "confidentiality_profile", "lifecycle", "_version"}

#: What each part of the package may import besides itself (docs/design.md, "Layers").
ALLOWED: dict[str, set[str]] = {
    **{name: BASE for name in BASE},
    "__init__": BASE,
    "dicom": BASE,
    "ops": BASE,
    "display": BASE | {"ops"},
    "io": BASE | {"ops"},
    "render": BASE | {"ops", "io"},
    "parallel": BASE,
    "jobs": BASE | {"dicom", "ops", "io", "display", "parallel", "api"},
    "api": BASE | {"dicom", "ops", "io"},
    "sample": BASE,
    "cli": BASE | {"dicom", "ops", "io", "display", "render", "parallel", "jobs", "api", "sample"},
    "__main__": {"cli"},
}

#: Packages imported inside functions only (docs/design.md, "Imports"): optional extras, or
#: costly enough to be loaded only by the work that needs them (start-up is measured).
LAZY = {
    "vtk", "vtkmodules", "trame", "trame_vtk", "wslink", "aiohttp", "imageio", "imageio_ffmpeg", "distributed", "dask", "pyarrow",
    "SimpleITK", "scipy", "nibabel", "pydicom", "PIL", "matplotlib", "rich", "multiprocessing", "concurrent",
    "asyncio", "isal", "hashlib",
}

#: Modules of volume that serve an optional extra alone, imported where that option is used.
LAZY_MODULES = {"volume.jobs.cluster"}


def _modules() -> list[tuple[Path, str]]:
    """(file, dotted module name) of every module of the package."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((path, name))
    return out


def _part(module: str) -> str:
    """The part of the house a module belongs to: its subpackage, or its own name at the top."""
    parts = module.split(".")
    return "__init__" if len(parts) == 1 or parts[1] == "__version__" else parts[1]


def _imports(path: Path, module: str) -> list[tuple[int, str, bool]]:
    """(line, imported module, inside a function) of every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function.update(id(n) for n in ast.walk(node) if n is not node)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, id(node) in in_function) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from .jobs import cluster`` imports the module volume.jobs.cluster
            names = [f"{target}.{a.name}" if _is_module(f"{target}.{a.name}") else target for a in node.names]
            found += [(node.lineno, n, id(node) in in_function) for n in names]
    return found


def _is_module(name: str) -> bool:
    """Whether ``name`` (``volume.x.y``) is a module or package of volume."""
    if not name.startswith("volume."):
        return False
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _project_edges() -> list[tuple[str, int, str, str]]:
    """(file, line, importing part, imported part) for every import of one part by another."""
    edges = []
    for path, module in _modules():
        for line, target, _ in _imports(path, module):
            if target == "volume" or not target.startswith("volume."):
                continue
            a, b = _part(module), _part(target)
            if a != b and b != "__init__":  # the package root (its version, lazy exports) is everyone's
                edges.append((str(path.relative_to(PACKAGE.parent)), line, a, b))
    return edges


def test_every_part_of_the_package_is_placed_in_a_layer():
    parts = {_part(m) for _, m in _modules()} - {"__init__"}
    assert parts <= set(ALLOWED), f"add {sorted(parts - set(ALLOWED))} to docs/design.md and ALLOWED"


def test_each_part_imports_only_the_layers_below_it():
    wrong = [f"{f}:{line}: {a} imports {b}" for f, line, a, b in _project_edges() if b not in ALLOWED[a]]
    assert not wrong, "imports against docs/design.md's layers:\n" + "\n".join(wrong)


def test_operations_and_writers_know_no_dicom():
    """Issue 17: ops/ and io/ take a Volume or a stack source, never a DICOM stack."""
    dicom = [(f, line) for f, line, a, b in _project_edges() if a in ("ops", "io") and b == "dicom"]
    assert dicom == []
    for sub in ("ops", "io"):
        for path in (PACKAGE / sub).rglob("*.py"):
            assert "volume.dicom" not in path.read_text(encoding="utf-8"), path


def test_the_layer_test_can_fail(tmp_path):
    """The checker sees an import inside a function, and resolves a relative one."""
    bad = tmp_path / "volume" / "ops" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("def f():\n    from ..dicom import headers\n    return headers\n")
    [(line, target, inside)] = _imports(bad, "volume.ops.bad")
    assert (line, target, inside) == (2, "volume.dicom.headers", True)
    assert _part(target) not in ALLOWED["ops"]


#: Modules outside ``volume/dicom/`` that may import pydicom: the writers of DICOM files (issue 23).
PYDICOM_WRITERS = {"volume.io.dicom_out", "volume.io.dicom_vr", "volume.sample"}


def _pydicom_imports(modules: list[tuple[Path, str]] | None = None) -> list[str]:
    """``file:line`` of every pydicom import outside the DICOM reader and the DICOM writers."""
    wrong = []
    for path, module in _modules() if modules is None else modules:
        if module == "volume.dicom" or module.startswith("volume.dicom.") or module in PYDICOM_WRITERS:
            continue
        for line, target, _inside in _imports(path, module):
            if target == "pydicom" or target.startswith("pydicom."):
                wrong.append(f"{path.name}:{line}")
    return wrong


def test_pydicom_only_in_the_dicom_reader_and_the_dicom_writers():
    """Issue 23: one way into a DICOM file (volume/dicom/read.py and the scanner); only the
    writers of DICOM output use pydicom beside it."""
    assert _pydicom_imports() == []


def test_the_pydicom_test_can_fail(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from pydicom.uid import UID\n    return UID\n")
    assert _pydicom_imports([(probe, "volume.jobs.probe")]) == ["probe.py:2"]
    assert _pydicom_imports([(probe, "volume.dicom.probe"), (probe, "volume.io.dicom_out")]) == []


def _library_modules() -> list[tuple[Path, str]]:
    """Modules whose imports are at their top: all but the command declarations of ``volume/cli/``,
    whose commands import their work when they run (tests/test_startup_imports.py checks them)."""
    out = []
    for path, module in _modules():
        parts = module.split(".")
        declaration = len(parts) == 3 and parts[1] == "cli" and parts[2] not in ("app", "outputs")
        if not declaration:
            out.append((path, module))
    return out


def test_imports_are_at_the_top_of_modules_except_the_heavy_ones():
    hidden = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {target}"
        for path, module in _library_modules()
        for line, target, inside in _imports(path, module)
        if inside and target.split(".")[0] not in LAZY and target not in LAZY_MODULES
    ]
    assert not hidden, "imports inside functions (move them to the module's top, docs/design.md):\n" + "\n".join(hidden)


def test_choice_tables_of_the_library_are_the_tuples_the_commands_offer():
    """One table per choice (volume/choices.py): the operations' own tables name exactly its values."""
    from volume.dicom import scaling
    from volume.ops import projection, reslice
    from volume.ops.presets import PRESETS as WINDOW_PRESETS
    from volume.render import mesh, offscreen, scene
    from volume.render.presets import PRESETS as RENDER_PRESETS

    assert tuple(projection.MODES) == choices.PROJECTION_MODES
    assert tuple(reslice.INTERPOLATIONS) == choices.INTERPOLATIONS
    assert tuple(scaling.SCALINGS) == choices.SCALINGS
    assert tuple(scene.MODES) == choices.RENDER_MODES
    assert tuple(scene.VIEWS) == choices.VIEWS
    assert tuple(offscreen.TURN_AXES) == choices.TURN_AXES
    assert tuple(RENDER_PRESETS) == choices.RENDER_PRESETS
    assert set(mesh.MESH_COORDS) == set(choices.MESH_COORDS)
    assert tuple(reslice.PLANE_AXES) == choices.PLANES
    assert "brain" in WINDOW_PRESETS and "lung" in WINDOW_PRESETS


@pytest.mark.parametrize("choice", sorted(set(choices.__all__)))
def test_every_choice_is_offered_by_a_command(choice):
    """A choice tuple no command offers is a table nobody reads."""
    cli = PACKAGE / "cli"
    text = "\n".join(p.read_text(encoding="utf-8") for p in cli.rglob("*.py"))
    assert choice in text
