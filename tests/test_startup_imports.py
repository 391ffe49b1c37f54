"""Start-up imports: each command is a declaration (``volume/cli/<command>.py``: options, help,
choices) and its work (``volume/cli/work/<command>.py``: the body, with its imports at the top).

``volume --help``, ``--version`` and ``volume convert --help`` import every declaration (or one),
never numpy, pydicom or the library's heavy modules; the work is imported inside the command
function, one line, when the command runs. These tests keep the split honest.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[1] / "volume" / "cli"

#: Third-party packages that no start-up path may import (rich draws progress bars and help tables
#: on a terminal only; click is typer's standalone copy, pulled in by extras).
HEAVY = ("numpy", "pydicom", "scipy", "nibabel", "SimpleITK", "vtk", "vtkmodules", "PIL", "rich", "dask",
         "distributed", "pyarrow", "imageio", "imageio_ffmpeg", "trame", "aiohttp", "matplotlib", "click")

#: The only modules of the library the declarations may import: plain tuples, errors, conventions,
#: the presets' table, the registry of output formats, the temporary-file prefix of volume.io and the
#: stop-signal handling every command installs and the version (all standard library only).
LIGHT = {"volume", "volume.choices", "volume.conventions", "volume.errors", "volume.io", "volume.io.formats",
         "volume.ops", "volume.ops.presets", "volume.lifecycle", "volume._version"}

#: Declaration modules split from their work (where the work imports its modules:
#: tests/test_design.py checks every module but these).
DECLARATIONS = ("inspect", "mip", "render", "reslice", "convert", "png", "index", "sample", "bids")

#: The comment on every lazy import of a work module, word for word.
WORK_COMMENT = "# the work imports numpy and the library: only when the command runs"

PROBE = """
import contextlib, io, json, sys
from volume.cli import COMMANDS, app, load_commands, main
args = json.loads(sys.argv[1])
if args is None:
    load_commands([])
else:
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    assert code == 0, code
loaded = sorted(sys.modules)
import typer.main
print(json.dumps({"modules": loaded, "commands": sorted(typer.main.get_command(app).commands)}))
"""


@pytest.mark.parametrize("args", [None, ["--help"], ["--version"], ["convert", "--help"], ["render", "--help"]],
                         ids=["load_commands", "help", "version", "convert-help", "render-help"])
def test_start_up_imports_no_numpy_and_no_work(args):
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    found = json.loads(out)
    modules = set(found["modules"])
    assert [m for m in HEAVY if m in modules] == []
    assert sorted(m for m in modules if m.startswith("volume.cli.work")) == []
    library = {m for m in modules if (m == "volume" or m.startswith("volume.")) and not m.startswith("volume.cli")}
    assert library <= LIGHT, sorted(library - LIGHT)
    if args is None:  # every command registered, from its declaration alone
        from volume.cli import COMMANDS

        assert found["commands"] == sorted(COMMANDS)


def _nested_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports anywhere but directly in the module's body (in functions, classes, if/try blocks)."""
    top = {id(node) for node in tree.body}
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) and id(n) not in top]


def _roots(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The top-level package each import names (``.`` for a relative import)."""
    if isinstance(node, ast.ImportFrom):
        return ["." if node.level else (node.module or "").split(".")[0]]
    return [alias.name.split(".")[0] for alias in node.names]


def _is_work_import(node: ast.AST) -> bool:
    """``from .work import X as work`` or ``from .work.X import ...``."""
    if not isinstance(node, ast.ImportFrom) or node.level != 1 or node.module is None:
        return False
    if node.module == "work":
        return all(alias.asname == "work" for alias in node.names)
    return node.module.startswith("work.")


@pytest.mark.parametrize("name", DECLARATIONS)
def test_declarations_import_only_their_work_inside_commands(name):
    path = CLI / f"{name}.py"
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source, str(path))
    nested = _nested_imports(tree)
    assert nested, f"{name}.py imports no work module"
    for node in nested:
        assert _is_work_import(node), f"{name}.py:{node.lineno}: {ast.unparse(node)}"
        assert lines[node.lineno - 1].endswith(WORK_COMMENT), f"{name}.py:{node.lineno}: comment differs"
    commands = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.decorator_list]
    assert commands
    for func in commands:  # docstring, the work's import, one call
        body = func.body[1:] if isinstance(func.body[0], ast.Expr) and isinstance(func.body[0].value, ast.Constant) else func.body
        assert len(body) == 2 and _is_work_import(body[0]), f"{name}.py: {func.name}"
        call = body[1].value
        assert isinstance(body[1], ast.Expr | ast.Return) and isinstance(call, ast.Call), f"{name}.py: {func.name}"
        assert isinstance(call.func, ast.Attribute) and ast.unparse(call.func.value) == "work", f"{name}.py: {func.name}"
