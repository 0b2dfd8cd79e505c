"""The analytics.js loader ("the snippet"), rendered from the server's own settings.

The snippet makes analytics.js continue the server's visitor instead of starting
its own: it hands analytics.js the anonymous id the server chose for this request
(before analytics.js loads, so even the first response of a new visitor agrees),
the cookie domain and lifetime the server uses, and the logged-in user's id
(stored, not sent: no ``identify`` call on every page). Exactly one side sends
page views: the snippet calls ``analytics.page()`` when ``page_source`` is
"browser", and then the server sends none; and for a page the browser prefetched
or prerendered, which the server does not count, when the browser shows it, or
showed from its HTTP cache without asking the server (not back or forward). A page
from the HTTP cache (a 304's copy too) hands over no user: the copy names the one it
was made for. A page made for a visitor with no user, whose user cookie is gone,
drops a user id analytics.js kept elsewhere (its localStorage).
Where the server redacted a page field (a secret in the path, the query or the
referrer), the loader hands analytics.js the redacted value, for its page call
and, through a source middleware, for the ``context.page`` of its events on that
page: a path and URL analytics.js took from the page's canonical link give way to
the server's, and the campaign it read from the page's query to the one it reads
from the server's query (as for its page call). With ``collect_ip`` off or
``anonymize_ip`` on, the events carry the address the server's calls carry
(``0.0.0.0`` in a page that names no visitor), in place of the one Segment would
record.

A page that Turbo Drive or htmx (``hx-boost``) shows in the document where the
loader already runs is handed to it: Turbo runs its snippet (which hands its
settings over), htmx does not (the loader reads them from the response). That
page's user id, fields and page view then apply as for a page the browser loaded
(a Turbo Frame's response that advances the URL is no page view, as for the server).
A page with another write key or load options is loaded anew; a Turbo visit from a
page with the inert stub (below) starts analytics.js as a first page does. Outside a
visit (a script inserting another page's markup runs its snippet), a second snippet
is reported and does nothing (silently, once loaded, in a document with the inert
stub). Where a visit took the document to a URL the loader has no settings for, its
events carry no path, query or URL: the server's rules cannot run in the browser.

A visitor the server does not track (a bot, ``Sec-GPC``, ``DNT`` or ``consent``
as configured, an excluded path or route) gets an inert stub: the page's own
``analytics.*`` calls work and do nothing, and analytics.js never loads. The same
decision, made once by :class:`~segment_core.web.RequestTracker`, governs both
sides. A response that holds the snippet varies on the cookies (``Vary: Cookie``,
added by the adapters), as one that sets the visitor's cookie does. A response a
cache may store before that header is added gets a snippet that names no visitor
(``shared``), and that any visitor may get: the loader reads the id from the
server's cookie instead, and starts analytics.js only where that cookie is (the
server sets it only for visitors it tracks) and the browser's privacy signals
allow it. A page whose ids differ from the cookie's (a template fragment cache
kept another visitor's snippet) is treated the same way.

Adapters call :func:`render_snippet` with the request's tracker and the nonce
found by :func:`find_csp_nonce`; templates get a :class:`Snippet`, a ``str`` that
Jinja and Django insert without escaping (it has ``__html__``). Where the page
requires Trusted Types, the loader assigns the library's URL through a policy of
its own (:data:`TRUSTED_TYPES_POLICY`) that passes that URL alone.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from segment_core.hosts import is_loopback_url
from segment_core.testing import diverted
from segment_core.web._browser_options import DEFAULT_SNIPPET_SRC
from segment_core.web._context import NO_IP, context_ip
from segment_core.web._guard import call_hook
from segment_core.web._identity import (
    ANALYTICS_JS_COOKIE,
    cookie_domain_for,
    cookie_held_back,
    id_cookie,
    parse_id_cookie,
)
from segment_core.web._options import WebOptions
from segment_core.web._page import (
    has_page_method,
    is_excluded_route,
    is_page_prefetch,
    page_name,
)
from segment_core.web._request import RequestInfo

if TYPE_CHECKING:
    from segment_core.web._tracker import RequestTracker

__all__ = [
    "Snippet",
    "browser_settings",
    "find_csp_nonce",
    "missing_browser_key",
    "render_snippet",
    "script_json",
]

logger = logging.getLogger("segment.core.web")

SECONDS_PER_DAY = 24 * 60 * 60
#: The Trusted Types policy the loader assigns analytics.js's URL through, where the
#: page requires them: a site's ``trusted-types`` directive must name it.
TRUSTED_TYPES_POLICY = "segment-web"

# The calls analytics.js accepts before it has loaded; the stub queues them.
_BUFFERED_METHODS = (
    "track",
    "identify",
    "page",
    "screen",
    "group",
    "alias",
    "reset",
    "ready",
    "debug",
    "on",
    "once",
    "off",
    "trackLink",
    "trackForm",
    "trackClick",
    "trackSubmit",
    "pageview",
    "setAnonymousId",
    "addSourceMiddleware",
    "addIntegrationMiddleware",
    "addDestinationMiddleware",
    "register",
    "deregister",
)

# Escapes that keep JSON inert inside <script>: no "</script>", no "<!--", and no
# line terminators that older JavaScript engines reject inside string literals.
_SCRIPT_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}

# Whole-line comments are for readers of this file: every page carries the code.
_COMMENT_LINE = re.compile(r"^[ \t]*//.*\n", re.MULTILINE)

# The stub: window.analytics queues the page's calls until analytics.js has loaded.
# Alone (the inert stub), for a visitor the server does not track: the page's own
# analytics.* calls (analytics.reset() at logout) stay queued, and nothing loads.
_STUB_CODE = r"""(function (config) {
  var script = document.currentScript;
  var analytics = (window.analytics = window.analytics || []);
  if (analytics.initialize || analytics.invoked) {
    var handOver = window._segmentShowPage;
    if (handOver && handOver(config)) {
      // A new page that Turbo Drive or htmx shows: the loader already here took its
      // settings. Out of the document, for Turbo runs a head's script only where the
      // document holds no twin of it (the next page's may be).
      if (script && script.parentNode) script.parentNode.removeChild(script);
      return;
    }
    // A Turbo Drive visit from a page the server did not track: this page starts
    // analytics.js as a first page does, without the calls queued there.
    var takeOver = analytics.inert && !config.inert &&
      document.documentElement.getAttribute("aria-busy") === "true";
    if (!takeOver) {
      // Twice in the page as it loads, or a snippet the loader here refused (a script
      // that inserts another page's markup runs it too). A document without a loader
      // (the inert stub's) has nothing to refuse: a visit's snippet is no mistake there.
      var reported = !analytics.inert || document.readyState === "loading";
      if (reported && window.console && console.error) {
        console.error("Segment snippet included twice.");
      }
      return;
    }
    analytics = window.analytics = [];
  }
  analytics.invoked = true;
  analytics.inert = !!config.inert;
  config.methods.forEach(function (method) {
    analytics[method] = function () {
      var call = Array.prototype.slice.call(arguments);
      call.unshift(method);
      analytics.push(call);
      return analytics;
    };
  });
"""
_STUB = _COMMENT_LINE.sub("", _STUB_CODE)

# The loader: the stub, the server's visitor, then the library. It reads its
# settings from the JSON literal it is called with, and its CSP nonce from its own
# element, which it hands on to the library's <script>. ES5; rendered in a CDATA
# section (see _script), so it never holds "]]>".
_LOADER_CODE = (
    (
        _STUB_CODE
        + r"""  var nonce = script ? script.nonce : "";
  // What the server's str.isprintable() refuses in an id beyond ASCII: format
  // characters (U+200B), private-use and unassigned code points, separators. (None in
  // a browser without Unicode property escapes.)
  var unprintable = null;
  try {
    unprintable = new RegExp("[\\p{C}\\p{Z}]", "u");
  } catch (error) {}
  // The visitor the server's cookie names now. A page made for another visitor (a
  // cache stored it, whole or a fragment of it) names the wrong one, or none: this
  // visitor is the cookie's, and the page's user id is not handed over.
  var cookieId = cookieValue(config.cookieName);
  var ownPage = isOwnPage(config, cookieId);
  // Then this visitor's decision is made here. The page's own calls stay queued,
  // and analytics.js never loads.
  if (!ownPage && !tracked(config.checks, cookieId)) {
    analytics.inert = true;
    return;
  }
  analytics.load = function (writeKey, options) {
    var script = document.createElement("script");
    script.async = true;
    script.src = scriptUrl(config.src);
    if (nonce) script.nonce = nonce;
    (document.head || document.documentElement).appendChild(script);
    analytics._loadOptions = options;
  };
  analytics._writeKey = config.writeKey;
  if (config.cdn) analytics._cdn = config.cdn;
  // Before analytics.js loads: its first event already carries the server's id.
  var anonymousId = cookieId === null ? config.anonymousId : cookieId;
  if (anonymousId) analytics.setAnonymousId(anonymousId);
  // A copy the browser's HTTP cache kept (a 304's included) names the user it was
  // made for, who may have logged out or in since: not handed over.
  var cached = fromHttpCache();
  var userId = ownPage && !cached ? config.userId : null;
  if (userId) {
    // The logged-in user, stored without an identify call (the server sent one at
    // login).
    analytics.on("initialize", function () {
      adoptUser(this, userId, anonymousId);
    });
  } else if (
    ownPage &&
    !cached &&
    (config.loggedOut || cookieValue(config.options.user.cookie.key) === null)
  ) {
    // The server made this page for a visitor with no user, and no cookie names one:
    // a user id analytics.js kept elsewhere (its localStorage, which a logout on
    // another subdomain of the cookie's domain cannot clear) is a logged-out one.
    // So is the one the cookie names, when this very request logged the user out.
    analytics.on("initialize", function () {
      if (this.user().id()) adoptUser(this, null, anonymousId);
    });
  }
  // The user the server named last in this document: when its next page names none,
  // that user logged out (an id analytics.js got otherwise is the page's own affair).
  var namedUser = userId || null;
  analytics.on("reset", function () {
    // analytics.reset() (at logout) forgets analytics.js's own cookie where it writes
    // it: not the server's, nor one written for the whole domain (by analytics.js's
    // defaults, on another page). Left there, either hands the old visitor back.
    var host = location.hostname;
    var labels = /^[0-9.]+$|:/.test(host) ? [host] : host.split(".");
    var domains = labels.map(function (label, at) {
      return labels.slice(at).join(".");
    });
    domains[domains.length - 1] = ""; // host-only, in place of the top-level domain
    var names = [__ANALYTICS_JS_COOKIE__];
    if (config.cookieName !== names[0]) names.push(config.cookieName);
    names.forEach(function (name) {
      domains.forEach(function (domain) {
        writeCookie(name, "", 0, domain);
      });
    });
    if (config.renewOnReset) {
      // The new visitor analytics.js starts, in the server's cookie: the server adopts it.
      var cookie = config.options.cookie;
      var id = encodeURIComponent(this.user().anonymousId());
      writeCookie(config.cookieName, id, cookie.maxage, cookie.domain);
    }
  });
  var redacted = config.pageFields;
  // Where the server redacted secrets from this page's fields (its path, query or
  // referrer), analytics.js reports them as the server would, through a source
  // middleware (see report). document.referrer stays this document's.
  var referrer = { original: document.referrer, redacted: redacted && redacted.referrer };
  if (cached || !ownPage) {
    // A copy from the HTTP cache, or a page made for any visitor: the server redacted
    // the referrer it saw then, if any, not this visit's. Its origin alone is sent.
    referrer.redacted = originOf(document.referrer);
  }
  var current = pageState(redacted || {});
  // The pages of this document whose fields the server gave, newest first (Turbo's
  // and htmx's back and forward show them again without asking the server).
  var known = [current];
  // Where the document was when a visit the server renders (Turbo's, htmx's) took it
  // elsewhere, until the new page's settings come; null: no such visit.
  var leftFrom = null;
  var visiting = null; // "turbo" or "htmx" while one shows a new page
  var arriving = null; // the settings of the page it shows, once they came
  var madeFor = null; // the path and query of the response they came in
  var adopted = false; // whether they apply already
  var frameAt = null; // the URL a Turbo Frame advanced the document to, until its visit
  var shownAt = location.href; // the URL of the page Turbo showed last
  var uncounted = false; // whether the visit is no page view (a frame's, a restore's)
  var reloading = false; // the document is loaded anew: its events would go astray
  var watching = false;
  // The address the server's calls carry in place of the visitor's (collect_ip off,
  // anonymize_ip): the browser's events carry it too, or none (0.0.0.0) where the page
  // was made for another visitor, whose address it holds.
  var ip = config.ip && (ownPage ? config.ip : "0.0.0.0");
  if (redacted || ip || referrer.redacted !== undefined) watchPages();
  window._segmentShowPage = function (settings) {
    // Only a visit's page: markup a script inserts is no page of this document.
    if (!visiting) return false;
    arrive(settings);
    // Its page view waits for the visit's end (Turbo follows a redirect first); the
    // fields and user apply now if the document is at the page's URL.
    if (here() === madeFor) adoptPage(settings);
    return true;
  };
  document.addEventListener("turbo:visit", function (event) {
    // Back or forward (Turbo's "restore") has already moved the document's URL.
    leaving("turbo", event.detail && event.detail.action === "restore" ? "" : here());
    // A frame's navigation that advances the URL is a visit to what the frame showed;
    // the server counts no frame's request, nor does the loader.
    uncounted = frameAt !== null && event.detail && event.detail.url === frameAt;
    frameAt = null;
    unrunSnippets(); // another visit's
  });
  document.addEventListener("turbo:before-fetch-response", function (event) {
    // The visit's own response (a frame's or a form's comes to its element).
    var response = event.detail && event.detail.fetchResponse;
    if (visiting === "turbo" && event.target === document.documentElement && response) {
      madeFor = response.location.pathname + response.location.search;
    }
  });
  document.addEventListener("turbo:frame-load", function (event) {
    // Only a frame's navigation that advances the URL (data-turbo-action) is followed by
    // a visit to what it showed: Turbo has moved the document's URL to the frame's by
    // now. Any other's URL may be a real visit's next (Turbo.visit, a form's redirect).
    var src = event.target.getAttribute("src");
    var url = src === null ? null : new URL(src, document.baseURI).href;
    if (url === location.href && url !== shownAt) frameAt = url;
  });
  document.addEventListener("turbo:load", function () {
    shownAt = location.href;
    // A snippet Turbo could not run (a Content-Security-Policy whose nonce is the first
    // page's): its settings are read from the element it added.
    if (visiting === "turbo" && !arriving) arrive(unrunSnippets());
    arrived("turbo");
  });
  document.addEventListener("htmx:beforeHistoryUpdate", function (event) {
    var detail = event.detail || {};
    leaving("htmx", here());
    madeFor = responsePath(detail.xhr);
    if (madeFor !== null) arrive(settingsIn(detail));
  });
  ["htmx:pushedIntoHistory", "htmx:replacedInHistory"].forEach(function (type) {
    document.addEventListener(type, function () {
      // At the new page's URL before its body comes: its scripts' events are its own.
      if (visiting === "htmx" && arriving && here() === madeFor) adoptPage(arriving);
    });
  });
  document.addEventListener("htmx:afterSettle", function () {
    arrived("htmx"); // the new page's title is in place: its page view
  });
  document.addEventListener("htmx:beforeHistorySave", function () {
    unrunSnippets(); // not in htmx's copy of the page, which it shows with its scripts
  });
  document.addEventListener("htmx:historyCacheMissLoad", function (event) {
    // Back or forward to a page htmx kept no copy of: it shows the server's anew, with
    // its scripts (a body's snippet hands itself over). A visit, as a restore no page
    // view (the server counts no htmx request that is not boosted).
    var request = (event.detail || {}).xhr;
    leaving("htmx", "");
    uncounted = true;
    madeFor = responsePath(request);
    if (madeFor === null) return;
    arrive(settingsOf(request.responseText));
    if (arriving && here() === madeFor) adoptPage(arriving);
  });
  document.addEventListener("htmx:historyRestore", function (event) {
    watchPages();
    // Restored from htmx's own copy: only a known page is vouched for. (A page fetched
    // anew was a visit's.)
    if (!(event.detail && event.detail.cacheMiss)) leftFrom = "";
  });
  analytics.load(config.writeKey, withLastingStores(config.options, userId, anonymousId));
  // The server counts no prefetched or prerendered page: shown, it is counted here.
  // Unless the browser fetched it for this very navigation: then a cache kept the
  // page made for a prefetch, and the server counted this visit.
  // Nor a visit the browser's HTTP cache answered without asking it (a page sent with
  // a max-age, Django's cache_page, whose copy a shared cache keeps too): counted
  // here too. (Back and forward are not.)
  // A page a cache may store names no request of its own: the browser tells a
  // prefetch's copy (speculation rules) or a prerendered page, which the server
  // counted as no visit.
  if (
    config.page ||
    (config.prefetched && !fetchedForThisNavigation()) ||
    (config.shared && shownFromPrefetch()) ||
    unseenByServer()
  ) {
    whenShown(function () {
      countPage(config);
    });
  }

  function scriptUrl(src) {
    // Under Trusted Types (require-trusted-types-for 'script') a script's URL goes
    // through a policy: the loader's own, which passes this URL alone (a site's
    // trusted-types directive must name it). Where the site refuses the name, the URL
    // as it is: a default policy of the site's may pass it.
    var types = window.trustedTypes;
    if (!types || !types.createPolicy) return src;
    try {
      var policy = types.createPolicy(__TRUSTED_TYPES_POLICY__, {
        createScriptURL: function (url) {
          if (url === src) return url;
          throw new TypeError("Segment: not the analytics.js URL: " + url);
        }
      });
      return policy.createScriptURL(src);
    } catch (error) {
      return src;
    }
  }

  function whenShown(callback) {
    // A prerendered page runs before it is shown, and may never be: its page view waits.
    if (document.prerendering) document.addEventListener("prerenderingchange", callback);
    else callback();
  }

  function navigationEntry() {
    var performance = window.performance;
    return performance && performance.getEntriesByType
      ? performance.getEntriesByType("navigation")[0] || null
      : null;
  }

  function fetchedForThisNavigation() {
    var entry = navigationEntry();
    // deliveryType "" is the network's answer to this navigation (no prefetch, no
    // cache); where the browser does not say, the server's word stands.
    return !document.prerendering && !!entry && entry.deliveryType === "" &&
      !(entry.activationStart > 0);
  }

  function forgetAnotherUser(user, key, kept) {
    // This origin's localStorage may hold the user before (one who logged out on
    // another subdomain of the cookie's domain, where this one logged in): the
    // cookie names the user now, and the other's traits (a name, an e-mail) are not
    // this user's.
    try {
      var held = locallyStored(key);
      if (held === null || held === kept || String(held) === storedAs(kept)) return;
      window.localStorage.setItem(key, JSON.stringify(kept));
      window.localStorage.removeItem((user.localStorage && user.localStorage.key) ||
        "ajs_user_traits");
    } catch (error) {
      // not available after all: analytics.js reads the cookie
    }
  }

  function locallyStored(key) {
    var value = window.localStorage.getItem(key);
    try {
      return value === null ? null : JSON.parse(value);
    } catch (error) {
      return value;
    }
  }

  function withLastingStores(options, userId, anonymousId) {
    if (options.storage) return options;
    var copy = {};
    for (var name in options) copy[name] = options[name];
    var stores = lastingStores();
    // analytics.js reads the user id from the first store that has one, as JSON: a
    // 64-bit number's last digits would be lost from the cookie, which holds it as
    // it is. localStorage holds it as a JSON string: read from there first.
    var key = options.user.cookie.key;
    var kept = cookieValue(key);
    var ids = [userId, kept];
    var lasting = stores[0] === "cookie" && stores[1] === "localStorage";
    if (lasting && kept) forgetAnotherUser(options.user, key, kept);
    if (anonymousId && storedAs(anonymousId) !== anonymousId && stores[0] === "cookie") {
      // An id of the server's own cookie that analytics.js would read back changed
      // from its cookie (a big number), which it prefers to any other store for the
      // anonymous id: its ids are kept elsewhere (the server's cookie keeps this one,
      // and the loader hands it over on every page).
      copy.storage = { stores: stores.length > 1 ? stores.slice(1) : ["memory"] };
      return copy;
    }
    if (lasting && ids.some(function (id) { return id && storedAs(id) !== id; })) {
      stores = ["localStorage", "cookie"];
      // This origin's localStorage may not have it yet, or still hold the user before
      // (the user logged in on another subdomain of the cookie's domain, where the last
      // one logged out): it gets the cookie's, as it is.
      try {
        if (kept && storedAs(kept) !== kept && locallyStored(key) !== kept) {
          window.localStorage.setItem(key, JSON.stringify(kept));
        }
      } catch (error) {
        // not available after all: analytics.js reads the cookie
      }
    }
    copy.storage = { stores: stores };
    return copy;
  }

  function storedAs(id) {
    // An id as analytics.js reads it back from a cookie or localStorage.
    try {
      var read = JSON.parse(id);
      return typeof read === "number" ? read.toString() : read;
    } catch (error) {
      return id;
    }
  }

  function cookiesKept() {
    // A browser that blocks the site's cookies may still say they are enabled: one
    // written and read back says it.
    if (typeof navigator === "undefined" || !navigator.cookieEnabled) return false;
    try {
      document.cookie = "ajs_cookie_check=1; Path=/; SameSite=Lax";
      var kept = document.cookie.indexOf("ajs_cookie_check=1") !== -1;
      document.cookie = "ajs_cookie_check=; Max-Age=0; Path=/; SameSite=Lax";
      return kept;
    } catch (error) {
      return false;
    }
  }

  function lastingStores() {
    // Where analytics.js keeps the ids: not also in its memory, whose copy would write
    // back the ids a logout in another tab (or before a Back) cleared. Only a browser
    // that keeps neither cookies nor localStorage gets the memory, for the page.
    var stores = [];
    if (cookiesKept()) stores.push("cookie");
    try {
      window.localStorage.setItem("ajs_test", "1");
      window.localStorage.removeItem("ajs_test");
      stores.push("localStorage");
    } catch (error) {
      // not available: private modes, a blocking policy
    }
    return stores.length ? stores : ["memory"];
  }

  function shownFromPrefetch() {
    var entry = navigationEntry();
    return !!document.prerendering || (!!entry &&
      (entry.deliveryType === "navigational-prefetch" || entry.activationStart > 0));
  }

  function fromHttpCache() {
    // "cache": the browser's HTTP cache gave the document, revalidated (a 304) or not.
    var entry = navigationEntry();
    return !!entry && entry.deliveryType === "cache";
  }

  function unseenByServer() {
    // A link's visit the HTTP cache answered with no request at all (a 304's headers
    // would have crossed the network): the server never saw it.
    var entry = navigationEntry();
    return !document.prerendering && !!entry && entry.type === "navigate" &&
      entry.deliveryType === "cache" && entry.transferSize === 0;
  }

  function countPage(settings) {
    var call = settings.pageName ? [settings.pageName] : [];
    if (settings.pageFields) call.push(copied(settings.pageFields));
    var loaded = window.analytics; // analytics.js, once loaded, or still the stub
    loaded.page.apply(loaded, call);
  }

  function adoptUser(loaded, id, keptAnonymousId) {
    // Changing users makes analytics.js drop the anonymous id: restore it. (id null:
    // no user.) As its identify does, the traits of the user it held go too; those
    // of a visitor it held no user for carry over.
    var user = loaded.user();
    var previous = user.id();
    if (previous !== id) {
      var kept = keptAnonymousId || user.anonymousId();
      user.id(id);
      // The same user, read back changed by analytics.js's storage, keeps its traits.
      if (previous && (id === null || previous !== storedAs(id))) user.traits({});
      loaded.setAnonymousId(kept);
    }
  }

  function loadedWith(settings) {
    return JSON.stringify([settings.writeKey, settings.src, settings.cdn, settings.options]);
  }

  function here() {
    return location.pathname + location.search;
  }

  function leaving(library, from) {
    watchPages();
    visiting = library;
    uncounted = false;
    arrive(null);
    madeFor = null;
    if (leftFrom === null) leftFrom = from;
  }

  function arrive(settings) {
    arriving = settings;
    adopted = false;
  }

  function arrived(library) {
    if (visiting !== library) return;
    visiting = null;
    showPage();
    madeFor = null;
  }

  function showPage() {
    // The page a visit showed in this document, at its URL now: as a page the browser
    // loaded, its fields, its user and its page view. None came, or for another URL
    // (htmx's hx-push-url may name one): the visit's page stays unvouched for.
    var settings = arriving;
    arriving = null;
    if (!settings || (madeFor !== null && here() !== madeFor)) return;
    if (!adopted) adoptPage(settings);
    if (reloading) return;
    // The server counts no prefetch (Turbo's on hover): shown, it is counted here.
    var counted = settings.page || settings.prefetched;
    if (current.redacted && counted && !uncounted) countPage(settings);
  }

  function adoptPage(settings) {
    adopted = true;
    if (settings.writeKey && loadedWith(settings) !== loadedWith(config)) {
      // A page of another source, or loaded otherwise: analytics.js loads once per
      // document, so the page is loaded as a document of its own.
      reloading = true;
      location.reload();
    }
    if (reloading) return;
    watchPages();
    var id = cookieValue(settings.cookieName);
    var own = isOwnPage(settings, id);
    var tracking = !!settings.writeKey && (own || tracked(settings.checks, id));
    // A page the server does not track (the inert stub's): its events are dropped.
    current = pageState(tracking ? settings.pageFields || {} : null);
    known.unshift(current);
    if (known.length > 20) known.pop(); // as many as a visitor goes back, or more
    leftFrom = null;
    // A page made for another visitor, or one the server does not track, says nothing
    // of this visitor's user.
    if (!tracking || !own) return;
    var user = settings.userId || null;
    var loggedOut = user ? null : namedUser;
    namedUser = user;
    var keptAnonymousId = id || settings.anonymousId;
    if (!user && !loggedOut) return;
    whenInitialized(function (loaded) {
      // A logout through a visit: the page's own analytics.reset() may not run (Turbo
      // cannot run its inline script under a nonce-only CSP). The anonymous id stays,
      // the server's cookie's.
      if (user || loaded.user().id() === loggedOut) adoptUser(loaded, user, keptAnonymousId);
    });
  }

  function whenInitialized(callback) {
    var loaded = window.analytics;
    if (loaded.initialized) callback(loaded);
    else {
      loaded.on("initialize", function () {
        callback(this);
      });
    }
  }

  function settingsIn(detail) {
    // htmx runs no script of the new page's head: the settings its snippet would have
    // been called with are read from the response. (A snippet in the body hands them
    // over itself, during the swap.)
    var request = detail.xhr;
    var settings = settingsOf(request && request.responseText);
    // A fragment's request (hx-push-url) is no page view for the server either.
    if (settings && !detail.boosted) settings.page = false;
    return settings;
  }

  function unrunSnippets() {
    // The settings of the last snippet in the document that did not run; each one is
    // removed, run or not (Turbo adds the next page's twin only where none is left,
    // and runs again a body's scripts where it shows its copy of a page).
    var found = null;
    var scripts = document.getElementsByTagName("script");
    Array.prototype.slice.call(scripts).forEach(function (element) {
      var settings = settingsOf(element.text);
      if (!settings) return;
      found = settings;
      element.parentNode.removeChild(element);
    });
    return found;
  }

  function settingsOf(code) {
    // The JSON a snippet's code ends with, as _script renders it.
    var found = typeof code === "string" ? /\}\)\((\{[^\n]*\})\);\n\/\/\]\]\x3e/.exec(code) : null;
    try {
      return found ? JSON.parse(found[1]) : null;
    } catch (error) {
      return null;
    }
  }

  function responsePath(request) {
    try {
      var url = new URL(request.responseURL);
      return url.pathname + url.search;
    } catch (error) {
      return null;
    }
  }

  function pageState(fields) {
    // A page at the document's URL now: the values analytics.js reads for it, and the
    // server's for those it changed (null: a page the server does not track).
    var original = {
      path: location.pathname,
      search: location.search,
      url: location.href.split("#")[0],
    };
    // The query's parameters the server redacted, by their text as the browser has it,
    // and the names of those whose whole value it redacted.
    var secretPairs =
      !fields || fields.search === undefined ? {} : changedPairs(original.search, fields.search);
    var secretNames = Object.create(null);
    for (var pair in secretPairs || {}) {
      var name = pair.split("=")[0];
      if (secretPairs[pair] === name + "=REDACTED") secretNames[name] = true;
    }
    return {
      original: original,
      redacted: fields,
      secretPairs: secretPairs,
      secretNames: secretNames,
    };
  }

  function watchPages() {
    if (watching) return;
    watching = true;
    window.analytics.addSourceMiddleware(function (chain) {
      var event = chain.payload.obj;
      var context = event.context || {};
      var fields = context.page;
      var page = pageOf(fields || event.properties || {});
      if (reloading || (page && !page.redacted)) return; // not passed on: dropped
      // The query analytics.js read the campaign from.
      var search = fields && fields.search;
      report(fields, page);
      if (event.type === "page") report(event.properties, page);
      if (fields && fields.search !== search) reportCampaign(context, search, page);
      if (ip) context.ip = ip;
      chain.next(chain.payload);
    });
  }

  function pageOf(fields) {
    // The page an event was made on: a known one, or the one the document's own
    // scripts moved from (a single-page app's). null: a page a visit showed whose
    // fields never came.
    var at = fields.path + fields.search;
    var found = null;
    known.some(function (page) {
      found = page.original.path + page.original.search === at ? page : null;
      return found !== null;
    });
    if (found) return found;
    return leftFrom === null || at === leftFrom ? current : null;
  }

  function report(fields, page) {
    if (!fields) return;
    if (referrer.redacted !== undefined && fields.referrer === referrer.original) {
      fields.referrer = referrer.redacted;
    }
    if (page) redact(fields, page);
    else {
      // The server's rules (its routes' secret parameters) cannot run here: nothing
      // of this URL is sent.
      delete fields.path;
      delete fields.search;
      delete fields.url;
    }
  }

  function redact(fields, page) {
    // Part by part: a single-page app may change the query and keep the path (or
    // the other way round); each part this page was loaded with stays redacted.
    var original = page.original;
    var redacted = page.redacted;
    var path = fields.path;
    var search = fields.search;
    // Where the server redacted the page's URL (its path or query), a path analytics.js
    // took from the page's canonical link stands for the page's own, and no URL the
    // loader cannot make of the page's parts is passed on.
    var secret = redacted.path !== undefined || redacted.search !== undefined;
    var canonical = secret && path !== original.path && path === canonicalPath();
    if (path === original.path || canonical) {
      fields.path = redacted.path === undefined ? original.path : redacted.path;
    }
    if (typeof search === "string") fields.search = redactedSearch(search, page);
    var url = fields.url;
    if (typeof url !== "string") return;
    var ownQuery = search === original.search;
    if (url === original.url || url === redacted.url || (canonical && ownQuery)) {
      // This page (a canonical link's URL in place of its own): the server's URL.
      if (redacted.url !== undefined) fields.url = redacted.url;
      else if (secret) delete fields.url;
      return;
    }
    var at = url.indexOf("#");
    var head = at === -1 ? url : url.slice(0, at);
    var tail = typeof path === "string" && typeof search === "string" ? path + search : null;
    var origin = tail === null ? "" : head.slice(0, head.length - tail.length);
    if (tail !== null && origin + tail === head) {
      fields.url = origin + fields.path + fields.search + url.slice(head.length);
    } else if (secret && path === original.path && ownQuery && redacted.url !== undefined) {
      // This page, with a canonical link's query in place of its own.
      fields.url = redacted.url;
    } else if (secret) {
      delete fields.url;
    }
  }

  function originOf(url) {
    if (!url) return url;
    try {
      var origin = new URL(url).origin;
      return origin === "null" ? "" : origin + "/";
    } catch (error) {
      return "";
    }
  }

  function canonicalPath() {
    // The path analytics.js reads from the page's canonical link, as it reads it.
    var link = document.querySelector && document.querySelector("link[rel='canonical']");
    var href = link && link.getAttribute("href");
    if (!href) return null;
    try {
      return new URL(href).pathname;
    } catch (error) {
      return href.charAt(0) === "/" ? href : "/" + href;
    }
  }

  function reportCampaign(context, search, page) {
    // analytics.js read its campaign from the query the loader redacted: this page's
    // query gets the one analytics.js reads from the server's (as its page call does),
    // another query (which the server never saw) none.
    var own = page && search === page.original.search ? page.redacted.search : "";
    if (own) context.campaign = campaignOf(own);
    else delete context.campaign;
  }

  function campaignOf(search) {
    // As analytics.js reads it: every "?" separates parameters, any name that holds
    // "utm_" counts, and its value is decoded ("+" a space) where it decodes.
    var campaign = {};
    search.replace(/\?/g, "&").split("&").forEach(function (pair) {
      var parts = pair.split("=");
      var name = parts[0];
      if (name.indexOf("utm_") === -1 || 4 >= name.length) return;
      var value = parts[1] || "";
      try {
        value = decodeURIComponent(value.replace(/\+/g, " "));
      } catch (error) {
        // a broken escape: the value as it is
      }
      name = name.slice(4);
      campaign[name === "campaign" ? "name" : name] = value;
    });
    return campaign;
  }

  function redactedSearch(search, page) {
    var redacted = page.redacted.search;
    if (search === page.original.search) return redacted === undefined ? search : redacted;
    if (redacted === undefined) return search; // the server found no secret in it
    // A query the page changed to: the server never saw it, and its rules cannot run
    // here. The parameters it redacted stay redacted, whatever value the page gives
    // them; when they cannot be told apart (the server cut the query), the query is
    // left out.
    var secretPairs = page.secretPairs;
    if (secretPairs === null) return "";
    var parts = partsOf(search).map(function (pair, index) {
      if (index % 2) return pair; // a separator
      var name = pair.split("=")[0]; // a name without a value has none to hide
      if (pair in secretPairs) return secretPairs[pair];
      return name !== pair && page.secretNames[name] === true ? name + "=REDACTED" : pair;
    });
    return parts.length ? "?" + parts.join("") : "";
  }

  function changedPairs(loaded, reported) {
    var from = pairsOf(loaded);
    var to = pairsOf(reported);
    if (from.length !== to.length) return null;
    var changed = Object.create(null);
    from.forEach(function (pair, index) {
      if (pair !== to[index]) changed[pair] = to[index];
    });
    return changed;
  }

  function pairsOf(search) {
    return partsOf(search).filter(function (part, index) {
      return index % 2 === 0;
    });
  }

  function partsOf(search) {
    // Its parameters and, between them, their separators: "&" or ";", as the server's.
    return search && search !== "?" ? search.slice(1).split(/([&;])/) : [];
  }

  function isOwnPage(settings, cookie) {
    return !settings.shared && (cookie === null || cookie === settings.anonymousId);
  }

  function tracked(checks, cookie) {
    // The server sets its cookie only for visitors it tracks (a new one's in this
    // very response): not for bots, privacy signals or refused consent. The
    // browser's own privacy signals count too: a returning visitor may turn them on.
    var signals = typeof navigator === "undefined" ? {} : navigator;
    if (checks.gpc && signals.globalPrivacyControl === true) return false;
    if (checks.dnt && signals.doNotTrack === "1") return false;
    return !checks.cookie || cookie !== null;
  }

  function copied(fields) {
    var copy = {}; // analytics.js classic adds its defaults to the properties it is given
    for (var name in fields) copy[name] = fields[name];
    return copy;
  }

  function writeCookie(name, value, days, domain) {
    // As the server writes its cookie; 0 days expires it.
    var cookie = config.options.cookie;
    document.cookie =
      name + "=" + value + "; Max-Age=" + Math.round(days * 86400) +
      (days ? "" : "; Expires=Thu, 01 Jan 1970 00:00:00 GMT") + "; Path=" + cookie.path +
      (domain ? "; Domain=" + domain : "") + "; SameSite=Lax" + (cookie.secure ? "; Secure" : "");
  }

  function cookieValue(name) {
    // The first cookie of that name, as the server reads it: raw, or JSON (classic);
    // null for a value the server takes for no id (a broken or forged one).
    var found = null;
    var pairs = name && document.cookie ? document.cookie.split("; ") : [];
    pairs.some(function (pair) {
      var at = pair.indexOf("=");
      if (pair.slice(0, at) !== name) return false;
      var raw = pair.slice(at + 1);
      try {
        var value = decodeURIComponent(raw.trim());
        found = value.charAt(0) === '"' ? JSON.parse(value) : value;
        // analytics.js's own cookie, which it reads as JSON: a number it would read
        // back changed names no visitor both sides share.
        if (name === __ANALYTICS_JS_COOKIE__ && found === value && storedAs(found) !== found) {
          found = null;
        }
      } catch (error) {
        found = null; // a broken value: analytics.js makes its own id
      }
      // Raw non-ASCII: each server reads it its own way, so it names no one.
      if (/[^\x00-\x7f]/.test(raw)) found = null;
      return true;
    });
    var plausible =
      typeof found === "string" && 100 >= found.length &&
      !/^(null|true|false|undefined|nan|none)?$/i.test(found) &&
      !/[\s"{}[\]\\\x3c\x3e;,\x00-\x1f\x7f]/.test(found) &&
      !(unprintable && unprintable.test(found));
    return plausible ? found : null;
  }
})(__SETTINGS__);"""
    )
    .replace("__ANALYTICS_JS_COOKIE__", json.dumps(ANALYTICS_JS_COOKIE))
    .replace("__TRUSTED_TYPES_POLICY__", json.dumps(TRUSTED_TYPES_POLICY))
)
_LOADER = _COMMENT_LINE.sub("", _LOADER_CODE)


class Snippet(str):
    """Markup that templates insert as it is: Jinja and Django honour ``__html__``."""

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


EMPTY = Snippet("")


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe inside an inline ``<script>`` element.

    >>> script_json({"id": "</script><b>"})
    '{"id": "\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e"}'
    """
    text = json.dumps(value, ensure_ascii=False).translate(_SCRIPT_ESCAPES)
    # A lone surrogate (half of an emoji) is fine in JavaScript, not in a UTF-8 page.
    return _LONE_SURROGATE.sub(_escaped_surrogate, text)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _escaped_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match[0]):04x}"


def snippet_renders(tracker: RequestTracker, *, shared: bool = False) -> bool:
    """Whether the snippet renders anything for this request (a key aside): the
    decision alone, without building what it would render (no hook is called)."""
    # A shared page is made once for every visitor a cache hands it to: the loader
    # decides for each of them (see _shared_checks), only the page's own rules here.
    # Without the server's cookie to tell them, the visitors the server refuses
    # (consent, bots) cannot be told in the browser: their page renders nothing.
    decided_in_browser = shared and tracker.options.set_cookie
    if tracker.excluded or not (decided_in_browser or tracker.allowed or tracker.allowed_now()):
        return False
    # Tooling excluded by route (the admin, DRF's browsable API, API docs): known
    # once the framework has routed, which a template rendered by a view follows.
    tracker.refresh_route()
    return not is_excluded_route(tracker.request, tracker.options)


def stub_is_this_visitors(tracker: RequestTracker) -> bool:
    """Whether the snippet of a page made for this visitor alone is the inert stub
    because of who the visitor is (a bot, a privacy signal, no consent): the next
    visitor gets the loader, so no shared cache may keep it. (An excluded path or
    route gets the stub whoever asks.) Asked once :func:`snippet_renders` said no."""
    return (
        not tracker.excluded
        and not tracker.allowed
        and not is_excluded_route(tracker.request, tracker.options)
    )


def browser_settings(tracker: RequestTracker, *, shared: bool = False) -> dict[str, Any] | None:
    """What the snippet tells analytics.js for this request; None: no loader.

    None for a visitor the server does not track (bots, privacy signals, consent;
    in a ``shared`` page the loader decides that), for an excluded path or route,
    and when there is no ``browser_write_key``.
    ``shared``: see :func:`render_snippet`.
    """
    options = tracker.options
    if not snippet_renders(tracker, shared=shared):
        return None
    write_key = options.browser_write_key
    if write_key is None:
        _warn_no_browser_key()
        return None
    analytics = tracker.analytics
    request = tracker.request
    secure = tracker.scheme == "https"  # the visitor's: a trusted proxy's, if any
    cookie_name = options.cookie_name
    server_pages = options.server_page_views and not _server_discards_everything(tracker)
    settings: dict[str, Any] = {
        "writeKey": write_key,
        "src": options.snippet_src.format(write_key=quote(write_key, safe="")),
        "anonymousId": None if shared else _kept_anonymous_id(tracker),
        "userId": None if shared else analytics.user_id,
        # A view's own page() takes the place of the automatic page view, the
        # browser's too (not in a page a cache may hand to other visitors); a page
        # answering a method not in page_methods (a form's POST) is none either side.
        "page": not server_pages
        and (shared or not tracker.page_called)
        and has_page_method(request, options),
        "options": load_options(options, secure=secure, host=tracker.host),
        "methods": list(_BUFFERED_METHODS),
        # Where the loader finds the visitor's id: in a page made for another visitor
        # (a cache's, whole or a fragment), the cookie tells this one.
        "cookieName": cookie_name,
        "checks": _shared_checks(options),
    }
    if shared:
        settings["shared"] = True
    elif tracker.logged_out:
        # The user the browser still names (analytics.js's cookie) is no more: the
        # page's own page view, and the page's calls, name none.
        settings["loggedOut"] = True
    if not shared and server_pages and is_page_prefetch(request):
        # The server counts no prefetch, and the browser shows it without asking
        # again: the loader counts it when shown. (Not in a page a cache may store:
        # the server counts the visits the cache answers.)
        settings["prefetched"] = True
    if cookie_name != ANALYTICS_JS_COOKIE and options.set_cookie:
        # After analytics.reset(), the server's cookie takes analytics.js's new id.
        settings["renewOnReset"] = True
    fields = tracker.page_fields()
    redacted = _redacted_fields(request, fields, shared=shared)
    if redacted:
        settings["pageFields"] = redacted
    ip = _browser_ip(tracker, shared=shared)
    if ip is not None:
        settings["ip"] = ip
    browser_page = settings["page"] or "prefetched" in settings
    if browser_page and not (shared and callable(options.page_name)):
        # The name the server's page call would have (a hook's answer may be the
        # visitor's own: not in a page a cache may hand to others).
        path = fields.get("path")
        name = page_name(request, options, path if isinstance(path, str) else None)
        if isinstance(name, str) and name:
            settings["pageName"] = name
    if options.browser_cdn is not None:
        settings["cdn"] = options.browser_cdn
    return settings


def _kept_anonymous_id(tracker: RequestTracker) -> str | None:
    """The anonymous id to hand analytics.js; None when no cookie keeps it.

    With a ``cookie_name`` of the server's own, an id the server made up for this
    request and set in no cookie (``set_cookie`` off, or a streamed page whose
    headers went without it) is gone at the next: handed over, it would replace
    analytics.js's own (stable) id on every page.
    """
    options = tracker.options
    anonymous_id = tracker.analytics.anonymous_id
    if tracker.holds_a_new_id and cookie_held_back(tracker.request):
        return None  # the browser keeps the visitor's cookie: analytics.js reads it there
    if options.cookie_name == ANALYTICS_JS_COOKIE:
        return anonymous_id  # analytics.js keeps it in its cookie, the server's
    if options.set_cookie and not tracker.new_id_left_unkept:
        return anonymous_id  # the server's cookie keeps it
    request = tracker.request
    cookie = id_cookie(request.cookies, request.header("cookie"), options.cookie_name)
    return anonymous_id if parse_id_cookie(cookie) is not None else None


def _shared_checks(options: WebOptions) -> dict[str, bool]:
    """What the loader checks before it starts analytics.js in a page not made for
    its visitor (one a cache may hand to anyone).

    ``cookie``: the server's cookie must be there; it is set only for visitors the
    server tracks, so it carries the server's bot, privacy and consent decision
    (without ``set_cookie`` there is none to read, and only the signals count).
    ``gpc`` / ``dnt``: the browser's own privacy signals, as the server honours them.
    """
    return {"cookie": options.set_cookie, "gpc": options.honor_gpc, "dnt": options.honor_dnt}


def _redacted_fields(
    request: RequestInfo, fields: Mapping[str, Any], *, shared: bool
) -> dict[str, str]:
    """The page fields the server changed (secrets redacted, values cut), by name.

    analytics.js reads its own from the page (``location``, ``document.referrer``):
    the loader puts these in their place. Most pages have none. ``shared``: no
    referrer, which is each visitor's own, not the page's.
    """
    changed: dict[str, str] = {}
    path = fields.get("path")
    if isinstance(path, str) and path != request.path:
        changed["path"] = path
    search = fields.get("search")
    query = request.query_string
    if isinstance(search, str) and search != (f"?{query}" if query else ""):
        changed["search"] = search
    url = fields.get("url")
    if changed and isinstance(url, str):  # the URL holds the path and the query
        changed["url"] = url
    if not shared:
        referrer = fields.get("referrer")
        if isinstance(referrer, str) and referrer != (request.headers.get("referer") or ""):
            changed["referrer"] = referrer
    return changed


def _browser_ip(tracker: RequestTracker, *, shared: bool) -> str | None:
    """The ``context.ip`` of analytics.js's events; None: the one Segment records.

    ``0.0.0.0`` with ``collect_ip`` off; with ``anonymize_ip``, the address the
    server's calls carry (its anonymized one of this request), or ``0.0.0.0`` in a
    ``shared`` page, which names no visitor.
    """
    options = tracker.options
    if options.collect_ip and not options.anonymize_ip:
        return None
    if shared:
        return NO_IP
    return context_ip(tracker.request, options) or NO_IP


def load_options(options: WebOptions, *, secure: bool, host: str) -> dict[str, Any]:
    """analytics.js's load options for a page of ``host``: the server's cookie, and
    where events go."""
    domain = options.cookie_domain
    cookie: dict[str, Any] = {
        # An empty domain makes a host-only cookie, as the server's is without one
        # (or on a host outside cookie_domain, where a browser would drop it).
        "domain": (domain and cookie_domain_for(domain, host)) or "",
        "path": "/",
        "maxage": options.cookie_max_age / SECONDS_PER_DAY,  # analytics.js counts days
        "sameSite": "Lax",
        "secure": secure or options.secure_cookies,  # a prefixed name needs it
    }
    load: dict[str, Any] = {
        "cookie": cookie,
        "user": {"cookie": {"key": options.user_cookie_name}},
        # The visitor and the user are the server's: a link's ?ajs_aid=, ?ajs_uid=
        # or ?ajs_event= (analytics.js's query string API) would let anyone who
        # sends one name them, and send events in their name.
        "useQueryString": False,
    }
    api_host = options.browser_api_host
    if api_host is not None:
        protocol, _, host = api_host.rpartition("://")
        load["integrations"] = {
            "Segment.io": {"apiHost": host, "protocol": protocol or "https"},
        }
    return load


def render_snippet(
    tracker: RequestTracker | None, *, nonce: str | None = None, shared: bool = False
) -> Snippet:
    """The ``<script>`` that loads analytics.js for this request.

    For a visitor the server does not track (see :func:`browser_settings`), an
    inert stub: ``window.analytics`` whose methods queue and do nothing, so the
    page's own calls (``analytics.reset()`` at logout) still run; no library, no
    ids. The same in test mode (the server's client diverted to
    ``segment_core.testing.outbox``), unless ``browser_api_host`` is on this
    machine (a local collector). An empty Snippet without a ``browser_write_key``,
    and when ``tracker`` is None: the adapter did not see the request (its
    middleware is missing), which is logged. ``shared``: a cache may
    store the response before the adapter makes it vary on the cookies, and hand
    it to other visitors; then the snippet holds no visitor's ids and is rendered
    for every visitor the page's own rules allow (a bot's too, so that the cached
    page serves the next visitor): the loader reads the anonymous id from the
    cookie, which the response sets for a new visitor it tracks, and starts
    analytics.js only where it finds it (a logged-in user's id is not handed
    over). Never raises.
    """
    if tracker is None:
        logger.warning(
            "segment: the analytics.js snippet was asked for a request the Segment "
            "middleware did not see; nothing is rendered (is the middleware installed?)"
        )
        return EMPTY
    try:
        settings = browser_settings(tracker, shared=shared)
        if settings is None:
            if tracker.options.browser_write_key is None:
                return EMPTY
            if not shared and stub_is_this_visitors(tracker):
                tracker.snippet_rendered = True  # kept out of shared caches
            return _script(_INERT_STUB, nonce)
        if _browser_kept_from_source(tracker):
            snippet = _script(_INERT_STUB, nonce)
        else:
            snippet = _script(_LOADER.replace("__SETTINGS__", script_json(settings)), nonce)
        # The response is the same in test mode: the cookie and Vary as for the loader.
        if tracker.allowed:  # the cookie keeps the id, even for a known user
            tracker.handed_to_browser()
        if shared:  # but the page names no visitor: nothing in it varies on the cookies
            tracker.snippet_rendered = False
        return snippet
    except Exception:
        logger.exception("segment: could not render the analytics.js snippet")
        return EMPTY


def _browser_kept_from_source(tracker: RequestTracker) -> bool:
    """Whether the browser must not send to the source: the server's client is
    diverted to the outbox (test mode), and analytics.js would send elsewhere than
    to this machine (a local collector, as ``browser_api_host``)."""
    if not diverted(tracker.analytics.client):  # outside tests: asked of the client alone
        return False
    api_host = tracker.options.browser_api_host
    return api_host is None or not is_loopback_url(
        api_host if "://" in api_host else "//" + api_host
    )


def _script(code: str, nonce: str | None) -> Snippet:
    # The code in a CDATA section, its markers in JavaScript comments: an XHTML page
    # (application/xhtml+xml) reads the loader's "&&" as text, and an HTML page
    # ignores them. Nothing in it can close the section: the loader has no "]]>",
    # and its settings escape every ">".
    attribute = f' nonce="{html.escape(nonce, quote=True)}"' if nonce else ""
    return Snippet(f"<script{attribute}>\n//<![CDATA[\n{code}\n//]]>\n</script>")


_INERT_STUB = _STUB + f"}})({script_json({'methods': list(_BUFFERED_METHODS), 'inert': True})});"


def find_csp_nonce(request: Any, options: WebOptions) -> str | None:
    """The request's CSP nonce, where ``csp_nonce`` says it is; None when there is none.

    An attribute path is read from the framework's request (``request.csp_nonce``
    for django-csp and Flask-Talisman, ``request.state.csp_nonce`` with
    ``"state.csp_nonce"``); a callable is called with the request.
    """
    where = options.csp_nonce
    if where is None or request is None:
        return None
    if callable(where):
        found = call_hook("csp_nonce", where, request, default=None)
    else:
        found = request
        try:
            for name in where.split("."):
                found = getattr(found, name)
        except Exception:  # absent, or a lazy value that failed: no nonce
            return None
    if found is None:
        return None
    try:
        text = str(found)  # django-csp's nonce is lazy: reading it puts it in the header
    except Exception:  # too late for the header (django-csp raises): no nonce
        return None
    return text or None


def missing_browser_key(options: WebOptions) -> bool:
    """Whether the snippet is configured but has no ``browser_write_key``.

    Then it renders nothing: the server's key is never handed to browsers. Checks
    and start-up warnings say so.
    """
    if options.browser_write_key is not None:
        return False
    return (
        options.page_source == "browser"
        or options.snippet_src != DEFAULT_SNIPPET_SRC
        or options.browser_api_host is not None
        or options.browser_cdn is not None
    )


_warned_no_key = False


def _server_discards_everything(tracker: RequestTracker) -> bool:
    """Whether the server's client has no write key (and is not told to send
    nothing, nor in test mode): it discards every call, its page views too, which
    the browser then sends in their place (logged once)."""
    global _warned_pages_moved
    client = tracker.analytics.client
    config = client.config
    if config.write_key or not config.send or diverted(client):
        return False
    if not _warned_pages_moved:
        _warned_pages_moved = True
        logger.warning(
            "segment: the server's client has no write key, so it sends no page views: "
            "the analytics.js snippet sends them from the browser"
        )
    return True


_warned_pages_moved = False


def _warn_no_browser_key() -> None:
    global _warned_no_key
    if not _warned_no_key:
        _warned_no_key = True
        logger.warning(
            "segment: the analytics.js snippet renders nothing: browser_write_key is not "
            "set. Give it the write key of your website source (the server's key is "
            "never sent to browsers)."
        )
