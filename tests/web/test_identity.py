from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_core.client import Client
from segment_core.web import (
    CookieSpec,
    RequestTracker,
    WebOptions,
    anonymous_id_cookie,
    environ_wire_path,
    new_anonymous_id,
    parse_id_cookie,
    request_wire_path,
)
from segment_core.web._identity import id_cookie
from segment_core.web._snippet import load_options
from tests.web.conftest import make_request

UUID = "8d2b4f34-1c4e-4b6e-9a3f-0c6d9f1e2a7b"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (UUID, UUID),  # analytics-next: raw
        (f"%22{UUID}%22", UUID),  # analytics.js classic: JSON then URL-encoded
        (f'"{UUID}"', UUID),  # classic, after a framework URL-decoded it
        ("%22user%40example.com%22", "user@example.com"),
        ("user%40example.com", "user@example.com"),
        ("%2242%22", "42"),
        ("42", "42"),
        ("%22a%5Cu0062c%22", "abc"),  # JSON escapes are honoured
        ("%22a%5C%22b%22", None),  # quotes: no id
        ("", None),
        (None, None),
        ("null", None),
        ("%22%22", None),
        ("%22", None),
        ("x" * 300, None),
        ("a%0Ab", None),  # control characters: not an id
        # Spaces encoded at either end are the id's own: not an id, as in its middle
        # (analytics.js would keep them, so a trimmed id would be another visitor).
        ("%20abc", None),
        ("abc%0A", None),
        ("%09abc", None),
        ("%C2%A0abc", None),
        ("%E2%80%83abc", None),
        ("%22%20abc%22", None),
        ("%22abc%5Cn%22", None),
        # After the closing quote of a JSON one: JSON's own whitespace, as
        # analytics.js's JSON.parse reads it; anything else there is no id.
        (f"%22{UUID}%22%20", UUID),
        (f"%22{UUID}%22%0D%0A", UUID),
        (f"%22{UUID}%22%C2%A0", None),
        (f"%22{UUID}%22x", None),
        (f"%20%22{UUID}%22", None),
        ("caf%C3%A9-id", "café-id"),  # percent-encoded, as analytics.js writes it
        ("café-id", None),  # raw bytes a server read as Latin-1: not an id
        ("caf\ufffd-id", None),  # ... or as U+FFFD
    ],
)
def test_parse_id_cookie(value: str | None, expected: str | None) -> None:
    assert parse_id_cookie(value) == expected


@pytest.mark.parametrize(
    ("value", "read"),
    [
        ("12345678901234567890", None),  # analytics.js reads back 12345678901234567000
        ("1e3", None),  # ... 1000
        ("1.50", None),
        ("-0", None),
        ("9007199254740993", None),
        ("42", "42"),
        ("9007199254740991", "9007199254740991"),
        ("-17", "-17"),
        ("00123", "00123"),  # no JSON: a string to analytics.js too
        ("%2212345678901234567890%22", "12345678901234567890"),  # a JSON string
        (UUID, UUID),
    ],
)
def test_a_number_analytics_js_reads_back_changed_is_no_id_in_its_cookie(
    value: str, read: str | None
) -> None:
    assert parse_id_cookie(value, True) == read
    # In a cookie of the app's own, analytics.js never reads it.
    assert parse_id_cookie(value) == (read or value)


def test_a_visitor_named_by_a_number_analytics_js_would_change_is_a_new_one() -> None:
    number = "12345678901234567890"
    own = make_request(cookies={"ajs_anonymous_id": number})
    tracker = RequestTracker(None, WebOptions(), own)
    assert tracker.analytics.anonymous_id != number
    assert tracker.cookie_to_set() is not None
    app_cookie = make_request(cookies={"visitor_id": number})
    tracker = RequestTracker(None, WebOptions(cookie_name="visitor_id"), app_cookie)
    assert tracker.analytics.anonymous_id == number


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1))
def test_ids_written_by_either_library_read_back(ident: str) -> None:
    ident = ident.strip()
    if (
        not ident
        or len(ident) > 100
        or ident.lower() in ("null", "true", "false", "undefined", "nan", "none")
        or not ident.isprintable()
        or any(c in ident for c in '"{}[]\\<>;, ')
        or any(c.isspace() for c in ident)
    ):
        assert parse_id_cookie(quote(json.dumps(ident), safe="")) is None
        return
    classic = quote(json.dumps(ident), safe="")
    assert parse_id_cookie(classic) == ident
    if not (ident.startswith('"') and ident.endswith('"')):
        assert parse_id_cookie(quote(ident, safe="")) == ident


def test_new_anonymous_id_is_a_uuid4() -> None:
    ident = new_anonymous_id()
    assert uuid.UUID(ident).version == 4
    assert new_anonymous_id() != ident


def test_raw_cookie() -> None:
    cookie = anonymous_id_cookie(UUID, WebOptions(), secure=False, host="shop.example")
    assert cookie == CookieSpec(name="ajs_anonymous_id", value=UUID, max_age=31536000)
    assert cookie.path == "/" and cookie.samesite == "Lax" and not cookie.httponly
    assert (
        cookie.header_value() == f"ajs_anonymous_id={UUID}; Max-Age=31536000; Path=/; SameSite=Lax"
    )


def test_quoted_cookie_with_domain_on_https() -> None:
    options = WebOptions(cookie_format="quoted", cookie_domain=".shop.example", cookie_max_age=60)
    cookie = anonymous_id_cookie(UUID, options, secure=True, host="shop.example")
    assert cookie.value == f"%22{UUID}%22"
    assert parse_id_cookie(cookie.value) == UUID
    assert cookie.header_value() == (
        f"ajs_anonymous_id=%22{UUID}%22; Max-Age=60; Path=/; Domain=.shop.example; "
        "SameSite=Lax; Secure"
    )


def test_cookie_name_is_configurable() -> None:
    cookie = anonymous_id_cookie(
        UUID, WebOptions(cookie_name="visitor"), secure=False, host="shop.example"
    )
    assert cookie.header_value().startswith(f"visitor={UUID};")


@pytest.mark.parametrize("name", ["__Host-ajs", "__Secure-ajs", "__secure-ajs"])
def test_a_prefixed_cookie_name_makes_a_secure_cookie_on_both_sides(name: str) -> None:
    # Browsers keep a cookie named so only when it is Secure, even set over http.
    options = WebOptions(cookie_name=name)
    assert (
        anonymous_id_cookie(UUID, options, secure=False, host="shop.example")
        .header_value()
        .endswith("; Secure")
    )
    assert load_options(options, secure=False, host="shop.example")["cookie"]["secure"] is True
    plain = WebOptions()
    assert not anonymous_id_cookie(UUID, plain, secure=False, host="shop.example").secure
    assert load_options(plain, secure=False, host="shop.example")["cookie"]["secure"] is False


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # A host's cookie and a domain's: the browser sends the more specific first,
        # and analytics.js takes it; the framework's parse kept the last.
        ("ajs_anonymous_id=first-1; ajs_anonymous_id=second-2", "first-1"),
        ('a=1; ajs_anonymous_id="first-1"; x=2; ajs_anonymous_id=second-2', "first-1"),
        ("xajs_anonymous_id=other; ajs_anonymous_id=only-1", "only-1"),
    ],
)
def test_of_two_cookies_of_one_name_the_first_is_the_visitor(
    header: str, expected: str, client: Client
) -> None:
    request = make_request(cookies=last_wins(header), headers={"cookie": header})
    tracker = RequestTracker(client, WebOptions(), request)
    assert tracker.analytics.anonymous_id == expected


def last_wins(header: str) -> dict[str, str]:
    """What Django's and Starlette's parsers make of ``header``: the last one wins."""
    parsed: dict[str, str] = {}
    for part in header.split(";"):
        key, _, value = part.partition("=")
        parsed[key.strip()] = value.strip().strip('"')
    return parsed


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"RAW_URI": "/s/page#access_token=X", "PATH_INFO": "/s/page"}, "/s/page"),
        ({"RAW_URI": "/s/page?q=1#top", "PATH_INFO": "/s/page"}, "/s/page"),
        ({"REQUEST_URI": "/s/a%23b", "PATH_INFO": "/s/a#b"}, "/s/a%23b"),
    ],
)
def test_a_fragment_in_the_request_line_is_no_part_of_the_path(
    environ: dict[str, str], expected: str
) -> None:
    assert environ_wire_path(environ) == expected
    raw = environ.get("RAW_URI", environ.get("REQUEST_URI", "")).encode()
    assert request_wire_path(environ["PATH_INFO"], raw) == expected


def test_of_two_cookies_of_the_name_the_first_sent_wins_as_in_analytics_js() -> None:
    # A host's cookie and one for the whole domain: frameworks keep the last.
    header = "ajs_anonymous_id=first-sent; sid=1; ajs_anonymous_id=second"
    assert id_cookie({"ajs_anonymous_id": "second"}, header, "ajs_anonymous_id") == "first-sent"
    assert (
        id_cookie({"ajs_anonymous_id": "one"}, "ajs_anonymous_id=one", "ajs_anonymous_id") == "one"
    )
    quoted = 'visitor="%22first%22"; visitor=second'
    assert id_cookie({"visitor": "second"}, quoted, "visitor") == "%22first%22"


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("shop.example", ".shop.example"),
        ("www.shop.example", ".shop.example"),
        ("WWW.Shop.Example:8443", ".shop.example"),
        # Hosts a browser keeps no cookie of that domain for: host-only there.
        ("shop-alias.example", None),
        ("evilshop.example", None),
        ("127.0.0.1:8000", None),
        ("[::1]:8000", None),
    ],
)
def test_a_cookie_domain_applies_on_the_hosts_within_it(host: str, domain: str | None) -> None:
    # On another host of the app, a Domain the browser drops would keep no id on
    # either side: the cookie and analytics.js's are host-only there.
    options = WebOptions(cookie_domain=".shop.example")
    cookie = anonymous_id_cookie(UUID, options, secure=False, host=host)
    assert cookie.domain == domain
    assert load_options(options, secure=False, host=host)["cookie"]["domain"] == (domain or "")
