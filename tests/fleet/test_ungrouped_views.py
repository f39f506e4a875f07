"""Ungrouped devices (issue 12): bound dongles and members that left a group, each with "add to group"."""

from __future__ import annotations

import re

import pytest

from fleet.mirror import bindings, ungrouped, writes
from fleet.models import ApiCall, Group, Inverter, Priority, UngroupedDevice
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
                       ({"group": "nope", "sn": "H4AA0000000001"}, b"this account&#x27;s groups"),
                       ({"group": "", "sn": "H4AA0000000001"}, b"Choose a group"),
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


# SQL paging and the cloud's member search (issue 12 item 4) ---------------------------------------

@pytest.fixture
def simulator():  # type: ignore[no-untyped-def]
    """A cloud whose member fuzzy query also reports bound inverters in no group (groupStatus 0)."""
    from solax.simulator.testing import running_simulator
    from tests.conftest import FAST_SIM

    with running_simulator(profile="lists-ungrouped", fleet="small", seed=7, **FAST_SIM) as handle:
        yield handle


def test_look_up_in_the_cloud_finds_a_device_in_no_group_and_lists_it(operator_client, mirrored_fleet, simulator):
    free = simulator.sim.tenant().summary()["ungrouped_inverters"][0]
    dongle = simulator.sim.device(free)["wifiSn"]
    assert free.encode() not in operator_client.get("/inverters/ungrouped/").content
    group = Group.objects.filter(account=mirrored_fleet).order_by("name").first()
    response = operator_client.post("/inverters/ungrouped/lookup/", {"account": str(mirrored_fleet.code),
                                                                    "inverter_sn": free[-6:].lower()})
    call = ApiCall.objects.get(endpoint="inverter_fuzzy_query")
    assert response.status_code == 302 and f"lookup={call.code}" in response["Location"]
    assert call.params == {"groupId": group.remote_id, "inverterSn": free[-6:]} and call.priority == Priority.POLL
    assert b"waiting for SolaX" in operator_client.get(response["Location"]).content
    dispatch.pump(mirrored_fleet.pk, wait=False)
    page = operator_client.get(response["Location"])
    assert b"in no group: listed as ungrouped" in page.content
    assert b"in no group, said the cloud" in page.content and free.encode() in page.content
    assert dongle.encode() in page.content
    row = UngroupedDevice.objects.get(account=mirrored_fleet)
    assert (row.dongle_sn, row.inverter_sn, row.source) == (dongle, free, "cloud")
    # add it to a group: it leaves the list once the cloud confirmed
    operator_client.post("/inverters/ungrouped/add/", {"account": str(mirrored_fleet.code), "group": str(group.code),
                                                       "sn": free})
    dispatch.pump(mirrored_fleet.pk, wait=False)
    assert free.encode() not in operator_client.get("/inverters/ungrouped/").content


def test_a_bound_dongle_the_cloud_then_reports_is_one_row_with_both_sns(operator_client, mirrored_fleet, simulator):
    free = simulator.sim.tenant().summary()["ungrouped_inverters"][1]
    dongle = simulator.sim.device(free)["wifiSn"]
    ungrouped.record_bound(mirrored_fleet.pk, [dongle])
    operator_client.post("/inverters/ungrouped/lookup/", {"account": str(mirrored_fleet.code), "wifi_sn": dongle})
    dispatch.pump(mirrored_fleet.pk, wait=False)
    assert list(UngroupedDevice.objects.values_list("dongle_sn", "inverter_sn", "source")) == [
        (dongle, free, "cloud")]


def test_bad_look_ups_are_form_errors_and_queue_nothing(operator_client, viewer_client, mirrored_fleet,
                                                        other_account):
    theirs = Group.objects.create(account=other_account, remote_id="77", name="Theirs")
    for data, text in (({}, b"Enter part of a dongle SN or an inverter SN"),
                       ({"inverter_sn": "H4 00"}, b"is not part of a inverter SN"),
                       ({"wifi_sn": "x" * 41}, b"at most 40 characters"),
                       ({"wifi_sn": "SW01", "group": str(theirs.code)}, b"this account&#x27;s groups"),
                       ({"wifi_sn": "SW01", "group": "nope"}, b"this account&#x27;s groups")):
        response = operator_client.post("/inverters/ungrouped/lookup/", {"account": str(mirrored_fleet.code), **data})
        assert response.status_code == 400 and text in response.content, (data, response.content[-3000:])
    assert viewer_client.post("/inverters/ungrouped/lookup/", {"wifi_sn": "SW01"}).status_code == 403
    assert operator_client.get("/inverters/ungrouped/lookup/").status_code == 405
    assert not ApiCall.objects.exists()


def _many_ungrouped(account, n: int) -> None:  # type: ignore[no-untyped-def]
    """``n`` devices in no group: half bound dongles, half members that left a group (plus duplicates
    that must not show: a bound dongle that is a member now, a removed row of a current member)."""
    group = Group.objects.filter(account=account).first()
    half = n // 2
    UngroupedDevice.objects.bulk_create([UngroupedDevice(account=account, dongle_sn=f"SWX{i:06d}", source="bound")
                                         for i in range(half)])
    Inverter.objects.bulk_create([Inverter(account=account, group=group, remote_id=f"9{i:08d}",
                                           inverter_sn=f"H4X{i:010d}", dongle_sn=f"SWY{i:06d}", removed=True)
                                  for i in range(n - half)])
    current = group.members.filter(removed=False).first()
    UngroupedDevice.objects.create(account=account, dongle_sn=current.dongle_sn, source="bound")
    Inverter.objects.create(account=account, group=group, remote_id="800000001", inverter_sn=current.inverter_sn,
                            removed=True)


def test_a_large_account_gets_one_list_of_group_names_and_adds_by_name(operator_client, mirrored_fleet, simulator):
    Group.objects.bulk_create([Group(account=mirrored_fleet, remote_id=f"5{i:05d}", name=f"Extra {i:02d}")
                               for i in range(40)])
    free = simulator.sim.tenant().summary()["ungrouped_inverters"][2]
    ungrouped.record_bound(mirrored_fleet.pk, [simulator.sim.device(free)["wifiSn"]])
    page = operator_client.get("/inverters/ungrouped/").content.decode()
    assert page.count('<datalist id="group-names">') == 1 and "<select name=\"group\"" not in page
    group = Group.objects.filter(account=mirrored_fleet).exclude(name__startswith="Extra").first()
    response = operator_client.post("/inverters/ungrouped/add/", {"account": str(mirrored_fleet.code),
                                                                 "group": group.name, "sn": free})
    assert response.status_code == 302 and response["Location"] == f"/groups/{group.code}/"
    assert ApiCall.objects.get(endpoint="inverter_add").params["groupId"] == group.remote_id


def test_the_page_counts_and_pages_in_sql(operator_client, mirrored_fleet, django_assert_num_queries):
    _many_ungrouped(mirrored_fleet, 130)
    operator_client.get("/inverters/ungrouped/")  # warm the session
    # session, user, membership, accounts, count, page, groups
    with django_assert_num_queries(QUERIES):
        page = operator_client.get("/inverters/ungrouped/?page=3")
    assert b"130 devices in no group" in page.content and b"Page 3 of 3" in page.content
    seen = set()
    for number in (1, 2, 3):
        content = operator_client.get(f"/inverters/ungrouped/?page={number}").content.decode()
        seen |= set(re.findall(r"<code>((?:SWX|H4X)\w+)</code>", content))
    assert len(seen) == 130
    found = operator_client.get("/inverters/ungrouped/?q=swx00001").content
    assert b"10 devices in no group" in found  # SWX000010..SWX000019


QUERIES = 7
