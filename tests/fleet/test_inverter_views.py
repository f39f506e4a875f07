"""All inverters across groups: search, paging, the command link, scoping."""

from __future__ import annotations

import pytest

from fleet.models import Group, Inverter

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(account):  # type: ignore[no-untyped-def]
    north = Group.objects.create(account=account, remote_id="1", name="North")
    south = Group.objects.create(account=account, remote_id="2", name="South")
    Inverter.objects.bulk_create(
        Inverter(account=account, group=north if i % 2 else south, remote_id=str(100 + i),
                 inverter_sn=f"H4AA{i:010d}", dongle_sn=f"SWAA{i:06d}") for i in range(70))
    Inverter.objects.create(account=account, group=north, remote_id="999", inverter_sn="H4GONE", removed=True)
    return account


def test_it_lists_inverters_across_groups(operator_client, fleet):
    response = operator_client.get("/inverters/")
    assert response.status_code == 200
    assert response.context["page"].paginator.count == 70
    assert b"North" in response.content and b"South" in response.content and b"H4GONE" not in response.content
    assert b'action="/commands/new/"' in response.content and b'name="sn" value="H4AA0000000000"' in response.content


def test_it_searches_by_sn_dongle_or_group(operator_client, fleet):
    assert operator_client.get("/inverters/?q=0000000007").context["page"].paginator.count == 1
    assert operator_client.get("/inverters/?q=swaa000008").context["page"].paginator.count == 1
    assert operator_client.get("/inverters/?q=north").context["page"].paginator.count == 35
    partial = operator_client.get("/inverters/?page=2", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="inverter-list")
    assert b"<html" not in partial.content and b"Page 2 of 2" in partial.content


def test_viewers_read_without_command_boxes(viewer_client, fleet):
    response = viewer_client.get("/inverters/")
    assert response.status_code == 200 and b'name="sn"' not in response.content


def test_it_hides_other_organizations(operator_client, account, other_account):
    theirs = Group.objects.create(account=other_account, remote_id="1", name="Theirs")
    Inverter.objects.create(account=other_account, group=theirs, remote_id="5", inverter_sn="H4THEIRS")
    assert b"H4THEIRS" not in operator_client.get("/inverters/").content
    assert operator_client.get(f"/inverters/?account={other_account.code}").status_code == 404
    assert operator_client.post("/inverters/").status_code == 405


def test_viewers_are_not_told_to_tick_rows_they_cannot_command(viewer_client, operator_client, account):
    from fleet.models import Group, Inverter

    group = Group.objects.create(account=account, remote_id="1", name="North")
    Inverter.objects.create(account=account, group=group, remote_id="1", inverter_sn="SNV1", rated_power=5)
    assert "Tick some" not in viewer_client.get("/inverters/").content.decode()
    page = operator_client.get("/inverters/").content.decode()
    assert "Tick some" in page and "Rated power (kW)" in page and "favicon.svg" in page
