"""The alerts page (every member; operators acknowledge) and the channels (admins only)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from fleet.alerts import service
from fleet.models import (
    Alert,
    AlertKind,
    AlertState,
    AuditEntry,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryState,
    Severity,
)
from tests.support.once import key_from
from tests.support.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_hooks(settings):  # type: ignore[no-untyped-def]
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


def _alert(org, subject="a", **fields):  # type: ignore[no-untyped-def]
    return service.raise_alert(org, fields.pop("kind", AlertKind.SYNC), subject,
                               title=fields.pop("title", f"Sync {subject} failed"), **fields)


# The alerts page --------------------------------------------------------------------------------

def test_the_page_lists_open_alerts_and_the_nav_counts_them(viewer_client, org, account):
    _alert(org, "a", severity=Severity.CRITICAL, account=account, detail="timeout")
    _alert(org, "b")
    service.resolve_alerts(org, AlertKind.SYNC, "b", "fixed")
    page = viewer_client.get("/alerts/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Sync a failed" in html and "Sync b failed" not in html
    assert 'aria-label="1 open"' in html  # the badge in the nav
    assert "/acknowledge/" not in html  # a viewer cannot
    resolved = viewer_client.get("/alerts/?state=resolved").content.decode()
    assert "Sync b failed" in resolved and "fixed" in resolved and "Sync a failed" not in resolved
    everything = viewer_client.get("/alerts/?state=").content.decode()
    assert "Sync a failed" in everything and "Sync b failed" in everything
    assert viewer_client.get("/alerts/?state=bogus").status_code == 200  # falls back to open


def test_the_page_costs_the_same_queries_whatever_the_alerts(operator_client, org, account,
                                                              django_assert_num_queries, operator):
    for i in range(60):
        alert = _alert(org, f"s{i}", account=account)
        if i % 2:
            service.acknowledge(alert, operator)
    operator_client.get("/alerts/")
    # session, user, membership (with the badge's count), page count, rows
    with django_assert_num_queries(5):
        assert operator_client.get("/alerts/?state=&page=2").status_code == 200


def test_an_operator_acknowledges_and_the_page_says_who(operator_client, org, operator):
    alert = _alert(org)
    response = operator_client.post(f"/alerts/{alert.code}/acknowledge/")
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.state == AlertState.ACKNOWLEDGED and alert.acknowledged_by == operator
    html = operator_client.get("/alerts/?state=acknowledged").content.decode()
    assert "by otto" in html
    again = operator_client.post(f"/alerts/{alert.code}/acknowledge/", follow=True)
    assert "not open" in again.content.decode()


def test_a_viewer_cannot_acknowledge(viewer_client, org):
    alert = _alert(org)
    assert viewer_client.post(f"/alerts/{alert.code}/acknowledge/").status_code == 403
    alert.refresh_from_db()
    assert alert.state == AlertState.OPEN


def test_another_organizations_alert_is_404(operator_client, other_org):
    theirs = _alert(other_org)
    assert operator_client.post(f"/alerts/{theirs.code}/acknowledge/").status_code == 404
    assert "Sync a failed" not in operator_client.get("/alerts/?state=").content.decode()
    theirs.refresh_from_db()
    assert theirs.state == AlertState.OPEN


def test_acknowledge_needs_post_and_csrf(operator, org):
    alert = _alert(org)
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.get(f"/alerts/{alert.code}/acknowledge/").status_code == 405
    assert client.post(f"/alerts/{alert.code}/acknowledge/").status_code == 403
    alert.refresh_from_db()
    assert alert.state == AlertState.OPEN


# Channels ---------------------------------------------------------------------------------------

def test_channels_are_for_admins(operator_client, viewer_client, org):
    channel = Channel.objects.create(organization=org, kind=ChannelKind.EMAIL, name="Ops", target="o@example.com")
    for client in (operator_client, viewer_client):
        assert client.get("/settings/channels/").status_code == 403
        assert client.post("/settings/channels/new/", {"name": "x", "kind": "email", "target": "a@b.c",
                                                       "min_severity": "info"}).status_code == 403
        assert client.post(f"/settings/channels/{channel.code}/test/").status_code == 403
        assert client.post(f"/settings/channels/{channel.code}/delete/").status_code == 403
    assert Channel.objects.count() == 1 and not Delivery.objects.exists()


def test_another_organizations_channel_is_404(admin_client_, other_org):
    theirs = Channel.objects.create(organization=other_org, kind=ChannelKind.EMAIL, name="Theirs",
                                    target="t@example.com")
    for path in ("", "delete/"):
        assert admin_client_.get(f"/settings/channels/{theirs.code}/{path}").status_code == 404
    assert admin_client_.post(f"/settings/channels/{theirs.code}/test/").status_code == 404
    assert admin_client_.post(f"/settings/channels/{theirs.code}/delete/").status_code == 404
    assert Channel.objects.filter(pk=theirs.pk).exists()


def test_a_webhook_channel_shows_its_secret_once_and_stores_it_encrypted(admin_client_, org):
    response = admin_client_.post("/settings/channels/new/", {
        "once": key_from(admin_client_, "/settings/channels/new/"),
        "name": "Ops hook", "kind": "webhook", "target": "https://hooks.example.com/fleet",
        "events": ["alert.raised", "alert.resolved"], "kinds": ["account_paused", "command"], "min_severity": "warning",
        "enabled": "on"})
    assert response.status_code == 200
    channel = Channel.objects.get()
    secret = channel.get_secret()
    assert secret.startswith("whsec_") and secret in response.content.decode()
    assert secret not in channel.secret_ciphertext
    assert channel.kinds == ["account_paused", "command"] and channel.min_severity == "warning"
    for page in (f"/settings/channels/{channel.code}/", "/settings/channels/"):
        assert secret not in admin_client_.get(page).content.decode()


@pytest.mark.parametrize(("target", "error"), [
    ("ftp://hooks.example.com/x", "only http:// and https://"),
    ("file:///etc/passwd", "only http:// and https://"),
    ("https://user:pw@hooks.example.com/x", "credentials in the URL"),
    ("https:///nohost", "needs a host"),
    ("not a url", "only http:// and https://"),
])
def test_a_bad_webhook_url_is_a_form_error(admin_client_, target, error):
    response = admin_client_.post("/settings/channels/new/", {"name": "Bad", "kind": "webhook", "target": target,
                                                              "min_severity": "info"})
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Channel.objects.exists()


def test_a_bad_email_is_a_form_error(admin_client_):
    response = admin_client_.post("/settings/channels/new/", {"name": "Bad", "kind": "email", "target": "nobody",
                                                              "min_severity": "info"})
    assert response.status_code == 400 and "valid email" in response.content.decode()
    assert not Channel.objects.exists()


def test_an_admin_edits_the_rule_disables_and_deletes_after_confirming(admin_client_, org):
    channel = Channel.objects.create(organization=org, kind=ChannelKind.EMAIL, name="Ops", target="o@example.com")
    response = admin_client_.post(f"/settings/channels/{channel.code}/", {
        "name": "Ops", "kind": "webhook", "target": "p@example.com", "events": ["alert.raised"], "kinds": ["sync"],
        "min_severity": "critical"})
    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.kind, channel.target, channel.events, channel.kinds, channel.min_severity, channel.enabled) == (
        ChannelKind.EMAIL, "p@example.com", ["alert.raised"], ["sync"], "critical", False)  # kind stays; unticked: off
    confirm = admin_client_.get(f"/settings/channels/{channel.code}/delete/")
    assert confirm.status_code == 200 and "Delete the channel Ops?" in confirm.content.decode()
    assert Channel.objects.filter(pk=channel.pk).exists()
    assert admin_client_.post(f"/settings/channels/{channel.code}/delete/").status_code == 302
    assert not Channel.objects.exists()


def test_send_a_test_shows_its_delivery_result_and_the_log(admin_client_, org):
    with webhook_receiver() as receiver:
        channel = Channel(organization=org, kind=ChannelKind.WEBHOOK, name="Hook", target=receiver.url)
        channel.set_secret("whsec_x")
        channel.save()
        response = admin_client_.post(f"/settings/channels/{channel.code}/test/", follow=True)
        assert len(receiver.received) == 1 and receiver.received[0].signature_valid("whsec_x")
        receiver.statuses = [404]
        failed = admin_client_.post(f"/settings/channels/{channel.code}/test/", follow=True)
    html = response.content.decode()
    assert "Test sent to “Hook” (HTTP 200)" in html
    assert "failed: the endpoint answered 404" in failed.content.decode()
    log = failed.content.decode()
    assert log.count("<code>test</code>") == 2 and "whsec_x" not in log
    assert list(Delivery.objects.order_by("pk").values_list("state", "status_code")) == [
        (DeliveryState.SENT, 200), (DeliveryState.FAILED, 404)]


def test_the_badge_and_alerts_page_hide_other_organizations(viewer_client, other_org):
    _alert(other_org)
    html = viewer_client.get("/alerts/").content.decode()
    assert "open</span>" not in html and 'aria-label="1 open"' not in html
    assert Alert.objects.count() == 1


@pytest.mark.parametrize("deliveries", [3, 60])
def test_the_channel_page_costs_the_same_queries_whatever_its_log(admin_client_, org, deliveries,
                                                                  django_assert_num_queries):
    channel = Channel.objects.create(organization=org, kind=ChannelKind.EMAIL, name="Ops", target="o@example.com")
    for i in range(deliveries):
        alert = _alert(org, f"s{i}")
        Delivery.objects.filter(alert=alert).delete()
        Delivery.objects.create(channel=channel, alert=alert, event="alert.raised", state=DeliveryState.SENT)
    admin_client_.get("/settings/channels/")
    # session, user, membership, channel, log count, log rows with their alerts
    with django_assert_num_queries(6):
        assert admin_client_.get(f"/settings/channels/{channel.code}/?page=1").status_code == 200


def test_channel_changes_and_acknowledgements_are_in_the_audit_log_without_the_secret(admin_client_, admin_user, org):

    admin_client_.post("/settings/channels/new/", {
        "once": key_from(admin_client_, "/settings/channels/new/"),
        "name": "Ops hook", "kind": "webhook", "target": "https://hooks.example.com/fleet",
        "events": ["alert.raised", "alert.resolved"], "kinds": ["sync"], "min_severity": "warning", "enabled": "on"})
    channel = Channel.objects.get()
    admin_client_.post(f"/settings/channels/{channel.code}/", {
        "name": "Ops hook 2", "kind": "webhook", "target": "https://hooks.example.com/fleet", "kinds": ["sync"],
        "events": ["alert.raised", "alert.resolved"], "min_severity": "critical", "enabled": "on"})
    alert = _alert(org)
    admin_client_.post(f"/alerts/{alert.code}/acknowledge/")
    admin_client_.post(f"/settings/channels/{channel.code}/delete/")
    entries = list(AuditEntry.objects.filter(organization=org).order_by("pk"))
    assert [e.action for e in entries] == ["channel.create", "channel.update", "alert.acknowledge", "channel.delete"]
    assert entries[1].changes["name"] == ["Ops hook", "Ops hook 2"]
    assert entries[1].changes["min_severity"] == ["warning", "critical"]
    assert entries[2].changes == {"state": ["open", "acknowledged"]}
    assert all(e.actor == admin_user for e in entries)
    assert channel.get_secret() not in json.dumps([e.changes for e in entries])


def test_a_double_click_creates_one_channel_and_says_its_secret_went_to_the_first(admin_client_, org):
    data = {"name": "Ops hook", "kind": "webhook", "target": "https://hooks.example.com/fleet",
            "events": ["alert.raised"], "min_severity": "warning", "enabled": "on",
            "once": key_from(admin_client_, "/settings/channels/new/")}
    first = admin_client_.post("/settings/channels/new/", data)
    second = admin_client_.post("/settings/channels/new/", data, follow=True)
    channel = Channel.objects.get()
    assert first.status_code == 200 and channel.get_secret() in first.content.decode()
    assert second.redirect_chain == [(f"/settings/channels/{channel.code}/", 302)]
    page = second.content.decode()
    assert "shown to that first submit only" in page and channel.get_secret() not in page
    assert AuditEntry.objects.filter(action="channel.create").count() == 1
