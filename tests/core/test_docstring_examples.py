"""The examples in segment_core's docstrings run as written."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import segment_core

MODULES = sorted(
    ["segment_core"]
    + [info.name for info in pkgutil.walk_packages(segment_core.__path__, "segment_core.")]
)


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_of_a_module_run_as_written(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
