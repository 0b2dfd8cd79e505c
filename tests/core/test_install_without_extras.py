"""The package installed without the collector extra: pytest and the CLI still behave.

The collector's dependencies are made unimportable in a child process by a
``sitecustomize`` that refuses ``starlette`` and ``uvicorn``, as on a machine where
the package was installed without the ``collector`` extra.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BLOCKER = '''
import sys


class _Refuse:
    """Make the collector's dependencies unimportable, as when they are not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("starlette", "uvicorn"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Refuse())
'''


#: A collector dependency that is installed but fails to import (a shared library).
BROKEN = BLOCKER.replace(
    'raise ModuleNotFoundError(f"No module named {name!r}", name=name)',
    'raise ImportError("libssl.so.3: cannot open shared object file", name=name)',
)


def _env(tmp_path: Path, blocker_code: str = BLOCKER) -> dict[str, str]:
    blocker = tmp_path / "blocker"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text(blocker_code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["PYTHONPATH"] = str(blocker)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_blocker_really_hides_the_collector_dependencies(tmp_path: Path) -> None:
    result = _run(["-c", "import starlette"], tmp_path, _env(tmp_path))
    assert result.returncode != 0
    assert "starlette" in result.stderr


def test_pytest_runs_green_in_an_unrelated_folder(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_plain.py").write_text("def test_arithmetic():\n    assert 1 + 1 == 2\n")
    result = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider"], project, _env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "INTERNALERROR" not in result.stdout + result.stderr


def test_the_capture_fixture_works_and_the_collector_fixture_names_the_extra(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_app.py").write_text(
        textwrap.dedent(
            """
            import sys

            from segment_core import Client


            def test_capture(segment_events):
                Client("key").track("u1", "Signed Up")
                assert [e["event"] for e in segment_events] == ["Signed Up"]
                assert "starlette" not in sys.modules


            def test_collector(segment_collector):
                pass
            """
        )
    )
    result = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider"], project, _env(tmp_path))
    output = result.stdout + result.stderr
    assert "1 passed, 1 error" in output, output
    assert "pip install 'segment-web[collector]'" in output
    assert "INTERNALERROR" not in output


def test_segment_collector_without_the_extra_says_what_to_install(tmp_path: Path) -> None:
    for args in (["-m", "segment_core.collector", "--port", "0"], ["-c", _CONSOLE_SCRIPT]):
        result = _run(args, tmp_path, _env(tmp_path))
        assert result.returncode != 0
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "pip install 'segment-web[collector]'" in lines[0]


def test_segment_collector_with_a_dependency_that_fails_to_import_says_why(
    tmp_path: Path,
) -> None:
    # Installing the extra again would change nothing: the error's own words.
    result = _run(["-c", _CONSOLE_SCRIPT], tmp_path, _env(tmp_path, BROKEN))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "libssl.so.3: cannot open shared object file" in line
    assert "not installed" not in line and "pip install" not in line


# What the installed `segment-collector` script runs.
_CONSOLE_SCRIPT = "from segment_core.collector.__main__ import main; main(['--port', '0'])"


@pytest.mark.parametrize("name", ["run_in_background", "create_app", "CollectorHandle"])
def test_the_collector_package_still_exports_its_api(name: str) -> None:
    import segment_core.collector

    assert name in segment_core.collector.__all__
    assert callable(getattr(segment_core.collector, name))


ADAPTER_WITHOUT_FRAMEWORK = """
import sys


class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == sys.argv[2]:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Refuse())
__import__(sys.argv[1])
"""


@pytest.mark.parametrize(
    ("adapter", "framework", "extra"),
    [
        ("segment_django", "django", "django"),
        ("segment_flask", "flask", "flask"),
        ("segment_asgi", "starlette", "asgi"),
        ("segment_celery", "celery", "celery"),
        ("segment_rq", "rq", "rq"),
    ],
)
def test_an_adapter_without_its_framework_names_the_extra(
    adapter: str, framework: str, extra: str
) -> None:
    code = ["-c", ADAPTER_WITHOUT_FRAMEWORK, adapter, framework]
    result = _run(code, Path(__file__).resolve().parents[2], dict(os.environ))
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == (
        f"ModuleNotFoundError: {adapter} needs {framework}, which is not installed: "
        f"pip install 'segment-web[{extra}]'"
    )


@pytest.mark.parametrize(
    ("adapter", "distribution", "old", "framework", "minimum", "extra"),
    [
        ("segment_django", "Django", "3.2.25", "django", "4.2", "django"),
        ("segment_flask", "Flask", "2.0.3", "flask", "2.3", "flask"),
        ("segment_asgi", "starlette", "0.20.4", "starlette", "0.37", "asgi"),
        ("segment_celery", "celery", "5.2.7", "celery", "5.3", "celery"),
        ("segment_rq", "rq", "1.9.0", "rq", "1.16", "rq"),
    ],
)
def test_an_adapter_with_a_framework_too_old_names_the_version_it_needs(
    tmp_path: Path,
    adapter: str,
    distribution: str,
    old: str,
    framework: str,
    minimum: str,
    extra: str,
) -> None:
    """``pip install segment-web`` without the extra checks no framework version: the
    old one installed is found first on the path, as in a project pinned to it."""
    installed = tmp_path / f"{distribution}-{old}.dist-info"
    installed.mkdir()
    (installed / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {old}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = _run(["-c", f"import {adapter}"], Path(__file__).resolve().parents[2], env)
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == (
        f"ImportError: {adapter} needs {framework} >= {minimum}, and {old} is installed: "
        f"pip install 'segment-web[{extra}]'"
    )
    # The version the extra asks for, or a later one: imported as before.
    (installed / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {minimum}.0rc1\n"
    )
    assert _run(["-c", f"import {adapter}"], tmp_path, env).returncode == 0


@pytest.mark.parametrize("metadata", [None, "Metadata-Version: 2.1\nName: Flask\n"])
def test_a_framework_whose_metadata_says_no_version_is_not_checked(
    tmp_path: Path, metadata: str | None
) -> None:
    """Broken metadata first on the path (no file, no version): the import goes on."""
    installed = tmp_path / "Flask-3.1.3.dist-info"
    installed.mkdir()
    if metadata is not None:
        (installed / "METADATA").write_text(metadata)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = _run(["-c", "import segment_flask"], Path(__file__).resolve().parents[2], env)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("distribution", "old", "minimum"),
    [("uvicorn", "0.20.0", "0.29"), ("starlette", "0.27.0", "0.37")],
)
def test_the_collector_with_a_dependency_too_old_names_the_version_it_needs(
    tmp_path: Path, distribution: str, old: str, minimum: str
) -> None:
    installed = tmp_path / f"{distribution}-{old}.dist-info"
    installed.mkdir()
    (installed / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {old}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    needed = (
        f"the local collector needs {distribution} >= {minimum}, and {old} is installed: "
        "pip install 'segment-web[collector]'"
    )
    result = _run(["-c", _CONSOLE_SCRIPT], tmp_path, env)
    assert result.returncode == 1
    assert result.stderr.strip() == f"segment-collector: {needed}"
    # What serves nothing needs neither: the handle, the limits, the Spec's check.
    names = "CollectorError, CollectorHandle, Limits, validate_message"
    result = _run(["-c", f"from segment_core.collector import {names}"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_app.py").write_text("def test_collector(segment_collector):\n    pass\n")
    result = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider"], project, env)
    output = result.stdout + result.stderr
    assert "1 error" in output, output
    assert f"segment_collector: {needed}" in output
    assert "Traceback" not in output and "INTERNALERROR" not in output
