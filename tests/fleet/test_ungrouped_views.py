"""Ungrouped devices (issue 12): bound dongles and members that left a group, each with "add to group"."""

from __future__ import annotations

import pytest

from fleet.mirror import bindings, writes
from fleet.models import ApiCall, Group, Inverter
from fleet.pipeline import dispatch

pytestmark = pytest.mark.django_db


def _free_dongle(simulator) -> str:  # type: ignore[no-untyped-def]
    return simulator.sim.tenant().summary()["unbound_dongles"][0]


def test_a_bound_dongle_appears_at_once_and_can_be_added(operator_client, mirrored_fleet, simulator):
    tenant = simulator.sim.tenant()
    dongle = _free_dongle(simulator)
    bindings.request_bindings(mirrored_fleet, [dongle])
    dispatch.pump(mirrored_fleet.pk, wait=False)
    page = operator_client.get("/inverters/ungrouped/")
    assert page.status_code == 200 and dongle.encode() in page.content and b"bound here" in page.content
    inverter_sn = tenant.dongles[dongle]
    group = Group.objects.filter(account=mirrored_fleet).first()
    response = operator_client.post("/inverters/ungrouped/add/", {"account": str(mirrored_fleet.code),
                                                                 "group": str(group.code), "sn": inverter_sn})
    assert response.status_code == 302 and response["Location"] == f"/groups/{group.code}/"
    dispatch.pump(mirrored_fleet.pk, wait=False)
    member = Inverter.objects.get(account=mirrored_fleet, inverter_sn=inverter_sn, removed=False)
    assert member.dongle_sn == dongle  # the re-read after the add brought it
    assert dongle.encode() not in operator_client.get("/inverters/ungrouped/").content


def test_a_member_that_left_its_group_is_listed_with_its_sn(operator_client, mirrored_fleet, simulator):
    group = Group.objects.filter(account=mirrored_fleet).first()
    member = group.members.first()
    writes.request_members_delete(group, [member])
    dispatch.pump(mirrored_fleet.pk, wait=False)
    page = operator_client.get(f"/inverters/ungrouped/?q={member.inverter_sn.lower()}")
    assert member.inverter_sn.encode() in page.content and f"left {group.name}".encode() in page.content
    assert b"1 device in no group" in page.content


def test_bad_adds_are_form_errors_and_queue_nothing(operator_client, mirrored_fleet, other_account):
    group = Group.objects.filter(account=mirrored_fleet).first()
    theirs = Group.objects.create(account=other_account, remote_id="77", name="Theirs")
    taken = group.members.first().inverter_sn
    before = ApiCall.objects.count()
    for data, text in (({"group": str(theirs.code), "sn": "H4AA0000000001"}, b"this account&#x27;s groups"),
                       ({"group": "nope", "sn": "H4AA0000000001"}, b"Choose a group"),
                       ({"group": str(group.code), "sn": ""}, b"Enter an inverter SN"),
                       ({"group": str(group.code), "sn": taken}, b"a member of a group already")):
        response = operator_client.post("/inverters/ungrouped/add/", {"account": str(mirrored_fleet.code), **data})
        assert response.status_code == 400 and text in response.content, (data, response.content[:2000])
    assert ApiCall.objects.count() == before


def test_viewers_read_but_cannot_add_and_others_see_nothing(viewer_client, mirrored_fleet, other_account):
    page = viewer_client.get("/inverters/ungrouped/")
    assert page.status_code == 200 and b"Add to group" not in page.content
    group = Group.objects.filter(account=mirrored_fleet).first()
    response = viewer_client.post("/inverters/ungrouped/add/", {"group": str(group.code), "sn": "H4AA0000000001"})
    assert response.status_code == 403
    assert viewer_client.get(f"/inverters/ungrouped/?account={other_account.code}").status_code == 404
    assert viewer_client.put("/inverters/ungrouped/").status_code == 405
