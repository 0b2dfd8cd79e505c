"""A page reached from Django's admin gets the admin's URL as its referrer: the list's
filters the admin keeps in it (``_changelist_filters``) lose their secrets."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.django.conftest import Sent

NAVIGATE = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.mark.django_db
def test_a_page_after_the_admin_s_list_filtered_by_email_keeps_no_email(
    client: Client, sent: Sent
) -> None:
    client.force_login(User.objects.create_superuser("ada", "ada@example.com", "pw"))
    listing = client.get("/app/admin/auth/user/?email=ada%40example.com", **NAVIGATE)
    found = re.search(r'href="(/app/admin/auth/user/\d+/change/\?[^"]+)"', listing.content.decode())
    assert found is not None, listing.content.decode()
    change_link = found.group(1).replace("&amp;", "&")
    assert change_link.endswith("?_changelist_filters=email%3Dada%2540example.com")

    client.get("/app/html/", HTTP_REFERER=f"http://testserver{change_link}", **NAVIGATE)
    [page] = [m for m in sent() if m["type"] == "page"]
    referrer = (
        f"http://testserver{change_link.partition('?')[0]}?_changelist_filters=email%3DREDACTED"
    )
    assert page["properties"]["referrer"] == referrer
    assert page["context"]["page"]["referrer"] == referrer
    assert "example.com" not in json.dumps(page)  # the e-mail, however escaped
