"""What a test captured has the one-line assertions wherever it comes from: the test
outbox of any adapter, and capture()."""

from __future__ import annotations

import datetime as dt
import decimal
from unittest import mock

import pytest

from segment_core import Client
from segment_core.testing import capture, divert, outbox


def test_a_capture_finds_and_asserts_as_sent() -> None:
    client = Client("k", send=False)
    with capture() as events:
        client.track("u1", "Order Completed", {"total": decimal.Decimal("19.99")})
        client.page("u1", name="Home")
    assert events.assert_tracked("Order Completed", total=decimal.Decimal("19.99"))
    assert events.assert_page("Home")
    assert [m["type"] for m in events.find(userId="u1")] == ["track", "page"]
    with pytest.raises(AssertionError, match="expected one track with event='Signed Up'"):
        events.assert_tracked("Signed Up")
    assert events == list(events) and events == tuple(events)


def test_the_outbox_is_a_list_with_the_same_assertions() -> None:
    client = Client("k", send=False)
    divert(client)
    outbox.clear()
    client.identify("u1", {"plan": "pro"})
    assert client.flush(timeout=5)
    outbox.assert_identified("u1", plan="pro")
    assert isinstance(outbox, list) and len(outbox) == 1
    outbox.clear()
    outbox.assert_nothing_sent()


def test_json_tells_true_from_1_and_null_from_missing() -> None:
    client = Client("k", send=False)
    with capture() as events:
        client.track("u1", "Ordered", {"quantity": True, "discount": 0, "revenue": 10})
        client.identify("u2", {"verified": 1})
    for wrong in ({"quantity": 1}, {"discount": False}, {"coupon": None}):
        with pytest.raises(AssertionError, match="expected one track"):
            events.assert_tracked("Ordered", **wrong)
    with pytest.raises(AssertionError, match="expected one identify"):
        events.assert_identified("u2", verified=True)
    assert events.assert_tracked("Ordered", quantity=True, discount=0, revenue=10.0)
    assert events.assert_tracked("Ordered", revenue=mock.ANY, quantity=mock.ANY)
    assert events.assert_tracked("Ordered", revenue=pytest.approx(10.001, abs=0.01))
    assert not events.find("track", event="Ordered", userId=1)


def test_an_anonymous_identify_and_the_failure_shows_the_ids() -> None:
    client = Client("k", send=False)
    with capture() as events:
        client.identify(anonymous_id="a-1", traits={"plan": "pro"})
        client.identify("None", {"plan": "free"})
    assert events.assert_identified(None, plan="pro")["anonymousId"] == "a-1"
    assert events.assert_identified("None")["traits"] == {"plan": "free"}
    with pytest.raises(AssertionError) as failure:
        events.assert_identified("user-1", plan="pro")
    assert "identify '' anonymousId='a-1' {'plan': 'pro'}" in str(failure.value)
    assert "identify '' userId='None' {'plan': 'free'}" in str(failure.value)


def test_a_property_named_like_the_first_argument_can_be_asserted() -> None:
    client = Client("k", send=False)
    with capture() as events:
        client.track("u1", "Clicked", {"event": "cta"})
        client.page("u1", name="Home", properties={"name": "home-page"})
        client.identify("u1", {"user_id": "legacy-1"})
    assert events.assert_tracked("Clicked", event="cta")
    assert events.assert_page("Home", name="home-page")
    assert events.assert_identified("u1", user_id="legacy-1")


def test_a_matcher_inside_a_value_leaves_the_rest_compared_as_sent() -> None:
    client = Client("k", send=False)
    added = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    product = {"sku": "s-1", "price": decimal.Decimal("19.99"), "added_at": added}
    with capture() as events:
        client.track("u1", "Order Completed", {"products": [product]})
    expected = [{"sku": mock.ANY, "price": decimal.Decimal("19.99"), "added_at": added}]
    assert events.assert_tracked("Order Completed", products=expected)
    with pytest.raises(AssertionError):
        events.assert_tracked("Order Completed", products=[{**expected[0], "sku": "s-2"}])


def test_the_first_argument_by_its_keyword_alone_is_still_the_name() -> None:
    client = Client("k", send=False)
    with capture() as events:
        client.track("u1", "Signed Up", {"plan": "pro"})
        client.page("42", name="Home", properties={"title": "T"})
        client.identify("42", {"plan": "pro"})
    assert events.assert_tracked(event="Signed Up", plan="pro")
    assert events.assert_page(name="Home", title="T")
    assert events.assert_identified(user_id=42, plan="pro")
    with pytest.raises(TypeError, match="missing its first argument: 'event'"):
        events.assert_tracked(plan="pro")


def test_a_failure_names_the_page_and_its_property_of_the_same_name() -> None:
    client = Client("k", send=False)
    with capture() as events:
        client.page("42", name="Home", properties={"name": "landing"})
    with pytest.raises(AssertionError) as failure:
        events.assert_page("Landing", name="landing")
    assert "expected one page with name='Landing', properties.name='landing'" in str(failure.value)


def test_a_failure_tells_a_property_from_a_field_and_shows_a_page_s_category() -> None:
    client = Client("k", send=False)
    with capture() as events:
        client.track("u1", "Order Completed", {"total": 10})
        client.page("u1", "Docs", "Install")
    with pytest.raises(AssertionError) as failure:
        events.assert_tracked("Order Completed", userId="u1", total=10)
    wanted = "expected one track with event='Order Completed', properties.userId='u1', "
    assert wanted + "properties.total=10, found 0" in str(failure.value)
    with pytest.raises(AssertionError) as failure:
        events.assert_page("Install", category="Guides")
    assert "page 'Install' category='Docs' userId='u1'" in str(failure.value)


def test_a_page_s_category_is_asserted_wherever_the_call_wrote_it() -> None:
    client = Client("k", send=False)
    with capture() as events:
        client.page("u1", "Docs", "Install")  # the message's own category
        client.page("u1", name="Pricing", properties={"category": "Plans"})  # analytics.js's
    assert events.assert_page("Install", category="Docs")["category"] == "Docs"
    assert events.assert_page("Pricing", category="Plans")
    with pytest.raises(AssertionError, match=r"category='Plans' \(or properties.category\)"):
        events.assert_page("Install", category="Plans")
    with capture() as events:  # a view's page(category=...) with a property of that name
        client.page("u1", "Docs", "Install", properties={"category": "Guides"})
    assert events.assert_page("Install", category="Docs")
    assert events.assert_page("Install", category="Guides")


def test_a_page_named_none_is_one_without_a_name() -> None:
    client = Client("k", send=False)
    with capture() as events:
        client.page("u1", name="Pricing")
    with pytest.raises(AssertionError, match="expected one page with name=None"):
        events.assert_page(None)
    assert events.assert_page()["name"] == "Pricing"  # left out: any page
    with capture() as events:
        client.page("u1", name="Pricing")
        client.page("u1")
    assert events.assert_page(None)["userId"] == "u1"
