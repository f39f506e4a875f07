"""EV chargers against the simulator: add and remove by SN, status with its age, refresh, round-robin."""

from __future__ import annotations

import threading
from datetime import timedelta
from functools import partial

import pytest
from django.test import Client
from django.utils import timezone

from fleet.mirror import chargers
from fleet.mirror.forms import ChargerForm
from fleet.models import ApiCall, CallState, Charger, Priority
from fleet.pipeline import dispatch
from tests.conftest import make_member
from tests.support.once import key_from
from tests.support.workers import at_once

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant(simulator):  # type: ignore[no-untyped-def]
    return simulator.sim.tenants[simulator.token]


def _add(client, account, **fields):  # type: ignore[no-untyped-def]
    """Add a charger from the page's form, as the browser submits it (with the page's one-time key)."""
    once = key_from(client, f"/chargers/?account={account.code}")
    return client.post("/chargers/", {"account": str(account.code), "once": once, **fields})


def _online_sn(tenant) -> str:  # type: ignore[no-untyped-def]
    return next(c.sn for c in tenant.chargers.values() if c.online)


def test_it_adds_a_charger_and_reads_its_status(operator_client, sim_account, tenant):
    sn = _online_sn(tenant)
    response = _add(operator_client, sim_account, sn=sn.lower(), label="Garage")
    charger = Charger.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/chargers/{charger.code}/"
    call = ApiCall.objects.get()
    assert (call.endpoint, call.params, call.priority) == ("pile_info", {"pileSn": sn}, Priority.POLL)
    page = operator_client.get(f"/chargers/{charger.code}/")
    assert b"reading" in page.content and b"never read" in page.content
    dispatch.pump(sim_account.pk, wait=False)
    charger.refresh_from_db()
    remote = tenant.chargers[sn]
    assert (charger.status, charger.mode, charger.read_at is not None) == (remote.status, remote.mode, True)
    poll = operator_client.get(f"/chargers/{charger.code}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="charger-status")
    assert poll.status_code == 286 and b"read 0\xc2\xa0minutes ago" in poll.content
    listing = operator_client.get("/chargers/")
    assert b"Garage" in listing.content and chargers.STATUS_LABELS[remote.status].encode() in listing.content


def test_the_age_of_a_status_is_shown(operator_client, account):
    charger = Charger.objects.create(account=account, sn="C1AA0000000001", status=2, mode=2,
                                     read_at=timezone.now() - timedelta(minutes=12))
    page = operator_client.get(f"/chargers/{charger.code}/")
    assert b"read 12\xc2\xa0minutes ago" in page.content and b"Charging" in page.content and b"ECO" in page.content


@pytest.mark.parametrize("sn,message", [("", b"Enter the charger"), ("C1 00", b"not a charger SN"),
                                        ("C1AA0000000001", b"in the list already")])
def test_bad_sns_are_form_errors(operator_client, account, sn, message):
    Charger.objects.create(account=account, sn="C1AA0000000001")
    response = operator_client.post("/chargers/", {"account": str(account.code), "sn": sn})
    assert response.status_code == 400 and message in response.content
    assert Charger.objects.count() == 1 and not ApiCall.objects.exists()


def test_refresh_now_and_the_vendor_error(operator_client, sim_account):
    charger = Charger.objects.create(account=sim_account, sn="C1ZZ0000000009")  # not in the account
    response = operator_client.post(f"/chargers/{charger.code}/refresh/", HTTP_HX_REQUEST="true")
    assert b"reading" in response.content
    operator_client.post(f"/chargers/{charger.code}/refresh/")
    assert ApiCall.objects.count() == 1  # one read in the queue at a time
    dispatch.pump(sim_account.pk, wait=False)
    assert ApiCall.objects.get().state == CallState.FAILED
    page = operator_client.get(f"/chargers/{charger.code}/")
    assert b"Last read failed" in page.content


def test_it_removes_a_charger_after_confirmation(operator_client, account):
    charger = Charger.objects.create(account=account, sn="C1AA0000000001")
    assert b"Remove charger" in operator_client.get(f"/chargers/{charger.code}/remove/").content
    assert Charger.objects.exists()
    response = operator_client.post(f"/chargers/{charger.code}/remove/")
    assert response.status_code == 302 and not Charger.objects.exists()


def test_viewers_other_organizations_and_methods(viewer_client, operator_client, account, other_account):
    mine = Charger.objects.create(account=account, sn="C1AA0000000001")
    theirs = Charger.objects.create(account=other_account, sn="C1BB0000000001")
    assert viewer_client.get("/chargers/").status_code == 200
    assert viewer_client.post("/chargers/", {"sn": "C1AA0000000002"}).status_code == 403
    assert viewer_client.post(f"/chargers/{mine.code}/refresh/").status_code == 403
    assert viewer_client.post(f"/chargers/{mine.code}/remove/").status_code == 403
    for url in (f"/chargers/{theirs.code}/", f"/chargers/{theirs.code}/remove/"):
        assert operator_client.get(url).status_code == 404
    assert operator_client.post(f"/chargers/{theirs.code}/refresh/").status_code == 404
    assert operator_client.get(f"/chargers/{mine.code}/refresh/").status_code == 405
    assert b"C1BB" not in operator_client.get("/chargers/").content
    assert Charger.objects.count() == 2 and not ApiCall.objects.exists()


def test_round_robin_reads_oldest_first_within_the_share(sim_account, settings):
    settings.FLEET_CHARGER_STATUS_SHARE_PERCENT = 10  # 1,000 a day: one every 86.4 s
    now = timezone.now()
    old = Charger.objects.create(account=sim_account, sn="C1AA0000000001", read_at=now - timedelta(hours=2))
    Charger.objects.create(account=sim_account, sn="C1AA0000000002", read_at=now - timedelta(hours=1))
    never = Charger.objects.create(account=sim_account, sn="C1AA0000000003")
    first = chargers.status_tick(sim_account, now)
    assert first is not None and first.context["charger"] == never.pk and first.priority == Priority.READ
    assert chargers.status_tick(sim_account, now) is None  # one in the queue at a time
    ApiCall.objects.filter(pk=first.pk).update(state=CallState.SUCCEEDED)
    Charger.objects.filter(pk=never.pk).update(read_at=now)
    assert chargers.status_tick(sim_account, now + timedelta(seconds=60)) is None  # spacing
    second = chargers.status_tick(sim_account, now + timedelta(seconds=90))
    assert second is not None and second.context["charger"] == old.pk
    settings.FLEET_CHARGER_STATUS_SHARE_PERCENT = 0
    ApiCall.objects.update(state=CallState.SUCCEEDED)
    assert chargers.status_tick(sim_account, now + timedelta(hours=1)) is None


def test_round_robin_stops_at_the_daily_share(sim_account, settings):
    sim_account.calls_per_day = 100  # 10 % = 10 reads a day
    sim_account.save()
    Charger.objects.create(account=sim_account, sn="C1AA0000000001")
    now = timezone.now()
    for i in range(10):
        ApiCall.objects.create(account=sim_account, endpoint="pile_info", priority=Priority.READ,
                               state=CallState.SUCCEEDED, origin_kind=chargers.ROUND_ROBIN,
                               created=now - timedelta(hours=23, minutes=i))
    assert chargers.status_tick(sim_account, now) is None
    assert chargers.status_tick_all() == 0


# Chargers that exist (issue 12) -------------------------------------------------------------------------

def test_a_charger_the_cloud_refuses_is_marked_with_the_reason_and_left_out(operator_client, sim_account, tenant):
    response = _add(operator_client, sim_account, sn="C1ZZ0000000009")
    charger = Charger.objects.get()
    assert response.status_code == 302
    assert b"pending verification" in operator_client.get("/chargers/").content
    assert b"pending verification" in operator_client.get(f"/chargers/{charger.code}/").content
    dispatch.pump(sim_account.pk, wait=False)
    charger.refresh_from_db()
    assert "does not know this charger or does not let this account control it" in charger.refused
    assert "no auth!" in charger.refused and "1003" in charger.refused
    page = operator_client.get(f"/chargers/{charger.code}/")
    assert b"Refused by SolaX" in page.content
    assert b"refused by SolaX" in operator_client.get("/chargers/").content
    assert chargers.status_tick(sim_account) is None  # never read in the background again


def test_an_inverter_sn_added_as_a_charger_is_refused_with_the_reason_and_never_polled(operator_client,
                                                                                    sim_account, tenant):
    inverter_sn = next(iter(tenant.inverters))
    response = _add(operator_client, sim_account, sn=inverter_sn)
    charger = Charger.objects.get(sn=inverter_sn)
    assert response.status_code == 302 and charger.refused == "" and charger.read_at is None
    call = ApiCall.objects.get(endpoint="pile_info")
    assert call.params == {"pileSn": inverter_sn}  # read first, through the pipeline
    dispatch.pump(sim_account.pk, wait=False)
    charger.refresh_from_db()
    assert "does not know this charger or does not let this account control it" in charger.refused
    page = operator_client.get(f"/chargers/{charger.code}/").content
    assert b"Refused by SolaX" in page and b"pending verification" not in page and b"Check again" in page
    before = ApiCall.objects.count()
    assert chargers.status_tick(sim_account) is None and chargers.status_tick_all() == 0
    assert ApiCall.objects.count() == before


def test_a_charger_that_later_answers_no_auth_is_no_longer_polled_until_checked_again(
        operator_client, sim_account, tenant, settings):
    settings.FLEET_CHARGER_STATUS_SHARE_PERCENT = 100
    sn = _online_sn(tenant)
    _add(operator_client, sim_account, sn=sn)
    dispatch.pump(sim_account.pk, wait=False)
    charger = Charger.objects.get(sn=sn)
    assert charger.read_at is not None and charger.refused == ""
    remote = tenant.chargers.pop(sn)  # the cloud no longer authorises this account for it
    ApiCall.objects.all().delete()
    assert chargers.status_tick(sim_account) is not None  # the round-robin reads it: "no auth!"
    dispatch.pump(sim_account.pk, wait=False)
    charger.refresh_from_db()
    assert "no auth!" in charger.refused
    assert b"refused by SolaX" in operator_client.get("/chargers/").content
    ApiCall.objects.all().delete()
    assert chargers.status_tick(sim_account) is None and not ApiCall.objects.exists()
    tenant.chargers[sn] = remote  # authorised again: the operator's re-check reads it and clears the mark
    operator_client.post(f"/chargers/{charger.code}/refresh/")
    dispatch.pump(sim_account.pk, wait=False)
    charger.refresh_from_db()
    assert charger.refused == "" and chargers.status_tick(sim_account) is not None


def test_a_recheck_that_reads_the_charger_clears_the_refusal(operator_client, sim_account, tenant, settings):
    sn = _online_sn(tenant)
    charger = Charger.objects.create(account=sim_account, sn=sn, refused="SolaX does not know this charger")
    other = Charger.objects.create(account=sim_account, sn=next(s for s in tenant.chargers if s != sn))
    assert chargers.status_tick(sim_account).context["charger"] == other.pk  # the refused one is skipped
    ApiCall.objects.all().delete()
    operator_client.post(f"/chargers/{charger.code}/refresh/")  # the operator checks it again
    dispatch.pump(sim_account.pk, wait=False)
    charger.refresh_from_db()
    assert charger.refused == "" and charger.read_at is not None


def test_a_refused_charger_is_no_command_target(sim_account):
    from fleet.commands import service
    from fleet.commands.service import Target

    Charger.objects.create(account=sim_account, sn="C1ZZ0000000009", refused="SolaX does not know this charger")
    with pytest.raises(service.CommandError, match="refused by SolaX"):
        service.plan_command(sim_account, Target("chargers", sns=("C1ZZ0000000009",)), {"chargerMode": 1})


def test_a_double_click_adds_one_charger_and_reads_it_once(operator_client, sim_account, tenant):
    sn = _online_sn(tenant)
    data = {"account": str(sim_account.code), "sn": sn, "once": key_from(operator_client, "/chargers/")}
    first = operator_client.post("/chargers/", data)
    second = operator_client.post("/chargers/", data, follow=True)
    charger = Charger.objects.get()
    assert first.status_code == 302 and second.redirect_chain == [(f"/chargers/{charger.code}/", 302)]
    assert b"already submitted" in second.content and b"in the list already" not in second.content
    assert ApiCall.objects.filter(endpoint="pile_info").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_operators_adding_one_sn_at_once_add_it_once(org, sim_account, tenant, monkeypatch):
    """Both forms find the SN new before either saves; the second INSERT then fails on the unique SN
    and is a form error, not a 500, and the charger is read once."""
    sn = _online_sn(tenant)
    clients = []
    for name in ("ada", "bea"):
        client = Client()
        client.force_login(make_member(org, name, "operator"))
        clients.append((client, key_from(client, "/chargers/")))
    both_validated = threading.Barrier(2, timeout=10)
    checked = ChargerForm.clean_sn

    def clean_then_wait(form):  # type: ignore[no-untyped-def]
        value = checked(form)
        both_validated.wait()
        return value

    monkeypatch.setattr(ChargerForm, "clean_sn", clean_then_wait)
    data = {"account": str(sim_account.code), "sn": sn}
    responses = at_once(*(partial(client.post, "/chargers/", {**data, "once": once}) for client, once in clients))
    assert not [r for r in responses if isinstance(r, BaseException)], responses
    assert sorted(r.status_code for r in responses) == [302, 400]  # type: ignore[union-attr]
    refused = next(r for r in responses if r.status_code == 400)  # type: ignore[union-attr]
    assert f"Charger {sn} is in the list already." in refused.content.decode()  # type: ignore[union-attr]
    assert Charger.objects.count() == 1 and ApiCall.objects.filter(endpoint="pile_info").count() == 1


def test_a_forged_or_foreign_key_adds_nothing(operator_client, admin_client_, sim_account, tenant):
    sn = _online_sn(tenant)
    theirs = key_from(admin_client_, "/chargers/")  # another member's key for the same form
    for once in ("forged", theirs, ""):
        response = operator_client.post("/chargers/", {"account": str(sim_account.code), "sn": sn, "once": once})
        assert response.status_code == 400 and b"was not issued to you" in response.content, once
    assert not Charger.objects.exists() and not ApiCall.objects.exists()
