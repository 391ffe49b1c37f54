"""The Examples of ``volume.__all__``'s docstrings run, and say what they print (issue 23: the API
reference in docs/api.md shows them). Each runs in a folder of its own beside ``ct/``, the
synthetic CT of :mod:`volume.sample` (docs/api.md says so)."""

from __future__ import annotations

import doctest
import inspect
import shutil

import numpy as np
import pytest

import volume
from volume.sample import write_sample_ct

#: Public names whose docstrings hold Examples, with the objects they document.
DOCUMENTED = {
    name: getattr(volume, name) for name in volume.__all__
    if (inspect.isfunction(getattr(volume, name)) or inspect.isclass(getattr(volume, name)))
    and "Examples\n" in (inspect.getdoc(getattr(volume, name)) or "")
}

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.fixture(scope="module")
def sample_ct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sample") / "ct"
    write_sample_ct(folder)
    return folder


def test_every_public_function_and_class_has_examples():
    missing = [name for name in volume.__all__
               if (inspect.isfunction(getattr(volume, name)) or inspect.isclass(getattr(volume, name)))
               and name not in DOCUMENTED]
    assert missing == []


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_the_examples_run(name, sample_ct, tmp_path, monkeypatch):
    shutil.copytree(sample_ct, tmp_path / "ct")
    monkeypatch.chdir(tmp_path)
    obj = DOCUMENTED[name]
    test = doctest.DocTestParser().get_doctest(inspect.getdoc(obj), {"volume": volume, "np": np}, name, None, 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
    assert runner.tries > 0
