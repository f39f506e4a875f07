"""Create (or refresh) the demo organization, its logins, a SolaX account on the simulator and a few of
the simulator's EV chargers (the cloud has no charger list, so the chargers page would start empty)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from fleet.mirror import chargers
from fleet.models import Charger, Membership, Organization, Role, SolaxAccount
from solax.simulator.fleets import tenant_tag

DEMO_TOKEN = "20230413104527266767791"  # the simulator's demo token: not a real SolaX token
DEMO_PASSWORD = "solax-demo"  # noqa: S105 - a demo login on a local machine, printed by `make demo`
DEMO_CHARGERS = 12  # of the simulator's 50; each costs one status read when first seeded


def demo_charger_sns() -> list[str]:
    """SNs of the first DEMO_CHARGERS chargers the simulator serves for DEMO_TOKEN (solax/simulator/fleets.py)."""
    return [f"C1{tenant_tag(DEMO_TOKEN)}{i:010d}" for i in range(1, DEMO_CHARGERS + 1)]


class Command(BaseCommand):
    help = "Create the demo organization, the logins operator/admin and an account on the simulator."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--simulator", default="http://127.0.0.1:8765", help="simulator base URL")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        sim = options["simulator"].rstrip("/")
        org, _ = Organization.objects.get_or_create(name="Demo Energy")
        User = get_user_model()
        for username, role in (("operator", Role.OPERATOR), ("admin", Role.ADMIN), ("viewer", Role.VIEWER)):
            user = User.objects.filter(username=username).first()
            if user is None:
                user = User.objects.create_user(username, f"{username}@demo.invalid", DEMO_PASSWORD)
            if role == Role.ADMIN and not user.is_staff:
                user.is_staff = True
                user.is_superuser = True
                user.save(update_fields=["is_staff", "is_superuser"])
            Membership.objects.update_or_create(organization=org, user=user, defaults={"role": role})
        account = SolaxAccount.objects.filter(organization=org, name="Demo fleet").first()
        if account is None:
            account = SolaxAccount(organization=org, name="Demo fleet", timezone="Europe/Berlin")
        account.set_token(DEMO_TOKEN)
        account.vpp_base_url = f"{sim}/proxy"
        account.ev_base_url = f"{sim}/proxyApp/proxy/api"
        account.save()
        known = set(Charger.objects.filter(account=account).values_list("sn", flat=True))
        for i, sn in enumerate(demo_charger_sns(), start=1):
            if sn not in known:
                charger = Charger.objects.create(account=account, sn=sn, label=f"Driveway {i}")
                # read priority, like the sync: the first "Sync now" does not wait behind these
                chargers.request_status(charger, origin_kind="seed")
        self.stdout.write(f"Demo organization {org.name!r}: logins operator, admin, viewer / {DEMO_PASSWORD}")
