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


def test_a_cookie_may_last_ten_calendar_years_with_their_leap_days() -> None:
    options = WebOptions.from_mapping({"cookie_max_age": dt.timedelta(days=3653)})
    assert options.cookie_max_age == 3653 * 24 * 3600


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


def test_trusted_networks_are_text_or_ipaddress_objects() -> None:
    given = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_address("192.0.2.1"), "::1"]
    assert WebOptions(trusted_proxies=given).trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    # An integer in the list is no hop count: it would be read as the address 0.0.0.2.
    for item in (2, b"10.0.0.1"):
        with pytest.raises(ValueError, match=r"trusted_proxies: .* is not an IP address"):
            WebOptions(trusted_proxies=["10.0.0.1", item])


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
        ({"cookie_name": "bad name"}, "cookie_name 'bad name' has ' ' (U+0020 SPACE) at index 3"),
        (
            {"cookie_name": "visitor\n"},
            "cookie_name 'visitor\\n' has '\\n' (U+000A a control character) at index 7",
        ),
        ({"user_cookie_name": ""}, "user_cookie_name must be a cookie name, ASCII token"),
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
        ({"cookie_max_age": 10**400}, "cookie_max_age must be at most 10 years"),
        ({"page_content_types": ["text/*"]}, "page_content_types: 'text/*' is a wildcard"),
        ({"cookie_max_age": dt.timedelta(days=3654)}, "cookie_max_age must be at most 10 years"),
        ({"user_id": ".hooks:user_id"}, "user_id: '.hooks:user_id' is a relative path"),
        ({"page_name": "..hooks.name"}, "page_name: '..hooks.name' is a relative path"),
        ({"csp_nonce": ".hooks:nonce"}, "csp_nonce: '.hooks:nonce' is a relative path"),
        (
            {"consent": "tests.web.broken_hooks:consent"},
            "consent: cannot import 'tests.web.broken_hooks:consent': RuntimeError",
        ),
        ({"anonymize_ip": 2}, "anonymize_ip must be True or False (or 0 or 1), got 2"),
        (
            {"identify_on_login": 2},
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
        ("i\u2764.example", "is not a valid domain name (Codepoint U+2764"),
        ("bücher.de.", "has an empty label"),
    ],
)
def test_a_cookie_domain_no_browser_takes_is_refused(domain: str, problem: str) -> None:
    with pytest.raises(
        ValueError, match=r"^cookie_domain must be a domain name.*" + re.escape(problem)
    ):
        WebOptions(cookie_domain=domain)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        # A look-alike of another script reads as the name it imitates.
        ("ajs_\u0430nonymous_id", "'\u0430' (U+0430 CYRILLIC SMALL LETTER A) at index 4"),
        ("visitor\u200bid", "'\\u200b' (U+200B ZERO WIDTH SPACE) at index 7"),
        ("id;x", "';' (U+003B SEMICOLON) at index 2"),
    ],
)
def test_a_cookie_name_error_names_the_character_at_fault(name: str, problem: str) -> None:
    for option in ("cookie_name", "user_cookie_name"):
        with pytest.raises(ValueError) as raised:
            WebOptions.from_mapping({option: name})
        message = str(raised.value)
        assert message.startswith(f"{option} {name!r} has {problem}; ")
        assert message.endswith(
            "a cookie name is ASCII token characters (letters, digits and !#$%&'*+-.^_`|~) only"
        )


def test_cookie_domains_browsers_take() -> None:
    for domain in (".example.com", "shop.example.com", "localhost", "127.0.0.1", "my_host.lan"):
        assert WebOptions(cookie_domain=domain).cookie_domain == domain
    # An internationalised domain in the ASCII form browsers match hosts by (and
    # that a Set-Cookie header can carry).
    assert WebOptions(cookie_domain="пример.рф").cookie_domain == "xn--e1afmkfd.xn--p1ai"
    assert WebOptions(cookie_domain=".bücher.de").cookie_domain == ".xn--bcher-kva.de"
    # As browsers convert a host (UTS #46, non-transitional): a sharp s and a final
    # sigma are letters of their own, not "ss" and a sigma; other scripts' full stops
    # are dots.
    assert WebOptions(cookie_domain=".faß.de").cookie_domain == ".xn--fa-hia.de"
    assert WebOptions(cookie_domain="www.ς.gr").cookie_domain == "www.xn--3xa.gr"
    assert WebOptions(cookie_domain="Shop.Bücher\u3002de").cookie_domain == "shop.xn--bcher-kva.de"
    options = WebOptions(cookie_domain="пример.рф")
    tracker = RequestTracker(None, options, make_request(host="www.xn--e1afmkfd.xn--p1ai"))
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


def test_blank_list_entries_are_ignored() -> None:
    # What "MyMonitor, ".split(",") gives: a blank pattern is in every User-Agent.
    options = WebOptions(
        bot_user_agents=["MyMonitor", " "],
        exclude_paths=[" ", "\t"],
        exclude_routes=[" "],
        page_methods=["GET", " "],
        page_content_types=[" "],
    )
    assert not options.bots.matches("Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0")
    assert options.bots.matches("MyMonitor/2.1")
    assert options.exclude_regex is not None and not options.exclude_regex.search("/a b/")
    assert options.page_methods == WebOptions().page_methods
    assert options.page_content_types == WebOptions().page_content_types


def test_direct_construction_validates_too() -> None:
    with pytest.raises(ValueError, match="skip_bots must be True or False"):
        WebOptions(skip_bots="no")  # type: ignore[arg-type]


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


# -- regular expressions joined into one ---------------------------------------------


@pytest.mark.parametrize(
    "patterns",
    [
        [r"(?i)^/private/"],
        [r"(?i)^/private/", r"(?i)^/health"],
        [r"(?i)(?s)^/private/"],
        [r"(?ix) ^/private/  # the staff's pages", r"^/health"],
        [re.compile(r"^/private/", re.IGNORECASE), r"(?i)^/health"],
    ],
)
def test_exclude_paths_with_their_own_flags_are_searched_in_one(patterns: list[object]) -> None:
    options = WebOptions(exclude_paths=patterns, replace_default_exclude_paths=True)
    assert options.exclude_regex is not None  # one search per request
    assert options.exclude_regex.search("/PRIVATE/notes")
    assert not options.exclude_regex.search("/products/1")


def test_exclude_paths_with_their_own_flags_extend_the_defaults_in_one_search() -> None:
    options = WebOptions(exclude_paths=[r"(?i)^/private/"])
    assert options.exclude_regex is not None
    assert options.exclude_regex.search("/Private/x") and options.exclude_regex.search("/static/a")


@pytest.mark.parametrize(
    ("patterns", "path"),
    [
        ([r"^/(?P<section>private)/", r"^/(?P<section>staff)/"], "/staff/"),  # a name twice
        ([r"^/(a)\1/", r"^/(b)\1/"], "/bb/"),  # groups by number: renumbered once joined
    ],
)
def test_exclude_paths_that_cannot_be_joined_are_searched_one_by_one(
    patterns: list[str], path: str
) -> None:
    options = WebOptions(exclude_paths=patterns, replace_default_exclude_paths=True)
    assert options.exclude_regex is None
    assert RequestTracker(None, options, make_request(path=path)).excluded
    assert not RequestTracker(None, options, make_request(path="/products/1")).excluded


@pytest.mark.parametrize(
    ("patterns", "user_agent"),
    [
        ([r"(?i)(?s)screaming.frog"], "Screaming Frog SEO Spider/19.0"),
        ([r"(?P<tool>frog)bot", r"(?P<tool>toad)bot"], "ToadBot/1.0"),
        ([r"(a)\1bot", r"(b)\1bot"], "bbbot/1.0"),
    ],
)
def test_bot_patterns_that_cannot_be_joined_as_written_still_match(
    patterns: list[str], user_agent: str
) -> None:
    options = WebOptions(bot_user_agents=patterns, replace_default_bot_user_agents=True)
    assert options.bots.matches(user_agent)
    assert not options.bots.matches("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0")


# -- cookie names with a browser prefix ----------------------------------------------


@pytest.mark.parametrize(
    ("names", "shown"),
    [
        ({"cookie_name": "__Host-ajs_anonymous_id"}, "cookie_name '__Host-ajs_anonymous_id'"),
        ({"cookie_name": "__host-ajs"}, "cookie_name '__host-ajs'"),  # browsers ignore case
        # analytics.js writes the user id's cookie with cookie_domain too.
        ({"user_cookie_name": "__Host-ajs_user_id"}, "user_cookie_name '__Host-ajs_user_id'"),
    ],
)
def test_a_host_prefixed_cookie_name_with_a_cookie_domain_is_refused(
    names: dict[str, str], shown: str
) -> None:
    # Browsers drop a __Host- cookie that names a domain: every visit would be new.
    with pytest.raises(ValueError, match="^" + re.escape(f"{shown} cannot go with cookie_domain")):
        WebOptions.from_mapping({**names, "cookie_domain": ".example.com"})


def test_prefixed_cookie_names_browsers_keep_are_taken() -> None:
    assert WebOptions(cookie_name="__Host-ajs").cookie_name == "__Host-ajs"
    secure = WebOptions(cookie_name="__Secure-ajs", cookie_domain=".example.com")
    assert secure.cookie_name == "__Secure-ajs"


# -- yes/no options as the client reads them ------------------------------------------


def test_yes_no_options_take_0_and_1_and_none_for_their_default() -> None:
    # As the client's do, in the same settings dict (send = int(os.environ["SEND"])).
    client, web = split_options(
        {
            "SEND": 0,
            "PAGE_CALLS": 0,
            "HONOR_DNT": 1,
            "SET_COOKIE": None,
            "HONOR_GPC": None,
            "REPLACE_DEFAULT_EXCLUDE_ROUTES": 0,
            "IDENTIFY_ON_LOGIN": 0,
            "TRUSTED_PROXIES": None,
        }
    )
    options = WebOptions.from_mapping(web)
    assert client == {"send": 0}
    assert options.page_calls is False and options.honor_dnt is True
    assert options.set_cookie is True and options.honor_gpc is True  # the defaults
    assert options.replace_default_exclude_routes is False
    assert options.identify_on_login is False
    assert options.trusted_proxies == 0
    assert WebOptions(identify_on_login=None).identify_on_login is True  # type: ignore[arg-type]
    assert WebOptions(skip_bots=1).skip_bots is True


@pytest.mark.parametrize(
    ("names", "secure"),
    [
        ({}, False),
        ({"cookie_name": "__Secure-ajs"}, True),
        ({"cookie_name": "__host-ajs"}, True),
        ({"user_cookie_name": "__Secure-ajs_user_id"}, True),
        ({"cookie_name": "my__Secure-ajs"}, False),
    ],
)
def test_prefixed_cookie_names_call_for_secure_cookies(names: dict[str, str], secure: bool) -> None:
    assert WebOptions.from_mapping(names).secure_cookies is secure


def test_every_list_option_s_defaults_are_importable() -> None:
    import segment_core.web as web
    from segment_core.web._options import LIST_DEFAULTS

    for name, defaults in LIST_DEFAULTS.items():
        assert getattr(web, f"DEFAULT_{name.upper()}") == defaults, name
