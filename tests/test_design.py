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
    "dicom": BASE | {"parallel"},
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
    compiled = path.with_suffix(".c").is_file()  # an extension module (volume/dicom/_walk.c)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file() or compiled


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


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines of imports under ``if TYPE_CHECKING:`` (read by type checkers only, never run)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            lines.update(n.lineno for stmt in node.body for n in ast.walk(stmt) if hasattr(n, "lineno"))
    return lines


def _import_graph(modules: list[tuple[Path, str]] | None = None) -> dict[str, set[str]]:
    """module -> the modules of volume it imports when it is imported (module-level statements)."""
    graph: dict[str, set[str]] = {}
    for path, module in _modules() if modules is None else modules:
        skip = _type_checking_lines(ast.parse(path.read_text(encoding="utf-8")))
        graph[module] = {
            target for line, target, inside in _imports(path, module)
            if not inside and line not in skip and target.split(".")[0] == "volume" and target != module
        }
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: its strongly connected components of more than one module
    (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_the_modules_of_volume():
    """Issue 23: no two modules import each other, directly or round a longer loop, when imported
    (imports inside functions run later and are not edges)."""
    assert _cycles(_import_graph()) == []


def test_the_cycle_test_can_fail(tmp_path):
    a, b, c = (tmp_path / f"{n}.py" for n in "abc")
    a.write_text("from .b import thing\n")
    b.write_text("from .c import thing\n")
    c.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import thing\n"
                 "def late():\n    from .a import thing\n    return thing\n")
    modules = [(a, "volume.ops.a"), (b, "volume.ops.b"), (c, "volume.ops.c")]
    assert _cycles(_import_graph(modules)) == []
    c.write_text("from .a import anything\n")
    assert _cycles(_import_graph(modules)) == [["volume.ops.a", "volume.ops.b", "volume.ops.c"]]


def _parsed_modules() -> list[tuple[str, ast.Module]]:
    """(``volume/...py``, its syntax tree) of every module."""
    return [(str(path.relative_to(PACKAGE.parent)), ast.parse(path.read_text(encoding="utf-8")))
            for path, _ in _modules()]


#: Names with a leading underscore that are public all the same: the documentation of their owner
#: says so. ``os._exit`` is the os module's documented exit without clean-up (a forked worker's end).
DOCUMENTED_UNDERSCORE = {"os._exit"}

#: Private attributes of another library that volume still uses, by (file, attribute), each because
#: the library has no public way to do it. isal's threaded gzip writer has no abort: its close()
#: waits for every queued block, so after Ctrl-C volume stops its threads and marks it closed.
PRIVATE_ALLOWED = {("volume/io/nifti.py", "_closed")}


#: Dunders that are an implementation's, not the language's: dataclasses.fields() is the public way.
PRIVATE_DUNDERS = {"__dataclass_fields__", "__dataclass_params__"}


def _private(name: str) -> bool:
    """``_name`` but not ``__dunder__`` (dunders are the language's own, public protocol), and the
    dunders of :data:`PRIVATE_DUNDERS`."""
    return name in PRIVATE_DUNDERS or (name.startswith("_") and not (name.startswith("__") and name.endswith("__")))


def _defined_names(trees: list[ast.Module]) -> set[str]:
    """Every private name volume defines: functions, classes, assignments (module, class or
    ``self.x``), ``__slots__`` entries and imports of our own modules."""
    names: set[str] = set()
    for tree in trees:  # (names read as strings: __slots__, object.__setattr__(self, "_x", ...))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Store):
                if isinstance(node, ast.Name):
                    names.add(node.id)
                elif isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    names.add(node.attr)
            elif isinstance(node, ast.alias) and node.name.startswith("_"):
                names.add(node.asname or node.name)
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__slots__" for t in node.targets):
                names.update(c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant))
            elif (isinstance(node, ast.Call) and ast.unparse(node.func) in ("object.__setattr__", "setattr")
                  and len(node.args) >= 2 and getattr(node.args[0], "id", "") == "self"
                  and isinstance(node.args[1], ast.Constant)):
                names.add(node.args[1].value)  # a frozen dataclass's own attribute
    return {n for n in names if _private(n)}


def _foreign_modules(tree: ast.Module) -> set[str]:
    """Names bound by ``import x`` / ``from x import y`` of modules that are not volume's."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names if not a.name.startswith("volume"))
        elif isinstance(node, ast.ImportFrom) and not node.level and not (node.module or "").startswith("volume"):
            bound.update(a.asname or a.name for a in node.names)
    return bound


def _private_uses(files: list[tuple[str, ast.Module]], defined: set[str]) -> list[str]:
    """``file:line: expression`` of every private attribute of something that is not volume's:
    ``x._name`` (or ``getattr(x, "_name")``) where ``x`` is not ``self``/``cls`` and volume defines
    no ``_name``, or ``x`` is a module of another library."""
    found: list[tuple[str, int, str]] = []
    for where, tree in files:
        foreign = _foreign_modules(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                owner, attr = node.value, node.attr
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2
                  and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
                owner, attr = node.args[0], node.args[1].value
            else:
                continue
            if not _private(attr) or (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                continue
            text = f"{ast.unparse(owner)}.{attr}"
            module_of_another = isinstance(owner, ast.Name) and owner.id in foreign
            if text in DOCUMENTED_UNDERSCORE or (where, attr) in PRIVATE_ALLOWED:
                continue
            if module_of_another or attr not in defined:
                found.append((where, node.lineno, text))
    return [f"{where}:{line}: {text}" for where, line, text in sorted(found)]


def test_no_private_attribute_of_another_library_or_of_cpython():
    """Issue 23: public interfaces only (concurrent.futures, multiprocessing and distributed have
    public ways to do what their private attributes did)."""
    files = _parsed_modules()
    assert _private_uses(files, _defined_names([tree for _, tree in files])) == []


def test_the_private_attribute_test_can_fail():
    probe = ast.parse(
        "import os\nimport concurrent.futures as cf\n"
        "class Ours:\n    __slots__ = ('_kept',)\n    def _mine(self):\n        return self._kept\n"
        "def f(pool, client, other):\n"
        "    other._kept, other._mine()\n"  # our own names: fine
        "    os._exit(0)\n"  # documented
        "    getattr(pool, '_processes')\n"
        "    client._loop_runner.stop()\n"
        "    cf._base\n"
        "    Ours.__dataclass_fields__\n"
        "    return pool.__class__.__name__\n"  # the language's own
    )
    assert _private_uses([("probe.py", probe)], _defined_names([probe])) == [
        "probe.py:10: pool._processes", "probe.py:11: client._loop_runner", "probe.py:12: cf._base",
        "probe.py:13: Ours.__dataclass_fields__",
    ]


#: Lines a function may take before it counts as long, and how many long ones volume may hold
#: (issue 23: split where a split reads better). Its docstring does not count: the numpydoc
#: sections a public function must have would otherwise fight the limit.
LONG_FUNCTION_LINES = 80
MAX_LONG_FUNCTIONS = 5


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from ``def`` to the function's end, its docstring left out."""
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


def _long_functions(files: list[tuple[str, ast.Module]]) -> list[str]:
    """``file:line name (N lines)`` of every function or method over :data:`LONG_FUNCTION_LINES`
    (docstrings left out)."""
    return [
        f"{where}:{node.lineno} {node.name} ({_code_lines(node)} lines)"
        for where, tree in files for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _code_lines(node) > LONG_FUNCTION_LINES
    ]


def test_few_long_functions():
    files = _parsed_modules()
    long = _long_functions(files)
    assert len(long) <= MAX_LONG_FUNCTIONS, "split some of these:\n" + "\n".join(long)


def test_the_long_function_test_can_fail():
    body = "\n".join(f"    x{i} = {i}" for i in range(LONG_FUNCTION_LINES))
    documented = '    """Summary.\n\n' + "    Line.\n" * 50 + '    """\n    return 1\n'
    probe = ast.parse(f"def short():\n{documented}\ndef long():\n{body}\n")
    assert _long_functions([("probe.py", probe)]) == [f"probe.py:57 long ({LONG_FUNCTION_LINES + 1} lines)"]
