from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import segment_core
from segment_core.client import Client
from segment_core.errors import InvalidMessage
from segment_core.scope import Analytics, analytics, bind, bound, current, reset

Messages = list[dict[str, Any]]


def test_bound_ids_and_context_fill_every_call(client: Client, sent: Messages) -> None:
    a = Analytics(client, user_id=5, anonymous_id="anon", context={"ip": "1.2.3.4"})
    a.track("Clicked", {"x": 1}, timestamp="2024-01-01T00:00:00Z", message_id="m-1")
    a.page("Home", category="Main")
    a.screen("Settings")
    a.group("acme", {"plan": "pro"})
    assert [m["type"] for m in sent] == ["track", "page", "screen", "group"]
    for message in sent:
        assert message["userId"] == "5"
        assert message["anonymousId"] == "anon"
        assert message["context"]["ip"] == "1.2.3.4"
    track, page, screen, group = sent
    assert track["messageId"] == "m-1" and track["timestamp"].startswith("2024-01-01T00:00:00")
    assert page["category"] == "Main" and page["name"] == "Home"
    assert screen["name"] == "Settings"
    assert group["groupId"] == "acme" and group["traits"] == {"plan": "pro"}


def test_context_given_to_a_call_merges_over_the_bound_one(client: Client, sent: Messages) -> None:
    a = Analytics(client, anonymous_id="a", context={"ip": "1.2.3.4", "page": {"path": "/p"}})
    a.track("E", context={"page": {"title": "Shoes"}, "app": {"name": "web"}})
    context = sent[0]["context"]
    assert context["page"] == {"path": "/p", "title": "Shoes"}
    assert context["app"] == {"name": "web"}
    assert context["ip"] == "1.2.3.4"
    assert a.context == {"ip": "1.2.3.4", "page": {"path": "/p"}}  # unchanged


def test_a_typed_context_merges_and_anything_else_is_named(client: Client, sent: Messages) -> None:
    a = Analytics(client, anonymous_id="a", context={"ip": "1.2.3.4"})
    a.track("E", context=segment_core.Context(locale="de-CH", app={"name": "web"}))
    assert sent[0]["context"]["locale"] == "de-CH"
    assert sent[0]["context"]["app"] == {"name": "web"}
    assert sent[0]["context"]["ip"] == "1.2.3.4"
    for wrong in (["ip"], "web"):
        with pytest.raises(InvalidMessage, match=r"^context must be a dict, got "):
            a.track("E", context=wrong)


def test_ids_can_be_overridden_per_call(client: Client, sent: Messages) -> None:
    a = Analytics(client, user_id="u", anonymous_id="a")
    a.track("E", user_id="other", integrations={"All": False})
    assert sent[0]["userId"] == "other" and sent[0]["integrations"] == {"All": False}
    assert a.user_id == "u"


def test_identify_switches_the_user_for_later_calls(client: Client, sent: Messages) -> None:
    a = Analytics(client, anonymous_id="a")
    a.identify("u-1", {"email": "x@example.com"})
    a.track("E")
    assert a.user_id == "u-1"
    assert sent[1]["userId"] == "u-1" and sent[1]["anonymousId"] == "a"
    a.identify(traits={"plan": "pro"})  # no id: keeps the current one
    assert sent[2]["userId"] == "u-1"


def test_alias_defaults_to_the_anonymous_id(client: Client, sent: Messages) -> None:
    a = Analytics(client, anonymous_id="anon-1")
    a.alias("user-1")
    assert sent[0]["type"] == "alias"
    assert (sent[0]["previousId"], sent[0]["userId"]) == ("anon-1", "user-1")
    assert a.user_id == "user-1"
    a.alias("user-2", previous_id="legacy")
    assert sent[1]["previousId"] == "legacy"


def test_alias_of_a_visitor_known_by_its_user_alone_defaults_to_the_user_id(
    client: Client, sent: Messages
) -> None:
    Analytics(client, user_id="crm-7").alias("user-7")
    Analytics(client, user_id="crm-8", anonymous_id="anon-8").alias("user-8")
    assert [(m["previousId"], m["userId"]) for m in sent] == [
        ("crm-7", "user-7"),
        ("anon-8", "user-8"),  # the anonymous id first, when there is one
    ]


def test_consent_goes_into_the_context(client: Client, sent: Messages) -> None:
    a = Analytics(client, anonymous_id="a")
    a.consent({"Advertising": False}, Analytics=True)
    a.track("E")
    assert sent[0]["context"]["consent"] == {
        "categoryPreferences": {"Advertising": False, "Analytics": True}
    }


def test_invalid_calls_raise_at_the_call_site(client: Client) -> None:
    a = Analytics(client, anonymous_id="a")
    with pytest.raises(InvalidMessage, match="event"):
        a.track("")
    with pytest.raises(TypeError):
        a.track("E", colour="red")


def test_outside_a_request_the_default_client_and_a_clear_error(
    sent: Messages, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = Client("test-key")
    monkeypatch.setattr(segment_core, "default_client", default)
    assert current() is None
    a = analytics()
    assert a.client is default
    with pytest.raises(
        InvalidMessage, match=r"outside a request, pass one, e\.g\. analytics\(\)"
    ) as e:
        a.track("Nightly Job")
    assert "segment_core.scope.start_thread(fn, ...)" in str(e.value)
    with pytest.raises(InvalidMessage, match="alias needs previous_id"):
        a.alias("u")
    a.track("Nightly Job", user_id=3)
    assert sent[0]["userId"] == "3"


def test_bind_and_reset(client: Client) -> None:
    a = Analytics(client, anonymous_id="a")
    token = bind(a)
    try:
        assert analytics() is a and current() is a
    finally:
        reset(token)
    assert current() is None
    with bound(a) as inner:
        assert inner is a and current() is a
    assert current() is None


def test_each_thread_and_task_sees_its_own_request(client: Client) -> None:
    seen: dict[str, Any] = {}

    def in_thread() -> None:
        seen["thread"] = current()

    with bound(Analytics(client, anonymous_id="main")):
        worker = threading.Thread(target=in_thread)
        worker.start()
        worker.join()
    assert seen["thread"] is None

    async def request(name: str) -> str | None:
        with bound(Analytics(client, anonymous_id=name)):
            await asyncio.sleep(0)
            return analytics().anonymous_id

    async def both() -> list[str | None]:
        return list(await asyncio.gather(request("one"), request("two")))

    assert asyncio.run(both()) == ["one", "two"]
