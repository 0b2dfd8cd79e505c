"""The collector's Python API imported without the collector extra names the extra."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.test_install_without_extras import _env, _run

#: Imports a name of the collector package and prints what the ImportError says.
IMPORT = """
try:
    from segment_core.collector{module} import {name}
except ImportError as error:
    print(type(error).__name__, error.name, error, sep="|")
"""


@pytest.mark.parametrize(
    "module, name, missing",
    [
        ("", "run_in_background", "uvicorn"),
        ("", "create_app", "starlette"),
        ("", "CollectorApp", "starlette"),
        (".oauth", "OAuthServer", "starlette"),  # as a client's tests import it
    ],
)
def test_importing_it_names_the_extra_to_install(
    tmp_path: Path, module: str, name: str, missing: str
) -> None:
    script = IMPORT.format(module=module, name=name)
    result = _run(["-c", script], tmp_path, _env(tmp_path))
    assert result.returncode == 0, result.stderr
    kind, module, text = result.stdout.strip().split("|")
    assert (kind, module) == ("ModuleNotFoundError", missing)
    assert text == (
        f"No module named {missing!r}; the local collector needs the 'collector' extra: "
        "pip install 'segment-web[collector]'"
    )


def test_the_names_that_need_no_extra_still_import(tmp_path: Path) -> None:
    script = "from segment_core.collector import CollectorHandle, Limits, validate_message"
    result = _run(["-c", script], tmp_path, _env(tmp_path))
    assert result.returncode == 0, result.stderr
