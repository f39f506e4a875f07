"""Saved selections: the pages (roles, scoping, bad input) and their use as a command target."""

from __future__ import annotations

import pytest

from fleet.models import ApiCall, Command, Group, Inverter, SavedSelection
from tests.support.once import key_from, key_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(account):  # type: ignore[no-untyped-def]
    north = Group.objects.create(account=account, remote_id="1", name="North", device_count=3)
    south = Group.objects.create(account=account, remote_id="2", name="South", device_count=2)
    for i in range(3):
        Inverter.objects.create(account=account, group=north, remote_id=f"n{i}", inverter_sn=f"SNN{i}", rated_power=5)
    for i in range(2):
        Inverter.objects.create(account=account, group=south, remote_id=f"s{i}", inverter_sn=f"SNS{i}", rated_power=10)
    return north, south


def _new(client, account, data):  # type: ignore[no-untyped-def]
    """Submit the new-selection form as the browser does, with the one-time key its page issued."""
    url = f"/selections/new/?account={account.code}"
    return client.post(url, {**data, "once": key_from(client, url)})


def test_viewers_see_the_list_but_cannot_create(viewer_client, account, fleet):
    SavedSelection.objects.create(account=account, name="Pilot", sns=["SNN0"])
    assert b"Pilot" in viewer_client.get("/selections/").content
    assert viewer_client.get("/selections/new/").status_code == 403
    assert viewer_client.post("/selections/new/", {"name": "X", "sns": "SNN0"}).status_code == 403
    assert SavedSelection.objects.count() == 1


def test_an_operator_saves_pasted_sns_and_a_filter_together(operator_client, account, fleet):
    response = _new(operator_client, account, {
        "name": "Big ones", "sns": "SNN0, SNN1", "min_power": "8", "use_filter": "on"})
    assert response.status_code == 302
    selection = SavedSelection.objects.get(name="Big ones")
    assert selection.sns == ["SNN0", "SNN1", "SNS0", "SNS1"]


def test_ticked_rows_prefill_the_form(operator_client, account, fleet):
    response = operator_client.get(f"/selections/new/?account={account.code}&sn=SNN0&sn=SNS1")
    assert response.status_code == 200 and b"SNN0\nSNS1" in response.content


@pytest.mark.parametrize(("data", "message"), [
    ({"name": "A", "sns": ""}, b"at least one inverter"),
    ({"name": "A", "sns": "SNN0 NOPE1"}, b"NOPE1"),
    ({"name": "A", "sns": "bad sn!"}, b"malformed"),
    ({"name": "A", "sns": "SNN0", "min_power": "9", "max_power": "1"}, b"below the lower"),
    ({"name": "", "sns": "SNN0"}, b"required"),
])
def test_bad_input_is_a_form_error_and_saves_nothing(operator_client, account, fleet, data, message):
    response = _new(operator_client, account, data)
    assert response.status_code == 400 and message in response.content
    assert SavedSelection.objects.count() == 0


def test_a_name_in_use_is_a_form_error(operator_client, account, fleet):
    SavedSelection.objects.create(account=account, name="Pilot", sns=["SNN0"])
    response = _new(operator_client, account, {"name": "Pilot", "sns": "SNN1"})
    assert response.status_code == 400 and b"exists already" in response.content


def test_an_upload_is_read(operator_client, account, fleet):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("sns.csv", b"\xef\xbb\xbfSNN2\nSNS0\n")
    response = _new(operator_client, account, {"name": "File", "upload": upload})
    assert response.status_code == 302 and SavedSelection.objects.get(name="File").sns == ["SNN2", "SNS0"]


def test_a_double_click_saves_one_selection_and_lands_on_the_list(operator_client, account, fleet):
    url = f"/selections/new/?account={account.code}"
    data = {"name": "Pilot", "sns": "SNN0 SNN1", "once": key_from(operator_client, url)}
    assert operator_client.post(url, data).status_code == 302
    second = operator_client.post(url, data, follow=True)
    assert second.redirect_chain == [(f"/selections/?account={account.code}", 302)]
    assert b"the selection was saved once" in second.content and b"exists already" not in second.content
    assert SavedSelection.objects.get().sns == ["SNN0", "SNN1"]


def test_the_same_form_with_another_file_is_another_request(operator_client, account, fleet):
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = f"/selections/new/?account={account.code}"
    once = key_from(operator_client, url)
    first = operator_client.post(url, {"name": "File", "once": once, "upload": SimpleUploadedFile("a.csv", b"SNN0\n")})
    again = operator_client.post(url, {"name": "File", "once": once,
                                       "upload": SimpleUploadedFile("b.csv", b"SNN1\nSNN2\n")})
    assert first.status_code == 302 and again.status_code == 400
    assert b"already used for another request" in again.content
    assert SavedSelection.objects.get().sns == ["SNN0"]


def test_a_form_error_leaves_the_key_for_the_corrected_form(operator_client, account, fleet):
    url = f"/selections/new/?account={account.code}"
    once = key_from(operator_client, url)
    refused = operator_client.post(url, {"name": "Pilot", "sns": "SNN0 NOPE1", "once": once})
    assert refused.status_code == 400 and key_in(refused) == once
    assert operator_client.post(url, {"name": "Pilot", "sns": "SNN0", "once": once}).status_code == 302
    assert SavedSelection.objects.get().sns == ["SNN0"]


def test_edit_and_delete_need_confirmation_and_stay_in_the_organization(operator_client, account, other_account,
                                                                        fleet):
    mine = SavedSelection.objects.create(account=account, name="Mine", sns=["SNN0"])
    theirs = SavedSelection.objects.create(account=other_account, name="Theirs", sns=[])
    assert operator_client.get(f"/selections/{theirs.code}/").status_code == 404
    assert operator_client.post(f"/selections/{theirs.code}/delete/").status_code == 404
    response = operator_client.post(f"/selections/{mine.code}/", {"name": "Mine", "sns": "SNN0 SNN1"})
    assert response.status_code == 302 and SavedSelection.objects.get(pk=mine.pk).sns == ["SNN0", "SNN1"]
    assert b"Delete the selection Mine?" in operator_client.get(f"/selections/{mine.code}/delete/").content
    assert SavedSelection.objects.filter(pk=mine.pk).exists()
    assert operator_client.post(f"/selections/{mine.code}/delete/").status_code == 302
    assert not SavedSelection.objects.filter(pk=mine.pk).exists()
    assert SavedSelection.objects.filter(pk=theirs.pk).exists()


def test_a_saved_selection_is_commanded_from_the_page(operator_client, account, fleet):
    selection = SavedSelection.objects.create(account=account, name="Pilot", sns=["SNN0", "SNS1"])
    data = {"target": "saved", "selection": str(selection.code), "superType": "1", "systemSwitch": "1"}
    plan = operator_client.post(f"/commands/new/?account={account.code}", data)
    assert plan.status_code == 200 and b"selection Pilot (2 inverters)" in plan.content
    assert Command.objects.count() == 0
    done = operator_client.post(f"/commands/new/?account={account.code}",
                                {**data, "confirm": "yes", "once": key_in(plan)})
    assert done.status_code == 302
    command = Command.objects.get()
    assert command.selection == selection and command.devices_total == 2
    assert ApiCall.objects.get(origin_code=command.code).params["snList"] == "SNN0,SNS1"


def test_several_groups_and_the_whole_fleet_from_the_page(operator_client, account, fleet):
    north, south = fleet
    data = {"target": "groups", "groups": [str(north.code), str(south.code)], "superType": "1", "systemSwitch": "1"}
    assert b"2 groups (5 inverters)" in operator_client.post(f"/commands/new/?account={account.code}", data).content
    fleet_plan = operator_client.post(f"/commands/new/?account={account.code}",
                                      {"target": "fleet", "superType": "1", "systemSwitch": "1"})
    assert b"the whole fleet (5 inverters)" in fleet_plan.content
    empty = operator_client.post(f"/commands/new/?account={account.code}",
                                 {"target": "groups", "superType": "1", "systemSwitch": "1"})
    assert empty.status_code == 400 and b"choose one or more groups" in empty.content
