"""The API keys page (settings): admins create a key (shown once, only its hash kept), list and revoke
keys; others get 403; CSRF applies to the page; another organization's key is 404."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from fleet.accounts import api_keys
from fleet.models import ApiKey, AuditEntry
from tests.support.once import key_from

pytestmark = pytest.mark.django_db


def _key_in(body: str) -> str:
    match = re.search(r'id="api-key-value" readonly value="(sfk_[^"]+)"', body)
    assert match, "the new key is not shown"
    return match.group(1)


def test_the_settings_page_links_to_the_api_keys(admin_client_):
    assert b'href="/settings/api-keys/"' in admin_client_.get("/settings/").content


def test_an_admin_creates_a_key_shown_once(admin_client_, admin_user, org, account):
    once = key_from(admin_client_, "/settings/api-keys/")
    response = admin_client_.post("/settings/api-keys/", {"name": "trading bot", "scope": "operate", "once": once})
    assert response.status_code == 201
    assert response["Cache-Control"] == "private, no-store"
    plaintext = _key_in(response.content.decode())
    key = ApiKey.objects.get()
    assert (key.name, key.scope, key.created_by, key.organization) == ("trading bot", "operate", admin_user, org)
    assert plaintext not in (key.key_hash, key.prefix)
    listing = admin_client_.get("/settings/api-keys/").content.decode()
    assert "trading bot" in listing and f"sfk_{key.prefix}_…" in listing
    assert plaintext not in listing and 'id="api-key-value"' not in listing  # never shown again
    assert Client().get("/api/v1/accounts", headers={"Authorization": f"Bearer {plaintext}"}).status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None
    assert "never" not in admin_client_.get("/settings/api-keys/").content.decode().split("trading bot")[1][:400]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.object_code) == ("api_key.create", admin_user, str(key.code))
    assert entry.changes == {"name": [None, "trading bot"], "scope": [None, "operate"]}
    assert plaintext not in str(entry.changes) and key.key_hash not in str(entry.changes)


def test_a_bad_form_is_400_and_creates_nothing(admin_client_, org):
    api_keys.create(org, "taken", "read")
    for data in ({"name": "", "scope": "read"}, {"name": "x", "scope": "admin"}, {"name": "taken", "scope": "read"},
                 {"name": "y" * 101, "scope": "read"}):
        response = admin_client_.post("/settings/api-keys/", {**data, "once": key_from(admin_client_,
                                                                                       "/settings/api-keys/")})
        assert response.status_code == 400, data
        assert 'id="api-key-value"' not in response.content.decode()
    assert ApiKey.objects.count() == 1


def test_a_revoked_name_can_be_used_again(admin_client_, org):
    key, _ = api_keys.create(org, "bot", "read")
    api_keys.revoke(key)
    once = key_from(admin_client_, "/settings/api-keys/")
    assert admin_client_.post("/settings/api-keys/", {"name": "bot", "scope": "read", "once": once}).status_code == 201
    assert ApiKey.objects.filter(name="bot").count() == 2


def test_an_admin_revokes_a_key(admin_client_, admin_user, org):
    key, plaintext = api_keys.create(org, "bot", "operate")
    response = admin_client_.post(f"/settings/api-keys/{key.code}/revoke/")
    assert response.status_code == 302 and response["Location"] == "/settings/api-keys/"
    key.refresh_from_db()
    assert key.revoked_at is not None and key.revoked_by == admin_user
    assert Client().get("/api/v1/groups", headers={"Authorization": f"Bearer {plaintext}"}).status_code == 401
    assert "revoked" in admin_client_.get("/settings/api-keys/").content.decode()
    assert AuditEntry.objects.get().action == "api_key.revoke"
    # a second revoke changes nothing and says so
    response = admin_client_.post(f"/settings/api-keys/{key.code}/revoke/", follow=True)
    assert "was revoked already" in response.content.decode()


def test_operators_and_viewers_cannot_manage_keys(operator_client, viewer_client, org):
    key, _ = api_keys.create(org, "bot", "read")
    for client in (operator_client, viewer_client):
        assert client.get("/settings/api-keys/").status_code == 403
        assert client.post("/settings/api-keys/", {"name": "mine", "scope": "operate"}).status_code == 403
        assert client.post(f"/settings/api-keys/{key.code}/revoke/").status_code == 403
    assert ApiKey.objects.count() == 1 and ApiKey.objects.get().revoked_at is None


def test_another_organizations_key_is_404(admin_client_, other_org):
    theirs, _ = api_keys.create(other_org, "theirs", "operate")
    assert admin_client_.post(f"/settings/api-keys/{theirs.code}/revoke/").status_code == 404
    assert "theirs" not in admin_client_.get("/settings/api-keys/").content.decode()
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_the_page_needs_csrf(admin_user, org):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post("/settings/api-keys/", {"name": "bot", "scope": "read"}).status_code == 403
    page = client.get("/settings/api-keys/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    once = re.search(r'name="once" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert client.post("/settings/api-keys/", {"name": "bot", "scope": "read", "once": once,
                                               "csrfmiddlewaretoken": token}).status_code == 201


def test_the_page_lists_keys_in_a_fixed_number_of_queries(admin_client_, org, django_assert_num_queries):
    for i in range(5):
        api_keys.create(org, f"k{i}", "read")
    admin_client_.get("/settings/api-keys/")
    with django_assert_num_queries(6):
        assert admin_client_.get("/settings/api-keys/").status_code == 200
    for i in range(5, 15):
        api_keys.create(org, f"k{i}", "read")
    with django_assert_num_queries(6):
        assert admin_client_.get("/settings/api-keys/").status_code == 200


def test_a_double_click_creates_one_key_and_says_where_its_secret_went(admin_client_):
    once = key_from(admin_client_, "/settings/api-keys/")
    data = {"name": "bot", "scope": "read", "once": once}
    first = admin_client_.post("/settings/api-keys/", data)
    second = admin_client_.post("/settings/api-keys/", data, follow=True)
    assert first.status_code == 201 and 'id="api-key-value"' in first.content.decode()
    page = second.content.decode()
    assert second.redirect_chain == [("/settings/api-keys/", 302)]
    assert "shown to that first submit only" in page and 'id="api-key-value"' not in page
    assert ApiKey.objects.count() == 1 and AuditEntry.objects.filter(action="api_key.create").count() == 1


def test_a_form_without_its_key_creates_nothing(admin_client_):
    response = admin_client_.post("/settings/api-keys/", {"name": "bot", "scope": "read", "once": "forged"})
    assert response.status_code == 400 and "was not issued to you" in response.content.decode()
    assert not ApiKey.objects.exists()
