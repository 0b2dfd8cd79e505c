"""A secret ``<path:...>`` route value is redacted however the browser wrote its
slashes: some as ``/``, some escaped as ``%2F``."""

from __future__ import annotations

import json

import pytest

from segment_core.scope import analytics
from tests.flask.conftest import MakeApp, Sent

SECRET = "s3cr3tK3y"


@pytest.mark.parametrize(
    "written",
    [
        f"v1/q8Zr%2B{SECRET}%2Fk3Jx9w%3D%3D",  # a version, then a quoted base64 token
        f"q8Zr%2B{SECRET}%2Fk3Jx9w%3D%3D/file.pdf",  # a quoted token, then a file name
    ],
)
def test_a_secret_path_value_with_escaped_and_literal_slashes_is_redacted(
    make_app: MakeApp, sent: Sent, written: str
) -> None:
    app = make_app(SEGMENT_PAGE_NAME="path")

    @app.get("/dl/<path:signed_token>")
    def download(signed_token: str) -> str:
        analytics().track("Download Started")
        return "<p>download</p>"

    client = app.test_client()
    client.get(f"/dl/{written}")
    client.get("/", headers={"Referer": f"http://localhost/dl/{written}?a=1"})
    track, download_page, home = sent()
    for message in (track, download_page):
        assert message["context"]["page"]["path"] == "/dl/REDACTED"
        assert message["context"]["page"]["url"] == "http://localhost/dl/REDACTED"
    assert download_page["name"] == "/dl/REDACTED"
    assert home["properties"]["referrer"] == "http://localhost/dl/REDACTED?a=1"
    assert SECRET not in json.dumps([track, download_page, home])


def test_a_secret_value_of_a_route_that_serves_no_get_is_redacted_from_a_referrer(
    make_app: MakeApp, sent: Sent
) -> None:
    # A form posts to /invite/<token>/accept; the page it answers with links on.
    app = make_app()

    @app.route("/invite/<invite_token>/accept", methods=["POST", "PUT"])
    def accept(invite_token: str) -> str:
        return "<p>welcome</p>"

    client = app.test_client()
    client.get("/", headers={"Referer": f"http://localhost/invite/{SECRET}/accept?a=1"})
    client.get(f"/?next=/invite/{SECRET}/accept")
    from_form, with_next = sent()
    assert from_form["properties"]["referrer"] == "http://localhost/invite/REDACTED/accept?a=1"
    assert with_next["properties"]["url"] == "http://localhost/?next=/invite/REDACTED/accept"
    assert SECRET not in json.dumps([from_form, with_next])


def test_two_rules_of_one_path_each_redact_what_they_capture(make_app: MakeApp, sent: Sent) -> None:
    # A DELETE names the path one way, the form's POST another: whichever it was.
    app = make_app()

    @app.delete("/invitations/<invitation_id>")
    def cancel(invitation_id: str) -> str:
        return ""

    @app.post("/invitations/<invite_token>")
    def accept(invite_token: str) -> str:
        return "<p>welcome</p>"

    client = app.test_client()
    client.get("/", headers={"Referer": f"http://localhost/invitations/{SECRET}"})
    [home] = sent()
    assert home["properties"]["referrer"] == "http://localhost/invitations/REDACTED"


def test_a_request_refused_for_its_method_has_its_route_values_redacted(
    make_app: MakeApp, sent: Sent
) -> None:
    app = make_app()

    @app.post("/invite/<invite_token>/accept")
    def accept(invite_token: str) -> str:
        return "<p>welcome</p>"

    @app.errorhandler(405)
    def use_the_form(error: Exception) -> tuple[str, int]:
        analytics().track("Form Reloaded")
        return "<p>Open the invitation link again</p>", 200

    app.test_client().get(f"/invite/{SECRET}/accept")
    # Mounted below a prefix (DispatcherMiddleware, a proxy's SCRIPT_NAME) too.
    app.test_client().get(f"/invite/{SECRET}/accept", environ_overrides={"SCRIPT_NAME": "/shop"})
    messages = sent()
    paths = [message["context"]["page"]["path"] for message in messages]
    # The handler's track, and the page call of the page it answered with.
    assert paths == ["/invite/REDACTED/accept"] * 2 + ["/shop/invite/REDACTED/accept"] * 2
    assert SECRET not in json.dumps(messages)
