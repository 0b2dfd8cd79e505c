"""Options that take patterns refuse bytes ones with an error naming the option:
a path, a user agent, a route is text."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from starlette.applications import Starlette

from segment_asgi import SegmentMiddleware
from segment_core.web import WebOptions
from segment_flask import SegmentFlask

BYTES_PATTERNS = [
    pytest.param(re.compile(rb"^/internal/"), id="compiled"),
    pytest.param([re.compile(rb"^/internal/")], id="compiled-in-a-list"),
    pytest.param([r"^/health", b"^/internal/"], id="bytes-in-a-list"),
    pytest.param(b"^/internal/", id="bytes"),
    pytest.param(bytearray(b"^/internal/"), id="bytearray"),
]

REFUSED = "exclude_paths: b'^/internal/' is a bytes pattern; paths are text"


@pytest.mark.parametrize("value", BYTES_PATTERNS)
def test_a_bytes_pattern_in_exclude_paths_is_refused_naming_the_option(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^exclude_paths: .* is a bytes pattern; paths are text$"):
        WebOptions(exclude_paths=value)


def test_a_bytes_pattern_in_a_settings_mapping_is_refused_naming_the_option() -> None:
    with pytest.raises(ValueError, match=re.escape(REFUSED)):
        WebOptions.from_mapping({"EXCLUDE_PATHS": [re.compile(rb"^/internal/")]})


def test_segment_middleware_refuses_a_bytes_pattern_naming_the_option() -> None:
    with pytest.raises(ValueError, match=re.escape(REFUSED)):
        SegmentMiddleware(Starlette(), exclude_paths=[re.compile(rb"^/internal/")])


def test_segment_flask_refuses_a_bytes_pattern_naming_the_config_key() -> None:
    app = Flask(__name__)
    app.config.update(TESTING=True, SEGMENT_EXCLUDE_PATHS=[re.compile(rb"^/internal/")])
    with pytest.raises(ValueError, match=re.escape(f"SEGMENT_EXCLUDE_PATHS']: {REFUSED}")):
        SegmentFlask(app)


@pytest.mark.parametrize("name", ["bot_user_agents", "exclude_routes", "redact_query_params"])
@pytest.mark.parametrize(
    "value", [[re.compile(rb"x")], [b"x"], b"x"], ids=["compiled", "bytes-in-a-list", "bytes"]
)
def test_the_other_text_options_refuse_bytes_naming_the_option(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be a list of strings"):
        WebOptions(**{name: value})


def test_text_patterns_compiled_or_not_are_still_taken() -> None:
    compiled = re.compile(r"^/internal/", re.IGNORECASE)
    options = WebOptions(exclude_paths=[compiled, r"^/health"])
    assert options.exclude_paths[-2:] == (compiled, r"^/health")
    assert options.exclude_regex is not None
    assert options.exclude_regex.search("/INTERNAL/metrics")
