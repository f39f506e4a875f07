"""The page per inverter, the header's SN search, the history's SN and group search (issue 14, item 8)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from fleet.models import Charger, Command, CommandState, DeviceResult, DeviceState, Group, Inverter

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(account):  # type: ignore[no-untyped-def]
    north = Group.objects.create(account=account, remote_id="1", name="North")
    south = Group.objects.create(account=account, remote_id="2", name="South Field")
    Inverter.objects.bulk_create(
        Inverter(account=account, group=north if i % 2 else south, remote_id=str(100 + i),
                 inverter_sn=f"H4AA{i:010d}", dongle_sn=f"SWAA{i:06d}", rated_power=5.0) for i in range(6))
    return account


def _command(account, sns, *, group=None, label="System on", minutes_ago=0, states=None):  # type: ignore[no-untyped-def]
    command = Command.objects.create(account=account, kind="inverter_control",
                                     target_kind="group" if group else "selection", group=group,
                                     sns=[] if group else sns, action={"superType": "1", "systemSwitch": "1"},
                                     label=label, state=CommandState.SUCCEEDED, devices_total=len(sns),
                                     created=timezone.now() - timedelta(minutes=minutes_ago))
    for i, sn in enumerate(sns):
        state = (states or {}).get(sn, DeviceState.SUCCEEDED)
        DeviceResult.objects.create(command=command, sn=sn, state=state,
                                    answer="success" if state == DeviceState.SUCCEEDED else "no auth!",
                                    answered_at=command.created + timedelta(seconds=i))
    return command


def test_the_device_page_shows_its_facts_and_its_own_results(viewer_client, fleet, django_assert_num_queries):
    inverter = Inverter.objects.get(inverter_sn="H4AA0000000001")
    _command(fleet, ["H4AA0000000001", "H4AA0000000002"], label="Older one", minutes_ago=10,
             states={"H4AA0000000001": DeviceState.FAILED})
    _command(fleet, ["H4AA0000000003"], label="Not this one")
    _command(fleet, ["H4AA0000000001"], label="Newest one")
    # session, user, membership, the inverter, its other groups, the results' count and page
    with django_assert_num_queries(7):
        response = viewer_client.get(f"/inverters/{inverter.code}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "North" in body and "SWAA000001" in body and "5.0 kW" in body and "in group" in body
    assert "Not this one" not in body
    assert body.index("Newest one") < body.index("Older one")  # newest first
    assert "SolaX does not know this serial number" in body  # its own failure, in words
    assert "Send a command" not in body  # a viewer


def test_the_device_history_is_paged(viewer_client, fleet):
    inverter = Inverter.objects.get(inverter_sn="H4AA0000000001")
    for i in range(30):
        _command(fleet, ["H4AA0000000001"], label=f"command {i:02d}", minutes_ago=30 - i)
    first = viewer_client.get(f"/inverters/{inverter.code}/").content.decode()
    assert "command 29" in first and "command 00" not in first and "Page 1 of 2" in first
    partial = viewer_client.get(f"/inverters/{inverter.code}/?page=2", HTTP_HX_REQUEST="true",
                                HTTP_HX_TARGET="device-history")
    text = partial.content.decode()
    assert "<html" not in text and "command 00" in text and "command 29" not in text


def test_operators_get_a_command_link_and_the_lists_link_here(operator_client, fleet):
    inverter = Inverter.objects.get(inverter_sn="H4AA0000000001")
    page = f"/inverters/{inverter.code}/"
    assert "sn=H4AA0000000001" in operator_client.get(page).content.decode()
    assert page in operator_client.get("/inverters/").content.decode()
    assert page in operator_client.get(f"/groups/{inverter.group.code}/").content.decode()
    command = _command(fleet, ["H4AA0000000001", "H4UNKNOWN0000"])
    detail = operator_client.get(f"/commands/{command.code}/").content.decode()
    assert f'href="{page}"' in detail and "H4UNKNOWN0000" in detail


def test_another_organizations_device_is_404(viewer_client, other_account):
    theirs = Group.objects.create(account=other_account, remote_id="1", name="Theirs")
    inverter = Inverter.objects.create(account=other_account, group=theirs, remote_id="5", inverter_sn="H4THEIRS")
    assert viewer_client.get(f"/inverters/{inverter.code}/").status_code == 404
    assert viewer_client.get("/inverters/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert viewer_client.post(f"/inverters/{inverter.code}/").status_code in (403, 404, 405)
    response = viewer_client.get("/search/?q=H4THEIRS")
    assert response.status_code == 200 and "Nothing in your organization" in response.content.decode()


# The header's search ---------------------------------------------------------------------------

def test_an_exact_sn_opens_the_device_page(viewer_client, fleet):
    inverter = Inverter.objects.get(inverter_sn="H4AA0000000004")
    assert viewer_client.get("/search/?q=h4aa0000000004").url == f"/inverters/{inverter.code}/"
    assert viewer_client.get("/search/?q=SWAA000004").url == f"/inverters/{inverter.code}/"  # the dongle too
    charger = Charger.objects.create(account=fleet, sn="C1070000001")
    assert viewer_client.get("/search/?q=c1070000001").url == f"/chargers/{charger.code}/"


def test_a_partial_search_lists_devices_and_groups_with_links(viewer_client, fleet):
    body = viewer_client.get("/search/?q=H4AA00000000").content.decode()
    assert body.count("/inverters/") >= 6 and "South Field" in body  # each row links its group
    groups = viewer_client.get("/search/?q=south").content.decode()
    group = Group.objects.get(name="South Field")
    assert f"/groups/{group.code}/" in groups


def test_a_short_or_empty_search_says_so(viewer_client, fleet):
    short = viewer_client.get("/search/?q=H4")
    assert short.status_code == 400 and "at least 3 characters" in short.content.decode()
    assert viewer_client.get("/search/").status_code == 200
    assert 'action="/search/"' in viewer_client.get("/").content.decode()  # in the header


# The history's search ---------------------------------------------------------------------------

def test_the_history_finds_commands_by_sn_and_by_group_name(viewer_client, fleet, django_assert_num_queries):
    north = Group.objects.get(name="North")
    _command(fleet, ["H4AA0000000001"], label="To one")
    _command(fleet, ["H4AA0000000003", "H4AA0000000005"], group=north, label="To North")
    _command(fleet, ["H4AA0000000002"], label="To another")
    several = _command(fleet, ["H4AA0000000004"], label="To several")
    several.target_kind = "groups"
    several.save()
    several.groups.add(Group.objects.get(name="South Field"))
    # session, user, membership, accounts, people, page (one row more than shown: no count)
    with django_assert_num_queries(6):
        body = viewer_client.get("/commands/?sn=h4aa0000000005").content.decode()
    assert "To North" in body and "To one" not in body and "To another" not in body
    # + the groups whose name matches
    with django_assert_num_queries(7):
        body = viewer_client.get("/commands/?group=nor").content.decode()
    assert "To North" in body and "To one" not in body
    body = viewer_client.get("/commands/?group=field").content.decode()
    assert "To several" in body and "To North" not in body
    nothing = viewer_client.get("/commands/?group=nowhere").content.decode()
    assert "No group" in nothing and "To one" not in nothing
