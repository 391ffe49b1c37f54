"""One registry of output formats (``volume/io/formats.py``): each command's ``-o``, its help, the
docs' table and the writers' own tables all agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from volume.cli import main
from volume.errors import EXIT_USAGE, UsageError
from volume.io import formats
from volume.io.outputs import FILE_SUFFIXES, FOLDER, output_kind

ROOT = Path(__file__).resolve().parent.parent


def test_every_writer_is_importable_and_is_the_function_it_names():
    for fmt in formats.FORMATS:
        for command in fmt.commands:
            write = formats.writer(command, f"x{fmt.suffix}")
            assert callable(write) and f"{write.__module__}:{write.__name__}" == fmt.writer
    with pytest.raises(UsageError, match=r"\.stl"):
        formats.writer("mesh", "x.png")


def test_the_longest_extension_wins():
    assert formats.find("mip", "a.b.nii.gz").suffix == ".nii.gz"
    assert formats.find("mip", "a.nii").suffix == ".nii"
    assert formats.find("mip", ".png") is None  # a hidden name, not an extension
    assert formats.find("convert", "x.nii.gz") is None  # convert's -o is a folder


def _writer_suffixes(writer: str) -> set[str]:
    return {f.suffix for f in formats.FORMATS if f.writer == writer}


def test_the_writers_own_tables_are_the_registrys():
    """A writer that maps an extension to an encoding must know every extension the registry sends it."""
    pytest.importorskip("PIL")
    from volume.io.image import PICTURE_FORMATS
    from volume.io.movie import MOVIE_CODECS

    assert set(PICTURE_FORMATS) == _writer_suffixes("volume.io.image:write_picture")
    assert set(MOVIE_CODECS) == _writer_suffixes("volume.io.movie:write_movie")
    try:
        from volume.render.mesh import MESH_FORMATS
    except ImportError:  # pragma: no cover - vtk missing
        return
    assert set(MESH_FORMATS) == _writer_suffixes("volume.render.mesh:write_mesh")


@pytest.mark.parametrize("command", ["mip", "reslice", "png"])
def test_each_command_reads_its_o_from_the_registry(command):
    import importlib

    module = importlib.import_module(f"volume.cli.work.{command}")
    assert set(module.OUTPUT_FORMATS) == set(formats.suffixes(command))
    for suffix in sorted(FILE_SUFFIXES - set(formats.suffixes(command))):
        with pytest.raises(UsageError) as caught:
            output_kind(f"x{suffix}", module.OUTPUT_FORMATS)
        listed = re.findall(r"\.[a-z0-9.]+", str(caught.value).split("takes", 1)[1])
        assert set(listed) >= set(formats.suffixes(command)), suffix
    assert output_kind("results/", module.OUTPUT_FORMATS)[0] == FOLDER


@pytest.mark.parametrize("command", ["mip", "reslice", "png", "render", "mesh", "index"])
def test_each_o_help_lists_the_registrys_extensions(command, capsys):
    assert main([command, "--help"]) == 0
    text = re.sub(r"\s+", " ", capsys.readouterr().out)
    for suffix in formats.suffixes(command):
        assert re.search(rf"{re.escape(suffix)}(?![a-z0-9])", text), f"{command} --help: {suffix}"


@pytest.mark.parametrize(("command", "name"), [("render", "x.bmp"), ("mesh", "x.vtk"), ("index", "x.xlsx")])
def test_render_mesh_and_index_refuse_other_extensions_listing_the_registrys(command, name, tmp_path, capsys):
    code = main([command, str(tmp_path), "-o", str(tmp_path / name)])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and name in err
    for suffix in formats.suffixes(command, "picture" if command == "render" else None):
        assert suffix in err
    assert not (tmp_path / name).exists()


def test_the_docs_table_is_the_registrys():
    page = (ROOT / "docs" / "pictures-and-selection.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- formats-table -->\n(.*?)\n<!-- /formats-table -->", page, flags=re.S)
    assert found, "docs/pictures-and-selection.md lost its formats-table markers"
    assert found.group(1) == formats.markdown_table(), "regenerate it: python -m volume.io.formats"
