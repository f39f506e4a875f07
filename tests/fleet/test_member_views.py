"""Group detail against the simulator: members paged and searched, add, replace, remove, batch remove."""

from __future__ import annotations

import pytest

from fleet.mirror import sync
from fleet.models import ApiCall, CallState, Group, Inverter, Priority
from fleet.pipeline import dispatch
from tests.support.once import key_from, key_in

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "members"}


@pytest.fixture
def synced(sim_account):  # type: ignore[no-untyped-def]
    sync.start_sync(sim_account)
    dispatch.pump(sim_account.pk, wait=False)
    ApiCall.objects.all().delete()
    return sim_account


@pytest.fixture
def tenant(simulator):  # type: ignore[no-untyped-def]
    return simulator.sim.tenants[simulator.token]


def _free_sns(tenant) -> list[str]:  # type: ignore[no-untyped-def]
    return [inv.sn for inv in tenant.inverters.values() if inv.bound and not inv.member_id]


def _group(account) -> Group:  # type: ignore[no-untyped-def]
    return Group.objects.filter(account=account, device_count__gt=1).order_by("name").first()


def test_it_shows_the_members(operator_client, synced):
    group = _group(synced)
    response = operator_client.get(f"/groups/{group.code}/")
    assert response.status_code == 200
    for member in group.members.all():
        assert member.inverter_sn.encode() in response.content
    assert f"/commands/new/?group={group.code}".encode() in response.content


def test_it_searches_by_inverter_or_dongle_sn(operator_client, synced):
    group = _group(synced)
    member = group.members.first()
    by_sn = operator_client.get(f"/groups/{group.code}/?q={member.inverter_sn[-6:]}", **HX)
    assert b"<html" not in by_sn.content and b"1 member matching" in by_sn.content
    assert member.inverter_sn.encode() in by_sn.content
    by_dongle = operator_client.get(f"/groups/{group.code}/?q={member.dongle_sn.lower()}")
    assert [m.inverter_sn for m, _ in by_dongle.context["rows"]] == [member.inverter_sn]
    assert b"No member matches" in operator_client.get(f"/groups/{group.code}/?q=zzz").content


@pytest.mark.parametrize("members", [2, 130])
def test_the_detail_costs_the_same_queries_whatever_the_group(operator_client, account, members,
                                                              django_assert_num_queries):
    group = Group.objects.create(account=account, remote_id="1", name="Big", device_count=members)
    Inverter.objects.bulk_create(Inverter(account=account, group=group, remote_id=str(100 + i),
                                          inverter_sn=f"H4XX{i:010d}", dongle_sn=f"SWXX{i:06d}")
                                 for i in range(members))
    operator_client.get(f"/groups/{group.code}/")  # warm the session and issue the add form's key
    with django_assert_num_queries(8):  # 7 + the open one-time key of the add form, reused
        assert operator_client.get(f"/groups/{group.code}/?page=2&q=H4").status_code == 200


def test_it_adds_a_member_through_the_cloud(operator_client, synced, tenant):
    group = _group(synced)
    count = group.device_count
    sn = _free_sns(tenant)[0]
    key = key_from(operator_client, f"/groups/{group.code}/")
    response = operator_client.post(f"/groups/{group.code}/members/add/", {"sn": sn.lower(), "once": key}, **HX)
    assert response.status_code == 200 and f"pending: add {sn}".encode() not in response.content
    assert f"add {sn} to {group.name}".encode() in response.content
    call = ApiCall.objects.get()
    assert call.params == {"groupId": group.remote_id, "inverterSn": sn} and call.priority == Priority.MANAGEMENT
    assert not Inverter.objects.filter(inverter_sn=sn).exists()
    dispatch.pump(synced.pk, wait=False)
    member = Inverter.objects.get(inverter_sn=sn, removed=False)
    assert member.group == group and member.remote_id in tenant.members
    group.refresh_from_db()
    assert group.device_count == count + 1


@pytest.mark.parametrize("sn,message", [
    ("", b"Enter an inverter SN."),
    ("H4 12", b"not a inverter SN"),
    ("abc", b"not a inverter SN"),
    ("x" * 41, b"at most 40 characters"),
])
def test_bad_sns_are_form_errors_and_nothing_is_sent(operator_client, synced, sn, message):
    group = _group(synced)
    response = operator_client.post(f"/groups/{group.code}/members/add/",
                                    {"sn": sn, "once": key_from(operator_client, f"/groups/{group.code}/")})
    assert response.status_code == 400 and message in response.content
    assert not ApiCall.objects.exists()


def test_a_member_of_a_group_cannot_be_added_again(operator_client, synced):
    group = _group(synced)
    taken = Inverter.objects.filter(account=synced).exclude(group=group).first()
    response = operator_client.post(f"/groups/{group.code}/members/add/", {"sn": taken.inverter_sn}, **HX)
    assert b"is a member of a group already" in response.content and not ApiCall.objects.exists()


def test_the_vendor_refusal_shows_its_text(operator_client, synced, tenant):
    group = _group(synced)
    unbound = next(inv.sn for inv in tenant.inverters.values() if not inv.bound)
    operator_client.post(f"/groups/{group.code}/members/add/",
                         {"sn": unbound, "once": key_from(operator_client, f"/groups/{group.code}/")}, **HX)
    dispatch.pump(synced.pk, wait=False)
    assert ApiCall.objects.get().state == CallState.FAILED
    page = operator_client.get(f"/groups/{group.code}/")
    assert b"no auth!" in page.content and not Inverter.objects.filter(inverter_sn=unbound).exists()


def test_it_replaces_an_sn(operator_client, synced, tenant):
    member = _group(synced).members.first()
    new_sn = _free_sns(tenant)[0]
    response = operator_client.post(f"/members/{member.code}/replace/", {"sn": new_sn}, **HX)
    assert b"pending: replace" in response.content
    assert response["HX-Retarget"] == "#members" and response["HX-Reswap"] == "innerHTML"
    member.refresh_from_db()
    assert member.inverter_sn != new_sn
    dispatch.pump(synced.pk, wait=False)
    member.refresh_from_db()
    assert member.inverter_sn == new_sn and tenant.members[member.remote_id].inverter_sn == new_sn


def test_a_bad_replacement_is_an_error(operator_client, synced):
    member = _group(synced).members.first()
    response = operator_client.post(f"/members/{member.code}/replace/", {"sn": member.inverter_sn}, **HX)
    assert response.status_code == 200 and b"That is the SN it has already." in response.content
    assert "HX-Retarget" not in response and b"<table" not in response.content  # the list stays
    response = operator_client.post(f"/members/{member.code}/replace/", {"sn": "bad sn!"})
    assert response.status_code == 400 and b"not a inverter SN" in response.content
    assert not ApiCall.objects.exists()


def test_it_removes_a_member_after_confirmation(operator_client, synced, tenant):
    group = _group(synced)
    member = group.members.first()
    confirm = operator_client.get(f"/members/{member.code}/remove/", HTTP_HX_REQUEST="true")
    assert b"Remove 1 member from" in confirm.content and not ApiCall.objects.exists()
    operator_client.post(f"/members/{member.code}/remove/", {"once": key_in(confirm)}, **HX)
    assert ApiCall.objects.get().endpoint == "inverter_delete"
    dispatch.pump(synced.pk, wait=False)
    member.refresh_from_db()
    assert member.removed and member.remote_id not in tenant.members


def test_it_batch_removes_members(operator_client, synced, tenant):
    group = _group(synced)
    chosen = list(group.members.all()[:2])
    data = {"codes": [str(m.code) for m in chosen]}
    confirm = operator_client.post(f"/groups/{group.code}/members/remove/", data, HTTP_HX_REQUEST="true")
    assert b"Remove 2 members" in confirm.content and not ApiCall.objects.exists()
    operator_client.post(f"/groups/{group.code}/members/remove/", {**data, "confirm": "1", "once": key_in(confirm)},
                         **HX)
    assert ApiCall.objects.get().endpoint == "inverter_delete_batch"
    dispatch.pump(synced.pk, wait=False)
    assert all(m.remote_id not in tenant.members for m in chosen)
    assert Inverter.objects.filter(pk__in=[m.pk for m in chosen], removed=True).count() == 2
    empty = operator_client.post(f"/groups/{group.code}/members/remove/", {}, **HX)
    assert b"Tick at least one row." in empty.content


def test_the_cloud_member_search(operator_client, synced):
    group = _group(synced)
    member = group.members.first()
    response = operator_client.post(f"/groups/{group.code}/members/search/", {"wifi_sn": member.dongle_sn[:6]})
    call = ApiCall.objects.get()
    assert call.endpoint == "inverter_fuzzy_query"
    dispatch.pump(synced.pk, wait=False)
    page = operator_client.get(response["Location"])
    assert member.inverter_sn.encode() in page.content
    assert operator_client.post(f"/groups/{group.code}/members/search/", {}).status_code == 400
    assert operator_client.post(f"/groups/{group.code}/members/search/", {"wifi_sn": "a b"}).status_code == 400


def test_it_exports_members_as_csv(operator_client, synced):
    group = _group(synced)
    body = b"".join(operator_client.get(f"/groups/{group.code}/members.csv").streaming_content).decode()
    assert body.splitlines()[0] == "inverter sn,dongle sn,member id,rated power,in group,added"
    assert len(body.strip().splitlines()) == 1 + group.members.count()


def test_an_export_is_safe_whatever_the_group_is_called(operator_client, synced):
    """A name with quotes and a line break makes a well-formed header; a formula-like cell stays text."""
    group = _group(synced)
    Group.objects.filter(pk=group.pk).update(name='Nord "West"\nEvil')
    group.members.filter(pk=group.members.first().pk).update(dongle_sn="=HYPERLINK(1)")
    response = operator_client.get(f"/groups/{group.code}/members.csv")
    assert response.status_code == 200
    assert "\n" not in response["Content-Disposition"] and response["Content-Disposition"].startswith("attachment")
    body = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK(1)" in body and ",=HYPERLINK" not in body


def test_viewers_and_other_organizations(viewer_client, operator_client, synced, other_account):
    group = _group(synced)
    member = group.members.first()
    assert viewer_client.get(f"/groups/{group.code}/").status_code == 200
    for url in (f"/groups/{group.code}/members/add/", f"/groups/{group.code}/members/remove/",
                f"/members/{member.code}/replace/", f"/members/{member.code}/remove/",
                f"/groups/{group.code}/members/search/"):
        assert viewer_client.post(url, {"sn": "H4XX0000000001"}).status_code == 403, url
    theirs = Group.objects.create(account=other_account, remote_id="9", name="Theirs")
    their_member = Inverter.objects.create(account=other_account, group=theirs, remote_id="10", inverter_sn="H4ZZ1")
    assert operator_client.post(f"/groups/{theirs.code}/members/add/", {"sn": "H4XX0000000001"}).status_code == 404
    assert operator_client.post(f"/members/{their_member.code}/replace/", {"sn": "H4XX0000000001"}).status_code == 404
    assert operator_client.get(f"/members/{their_member.code}/remove/").status_code == 404
    assert operator_client.get(f"/members/{member.code}/replace/").status_code == 405
    assert operator_client.get(f"/groups/{group.code}/members/add/").status_code == 405
    assert not ApiCall.objects.exists()
