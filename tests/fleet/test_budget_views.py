from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.utils import timezone

from fleet.models import ApiCall, CallState, Priority
from fleet.pipeline import ledger
from tests.conftest import TOKEN

pytestmark = pytest.mark.django_db


def _calls(account, n, **fields):  # type: ignore[no-untyped-def]
    ApiCall.objects.bulk_create(ApiCall(account=account, endpoint=fields.get("endpoint", "group_query"),
                                        priority=fields.get("priority", Priority.READ),
                                        state=fields.get("state", CallState.QUEUED),
                                        params={"current": "1"}, origin_code=fields.get("origin"))
                                for _ in range(n))


def test_it_shows_gauges_queue_chart_and_log(operator_client, account):
    _calls(account, 3)
    sent = ApiCall.objects.create(account=account, endpoint="group_add", priority=Priority.MANAGEMENT,
                                  state=CallState.SUCCEEDED, params={"name": "North"}, purpose="create group")
    ledger.record_past_attempts(account, sent, [timezone.now()])
    body = operator_client.get("/budget/").content.decode()
    assert "1 / 10" in body  # the minute gauge
    assert "3 calls queued" in body
    assert body.count('class="bar"') == 24
    assert "create group" in body and "name=North" in body
    assert "••••" + TOKEN[-4:] in body
    assert TOKEN not in body


def test_the_live_part_is_a_partial_for_htmx(operator_client, account):
    response = operator_client.get(f"/budget/?account={account.code}", HTTP_HX_REQUEST="true",
                                   HTTP_HX_TARGET="budget-live")
    body = response.content.decode()
    assert "This minute" in body
    assert "<html" not in body and "Call log" not in body


def test_the_log_filters_by_state_endpoint_and_origin(operator_client, account):
    origin = uuid.uuid4()
    _calls(account, 2, state=CallState.FAILED, endpoint="group_add", priority=Priority.MANAGEMENT, origin=origin)
    _calls(account, 5, state=CallState.SUCCEEDED)
    response = operator_client.get(f"/budget/?account={account.code}&state=failed", HTTP_HX_REQUEST="true",
                                   HTTP_HX_TARGET="call-log")
    assert response.content.decode().count("state-failed") == 2
    body = operator_client.get(f"/budget/?account={account.code}&origin={origin}").content.decode()
    assert "2 calls" in body
    body = operator_client.get(f"/budget/?account={account.code}&endpoint=group_query").content.decode()
    assert "5 calls" in body


def test_a_malformed_origin_is_an_error_not_a_crash(operator_client, account):
    body = operator_client.get(f"/budget/?account={account.code}&origin=nope").content.decode()
    assert "is a UUID" in body


def test_the_log_is_paged(operator_client, account):
    _calls(account, 120, state=CallState.SUCCEEDED)
    body = operator_client.get(f"/budget/?account={account.code}&page=3").content.decode()
    assert "Page 3 of 3" in body
    assert body.count("state-succeeded") == 20


def test_it_shows_the_pause_and_its_reason(viewer_client, account):
    account.paused_until = timezone.now() + timedelta(minutes=30)
    account.pause_reason = "SolaX answered that the per-minute limit was exceeded"
    account.save()
    body = viewer_client.get("/budget/").content.decode()
    assert "Paused for" in body and "per-minute limit" in body


def test_it_says_when_the_queue_exceeds_todays_budget(operator_client, account):
    account.calls_per_day = 50
    account.save()
    _calls(account, 60)
    assert "more than today" in operator_client.get("/budget/").content.decode()


def test_another_organizations_account_is_404(operator_client, account, other_account):
    assert operator_client.get(f"/budget/?account={other_account.code}").status_code == 404
    assert operator_client.get("/budget/?account=not-a-uuid").status_code == 404


def test_without_an_account_it_says_so(operator_client):
    assert b"No SolaX account yet" in operator_client.get("/budget/").content


def test_the_dashboard_shows_the_same_gauges(operator_client, account):
    _calls(account, 4)
    body = operator_client.get("/").content.decode()
    assert "This minute" in body and "4 calls queued" in body


def test_the_budget_page_query_count_does_not_grow_with_the_log(operator_client, account,
                                                                django_assert_num_queries):
    _calls(account, 10, state=CallState.SUCCEEDED)
    operator_client.get("/budget/")  # warm the session
    with django_assert_num_queries(9) as first:
        operator_client.get("/budget/")
    _calls(account, 200, state=CallState.SUCCEEDED)
    with django_assert_num_queries(len(first.captured_queries)):
        operator_client.get("/budget/")


def test_budget_counts_come_from_the_ledger(account):
    now = timezone.now()
    call = ApiCall.objects.create(account=account, endpoint="group_query", priority=Priority.READ)
    ledger.record_past_attempts(account, call, [now - timedelta(seconds=30), now - timedelta(hours=2),
                                               now - timedelta(hours=25)])
    budget = ledger.budget_of(account, now)
    assert (budget.minute_used, budget.day_used) == (1, 2)


def test_the_pages_say_when_the_token_cannot_be_decrypted(operator_client, account, settings):
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    for url in ("/budget/", "/"):
        body = operator_client.get(url).content.decode()
        assert "Paused: token cannot be decrypted: check TOKEN_ENCRYPTION_KEYS" in body
