"""Print the call queue of every account: budget, pause, queued calls by priority."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from fleet.models import ApiCall, CallState, Priority, SolaxAccount
from fleet.pipeline import ledger


class Command(BaseCommand):
    help = "Show each account's budget use, pause and queued calls."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--account", help="only the account with this name")
        parser.add_argument("--limit", type=int, default=20, help="queued calls to list per account")

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = SolaxAccount.objects.select_related("organization").order_by("organization__name", "name")
        if options["account"]:
            accounts = accounts.filter(name=options["account"])
        for account in accounts:
            budget = ledger.budget_of(account)
            pause = f" PAUSED until {account.paused_until:%Y-%m-%d %H:%M:%S} ({account.pause_reason})" \
                if account.is_paused() else ""
            self.stdout.write(
                f"{account.organization} / {account.name} token {account.masked_token}: "
                f"minute {budget.minute_used}/{budget.minute_limit}, day {budget.day_used}/{budget.day_limit}{pause}")
            depth = ledger.queue_depth(account)
            self.stdout.write("  queued: " + (", ".join(
                f"{Priority(p).label} {n}" for p, n in sorted(depth.items())) or "none"))
            queued = ApiCall.objects.filter(account=account, state=CallState.QUEUED).order_by(
                "priority", "not_before", "id")[: options["limit"]]
            for call in queued:
                self.stdout.write(f"  {call.not_before:%H:%M:%S} {call.get_priority_display():18} "
                                  f"{call.endpoint:22} {call.purpose}")
