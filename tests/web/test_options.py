from __future__ import annotations

import datetime as dt
import ipaddress
import re

import pytest

from segment_core.web import (
    DEFAULT_EXCLUDE_PATHS,
    RequestTracker,
    WebOptions,
    check_plain_hooks,
    option_names,
    split_options,
)
from tests.web.conftest import make_request


def user_id_hook(request: object) -> str:
    return "from-dotted-path"


def test_defaults() -> None:
    options = WebOptions()
    assert options.page_calls is True
    assert options.page_methods == ("GET",)
    assert options.exclude_paths == DEFAULT_EXCLUDE_PATHS
    assert options.trusted_proxies == 0
    assert options.honor_gpc is True and options.honor_dnt is False
    assert options.cookie_name == "ajs_anonymous_id"
    assert options.cookie_format == "raw"
    assert options.cookie_max_age == 365 * 24 * 3600
    assert options.redactor.is_secret("password")


def test_from_mapping_accepts_any_case_and_normalizes() -> None:
    options = WebOptions.from_mapping(
        {
            "PAGE_METHODS": ["get", "head"],
            "Exclude_Paths": r"^/admin/",
            "redact_query_params": ["Coupon"],
            "cookie_max_age": dt.timedelta(days=2),
            "trusted_proxies": ["10.0.0.0/8", "192.168.1.1"],
        }
    )
    assert options.page_methods == ("GET", "HEAD")
    assert options.exclude_paths == (*DEFAULT_EXCLUDE_PATHS, r"^/admin/")
    assert options.redactor.is_secret("Coupon") and options.redactor.is_secret("password")
    assert options.cookie_max_age == 2 * 24 * 3600
    assert options.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.1/32"),
    )


def test_trusted_proxies_from_environment_style_strings() -> None:
    assert WebOptions.from_mapping({"trusted_proxies": "2"}).trusted_proxies == 2
    networks = WebOptions.from_mapping({"trusted_proxies": "10.0.0.0/8, ::1"}).trusted_proxies
    assert networks == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


def test_hooks_from_dotted_paths() -> None:
    options = WebOptions.from_mapping({"user_id": "tests.web.test_options.user_id_hook"})
    assert options.user_id is user_id_hook
    options = WebOptions.from_mapping({"page_name": "tests.web.test_options:user_id_hook"})
    assert options.page_name is user_id_hook


def identify_unless_impersonating(request: object, user: object) -> bool:
    return True


async def async_identify_on_login(request: object, user: object) -> bool:
    return True


def test_identify_on_login_is_a_bool_or_a_hook() -> None:
    assert WebOptions().identify_on_login is True
    assert WebOptions.from_mapping({"IDENTIFY_ON_LOGIN": False}).identify_on_login is False
    dotted = "tests.web.test_options:identify_unless_impersonating"
    hook = WebOptions.from_mapping({"identify_on_login": dotted}).identify_on_login
    assert hook is identify_unless_impersonating
    with pytest.raises(ValueError, match="identify_on_login must be a plain function, not async"):
        check_plain_hooks(WebOptions(identify_on_login=async_identify_on_login))


def test_compiled_patterns_are_accepted() -> None:
    pattern = re.compile(r"^/api/", re.IGNORECASE)
    options = WebOptions(exclude_paths=(pattern,))
    assert options.exclude_patterns[-1] is pattern


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"page_calls": "yes"}, "page_calls must be True or False"),
        ({"exclude_paths": ["(unclosed"]}, "exclude_paths: '(unclosed' is not a valid regular"),
        ({"exclude_paths": 5}, "exclude_paths must be a list of regular expressions"),
        ({"page_methods": [1]}, "page_methods must be a list of strings"),
        ({"page_name": "title"}, "page_name must be one of 'route', 'template', 'path'"),
        ({"page_filter": 3}, "page_filter must be a callable or a dotted path"),
        (
            {"user_id": "no_such_module_xyz.hook"},
            "user_id: cannot import 'no_such_module_xyz.hook'",
        ),
        ({"consent": "nodots"}, "consent: 'nodots' is not a dotted path"),
        ({"page_properties": "tests.web.test_options.DEFAULT_EXCLUDE_PATHS"}, "is not callable"),
        ({"trusted_proxies": -1}, "trusted_proxies must be >= 0"),
        ({"trusted_proxies": True}, "trusted_proxies must be a number of proxies"),
        ({"trusted_proxies": ["10.0.0.0/33"]}, "trusted_proxies: '10.0.0.0/33' is not an IP"),
        ({"cookie_name": "bad name"}, "cookie_name must be a valid cookie name"),
        ({"cookie_name": "visitor\n"}, "cookie_name must be a valid cookie name"),
        ({"user_cookie_name": ""}, "user_cookie_name must be a valid cookie name"),
        ({"cookie_domain": "a.com; x"}, "cookie_domain must be a domain"),
        ({"cookie_format": "json"}, "cookie_format must be 'raw' or 'quoted'"),
        ({"cookie_max_age": 0}, "cookie_max_age must be a positive number of seconds"),
        # Under a second: Max-Age=0 would delete the cookie.
        ({"cookie_max_age": 0.5}, "cookie_max_age must be a positive number of seconds"),
        (
            {"cookie_max_age": dt.timedelta(milliseconds=500)},
            "cookie_max_age must be a positive number of seconds",
        ),
        ({"cookie_max_age": float("inf")}, "cookie_max_age must be a positive number of seconds"),
        ({"cookie_max_age": float("nan")}, "cookie_max_age must be a positive number of seconds"),
        ({"user_id": ".hooks:user_id"}, "user_id: '.hooks:user_id' is a relative path"),
        ({"page_name": "..hooks.name"}, "page_name: '..hooks.name' is a relative path"),
        ({"csp_nonce": ".hooks:nonce"}, "csp_nonce: '.hooks:nonce' is a relative path"),
        (
            {"consent": "tests.web.broken_hooks:consent"},
            "consent: cannot import 'tests.web.broken_hooks:consent': RuntimeError",
        ),
        ({"anonymize_ip": 1}, "anonymize_ip must be True or False"),
        (
            {"identify_on_login": 1},
            "identify_on_login must be True, False, or a callable (or a dotted path to one)",
        ),
        ({"identify_on_login": "yes"}, "identify_on_login must be True, False, or a callable"),
    ],
)
def test_bad_values_name_the_option(mapping: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        WebOptions.from_mapping(mapping)


@pytest.mark.parametrize(
    ("domain", "problem"),
    [
        ("example.com:443", "has a port"),
        ("https://example.com", "has a scheme"),
        ("example.com/", "has a path"),
        (".", "has an empty label"),
        ("a..b", "has an empty label"),
        ("example.com.", "has an empty label"),
        ("[::1]", "is an IPv6 address"),
        ("-shop.example", "has the label '-shop'"),
        ("x" * 64 + ".example", "has the label 'xxx"),
        ("a.com; x", "holds spaces or separators"),
        ("", "got ''"),
    ],
)
def test_a_cookie_domain_no_browser_takes_is_refused(domain: str, problem: str) -> None:
    with pytest.raises(
        ValueError, match=r"^cookie_domain must be a domain name.*" + re.escape(problem)
    ):
        WebOptions(cookie_domain=domain)


def test_cookie_domains_browsers_take() -> None:
    for domain in (".example.com", "shop.example.com", "localhost", "127.0.0.1", "my_host.lan"):
        assert WebOptions(cookie_domain=domain).cookie_domain == domain
    # An internationalised domain in the ASCII form browsers match hosts by (and
    # that a Set-Cookie header can carry).
    assert WebOptions(cookie_domain="пример.рф").cookie_domain == "xn--e1afmkfd.xn--p1ai"
    assert WebOptions(cookie_domain=".bücher.de").cookie_domain == ".xn--bcher-kva.de"
    tracker = RequestTracker(None, WebOptions(cookie_domain="пример.рф"), make_request())
    cookie = tracker.cookie_to_set()
    assert cookie is not None
    assert "; Domain=xn--e1afmkfd.xn--p1ai;" in cookie.header_value().encode("latin-1").decode()


def test_page_methods_are_http_methods() -> None:
    assert WebOptions(page_methods=["post", "Patch"]).page_methods == ("GET", "POST", "PATCH")
    with pytest.raises(
        ValueError, match=r"^page_methods: 'GETT' is not an HTTP method \(one of GET"
    ):
        WebOptions(page_methods=["GETT"])


def test_empty_list_entries_are_ignored() -> None:
    # What os.environ.get("X", "").split(",") gives for an unset variable: an empty
    # pattern would be found in every path and every User-Agent.
    unset = [""]
    options = WebOptions(
        exclude_paths=unset,
        bot_user_agents=unset,
        exclude_routes=unset,
        page_methods=unset,
        page_content_types=unset,
        redact_query_params=unset,
    )
    assert options == WebOptions()
    assert WebOptions(exclude_paths="", bot_user_agents="") == WebOptions()
    assert WebOptions(exclude_paths=["", r"^/internal/"]).exclude_paths[-1] == r"^/internal/"
    assert options.exclude_regex is not None and not options.exclude_regex.search("/products/1")
    assert not options.bots.matches("Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0")


def test_direct_construction_validates_too() -> None:
    with pytest.raises(ValueError, match="skip_bots must be True or False"):
        WebOptions(skip_bots=None)  # type: ignore[arg-type]


def test_unknown_key_suggests_the_closest_name() -> None:
    with pytest.raises(ValueError, match=r"unknown option 'page_call'; did you mean 'page_calls'"):
        WebOptions.from_mapping({"page_call": False})
    # Upper-case keys (Django settings) get an upper-case suggestion.
    with pytest.raises(ValueError, match=r"unknown option 'EXCLUDE_PATH'.*'EXCLUDE_PATHS'"):
        WebOptions.from_mapping({"EXCLUDE_PATH": []})
    with pytest.raises(ValueError, match=r"^unknown option 'zzz'$"):
        WebOptions.from_mapping({"zzz": 1})


def test_split_options_separates_client_and_web_options() -> None:
    client, web = split_options(
        {"WRITE_KEY": "k", "HOST": "https://x", "upload_size": 5, "PAGE_CALLS": False}
    )
    assert client == {"write_key": "k", "host": "https://x", "upload_size": 5}
    assert web == {"page_calls": False}


def test_split_options_unknown_key_suggests_from_both_sets() -> None:
    with pytest.raises(ValueError, match=r"did you mean 'flush_at'"):
        split_options({"flush_att": 1})
    with pytest.raises(ValueError, match=r"did you mean 'COOKIE_NAME'"):
        split_options({"COOKIE_NAMES": "x"})


@pytest.mark.parametrize(
    ("first", "second"),
    [("EXCLUDE_PATHS", "exclude_paths"), ("honor_dnt", "Honor_DNT"), ("FLUSH_AT", "flush_at")],
)
def test_one_option_under_two_cases_is_refused_naming_both(first: str, second: str) -> None:
    """A settings dict merged from a base may spell one option twice: which value counts
    would be a guess."""
    message = f"^'{first}' and '{second}' are the same option; pass only one$"
    with pytest.raises(ValueError, match=message):
        split_options({first: [], "PAGE_CALLS": True, second: []})
    if first.lower() in option_names():
        with pytest.raises(ValueError, match=message):
            WebOptions.from_mapping({first: [], "PAGE_CALLS": True, second: []})


def test_client_and_web_option_names_do_not_overlap() -> None:
    from segment_core.config import option_names as client_option_names

    assert not (client_option_names() & option_names())
