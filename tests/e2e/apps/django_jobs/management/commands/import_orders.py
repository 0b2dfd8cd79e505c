"""``manage.py import_orders N``: track N events through the module-level API, then exit."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

import segment_core


class Command(BaseCommand):
    help = "Track one 'Order Imported' per order, then exit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("count", type=int)

    def handle(self, *args: Any, count: int, **options: Any) -> None:
        for n in range(count):
            segment_core.track("importer", "Order Imported", {"n": n})
        self.stdout.write(f"tracked {count}")
