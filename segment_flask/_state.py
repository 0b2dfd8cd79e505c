"""``SEGMENT_*`` config keys and keyword arguments -> one app's client and web options.

Every option of :class:`segment_core.config.Config` and
:class:`segment_core.web.WebOptions` is read as ``SEGMENT_<NAME>`` from
``app.config``; keyword arguments to ``SegmentFlask(...)``/``init_app`` override
them (whichever of an option's names each uses: ``max_batch_size=`` replaces
``SEGMENT_UPLOAD_SIZE``), and the core's environment fallbacks (``SEGMENT_WRITE_KEY``,
``SEGMENT_HOST``) apply last. ``SEGMENT_CLIENT`` (or ``client=``) hands the app an
existing :class:`~segment_core.Client` to share. An app that names no write key
takes the module-level settings (``segment_core.write_key``, ``host``, ...) for the
client options it leaves unset (see :mod:`segment_core.adapters`).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from segment_core.adapters import (
    SERVER_KEY_IN_BROWSER,
    SERVER_KEY_IN_BROWSER_FIX,
    build_client,
    hands_server_key_to_browsers,
    named_by_source,
)
from segment_core.client import Client
from segment_core.config import ALIASES, closest_name, options_over
from segment_core.config import option_names as client_option_names
from segment_core.web import (
    WebOptions,
    check_cookie_names,
    check_plain_hooks,
    missing_browser_key,
    split_options,
)
from segment_core.web import option_names as web_option_names

__all__ = ["CONFIG_PREFIX", "SegmentState", "check_keywords", "load_state"]

logger = logging.getLogger("segment.flask")

CONFIG_PREFIX = "SEGMENT_"
CLIENT_OPTION = "client"


@dataclass(frozen=True)
class SegmentState:
    """What one app uses, kept in ``app.extensions["segment"]``."""

    #: The client this app's calls go through (its own, or the one it was given).
    client: Client
    #: How requests become context, identity and page calls.
    options: WebOptions
    #: False when the client came from ``client=``/``SEGMENT_CLIENT`` (someone else's).
    owns_client: bool


def known_options() -> frozenset[str]:
    """Every lower-case option name the extension accepts."""
    return web_option_names() | client_option_names() | set(ALIASES) | {CLIENT_OPTION}


def check_keywords(options: Mapping[str, Any]) -> None:
    """Raise :class:`TypeError` for a keyword argument that is no option, naming the
    closest, or for two keyword arguments that are one option's two names."""
    names = known_options()
    for key in options:
        if key not in names:
            close = closest_name(key, sorted(names))
            hint = f"; did you mean {close!r}?" if close else ""
            raise TypeError(f"SegmentFlask got an unknown option {key!r}{hint}")
    _check_one_name_each(options, lambda name: f"SegmentFlask({name}=...)")


def _option_of(name: str) -> str:
    """The option ``name`` sets: analytics-python's names are aliases of ours."""
    return ALIASES.get(name, name)


def _check_one_name_each(spellings: Iterable[str], describe: Callable[[str], str]) -> None:
    """Raise :class:`TypeError` when two of ``spellings`` set one option, naming both
    as ``describe`` writes them: which of the two values counts would be a guess."""
    first_of: dict[str, str] = {}
    for spelling in spellings:
        option = _option_of(spelling.lower())
        first = first_of.setdefault(option, spelling)
        if first != spelling:
            raise TypeError(
                f"{describe(first)} and {describe(spelling)} are the same option "
                f"({option}); set only one"
            )


def config_options(config: Mapping[str, Any], *, stacklevel: int) -> dict[str, Any]:
    """The ``SEGMENT_*`` keys of ``config`` as ``{option: value}``.

    An unknown key is skipped with a warning naming the closest valid key: a typo
    must not silently leave an option at its default.
    """
    names = known_options()
    found: dict[str, Any] = {}
    keys: list[str] = []
    for key, value in config.items():
        if not isinstance(key, str) or not key.startswith(CONFIG_PREFIX):
            continue
        name = key[len(CONFIG_PREFIX) :].lower()
        if name in names:
            found[name] = value
            keys.append(key[len(CONFIG_PREFIX) :])
            continue
        # Compared without the prefix every key shares: SEGMENT_SAMESITE is near no key.
        close = closest_name(name, sorted(names))
        hint = f"; did you mean {CONFIG_PREFIX + close.upper()!r}?" if close else ""
        warnings.warn(
            f"unknown Segment config key {key!r} is ignored{hint}", UserWarning, stacklevel + 1
        )
    _check_one_name_each(keys, lambda name: f"app.config[{CONFIG_PREFIX + name!r}]")
    return found


def load_state(
    config: Mapping[str, Any],
    overrides: Mapping[str, Any],
    *,
    static_url_path: str | None,
    app_name: str,
    stacklevel: int = 1,
) -> SegmentState:
    """Build the app's state; a bad value raises :class:`ValueError` naming its source."""
    from_config = config_options(config, stacklevel=stacklevel + 1)
    options = options_over(from_config, overrides)
    given = options.pop(CLIENT_OPTION, None)

    def source(name: str) -> str | None:
        """Where option ``name`` (by any of its names) was set; None: not by this app."""
        option = _option_of(name)
        spellings = [option, *(alias for alias, target in ALIASES.items() if target == option)]
        for spelling in spellings:
            if spelling in overrides:
                return f"SegmentFlask({spelling}=...)"
        for spelling in spellings:
            if spelling in from_config:
                return f"app.config[{CONFIG_PREFIX + spelling.upper()!r}]"
        return None

    client_kwargs, web_kwargs = split_options(options)
    try:
        web = WebOptions.from_mapping(web_kwargs)
        check_plain_hooks(web)  # Flask calls them in the request's thread
        session_cookie = config.get("SESSION_COOKIE_NAME")
        taken = {session_cookie: "app.config['SESSION_COOKIE_NAME']"} if session_cookie else {}
        check_cookie_names(web.cookie_name, web.user_cookie_name, taken)
    except ValueError as exc:
        raise named_by_source(exc, source, "Segment") from None
    if static_url_path:
        # Flask knows where its static files are served: never count them as pages.
        asset = "^" + re.escape(static_url_path.rstrip("/") + "/")
        web = replace(web, exclude_paths=(*web.exclude_paths, asset))

    if missing_browser_key(web):
        logger.warning(
            "Segment's analytics.js snippet has no browser write key for app %r: "
            "segment_snippet() renders nothing. Set app.config['SEGMENT_BROWSER_WRITE_KEY'] "
            "to the write key of your website source (the server's key is never used).",
            app_name,
        )
    if given is not None:
        where = source(CLIENT_OPTION)
        if not isinstance(given, Client):
            raise ValueError(f"{where}: must be a segment_core.Client, got {type(given).__name__}")
        if client_kwargs:
            ignored = ", ".join(str(source(name)) for name in sorted(client_kwargs))
            warnings.warn(
                f"{ignored} ignored: app {app_name!r} uses the client given by {where}; "
                "set client options on that Client",
                UserWarning,
                stacklevel + 1,
            )
        _warn_if_server_key_in_browser(web, given, app_name)
        return SegmentState(client=given, options=web, owns_client=False)

    try:
        # The app's own client, even with no client option: its TESTING diverts
        # only its own events, and another app's key is never its.
        client = build_client(client_kwargs)
    except ValueError as exc:
        raise named_by_source(exc, source, "Segment") from None
    if client.config.send and not client.config.write_key:
        logger.warning(
            "Segment has no write key for app %r: every event is discarded. Set "
            "app.config['SEGMENT_WRITE_KEY'] (or segment_core.write_key before init_app, "
            "or the SEGMENT_WRITE_KEY environment variable), or SEGMENT_SEND = False to "
            "turn sending off on purpose.",
            app_name,
        )
    _warn_if_server_key_in_browser(web, client, app_name)
    return SegmentState(client=client, options=web, owns_client=True)


def _warn_if_server_key_in_browser(web: WebOptions, client: Client, app_name: str) -> None:
    if hands_server_key_to_browsers(web.browser_write_key, client.config.write_key):
        logger.warning(
            "Segment for app %r: %s; %s.",
            app_name,
            SERVER_KEY_IN_BROWSER,
            SERVER_KEY_IN_BROWSER_FIX,
        )
