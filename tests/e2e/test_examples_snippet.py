"""Each example app renders the analytics.js snippet in its pages, on its real server."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from example_projects._servers import EXAMPLES, Example, serving
from segment_core.collector import CollectorHandle
from tests.web.snippets import has_snippet, snippet_settings

pytestmark = pytest.mark.slow

SRC = "https://cdn.example/analytics.js"
ONE_PER_APP = [e for e in EXAMPLES if (e.name, e.server) != ("django_shop", "uvicorn")]


@pytest.mark.parametrize("example", ONE_PER_APP, ids=lambda e: e.name)
def test_the_home_page_loads_analytics_js_as_the_servers_visitor(
    example: Example, segment_collector: CollectorHandle, tmp_path: Path
) -> None:
    browser_key = example.write_key + "-web"
    env = {"SEGMENT_BROWSER_WRITE_KEY": browser_key, "SEGMENT_SNIPPET_SRC": SRC}
    with serving(example, segment_collector.url, tmp_path, extra_env=env) as server:
        response = requests.get(server.url + "/", timeout=10)
        private = requests.get(server.url + "/", headers={"Sec-GPC": "1"}, timeout=10)
    assert response.status_code == 200
    settings = snippet_settings(response.text)
    assert settings["anonymousId"] == response.cookies["ajs_anonymous_id"]
    assert (settings["writeKey"], settings["src"], settings["page"]) == (browser_key, SRC, False)
    assert example.write_key + '"' not in response.text  # the server's key stays on the server
    assert private.status_code == 200 and not has_snippet(private.text)
