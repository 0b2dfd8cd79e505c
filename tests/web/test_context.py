from __future__ import annotations

import ipaddress
from urllib.parse import parse_qsl, quote, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_core.web import (
    DEFAULT_REDACT_QUERY_PARAMS,
    REDACTED,
    WebOptions,
    anonymize_ip,
    campaign,
    client_ip,
    locale,
    page_fields,
    redact_query,
    redact_url,
    request_context,
)
from tests.web.conftest import BROWSER, make_request

SECRETS = WebOptions().redactor


def ip_of(trusted: object, peer: str | None = "10.0.0.1", **headers: str) -> str | None:
    options = WebOptions.from_mapping({"trusted_proxies": trusted})
    request = make_request(client_addr=peer, headers=headers)
    found = client_ip(request, options.trusted_proxies)
    return None if found is None else str(found)


# -- client address ---------------------------------------------------------------


def test_peer_address_when_no_proxy_is_trusted() -> None:
    assert ip_of(0, "203.0.113.7", **{"x-forwarded-for": "1.1.1.1"}) == "203.0.113.7"
    assert ip_of(0, "::ffff:203.0.113.7") == "203.0.113.7"  # v4-mapped peer
    assert ip_of(0, None) is None
    assert ip_of(0, "unix:/run/app.sock") is None


@pytest.mark.parametrize(
    ("hops", "xff", "expected"),
    [
        (1, "1.1.1.1", "1.1.1.1"),
        (1, "6.6.6.6, 1.1.1.1", "1.1.1.1"),  # the client forged the left entry
        (2, "6.6.6.6, 1.1.1.1, 10.0.0.2", "1.1.1.1"),
        (3, "1.1.1.1", "1.1.1.1"),  # fewer hops than configured: the furthest one
        (1, "1.1.1.1:5555", "1.1.1.1"),
        (1, "[2001:db8::1]:443", "2001:db8::1"),
        (1, "unknown", None),
        (1, "", "10.0.0.1"),  # empty header: the peer
        (1, "fe80::1%eth0", "fe80::1"),  # a zone id names the sender's interface
        (1, "fe80::1%" + "A" * 40_000, None),  # no address is that long
    ],
)
def test_x_forwarded_for_with_a_hop_count(hops: int, xff: str, expected: str | None) -> None:
    assert ip_of(hops, **{"x-forwarded-for": xff}) == expected


def test_hop_count_without_header_is_the_peer() -> None:
    assert ip_of(1) == "10.0.0.1"


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("10.0.0.1", "1.1.1.1, 10.0.0.9", "1.1.1.1"),
        ("10.0.0.1", "6.6.6.6, 1.1.1.1, 10.1.2.3", "1.1.1.1"),
        ("203.0.113.9", "1.1.1.1", "203.0.113.9"),  # peer is not our proxy: header ignored
        ("10.0.0.1", "10.0.0.7, 10.0.0.8", "10.0.0.7"),  # everyone trusted: the leftmost
        ("10.0.0.1", "1.1.1.1, garbage, 10.0.0.8", None),
        ("unix:/tmp/sock", "1.1.1.1", "1.1.1.1"),  # a Unix socket is a local proxy
        ("::1", "2001:db8::5", "2001:db8::5"),
    ],
)
def test_x_forwarded_for_with_trusted_networks(peer: str, xff: str, expected: str | None) -> None:
    trusted = ["10.0.0.0/8", "::1"]
    assert ip_of(trusted, peer, **{"x-forwarded-for": xff}) == expected


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
        ('for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
        ("For=192.0.2.43, for=198.51.100.17", "198.51.100.17"),
        ("proto=https;for=192.0.2.43:8080", "192.0.2.43"),
        ("for=_hidden", None),
        ("for=unknown", None),
    ],
)
def test_forwarded_header(forwarded: str, expected: str | None) -> None:
    assert ip_of(1, forwarded=forwarded) == expected


def test_what_the_proxy_wrote_in_forwarded_wins_over_x_forwarded_for() -> None:
    headers = {"x-forwarded-for": "6.6.6.6", "forwarded": "for=1.1.1.1"}
    assert ip_of(1, **headers) == "1.1.1.1"


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:abcd:1234:5678:9abc:def0:1234", "2001:db8:abcd::"),
        (ipaddress.ip_address("::1"), "::"),
        # 6to4: its IPv4 address (5.6.7.8) in bits 16 to 47, cut as an IPv4 one.
        ("2002:0506:0708::1", "2002:506:700::"),
    ],
)
def test_anonymize_ip(ip: str, expected: str) -> None:
    assert str(anonymize_ip(ip)) == expected


def test_context_ip_options() -> None:
    request = make_request(client_addr="203.0.113.77")
    assert request_context(request, WebOptions())["ip"] == "203.0.113.77"
    assert request_context(request, WebOptions(anonymize_ip=True))["ip"] == "203.0.113.0"
    assert request_context(request, WebOptions(collect_ip=False))["ip"] == "0.0.0.0"
    assert "ip" not in request_context(make_request(client_addr=None), WebOptions())


# -- headers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("en-US,en;q=0.9,fr;q=0.8", "en-US"),
        ("fr-CH", "fr-CH"),
        ("de;q=0.5, en;q=1", "en"),  # the highest quality, wherever it is listed
        ("fr-CH;q=0, de;q=0.8", "de"),  # q=0: not acceptable
        ("en;q=0.1, ja", "ja"),
        ("de;q=0.8, fr;q=0.8", "de"),  # the first of the highest
        ("en_US", "en-US"),  # as analytics.js writes it
        ("fr-ca", "fr-CA"),  # in the case of navigator.language, analytics.js's
        ("ZH-HANT-tw", "zh-Hant-TW"),
        ("es-419", "es-419"),
        ("en-us-x-twain", "en-US-x-twain"),
        ("x-klingon-aa", "x-klingon-aa"),
        ("I-Navajo", "i-navajo"),
        ("en;q=abc, fr", "fr"),  # a quality that is not one
        ("*", None),
        ("", None),
        (None, None),
        ("<script>", None),
    ],
)
def test_locale(header: str | None, expected: str | None) -> None:
    assert locale(header) == expected
    assert locale(header) == expected  # the answer remembered is the same


def test_locale_reads_the_start_of_a_long_header() -> None:
    languages = ",".join(f"x{number};q=0.{number % 9 + 1}" for number in range(500))
    assert locale("pt-BR," + languages) == "pt-BR"
    # Longer than any language tag: the best of the others.
    assert locale("a" * 36 + ",de;q=0.5,fr;q=0.9," + languages) == "fr"
    assert locale("a" * 300 + ",pt-BR") is None  # beyond what is read


def test_full_context() -> None:
    request = make_request(
        query_string="utm_source=news&utm_campaign=spring+sale&token=abc",
        headers={"accept-language": "en-GB,en", "referer": "https://ref.example/?code=1"},
    )
    assert request_context(request, WebOptions()) == {
        "ip": "203.0.113.7",
        "userAgent": BROWSER,
        "locale": "en-GB",
        "page": {
            "path": "/products/42",
            "referrer": f"https://ref.example/?code={REDACTED}",
            "search": f"?utm_source=news&utm_campaign=spring+sale&token={REDACTED}",
            "url": f"https://shop.example/products/42?utm_source=news&utm_campaign=spring+sale&token={REDACTED}",
        },
        "campaign": {"source": "news", "name": "spring sale"},
    }


def test_minimal_context_leaves_out_what_is_unknown() -> None:
    request = make_request(headers={"user-agent": ""}, client_addr=None)
    assert request_context(request, WebOptions()) == {
        "page": {
            "path": "/products/42",
            "referrer": "",
            "search": "",
            "url": "https://shop.example/products/42",
        }
    }


def test_control_characters_from_the_request_become_spaces() -> None:
    # No browser sends them; servers such as uvicorn's httptools and uWSGI pass
    # them on in headers, and a percent-escape brings them into any query.
    request = make_request(
        query_string=(
            "utm_source=news%0D%0AX-Injected%3A+1&utm_term=%00shoes%7F&utm_medium=a%09b"
            "&utm_content=%C2%85next"  # NEL, a control character of Latin-1's (C1)
        ),
        headers={
            # UTF-8 read as Latin-1, as WSGI and ASGI read headers: "€" holds a C1
            # byte, a character no longer once read as UTF-8.
            "user-agent": "Mozilla/5.0\r\nX-Injected: 1\x00\xe2\x82\xac",
            "referer": "https://ref.example/\x1b[31mred?q=1\n",
        },
    )
    context = request_context(request, WebOptions())
    assert context["userAgent"] == "Mozilla/5.0 X-Injected: 1 \u20ac"
    assert context["page"]["referrer"] == "https://ref.example/ [31mred?q=1"
    assert context["campaign"] == {
        "source": "news X-Injected: 1",
        "term": "shoes",
        "medium": "a b",
        "content": "next",
    }
    only_controls = make_request(headers={"user-agent": "\x00\x01"})
    assert "userAgent" not in request_context(only_controls, WebOptions())


@pytest.mark.parametrize(
    "text",
    [
        "\u0646\u0645\u0627\u06cc\u0634\u200c\u06af\u0627\u0647",  # Persian, a non-joiner
        "\U0001f468\u200d\U0001f469\u200d\U0001f467 family",  # one emoji of three, joined
        "caf\u00e9\u00a0\u05e9\u05dc\u05d5\u05dd",  # a no-break space, Hebrew
    ],
)
def test_text_written_with_characters_of_no_width_is_kept(text: str) -> None:
    request = make_request(query_string="utm_campaign=" + quote(text))
    assert request_context(request, WebOptions())["campaign"] == {"name": text}


def test_bidirectional_isolates_are_removed_and_the_text_kept() -> None:
    isolated = "Sale \u2066\u0639\u0631\u0636\u2069 now"  # Arabic, isolated
    request = make_request(query_string="utm_campaign=" + quote(isolated))
    assert request_context(request, WebOptions())["campaign"] == {
        "name": "Sale \u0639\u0631\u0636 now"
    }


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        # WSGI and ASGI give header bytes as latin-1: UTF-8 text arrives as such
        # characters, some of them in the range of the C1 controls (0x80-0x9f).
        ("Caf\u00e9Browser/1.0 \u20ac".encode().decode("latin-1"), "Caf\u00e9Browser/1.0 \u20ac"),
        # Bytes of another charset: as the server gave them, the C1 ones dropped.
        ("Caf\xe9\x85Browser \xa0", "Caf\xe9 Browser \xa0"),
        # Text no server gives as bytes (a test client's): as it is.
        ("Caf\u00e9 \u20ac", "Caf\u00e9 \u20ac"),
        # Unicode's line separator, in UTF-8: as the C0 and C1 controls, a space;
        # a bidirectional override and a byte order mark: removed.
        (
            "Mozilla/5.0\u2028X-Injected: 1\u202egnp.exe\u202c\ufeffEnd".encode().decode("latin-1"),
            "Mozilla/5.0 X-Injected: 1gnp.exeEnd",
        ),
    ],
)
def test_a_user_agent_not_in_ascii_is_read_as_utf_8(given: str, sent: str) -> None:
    request = make_request(
        query_string="utm_campaign=caf%C3%A9+%E2%82%AC", headers={"user-agent": given}
    )
    context = request_context(request, WebOptions())
    assert context["userAgent"] == sent
    assert context["campaign"] == {"name": "caf\u00e9 \u20ac"}


@pytest.mark.parametrize(
    ("query", "search"),
    [("q=1#top", "?q=1"), ("#top", ""), ("q=1&r=%23#a#b", "?q=1&r=%23"), ("q=%23", "?q=%23")],
)
def test_a_fragment_in_the_query_is_no_part_of_the_page(query: str, search: str) -> None:
    # Any client can write one into the request line; uvicorn's h11 server passes
    # it on, and the Spec's url has none.
    request = make_request(host="shop.example", path="/", query_string=query)
    fields = page_fields(request, SECRETS)
    assert fields["search"] == search
    assert fields["url"] == f"https://shop.example/{search}"
    assert request.url == fields["url"]


def test_a_fragment_is_no_part_of_the_campaign() -> None:
    request = make_request(query_string="utm_source=news#utm_medium=x")
    context = request_context(request, WebOptions())
    assert context["campaign"] == {"source": "news"}


@pytest.mark.parametrize("first", ["fbclid=" + "x" * 2100, "token=" + "s" * 3000])
def test_the_campaign_after_a_long_parameter_is_read_as_search_is(first: str) -> None:
    # An ad's click id, a signed link's token: the campaign after it is the page's.
    request = make_request(query_string=f"{first}&utm_source=newsletter&utm_campaign=spring")
    context = request_context(request, WebOptions())
    assert context["campaign"] == {"source": "newsletter", "name": "spring"}


def test_page_fields_with_a_port_and_no_query() -> None:
    request = make_request(scheme="http", host="localhost:8000", path="/a%20b/")
    assert page_fields(request, SECRETS)["url"] == "http://localhost:8000/a%20b/"


# -- redaction --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=shoes", "q=shoes"),
        ("password=hunter2&q=1", f"password={REDACTED}&q=1"),
        ("TOKEN=a&Api_Key=b&sig=c", f"TOKEN={REDACTED}&Api_Key={REDACTED}&sig={REDACTED}"),
        ("email=a%40b.c&email=d", f"email={REDACTED}&email={REDACTED}"),
        ("access%5Ftoken=x", f"access%5Ftoken={REDACTED}"),  # the name is URL-decoded
        ("monkey=1&keys=2", "monkey=1&keys=2"),  # whole names only
        ("passWord=a&e-mail=b&page_size=c", f"passWord={REDACTED}&e-mail={REDACTED}&page_size=c"),
        ("next=/cb%23access_token=abc", f"next=/cb%23access_token%3D{REDACTED}"),
        ("token", "token"),  # no value, nothing to hide
        ("", ""),
        ("a=1&&code=2", f"a=1&&code={REDACTED}"),
        (
            "X-Amz-Signature=abc&X-Amz-Credential=def",
            f"X-Amz-Signature={REDACTED}&X-Amz-Credential={REDACTED}",
        ),
        # A flow's one-time link names its token by the flow, alone.
        (
            "reset=t1&invite=t2&Invitation=t3&verify=t4&confirm=t5&activation=t6&magic=t7",
            f"reset={REDACTED}&invite={REDACTED}&Invitation={REDACTED}&verify={REDACTED}"
            f"&confirm={REDACTED}&activation={REDACTED}&magic={REDACTED}",
        ),
        (
            "recovery=a&unsubscribe=b&bearer=c&assertion=d",
            f"recovery={REDACTED}&unsubscribe={REDACTED}&bearer={REDACTED}&assertion={REDACTED}",
        ),
        ("reset_at=3&invited_by=ann&confirmed=1", "reset_at=3&invited_by=ann&confirmed=1"),
    ],
)
def test_redact_query(query: str, expected: str) -> None:
    assert redact_query(query, SECRETS) == expected


def test_names_given_to_redact_url_are_those_alone_a_redactor_is_a_rule() -> None:
    url = "https://a.example/cb?code=a&coupon=X&token=t&reset=d&q=1"
    assert redact_url(url, frozenset({"coupon"})) == (
        f"https://a.example/cb?code=a&coupon={REDACTED}&token=t&reset=d&q=1"
    )
    # The default words, given as names, are words alone; WebOptions' redactor is
    # the adapters' whole rule.
    assert redact_url(url, frozenset(DEFAULT_REDACT_QUERY_PARAMS)) == (
        f"https://a.example/cb?code=a&coupon=X&token={REDACTED}&reset=d&q=1"
    )
    assert redact_url(url, SECRETS) == (
        f"https://a.example/cb?code={REDACTED}&coupon=X&token={REDACTED}&reset={REDACTED}&q=1"
    )


def test_redaction_list_is_configurable() -> None:
    options = WebOptions(redact_query_params=("Coupon",))
    expected = f"coupon={REDACTED}&token={REDACTED}"
    assert redact_query("coupon=X&token=t", options.redactor) == expected
    replaced = WebOptions(redact_query_params=("coupon",), replace_default_redact_query_params=True)
    assert redact_query("coupon=X&token=t", replaced.redactor) == f"coupon={REDACTED}&token=t"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://a.example/p?session=s1&x=1#top",
            f"https://a.example/p?session={REDACTED}&x=1#top",
        ),
        ("https://a.example/cb#access_token=abc", f"https://a.example/cb#access_token={REDACTED}"),
        ("https://a.example/", "https://a.example/"),
        ("http://[bad/?secret=1", f"http://[bad/?secret={REDACTED}"),  # never raises
        ("", ""),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url, SECRETS) == expected


def test_a_magic_link_login_stays_out_of_the_page_and_the_next_pages_referrer() -> None:
    """django-sesame's link logs its visitor in, by default for ever."""
    link = "https://shop.example/welcome/?sesame=AAAAAQbAn7uvk5BHhRG7NOPtqFGs"
    landing = make_request(path="/welcome/", query_string=link.partition("?")[2])
    following = make_request(path="/cart/", headers={"referer": link})
    landed, followed = page_fields(landing, SECRETS), page_fields(following, SECRETS)
    assert landed["search"] == f"?sesame={REDACTED}"
    assert landed["url"] == f"https://shop.example/welcome/?sesame={REDACTED}"
    assert followed["referrer"] == f"https://shop.example/welcome/?sesame={REDACTED}"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["password", "Token", "q", "page", "API_KEY", "utm_source"]),
            st.text(min_size=1),
        ),
        max_size=6,
    )
)
def test_redaction_never_leaks_a_secret_value(pairs: list[tuple[str, str]]) -> None:
    query = "&".join(f"{k}={quote_plus(v)}" for k, v in pairs)
    redacted = parse_qsl(redact_query(query, SECRETS), keep_blank_values=True)
    for (name, value), (name_after, value_after) in zip(pairs, redacted, strict=True):
        assert name_after == name
        assert value_after == (REDACTED if SECRETS.is_secret(name) else value)


# -- campaign ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {}),
        ("q=1", {}),
        (
            "utm_campaign=spring+sale&utm_source=news&utm_medium=email&utm_term=shoes"
            "&utm_content=banner",
            {
                "name": "spring sale",
                "source": "news",
                "medium": "email",
                "term": "shoes",
                "content": "banner",
            },
        ),
        ("utm_foo=bar%20baz", {"foo": "bar baz"}),  # custom utm_ keys too
        ("utm_source=a&utm_source=b", {"source": "b"}),  # the last one wins
        ("utm_source=", {"source": ""}),
        # As analytics.js reads a query: "?" separates too; a name holding "utm_"
        # counts from its fifth character, undecoded; a value ends at its next "=";
        # one that does not decode is kept as it is.
        ("utm_=x&xutm_source=y", {"_source": "y"}),
        ("ref=x?utm_source=google", {"source": "google"}),
        ("utm_content=YWJj==&utm_term=a=b", {"content": "YWJj", "term": "a"}),
        ("utm%5Fsource=x&utm_source%3Dy=1", {"source%3Dy": "1"}),
        (
            "utm_source=%zz+1&utm_term=%E0%A4&utm_medium=%C3%A9t%C3%A9",
            {"source": "%zz+1", "term": "%E0%A4", "medium": "été"},
        ),
    ],
)
def test_campaign(query: str, expected: dict[str, str]) -> None:
    assert campaign(query) == expected
    assert campaign(query) == expected  # the answer remembered is the same


def test_the_campaign_keeps_no_secret_the_search_hides() -> None:
    query = "utm_source=news&utm_token=s3cr3t&utm_content=%2Faccount%3Ftoken%3Ds3cr3t"
    context = request_context(make_request(query_string=query), WebOptions())
    assert context["campaign"] == {
        "source": "news",
        "token": REDACTED,
        "content": f"/account?token={REDACTED}",
    }
    assert "s3cr3t" not in str(context)
    chosen = WebOptions(redact_query_params=("utm_term",))
    context = request_context(make_request(query_string="utm_term=a%40b.example"), chosen)
    assert context["campaign"] == {"term": REDACTED}


def test_each_request_gets_a_campaign_of_its_own() -> None:
    query = "utm_source=news&utm_campaign=spring"
    first = request_context(make_request(query_string=query), WebOptions())
    first["campaign"]["source"] = "changed by a view"
    second = request_context(make_request(query_string=query), WebOptions())
    assert second["campaign"] == {"source": "news", "name": "spring"}
    assert campaign(query) is not campaign(query)
