"""Device binding against the simulator: paste or CSV, requests of at most 100, four outcomes, bad input."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from fleet.mirror import bindings
from fleet.models import ApiCall, BindingRequest, Priority
from fleet.pipeline import dispatch
from tests.support.once import key_from

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant(simulator):  # type: ignore[no-untyped-def]
    return simulator.sim.tenants[simulator.token]


def test_it_binds_and_files_each_sn_by_outcome(operator_client, sim_account, tenant):
    free = next(i.wifi_sn for i in tenant.inverters.values() if not i.bound and not i.bind_fails)
    failing = next(i.wifi_sn for i in tenant.inverters.values() if i.bind_fails)
    bound = next(i.wifi_sn for i in tenant.inverters.values() if i.bound)
    inverter_sn = next(iter(tenant.inverters))  # the classic mistake
    text = f"{free}, {failing}\n{bound};{inverter_sn}"
    response = operator_client.post("/binding/", {"account": str(sim_account.code), "sns": text,
                                                  "once": key_from(operator_client, "/binding/")})
    assert response.status_code == 302
    call = ApiCall.objects.get()
    assert call.endpoint == "bind_devices" and call.priority == Priority.MANAGEMENT
    page = operator_client.get("/binding/")
    assert b"pending" in page.content and b"dongle's registration number" in page.content
    dispatch.pump(sim_account.pk, wait=False)
    request = BindingRequest.objects.get()
    assert (request.state, request.bound, request.failed, request.already_bound, request.unknown) == (
        "done", [free], [failing], [bound], [inverter_sn.upper()])
    poll = operator_client.get("/binding/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="binding-requests")
    assert poll.status_code == 286 and b"Unknown SN" in poll.content and free.encode() in poll.content


def test_a_csv_of_250_becomes_three_requests(operator_client, sim_account):
    rows = "sn\n" + "\n".join(f"SWQQ{i:06d}" for i in range(250))
    upload = SimpleUploadedFile("dongles.csv", rows.encode(), content_type="text/csv")
    response = operator_client.post("/binding/", {"account": str(sim_account.code), "file": upload,
                                                  "once": key_from(operator_client, "/binding/")})
    assert response.status_code == 302
    assert sorted(len(r.sns) for r in BindingRequest.objects.all()) == [50, 100, 100]
    assert ApiCall.objects.filter(endpoint="bind_devices").count() == 3


@pytest.mark.parametrize("text,message", [
    ("", b"Paste registration numbers or choose a CSV file."),
    ("SW123456, SW12 34", b"Not registration numbers"),
    ("SW123456\nsw123456", b"Listed twice: SW123456"),
    (" ".join(f"SW{i:06d}" for i in range(1001)), b"At most 1000 registration numbers at a time"),
])
def test_bad_input_is_a_form_error_and_nothing_is_sent(operator_client, account, text, message):
    response = operator_client.post("/binding/", {"account": str(account.code), "sns": text})
    assert response.status_code == 400 and message in response.content
    assert not ApiCall.objects.exists() and not BindingRequest.objects.exists()


def test_a_file_that_is_not_text_is_an_error(operator_client, account):
    upload = SimpleUploadedFile("dongles.xlsx", b"\xff\xfe\x00\x81garbage", content_type="application/octet-stream")
    response = operator_client.post("/binding/", {"account": str(account.code), "file": upload})
    assert response.status_code == 400 and b"not UTF-8 text" in response.content


def test_the_service_refuses_more_than_100_in_one_request(account):
    with pytest.raises(bindings.BindingError, match="at most 100"):
        bindings.request_binding(account, [f"SW{i:06d}" for i in range(101)])
    with pytest.raises(bindings.BindingError, match="twice"):
        bindings.request_binding(account, ["SW000001", "SW000001"])
    assert not ApiCall.objects.exists() and not BindingRequest.objects.exists()


def test_viewers_other_organizations_and_methods(viewer_client, operator_client, account, other_account):
    assert viewer_client.get("/binding/").status_code == 200
    assert b"Bind devices" not in viewer_client.get("/binding/").content
    assert viewer_client.post("/binding/", {"sns": "SW000001"}).status_code == 403
    response = operator_client.post("/binding/", {"account": str(other_account.code), "sns": "SW000001"})
    assert response.status_code == 404
    assert operator_client.put("/binding/").status_code == 405
    assert not ApiCall.objects.exists()
