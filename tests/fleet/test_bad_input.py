"""Each reproduced 500 of issue 11 item 8 is a clear 4xx or form error that changes nothing."""

from __future__ import annotations

import json

import pytest

from fleet.models import CallbackReceipt, Group, Schedule

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/groups/?q=a%00b", "/inverters/?q=%00", "/chargers/?q=x%00",
                                 "/budget/?endpoint=%00", "/commands/?state=%00"])
def test_a_nul_in_a_query_parameter_is_a_400(admin_client_, account, url):
    response = admin_client_.get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_a_nul_in_the_group_detail_search_is_a_400(admin_client_, account):
    group = Group.objects.create(account=account, remote_id="G1", name="North")
    assert admin_client_.get(f"/groups/{group.code}/?q=%00").status_code == 400


def test_a_nul_in_a_form_field_is_a_400_and_creates_nothing(operator_client, account):
    response = operator_client.post("/groups/new/", {"name": "a\x00b", "account": str(account.code)})
    assert response.status_code == 400
    assert not Group.objects.exists()


def test_a_nul_in_the_callback_path_is_a_400(client, account):
    assert client.post("/solax/callback/a%00b/", data="{}", content_type="application/json").status_code == 400


def test_a_nul_in_a_callback_json_field_is_a_400(client, account):
    body = json.dumps({"rspType": 2, "taskId": "ab\u0000c", "code": "0", "result": {"sn": "C\u00001"}})
    response = client.post(f"/solax/callback/{account.get_callback_secret()}/", data=body,
                           content_type="application/json")
    assert response.status_code == 400
    assert not CallbackReceipt.objects.exists()


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "\u00b2"])
def test_a_malformed_content_length_is_a_400(client, account, length):
    response = client.post(f"/solax/callback/{account.get_callback_secret()}/", data="{}",
                           content_type="application/json", CONTENT_LENGTH=length)
    assert response.status_code == 400


def test_a_multipart_callback_is_refused_not_a_500(client, account):
    response = client.post(f"/solax/callback/{account.get_callback_secret()}/", data={"taskId": "x"})
    assert response.status_code == 400


def test_a_binding_paste_with_a_huge_cell_is_a_form_error(operator_client, account):
    response = operator_client.post(f"/binding/?account={account.code}", {"sns": "S" * 150_000})
    assert response.status_code == 400
    assert not account.calls.exists()


def test_a_binding_upload_with_a_huge_cell_is_a_form_error(operator_client, account):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("sns.csv", b"SW" + b"1" * 140_000, content_type="text/csv")
    response = operator_client.post(f"/binding/?account={account.code}", {"file": upload})
    assert response.status_code == 400
    assert "far too long" in response.content.decode()
    assert not account.calls.exists()


def test_deeply_nested_json_in_a_custom_action_is_a_form_error(operator_client, account):
    from fleet.schedules.forms import clean_action

    with pytest.raises(Exception) as info:
        clean_action("[" * 5000 + "]" * 5000, "group", "Start action")
    assert type(info.value).__name__ == "ValidationError"
    response = operator_client.post(f"/schedules/new/?account={account.code}", {
        "name": "Deep", "start_action": "[" * 900 + "]" * 900, "end_action": "{" * 5000})
    assert response.status_code in (200, 400)  # the form again, with its errors
    assert "at most 1000 characters" in response.content.decode()
    assert not Schedule.objects.exists()


