"""``manage.py seed_demo``: create the tables and the demo user (safe to run again)."""

from __future__ import annotations

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from rest_framework.authtoken.models import Token

DEMO_PASSWORD = os.environ.get("SHOP_DEMO_PASSWORD", "espresso-for-ada")
#: The demo user's API token (``Authorization: Token <key>`` on ``/api/orders/``).
DEMO_API_TOKEN = os.environ.get("SHOP_DEMO_API_TOKEN", "ada-shop-api-token-0123456789abcdef")


class Command(BaseCommand):
    help = "Run the migrations, then create the demo user and its API token (again: reset)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="ada")
        parser.add_argument("--password", default=DEMO_PASSWORD)

    def handle(self, *args: Any, username: str, password: str, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        user, created = get_user_model().objects.get_or_create(
            username=username,
            defaults={"email": f"{username}@example.com", "first_name": username.title()},
        )
        user.set_password(password)
        user.save()
        # The known token for the first demo user; another one (--username) gets a
        # token of its own: a token is one user's alone.
        Token.objects.filter(user=user).delete()
        taken = Token.objects.filter(key=DEMO_API_TOKEN).exists()
        token = Token.objects.create(
            user=user, key=Token.generate_key() if taken else DEMO_API_TOKEN
        )
        verb = "created" if created else "updated"
        self.stdout.write(f"demo user {username!r} {verb}; log in with password {password!r}")
        self.stdout.write(f"API token: {token.key} (Authorization: Token {token.key})")
