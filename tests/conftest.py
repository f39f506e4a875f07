"""Shared fixtures: people and accounts, real services (PostgreSQL, Redis) and the browser."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from django.test import Client

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TOKEN = "20230413104527266767791"
OTHER_TOKEN = "20230413104527266767792"


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 0), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, url: str) -> None:
    """Skip when the service is missing, or fail when REQUIRE_SERVICES=1 says it must be there."""
    if _reachable(url):
        return
    message = f"{name} is not reachable at {urlparse(url).netloc}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> str:
    need_service("PostgreSQL", POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def redis_url() -> str:
    need_service("Redis", REDIS_URL)
    return REDIS_URL


# Passwords: PBKDF2's 1.2 million rounds cost about 0.3 s a user, and most tests make one or more ------

@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):  # type: ignore[no-untyped-def]
    """Hash the tests' passwords with MD5 (fast; every rule about passwords still applies). PBKDF2 stays
    in the list, so a password that a process started by a test (rundemo, seed_demo) hashed still checks."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]


# Base URLs: the simulators of the tests listen on random ports of 127.0.0.1 ----------------------

TEST_ALLOWED_BASE_URL = "http://127.0.0.1:*"


@pytest.fixture(autouse=True)
def _allow_test_simulators(settings):  # type: ignore[no-untyped-def]
    """Allow the loopback simulators (any port) in tests only; worker processes that tests start get
    the same list (tests.support.workers.worker_env). A deployment never gets a wildcard port."""
    settings.SOLAX_ALLOWED_BASE_URLS = [*settings.SOLAX_ALLOWED_BASE_URLS, TEST_ALLOWED_BASE_URL]


# People and accounts -------------------------------------------------------------------------

@pytest.fixture
def org(db):  # type: ignore[no-untyped-def]
    from fleet.models import Organization

    return Organization.objects.create(name="Acme Power")


@pytest.fixture
def other_org(db):  # type: ignore[no-untyped-def]
    from fleet.models import Organization

    return Organization.objects.create(name="Other Energy")


def make_member(org, username: str, role: str):  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    from fleet.models import Membership

    user = get_user_model().objects.create_user(username, f"{username}@example.com", "pw-" + username + "-9x!")
    Membership.objects.create(organization=org, user=user, role=role)
    return user


@pytest.fixture
def viewer(org):  # type: ignore[no-untyped-def]
    return make_member(org, "vera", "viewer")


@pytest.fixture
def operator(org):  # type: ignore[no-untyped-def]
    return make_member(org, "otto", "operator")


@pytest.fixture
def admin_user(org):  # type: ignore[no-untyped-def]
    return make_member(org, "ada", "admin")


def _client_for(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client(viewer) -> Client:  # type: ignore[no-untyped-def]
    return _client_for(viewer)


@pytest.fixture
def operator_client(operator) -> Client:  # type: ignore[no-untyped-def]
    return _client_for(operator)


@pytest.fixture
def admin_client_(admin_user) -> Client:  # type: ignore[no-untyped-def]
    return _client_for(admin_user)


@pytest.fixture
def account(org):  # type: ignore[no-untyped-def]
    from fleet.models import SolaxAccount

    acc = SolaxAccount(organization=org, name="Main", timezone="Europe/Berlin")
    acc.set_token(TOKEN)
    acc.save()
    return acc


@pytest.fixture
def other_account(other_org):  # type: ignore[no-untyped-def]
    from fleet.models import SolaxAccount

    acc = SolaxAccount(organization=other_org, name="Theirs")
    acc.set_token(OTHER_TOKEN)
    acc.save()
    return acc


# Browser ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):  # type: ignore[no-untyped-def]
    """Drive Debian's Chromium; never download a browser."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        if REQUIRE_BROWSER:
            pytest.fail(f"Chromium is not installed at {CHROMIUM} and REQUIRE_BROWSER=1")
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    }


@pytest.fixture
def screenshot_dir() -> Iterator[str]:
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "test-artifacts", "screenshots")
    os.makedirs(path, exist_ok=True)
    yield path


# The simulator --------------------------------------------------------------------------------

FAST_SIM = {"command_delay": 0.05, "device_delay": (0.05, 0.2), "callback_delay": (0.05, 0.1),
            "callback_complete_delay": 0.05, "callback_late_delay": 1.0, "pile_task_timeout": 1.0}


@pytest.fixture
def simulator() -> Iterator[object]:
    """A small fleet served over real HTTP on 127.0.0.1, fast delays, the default limits."""
    from solax.simulator.testing import running_simulator

    with running_simulator(fleet="small", seed=7, **FAST_SIM) as handle:
        yield handle


@pytest.fixture
def sim_account(org, simulator):  # type: ignore[no-untyped-def]
    """The organization's SolaX account, pointed at the simulator."""
    from fleet.models import SolaxAccount

    acc = SolaxAccount(organization=org, name="Simulated", timezone="Europe/Berlin",
                       vpp_base_url=simulator.vpp_base_url, ev_base_url=simulator.ev_base_url)
    acc.set_token(simulator.token)
    acc.save()
    return acc


# Commands --------------------------------------------------------------------------------------

@pytest.fixture
def mirrored_fleet(sim_account, simulator):  # type: ignore[no-untyped-def]
    """Copy the simulator's small fleet (groups, members with their dongle SNs, chargers) into the
    mirror of ``sim_account``, as a sync would. Returns the account."""
    from fleet.models import Charger, Group, Inverter

    tenant = simulator.sim.tenant()
    for remote in tenant.groups.values():
        group = Group.objects.create(account=sim_account, remote_id=remote.id, name=remote.name,
                                     device_count=len(remote.members))
        Inverter.objects.bulk_create(
            Inverter(account=sim_account, group=group, remote_id=member.id, inverter_sn=member.inverter_sn,
                     dongle_sn=tenant.inverters[member.inverter_sn].wifi_sn)
            for member in remote.members.values())
    Charger.objects.bulk_create(Charger(account=sim_account, sn=sn) for sn in tenant.chargers)
    return sim_account


@pytest.fixture
def fast_commands(settings, sim_account, simulator):  # type: ignore[no-untyped-def]
    """Short poll delays and expiry, and a limit the tests do not hit (the simulator's too)."""
    settings.COMMAND_POLL_BASE_SECONDS = 0.05
    settings.COMMAND_FIRST_RESULT_SECONDS = 0.5  # past the fast simulator's device delay (0.05-0.2 s)
    settings.COMMAND_POLL_CAP_SECONDS = 0.2
    settings.COMMAND_EXPIRY_SECONDS = 20
    settings.COMMAND_CALLBACK_GRACE_SECONDS = 1
    settings.SOLAX_MAX_CALLS_PER_MINUTE = 1000
    simulator.sim.configure(per_minute=1000, per_day=100000, device_failure_rate=0.0)
    sim_account.calls_per_minute = 1000
    sim_account.save(update_fields=["calls_per_minute"])
    return settings
