"""A query string nested in a parameter's value loses its secrets in a Flask app's
page call: in its url and search, and in its referrer."""

from __future__ import annotations

import json

from flask import Flask

from tests.flask.conftest import Sent


def test_a_query_string_in_a_value_loses_its_secrets(app: Flask, sent: Sent) -> None:
    app.test_client().get(
        "/products/42?filters=email%3Dada%2540example.com%26q%3Dshoes",
        headers={
            "Accept": "text/html",
            "Referer": "https://shop.example/admin/users/?_changelist_filters=email%3Dada%2540example.com",
        },
    )
    [page] = sent(type="page")
    search = "?filters=email%3DREDACTED%26q%3Dshoes"
    assert page["properties"]["search"] == search
    assert page["properties"]["url"] == f"http://localhost/products/42{search}"
    assert page["properties"]["referrer"] == (
        "https://shop.example/admin/users/?_changelist_filters=email%3DREDACTED"
    )
    assert "example.com" not in json.dumps(page)  # the e-mail, however escaped
