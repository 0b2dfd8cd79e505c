"""A query and a ``Referer`` sent as raw bytes (curl, bots) rather than percent-encoded
as browsers send them, and a ``User-Agent`` in UTF-8: what every adapter's page call
must make of them."""

from __future__ import annotations

from typing import Any

#: UTF-8, and one byte that is not.
RAW_QUERY = "contraseña=hunter2&q=café&utm_campaign=été".encode() + b"&bad=\xe9"
RAW_REFERRER = "http://shop.example/p?пароль=s3cret&q=密码".encode()
USER_AGENT = "Mozilla/5.0 (Ünïcødé; 日本) Œuvre/1.0"  # "Œ" and "本" hold C1 bytes
RAW_USER_AGENT = USER_AGENT.encode()

SEARCH = "?contrase%C3%B1a=REDACTED&q=caf%C3%A9&utm_campaign=%C3%A9t%C3%A9&bad=%E9"
REFERRER = (
    "http://shop.example/p?%D0%BF%D0%B0%D1%80%D0%BE%D0%BB%D1%8C=REDACTED&q=%E5%AF%86%E7%A0%81"
)


def assert_read_as_the_framework_reads_them(message: dict[str, Any], page_url: str) -> None:
    """The bytes percent-encoded, so the secret names in other scripts are redacted,
    and the campaign's value and the user agent decoded as UTF-8."""
    props = message["properties"]
    assert props["search"] == SEARCH
    assert props["url"] == page_url + SEARCH
    assert props["referrer"] == REFERRER
    assert message["context"]["campaign"] == {"name": "été"}
    assert message["context"]["userAgent"] == USER_AGENT
    assert "hunter2" not in repr(message) and "s3cret" not in repr(message)
