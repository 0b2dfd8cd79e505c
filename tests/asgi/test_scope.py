"""What the ASGI adapter reads from a scope's headers equals what Starlette reads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import cookie_parser

from segment_asgi._scope import HeaderCookies, header_dict

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


def decoded_one_by_one(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers as the ASGI adapter reads them, decoded pair by pair."""
    headers: dict[str, str] = {}
    for name_bytes, value_bytes in raw:
        name, value = name_bytes.decode("latin-1").lower(), value_bytes.decode("latin-1")
        if name in headers:
            value = headers[name] + ("; " if name == "cookie" else ", ") + value
        headers[name] = value
    return headers


HEADER_BYTES = st.binary(max_size=8) | st.sampled_from([b"host", b"Host", b"cookie", b"\n", b""])


@given(st.lists(st.tuples(HEADER_BYTES, HEADER_BYTES), max_size=6))
def test_any_pairs_are_read_as_decoded_one_by_one(raw: list[tuple[bytes, bytes]]) -> None:
    assert header_dict(raw) == decoded_one_by_one(raw)
    assert header_dict(iter(raw)) == decoded_one_by_one(raw)
    assert header_dict([list(pair) for pair in raw]) == decoded_one_by_one(raw)


def test_a_browsers_headers_are_read_whole() -> None:
    raw = [
        (b"host", b"shop.example"),
        (b"user-agent", b"Mozilla/5.0 \xe9"),
        (b"accept-language", b"de-CH,de;q=0.9"),
        (b"referer", b"https://shop.example/?a=1\r"),
    ]
    assert header_dict(raw) == {
        "host": "shop.example",
        "user-agent": "Mozilla/5.0 \u00e9",
        "accept-language": "de-CH,de;q=0.9",
        "referer": "https://shop.example/?a=1\r",
    }
