from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from fleet.management.commands.seed_demo import DEMO_PASSWORD, DEMO_TOKEN
from fleet.models import Membership, Organization, SolaxAccount

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_the_logins_and_an_account_on_the_simulator():
    call_command("seed_demo", simulator="http://127.0.0.1:9999")
    call_command("seed_demo", simulator="http://127.0.0.1:9999")  # twice: nothing doubles
    org = Organization.objects.get(name="Demo Energy")
    roles = dict(Membership.objects.filter(organization=org).values_list("user__username", "role"))
    assert roles == {"operator": "operator", "admin": "admin", "viewer": "viewer"}
    assert authenticate(username="operator", password=DEMO_PASSWORD) is not None
    account = SolaxAccount.objects.get(organization=org)
    assert account.vpp_base_url == "http://127.0.0.1:9999/proxy"
    assert account.ev_base_url == "http://127.0.0.1:9999/proxyApp/proxy/api"
    assert account.get_token() == DEMO_TOKEN


def test_the_demo_token_is_the_one_the_simulator_serves():
    from solax.simulator.config import DEFAULT_TOKEN

    assert DEMO_TOKEN == DEFAULT_TOKEN
