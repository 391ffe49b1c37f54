"""The documentation: ``docs/`` builds with ``mkdocs build --strict``, the API page documents every
public name through the module that defines it, and nothing in the repository points outside it
except to the test data in ``../shared/data``."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import volume

ROOT = Path(__file__).resolve().parent.parent
API_PAGE = ROOT / "docs" / "api.md"


def test_docs_build_strict(tmp_path: Path) -> None:
    """Every page in the nav exists, every link and anchor between pages resolves, every
    ``::: module.name`` of the API page is found (``--strict`` turns each warning into a failure)."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e '.[docs]'")
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed: pip install -e '.[docs]'")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    assert "volume.load" in api and "Load one stack as a" in api
    assert ":class:" not in api and ":func:" not in api  # Sphinx roles shown as code (mkdocs_hooks.py)


def api_entries() -> dict[str, str]:
    """Public name -> the ``module.attribute`` path the API page documents it by."""
    text = API_PAGE.read_text(encoding="utf-8")
    pairs = re.findall(r'^::: (\S+)\n    options:\n      heading: "volume\.(\w+)"$', text, flags=re.M)
    assert len(pairs) == text.count("\n::: "), "every ::: entry names its public name in a heading"
    return {name: path for path, name in pairs}


def test_api_page_documents_every_public_name_by_its_defining_module() -> None:
    """When a module moves, this names the entry of docs/api.md to update."""
    entries = api_entries()
    assert set(entries) == set(volume.__all__) - {"__version__"}
    for name, path in entries.items():
        module, _, attribute = path.rpartition(".")
        assert getattr(importlib.import_module(module), attribute) is getattr(volume, name), (
            f"docs/api.md documents volume.{name} as {path}, which is another object")


def repository_files() -> list[Path]:
    """The repository's text files as git tracks them (or, without git, the tree less build output)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
        files = [ROOT / p for p in listed.decode().split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        skip = {".git", ".venv", "venv", "site", "build", "dist", "__pycache__"}
        files = [p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]
    return [p for p in files if p.suffix in {".md", ".py", ".yml", ".yaml", ".toml", ".cfg", ".txt", ".sh", ""}
            and p.is_file() and "egg-info" not in str(p)]


#: A path out of the repository: ../shared/ other than ../shared/data, or an absolute path into
#: this workplace's folders.
OUTSIDE = re.compile(r"\.\./shared/(?!data\b)|(?<![\w.])/work/")


def test_nothing_points_outside_the_repository() -> None:
    """Docs, docstrings and comments name no file outside the repository but the test data."""
    offenders = []
    for path in repository_files():
        if path == Path(__file__).resolve():
            continue  # the pattern itself
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []


def test_the_outside_pattern_finds_what_it_must() -> None:
    assert OUTSIDE.search("see ../shared/" + "GUIDE.md") and OUTSIDE.search("cd /" + "work/main")
    assert not OUTSIDE.search("volume ls ../shared/data/dicom") and not OUTSIDE.search("a/work/b")


def test_markdown_links_stay_in_the_repository() -> None:
    """Links of every Markdown file resolve to files of the repository; those of docs/ stay in
    docs/ (MkDocs copies only that folder); none is a web address."""
    problems = []
    for path in repository_files():
        if path.suffix != ".md":
            continue
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            target = target.split("#", 1)[0]
            if not target:
                continue
            if re.match(r"[a-z]+:", target):
                problems.append(f"{path.relative_to(ROOT)}: {target} (a web address)")
                continue
            resolved = (path.parent / target).resolve()
            home = ROOT / "docs" if path.is_relative_to(ROOT / "docs") else ROOT
            if not (resolved.is_relative_to(home) and resolved.exists()):
                problems.append(f"{path.relative_to(ROOT)}: {target}")
    assert problems == []
