"""Drain the call queue once in the foreground, without a Celery worker."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from fleet.pipeline import dispatch


class Command(BaseCommand):
    help = "Send every due call that the budget allows now, then stop (a worker-less pump)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--wait", action="store_true",
                            help="keep going while the next minute slot is a moment away")
        parser.add_argument("--seconds", type=float, default=300.0, help="stop after this long")
        parser.add_argument("--loop", action="store_true",
                            help="keep pumping and sweeping until killed (for tests and benchmarks)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["loop"]:
            end = time.monotonic() + options["seconds"]
            while time.monotonic() < end:
                dispatch.recover_stale()
                if not dispatch.pump(wait=True, max_seconds=min(5.0, end - time.monotonic())):
                    time.sleep(0.05)
            return
        dispatch.recover_stale()
        sent = dispatch.pump(wait=options["wait"], max_seconds=options["seconds"])
        self.stdout.write(f"Sent {sent} call(s).")
