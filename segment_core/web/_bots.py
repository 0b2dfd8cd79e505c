"""Crawlers, link previewers and uptime monitors, told by their User-Agent."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from segment_core.web._request import MAX_CACHED_LENGTH, header_text
from segment_core.web._validate import joined_patterns

__all__ = ["BOT_PATTERN", "DEFAULT_BOT_USER_AGENTS", "BotMatcher"]

#: Regular expressions searched in the User-Agent, ignoring case. Generic HTTP
#: libraries (curl, requests, headless browsers) are not listed: they are how
#: tests and scripts drive apps. Add them with ``bot_user_agents``.
DEFAULT_BOT_USER_AGENTS: tuple[str, ...] = (
    # "Googlebot/2.1", "bingbot", "Slackbot-LinkExpanding", but not the "CUBOT" phone.
    r"(?<!cu)bot\b",
    r"crawl",
    r"spider",
    r"slurp",
    r"archiver",
    r"scraper",
    r"scrapy",
    r"mediapartners",
    r"feedfetcher",
    r"facebookexternalhit",
    r"facebookcatalog",
    r"embedly",
    r"quora link preview",
    r"pinterest/0\.",  # its old crawler; "[Pinterest/iOS]" is its in-app browser, a person
    r"vkshare",
    r"whatsapp",
    r"preview",
    r"prerender",
    r"validator",
    r"lighthouse",
    r"pagespeed",
    r"gtmetrix",
    r"pingdom",
    r"uptimerobot",
    r"statuscake",
    r"site24x7",
    r"newrelicpinger",
    r"datadog",
    # Health checkers: Kubernetes, load balancers (AWS, Google, Azure Front Door's
    # "Edge Health Probe", Envoy and Istio, Cloudflare), Consul, Prometheus' blackbox
    # exporter, Uptime Kuma, Nagios.
    r"kube-probe",
    r"health.?(?:check|probe)",
    r"googlehc",
    r"envoy/hc",
    r"traffic-manager",
    r"blackbox.?exporter",
    r"uptime-kuma",
    r"check_http",
    r"monitor",
    r"google-inspectiontool",
    r"chatgpt-user",
    r"anthropic-ai",
    r"claude-user",
    r"perplexity-user",
    # Link previewers: every Mastodon (and Pleroma, Misskey) server a post reaches
    # fetches the page it links to; embed services; Google's read-aloud.
    r"\bmastodon/",
    r"\bpleroma\b",
    r"\bmisskey/",
    r"iframely",
    r"google-read-aloud",
)

#: The defaults as one pattern (kept for code that searched it directly).
BOT_PATTERN = re.compile("|".join(DEFAULT_BOT_USER_AGENTS))

_CACHE_SIZE = 2048
#: What of a User-Agent is searched: far more than any client's (the context keeps
#: 512 characters), so that a hostile one of many KB costs no more than that.
MAX_SEARCHED = 2048


class BotMatcher:
    """``matches(user_agent)``: one search per distinct User-Agent, then a dict lookup
    (a User-Agent longer than :data:`MAX_CACHED_LENGTH` is searched each time)."""

    __slots__ = ("_cache", "_search")

    def __init__(self, patterns: Iterable[str] = DEFAULT_BOT_USER_AGENTS) -> None:
        patterns = tuple(patterns)
        # Ignoring case: an entry spelled as its product spells itself ("HeadlessChrome").
        joined = joined_patterns(patterns, re.IGNORECASE)
        self._search: Callable[[str], object] | None
        if joined is not None:
            self._search = joined.search
        elif patterns:  # they cannot be joined: one search each
            self._search = _first_match([re.compile(p, re.IGNORECASE) for p in patterns])
        else:
            self._search = None
        self._cache: dict[str, bool] = {}

    def matches(self, user_agent: str | None) -> bool:
        """Whether ``user_agent`` names a bot; an empty one does not (test clients)."""
        if not user_agent or self._search is None:
            return False
        cache = self._cache
        found = cache.get(user_agent)
        if found is None:
            found = self._search(_searched_text(user_agent)) is not None
            if len(user_agent) <= MAX_CACHED_LENGTH:
                if len(cache) >= _CACHE_SIZE:
                    cache.clear()
                cache[user_agent] = found
        return found


def _searched_text(user_agent: str) -> str:
    """The first :data:`MAX_SEARCHED` characters of ``user_agent`` as the context
    sends it: UTF-8 read as such (of the bytes those characters can take at most, cut
    where a character begins), without control characters."""
    if user_agent.isascii() and user_agent.isprintable():
        return user_agent[:MAX_SEARCHED]
    head = user_agent[: MAX_SEARCHED * 4]
    if len(head) < len(user_agent):
        end = len(head)
        while end > len(head) - 4 and "\x80" <= head[end - 1] <= "\xbf":
            end -= 1  # a continuation byte: its character is cut
        if end and head[end - 1] >= "\xc0":
            end -= 1  # the first byte of the character cut
        head = head[:end]
    return header_text(head)[:MAX_SEARCHED]


def _first_match(patterns: list[re.Pattern[str]]) -> Callable[[str], object]:
    """A search through ``patterns`` one by one: a match, or None."""

    def search(user_agent: str) -> object:
        return next((True for pattern in patterns if pattern.search(user_agent)), None)

    return search
