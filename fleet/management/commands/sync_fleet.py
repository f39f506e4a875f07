"""Run one sync of the mirror: start it, then drive the call pipeline in the foreground until it ends."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from fleet.mirror import sync
from fleet.models import SolaxAccount, SyncRun
from fleet.pipeline import dispatch


class Command(BaseCommand):
    help = "Sync groups and members from SolaX Cloud for every account (or one), within the budget."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--account", help="only the account with this name")
        parser.add_argument("--full", action="store_true", help="re-read the members of unchanged groups too")
        parser.add_argument("--no-wait", action="store_true",
                            help="only queue the sync; a Celery worker sends its calls")

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = SolaxAccount.objects.order_by("name")
        if options["account"]:
            accounts = accounts.filter(name=options["account"])
            if not accounts.exists():
                raise CommandError(f"no account named {options['account']!r}")
        for account in accounts:
            run = sync.start_sync(account, full=options["full"])
            self.stdout.write(f"{account.name}: sync {run.code} started")
            if options["no_wait"]:
                continue
            while run.state == sync.RUNNING:
                if dispatch.pump(account.pk, wait=True, max_seconds=30) == 0:
                    sync.finish_if_idle(run)
                    time.sleep(1)  # held by the budget or a pause: wait for the next slot
                run = SyncRun.objects.get(pk=run.pk)
                self.stdout.write(f"  pages {run.pages_done}/{run.pages_total}, calls {run.calls_used}")
            self.stdout.write(f"{account.name}: {run.state}, {run.groups_seen} groups and {run.members_seen} "
                              f"members seen in {run.calls_used} calls" + (f"\n{run.error}" if run.error else "")
                              + (f"\nincomplete, nothing was removed:\n{run.incomplete}" if run.incomplete else ""))
