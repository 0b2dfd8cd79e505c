"""The pytest plugin in other people's test runs: loaded everywhere, felt nowhere.

Each test runs pytest in a child process on a small project of its own, as a
user's run on a machine where the package is installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

STRICT_INI = "[pytest]\nfilterwarnings =\n    error\n"
#: Other installed plugins are left out where warnings are errors: pytest-asyncio
#: warns about a setting these projects do not have.
QUIET = ("-p", "no:asyncio")


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for name, text in files.items():
        (project / name).write_text(textwrap.dedent(text))
    return project


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Nothing of this run's pytest leaks into the child's.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "SEGMENT"))}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_run_that_never_uses_it_imports_nothing_of_the_library(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            "pytest.ini": STRICT_INI,
            "test_plain.py": """
                import sys


                def test_nothing_of_segment_web_is_imported(pytestconfig):
                    assert pytestconfig.pluginmanager.has_plugin("segment")
                    loaded = sorted(name for name in sys.modules if name.startswith("segment_"))
                    assert loaded == ["segment_pytest"], loaded
                    assert "requests" not in sys.modules
            """,
        },
    )
    result = _run(project, "-W", "error", "-m", "pytest", "-q", "-p", "no:cacheprovider", *QUIET)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_library_imported_before_pytest_starts_gets_no_warning(tmp_path: Path) -> None:
    # A runtests.py, or pytest-django's runner under manage.py test: the library is
    # imported first, then pytest.main(); warnings are errors in this project.
    project = _project(
        tmp_path,
        {
            "pytest.ini": STRICT_INI,
            "runtests.py": """
                import sys

                import pytest

                import segment_core
                import segment_core.testing

                sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:asyncio"]))
            """,
            "test_events.py": """
                from segment_core import Client


                def test_captured(segment_events):
                    Client("key").track("u1", "Signed Up")
                    assert [event["event"] for event in segment_events] == ["Signed Up"]
            """,
        },
    )
    result = _run(project, "runtests.py")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 passed" in output and "Warning" not in output


def test_a_django_project_under_plain_pytest_sends_nothing(tmp_path: Path) -> None:
    # No pytest-django: the project sets Django up in its conftest. Its events go to
    # the outbox, not to the (unreachable) host.
    project = _project(
        tmp_path,
        {
            "pytest.ini": "[pytest]\n",
            "settings.py": """
                SECRET_KEY = "x"
                INSTALLED_APPS = ["segment_django"]
                SEGMENT = {"WRITE_KEY": "a-real-key", "HOST": "http://127.0.0.1:9"}
            """,
            "conftest.py": """
                import os

                import django

                os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
                django.setup()
            """,
            "test_django.py": """
                import segment_core
                from segment_core.testing import outbox


                def test_events_go_to_the_outbox():
                    segment_core.track("u1", "Signed Up")
                    assert [event["event"] for event in outbox] == ["Signed Up"]
                    assert segment_core.get_client().stats()["sent"] == 0
            """,
        },
    )
    result = _run(project, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 passed" in output
    assert "undelivered" not in output and "cannot deliver" not in output
