from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_the_dashboard_invites_an_admin_to_add_an_account(admin_client_):
    body = admin_client_.get("/").content.decode()
    assert "No SolaX account yet" in body
    assert "/settings/accounts/new/" in body


def test_the_dashboard_tells_others_to_ask_an_admin(viewer_client):
    body = viewer_client.get("/").content.decode()
    assert "Ask an admin" in body
    assert "/settings/" not in body


def test_the_dashboard_lists_only_this_organizations_accounts(operator_client, account, other_account):
    body = operator_client.get("/").content.decode()
    assert "Main" in body
    assert "Theirs" not in body


def test_the_layout_serves_htmx_locally_and_sends_csrf(operator_client):
    body = operator_client.get("/").content.decode()
    assert "/static/js/htmx.min.js" in body
    assert "hx-headers" in body and "X-CSRFToken" in body
    assert "https://" not in body.split("<body")[0]  # no CDN in the head


def test_the_panels_refresh_themselves_and_show_a_new_unknown_command(operator_client, account):
    from fleet.models import Command

    page = operator_client.get("/").content.decode()
    assert 'id="dashboard-panels"' in page and 'hx-trigger="every 5s"' in page
    Command.objects.create(account=account, kind="inverter_control", target_kind="selection", sns=["X1"],
                           action={}, label="Forced charge to X1", state="unknown")
    Command.objects.create(account=account, kind="inverter_control", target_kind="fleet", action={},
                           label="System on to the whole fleet", state="approval")
    live = operator_client.get("/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="dashboard-panels")
    body = live.content.decode()
    assert live.status_code == 200 and "<html" not in body and 'id="dashboard-panels"' not in body
    assert "Forced charge to X1" in body and "System on to the whole fleet" in body


def test_the_history_rows_refresh_without_the_filter_form(operator_client, account):
    from fleet.models import Command

    page = operator_client.get(f"/commands/?account={account.code}").content.decode()
    assert 'id="history-rows"' in page and 'hx-trigger="every 10s"' in page
    Command.objects.create(account=account, kind="inverter_control", target_kind="selection", sns=["X1"],
                           action={}, label="Late arrival", state="unknown")
    live = operator_client.get(f"/commands/?account={account.code}", HTTP_HX_REQUEST="true",
                               HTTP_HX_TARGET="history-rows")
    assert live.status_code == 200 and "Late arrival" in live.content.decode()
