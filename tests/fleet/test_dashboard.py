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
