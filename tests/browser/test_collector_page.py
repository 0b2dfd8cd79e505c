"""The collector's web page in a real headless Chromium: live events, reasons, filter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from segment_core.collector import CollectorHandle, run_in_background
from tests.collector.helpers import DROP, batch, message, post

SCREENSHOT = "/tmp/collector.png"
TIMEOUT_MS = 10_000

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def test_page_shows_events_live_with_reasons_and_filters(
    segment_collector: CollectorHandle, page: Any
) -> None:
    post(segment_collector.url, batch(message("page", name="Pricing", userId="ada")))
    page.goto(segment_collector.url + "/")
    expect(page.locator(".ev", has_text="Pricing")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)

    # Sent after the page loaded: it must arrive over the live stream.
    good = message("track", event="Browser Checkout", userId="grace")
    bad = message("track", event=DROP, userId="mallory", properties=["not", "an", "object"])
    identify = message("identify", userId="ada", traits={"email": "ada@example.com"})
    assert (
        post(segment_collector.url, batch(good, bad, identify), auth=("k", "")).status_code == 200
    )

    good_row = page.locator(".ev", has_text="Browser Checkout")
    bad_row = page.locator(".ev.bad")
    expect(good_row).to_be_visible(timeout=TIMEOUT_MS)
    expect(bad_row).to_have_count(1, timeout=TIMEOUT_MS)
    expect(bad_row.locator(".reasons")).to_contain_text("event is required for a track call")
    expect(bad_row.locator(".reasons")).to_contain_text("properties must be an object, got array")
    expect(page.locator("#count-total")).to_have_text("4", timeout=TIMEOUT_MS)
    expect(page.locator("#count-bad")).to_have_text("1", timeout=TIMEOUT_MS)

    # A click shows the event's JSON.
    good_row.locator(".row").click()
    expect(good_row.locator(".details pre")).to_contain_text(good["messageId"])
    expect(good_row.locator(".details")).to_contain_text("basic")

    page.screenshot(path=SCREENSHOT, full_page=True, animations="disabled")

    # Free text filter.
    page.fill("#filter", "checkout")
    expect(good_row).to_be_visible()
    expect(bad_row).to_be_hidden()
    expect(page.locator(".ev:visible")).to_have_count(1)
    # field:value filter.
    page.fill("#filter", "userid:ada")
    expect(page.locator(".ev:visible")).to_have_count(2)
    expect(good_row).to_be_hidden()
    # Nested fields: a dotted path, or a key at any depth; keys in any case.
    for nested in ("properties.plan:pro", "plan:pro", "Properties.Plan:PRO"):
        page.fill("#filter", nested)
        expect(page.locator(".ev:visible")).to_have_count(1)
        expect(good_row).to_be_visible()
    page.fill("#filter", "email:ada@")  # traits.email of the identify call
    expect(page.locator(".ev:visible")).to_have_count(1)
    expect(page.locator(".ev:visible")).to_contain_text("ada@example.com")
    page.fill("#filter", "context.library.name:tests")
    expect(page.locator(".ev:visible")).to_have_count(4)
    page.fill("#filter", "plan:free")  # the key is there, the value is not
    expect(page.locator(".ev:visible")).to_have_count(0)
    page.fill("#filter", "plan:pro userid:ada")
    expect(page.locator(".ev:visible")).to_have_count(0)
    # Status buttons, combined with an empty filter.
    page.fill("#filter", "")
    page.click("#status-filter button[data-status=bad]")
    expect(page.locator(".ev:visible")).to_have_count(1)
    expect(bad_row).to_be_visible()
    page.click("#status-filter button[data-status=all]")
    expect(page.locator(".ev:visible")).to_have_count(4)
    expect(page.locator("#shown")).to_have_text("4 of 4 shown")  # all held here: no note

    # A reset on the server clears the page.
    segment_collector.reset()
    expect(page.locator(".ev")).to_have_count(0, timeout=TIMEOUT_MS)
    expect(page.locator("#count-total")).to_have_text("0", timeout=TIMEOUT_MS)
    expect(page.locator("#empty")).to_be_visible()


def test_the_filter_finds_text_as_written(segment_collector: CollectorHandle, page: Any) -> None:
    quoted = message("track", event="Met O'\"Brien \\ Co", userId="ada")
    post(segment_collector.url, batch(quoted, message("track", event="Other", userId="bob")))
    page.goto(segment_collector.url + "/")
    expect(page.locator(".ev")).to_have_count(2, timeout=TIMEOUT_MS)
    page.fill("#filter", "o'\"brien")  # JSON writes the quote as \"
    expect(page.locator(".ev:visible")).to_have_count(1)
    expect(page.locator(".ev:visible")).to_contain_text("Brien")
    page.fill("#filter", "\\")
    expect(page.locator(".ev:visible")).to_have_count(1)


def test_type_unknown_finds_what_the_summary_counts_as_unknown(
    segment_collector: CollectorHandle, page: Any
) -> None:
    sent = [message("track", event="Known"), message(DROP, type=DROP), message(type="Track")]
    post(segment_collector.url, batch(*sent))
    page.goto(segment_collector.url + "/")
    expect(page.locator(".ev")).to_have_count(3, timeout=TIMEOUT_MS)
    assert segment_collector.summary()["by_type"]["unknown"]["total"] == 2
    page.fill("#filter", "type:unknown")
    expect(page.locator(".ev:visible")).to_have_count(2)
    page.fill("#filter", "type:Track")  # its own type, as written, all the same
    expect(page.locator(".ev:visible")).to_have_count(2)


def test_an_id_stored_again_once_forgotten_takes_the_place_of_its_row(
    page: Any,
) -> None:
    first = message("track", event="Order Completed v1", messageId="order-42")
    with run_in_background(max_events=3) as collector:
        post(collector.url, batch(first))
        page.goto(collector.url + "/")
        expect(page.locator(".ev", has_text="v1")).to_be_visible(timeout=TIMEOUT_MS)
        post(collector.url, batch(*(message() for _ in range(3))))  # v1 forgotten
        post(collector.url, batch({**first, "event": "Order Completed v2"}))
        expect(page.locator(".ev", has_text="v2")).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.locator(".ev", has_text="v1")).to_have_count(0)


def test_a_stream_ended_as_planned_never_shows_reconnecting(
    segment_collector: CollectorHandle, page: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("segment_core.collector.stream.STREAM_LIFETIME_SECONDS", 0.3)
    page.goto(segment_collector.url + "/")
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
    page.evaluate(
        """() => {
        const badge = document.getElementById("live");
        window.badges = [];
        new MutationObserver(() => window.badges.push(badge.textContent))
          .observe(badge, {childList: true, characterData: true, subtree: true});
    }"""
    )
    page.wait_for_function(
        "() => performance.getEntriesByType('resource')"
        ".filter((e) => e.name.includes('/collector/stream')).length >= 3",
        timeout=TIMEOUT_MS,
    )
    assert "reconnecting" not in page.evaluate("window.badges")


def test_a_message_with_objects_where_text_belongs_is_shown_bad_and_the_page_lives_on(
    segment_collector: CollectorHandle, page: Any
) -> None:
    # JavaScript cannot write {"toString": 1} as text: the page must not.
    hostile = [
        message("track", event={"toString": 1}, userId="eve"),
        message("identify", userId={"toString": "x"}, traits={"email": {"valueOf": 2}}),
        message("page", name={"toString": 1}, properties={"path": {"toString": 1}}, userId="eve"),
        message("alias", previousId={"toString": 1}, userId="eve"),
    ]
    post(segment_collector.url, batch(*hostile))
    page.goto(segment_collector.url + "/")  # the bad ones are among those loaded first
    expect(page.locator(".ev.bad")).to_have_count(4, timeout=TIMEOUT_MS)
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
    page.fill("#filter", "userid:eve")
    page.fill("#filter", "tostring:1")  # a key as any other
    expect(page.locator(".ev:visible")).to_have_count(3)
    page.fill("#filter", "constructor:")  # no message has it, whatever JavaScript says
    expect(page.locator(".ev:visible")).to_have_count(0)
    page.fill("#filter", "")
    # and the page goes on showing what arrives
    post(segment_collector.url, batch(message("track", event="After The Bad Ones", userId="ada")))
    expect(page.locator(".ev", has_text="After The Bad Ones")).to_be_visible(timeout=TIMEOUT_MS)


def test_integers_beyond_2_to_the_53_keep_every_digit(
    segment_collector: CollectorHandle, page: Any
) -> None:
    # JavaScript's numbers would round them; the collector keeps them as sent.
    user_id, order_id = 2**53 + 1, 123456789012345678901234567890

    def send(event: str) -> None:
        sent = message("track", event=event, userId=user_id, properties={"order_id": order_id})
        post(segment_collector.url, data=json.dumps(batch(sent)).encode())  # any size of int

    send("Loaded With The Page")
    page.goto(segment_collector.url + "/")
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
    send("Sent Over The Stream")
    for name in ("Loaded With The Page", "Sent Over The Stream"):
        row = page.locator(".ev", has_text=name)
        expect(row.locator(".who")).to_have_text(f"user {user_id}", timeout=TIMEOUT_MS)
        row.locator(".row").click()
        expect(row.locator(".details pre")).to_contain_text(f'"order_id": {order_id}')
    for term in (f"userid:{user_id}", f"order_id:{order_id}", str(order_id)):
        page.fill("#filter", term)
        expect(page.locator(".ev:visible")).to_have_count(2)


def test_the_page_says_when_the_collector_holds_more_than_it_and_links_to_them(
    segment_collector: CollectorHandle, page: Any
) -> None:
    # The page loads the newest 500: an older event is found by the collector's query.
    needle = message("track", event="Needle", userId="Needle-User")
    post(segment_collector.url, batch(needle, *(message() for _ in range(600))))
    page.goto(segment_collector.url + "/")
    expect(page.locator(".ev")).to_have_count(500, timeout=TIMEOUT_MS)
    link = page.locator("#shown a")
    # With no filter too.
    expect(page.locator("#shown")).to_have_text(
        "500 of 500 shown · the newest 500 of 601; list them all"
    )
    expect(link).to_have_attribute("href", "/collector/events")
    page.fill("#filter", "userId:Needle-User")
    expect(page.locator("#shown")).to_contain_text("0 of 500 shown · the newest 500 of 601")
    expect(link).to_have_attribute("href", "/collector/events?userId=Needle-User")
    found = requests.get(segment_collector.url + link.get_attribute("href"), timeout=10).json()
    assert [event["messageId"] for event in found["events"]] == [needle["messageId"]]


def test_quotes_keep_a_multi_word_event_name_whole_on_the_page_and_in_the_link(
    segment_collector: CollectorHandle, page: Any
) -> None:
    # One "Order Completed" older than the page's newest 500, one among them.
    old = message("track", event="Order Completed", userId="ada")
    new = message("track", event="Order Completed", userId="grace")
    reversed_words = message("track", event="Completed Order", userId="bob")
    post(segment_collector.url, batch(old, *(message() for _ in range(600))))
    post(segment_collector.url, batch(new, reversed_words))
    page.goto(segment_collector.url + "/")
    expect(page.locator(".ev")).to_have_count(500, timeout=TIMEOUT_MS)
    link = page.locator("#shown a")
    for typed in ('event:"Order Completed"', 'event:"Order Completed'):  # left open: to the end
        page.fill("#filter", typed)
        expect(page.locator(".ev:visible")).to_have_count(1)
        expect(page.locator(".ev:visible")).to_contain_text("grace")
        expect(link).to_have_text("search them all")
        expect(link).to_have_attribute("href", "/collector/events?event=Order+Completed")
    found = requests.get(segment_collector.url + link.get_attribute("href"), timeout=10).json()
    assert [event["messageId"] for event in found["events"]] == [
        old["messageId"],
        new["messageId"],
    ]
    # A quoted phrase in free text: the words together, in that order.
    page.fill("#filter", "order completed")
    expect(page.locator(".ev:visible")).to_have_count(2)
    page.fill("#filter", '"order completed"')
    expect(page.locator(".ev:visible")).to_have_count(1)
    expect(page.locator(".ev:visible")).to_contain_text("grace")
    expect(link).to_have_text("list them all, unfiltered")
    expect(link).to_have_attribute("href", "/collector/events")


def test_the_link_names_what_it_searches_when_it_leaves_terms_out(
    segment_collector: CollectorHandle, page: Any
) -> None:
    post(segment_collector.url, batch(*(message() for _ in range(501))))
    post(segment_collector.url, batch(message("track", event="Order Completed", userId="ada")))
    page.goto(segment_collector.url + "/")
    expect(page.locator(".ev")).to_have_count(500, timeout=TIMEOUT_MS)
    link = page.locator("#shown a")
    # Unquoted, "Completed" is free text: the collector is asked for "Order" alone.
    page.fill("#filter", "event:Order Completed")
    expect(page.locator(".ev:visible")).to_have_count(1)
    expect(link).to_have_text('search them all for event "Order"')
    expect(link).to_have_attribute("href", "/collector/events?event=Order")
    # A term it can ask, with a status button and one it cannot: only what is asked.
    page.fill("#filter", "userId:ada plan:pro")
    page.click("#status-filter button[data-status=good]")
    expect(link).to_have_text('search them all for userId "ada", status "good"')
    expect(link).to_have_attribute("href", "/collector/events?userId=ada&status=good")
    # Hostile text stays text.
    page.fill("#filter", 'event:"<b>x</b> <img src=x>"')
    expect(link).to_have_text("search them all")
    page.fill("#filter", 'event:"<img src=x onerror=alert(1)>" more')
    expect(link).to_have_text(
        'search them all for event "<img src=x onerror=alert(1)>", status "good"'
    )
    expect(page.locator("#shown img")).to_have_count(0)


def test_without_javascript_the_page_points_to_the_events(
    segment_collector: CollectorHandle, browser: Any
) -> None:
    post(segment_collector.url, batch(message("track", event="Order Completed", userId="ada")))
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(segment_collector.url + "/")
        # Nothing claims the collector is empty: it holds an event.
        expect(page.locator("#empty")).to_be_hidden()
        expect(page.locator("#count-total")).not_to_have_text("0")
        # Where the events and counts are, shown in the <noscript> note.
        for route in ("/collector/events", "/collector/summary"):
            expect(page.locator(f"a[href='{route}']")).to_be_visible()
    finally:
        context.close()


def test_an_empty_collector_says_so_once_loaded(
    segment_collector: CollectorHandle, page: Any
) -> None:
    page.goto(segment_collector.url + "/")
    expect(page.locator("#empty")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#count-total")).to_have_text("0")
