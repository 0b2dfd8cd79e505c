"""What the ASGI adapter reads from a scope's headers equals what Starlette reads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import cookie_parser

from segment_asgi._scope import HeaderCookies, header_dict
from segment_core.web import ASGIHeaders

NAMES = ["ajs_anonymous_id", "ajs_user_id", "a", "theme", ""]

COOKIE_HEADERS = [
    "ajs_anonymous_id=3b241101-e2bb-4255-8caf-4136c566a962",
    "_ga=GA1.1.1234567890.1700000000; ajs_anonymous_id=abc; theme=dark",
    "ajs_anonymous_id=first; ajs_anonymous_id=second",  # the last one wins
    'ajs_anonymous_id="%22quoted%22"; ajs_user_id="u\\"42"',
    "  ajs_anonymous_id  =  spaced  ;theme=",
    "xajs_anonymous_id=no; ajs_anonymous_idx=no",
    "ajs_anonymous_id; a=1; =b; ;;",
    "ajs_user_id=u=1=2",
]


@pytest.mark.parametrize("header", COOKIE_HEADERS)
@pytest.mark.parametrize("name", NAMES)
def test_header_cookies_read_as_starlette_parses(header: str, name: str) -> None:
    expected = cookie_parser(header)
    cookies = HeaderCookies(header)
    assert cookies.get(name) == expected.get(name)
    assert cookies.get(name, "none") == expected.get(name, "none")
    assert dict(cookies) == expected and len(cookies) == len(expected)
    assert cookies.get(name) == expected.get(name)  # after the whole parse too


@given(st.text(alphabet='ajs_nonymu=; "\\%2x', max_size=60), st.sampled_from(NAMES))
def test_any_cookie_header_reads_as_starlette_parses(header: str, name: str) -> None:
    assert HeaderCookies(header).get(name) == cookie_parser(header).get(name)


PAIRS = [
    (b"host", b"shop.example"),
    (b"user-agent", b"Mozilla/5.0 \xe9"),
    (b"content-type", b"text/html"),
]


def test_asgi_headers_read_as_the_decoded_dict() -> None:
    headers = ASGIHeaders.of(PAIRS)
    assert headers is not None
    assert dict(headers) == header_dict(PAIRS) and len(headers) == 3
    assert headers.get("User-Agent") == headers["user-agent"] == "Mozilla/5.0 \u00e9"
    assert headers.get("accept") is None and headers.get("accept", "") == ""
    assert "host" in headers and "accept" not in headers and "h\u00f6st" not in headers
    with pytest.raises(KeyError):
        headers["accept"]


@pytest.mark.parametrize(
    "pairs",
    [
        [(b"Host", b"a")],  # a name not in lower case
        [(b"cookie", b"a=1"), (b"cookie", b"b=2")],  # a repeated name
        [("host", "a")],  # not bytes
        [(b"host",)],  # not a pair
    ],
)
def test_other_pairs_are_left_to_the_decoding_dict(pairs: list[tuple[object, ...]]) -> None:
    assert ASGIHeaders.of(pairs) is None
