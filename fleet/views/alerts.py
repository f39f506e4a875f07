"""Alerts (every member reads them; operators acknowledge) and alert channels (admins only)."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fleet.accounts import audit, once
from fleet.accounts.access import alert_for_user, channel_for_user, current_membership, require_admin, require_operator
from fleet.alerts import channels, service
from fleet.alerts.forms import ChannelForm
from fleet.models import AlertState, Channel, ChannelKind, Delivery
from fleet.views.base import HtmxHttpRequest, confirmation, error_status, paginate

DELIVERIES_PER_PAGE = 25
TABS = [("open", "Open"), ("acknowledged", "Acknowledged"), ("resolved", "Resolved"), ("", "All")]


@require_GET
def alert_list(request: HtmxHttpRequest) -> HttpResponse:
    membership = current_membership(request)
    state = request.GET.get("state", AlertState.OPEN)
    if state not in AlertState.values and state != "":
        state = AlertState.OPEN
    alerts = service.alerts_for(membership.organization, state or None)
    return render(request, "fleet/alerts.html", {"page": paginate(alerts, request), "state": state, "tabs": TABS})


@require_POST
def alert_acknowledge(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_operator(request)
    alert = alert_for_user(request, code)
    if service.acknowledge(alert, request.user):
        audit.record(request, "alert.acknowledge", alert, name=alert.title, changes={"state": ["open", alert.state]})
        if alert.state == AlertState.RESOLVED:
            messages.success(request, f"Acknowledged and resolved: {alert.title}.")
        else:
            messages.success(request, f"Acknowledged: {alert.title}. It resolves by itself when its condition ends.")
    else:
        messages.error(request, "This alert is not open: it was acknowledged or resolved already.")
    return redirect(f"/alerts/?state={alert.state if alert.state != AlertState.OPEN else 'open'}")


# Channels ------------------------------------------------------------------------------------

@require_GET
def channel_list(request: HtmxHttpRequest) -> HttpResponse:
    membership = require_admin(request)
    listed = Channel.objects.filter(organization=membership.organization).order_by("name", "pk")
    return render(request, "fleet/channels.html", {"channels": listed})


CHANNEL_PURPOSE = "channel-create"
SECRET_SHOWN_ONCE = ("one channel was created, and its signing secret was shown to that first submit only. If you "
                     "did not copy it, delete the channel and create it again.")


@require_http_methods(["GET", "POST"])
def channel_create(request: HtmxHttpRequest) -> HttpResponse:
    membership = require_admin(request)
    form = ChannelForm(request.POST or None, instance=Channel(organization=membership.organization))
    fingerprint = once.posted_fingerprint(request)
    if request.method == "POST" and (earlier := once.already_done(request, CHANNEL_PURPOSE, fingerprint)) is not None:
        return once.replay(request, earlier, SECRET_SHOWN_ONCE if request.POST.get("kind") == ChannelKind.WEBHOOK
                           else "one channel was created.")
    if request.method == "POST" and form.is_valid():
        try:
            with once.claim(request, CHANNEL_PURPOSE, fingerprint) as claimed:
                channel = form.save(commit=False)
                channel.created_by = request.user
                secret = ""
                if channel.kind == ChannelKind.WEBHOOK:
                    secret = channels.new_secret()
                    channel.set_secret(secret)
                channel.save()
                audit.record(request, "channel.create", channel, changes=audit.form_created(form))
                claimed.done(reverse("fleet-channel", args=[channel.code]))
        except once.AlreadyDone as done:
            return once.replay(request, done, SECRET_SHOWN_ONCE if request.POST.get("kind") == ChannelKind.WEBHOOK
                           else "one channel was created.")
        except once.Refused as refused:
            form.add_error(None, refused.message)
        else:
            return render(request, "fleet/channel_created.html", {"channel": channel, "secret": secret})
    return render(request, "fleet/channel_form.html",
                  {"form": form, "channel": None, "once_key": once.issue(request, CHANNEL_PURPOSE)},
                  status=error_status(request) if request.method == "POST" else 200)


def _channel_page(request: HtmxHttpRequest, channel: Channel, form: ChannelForm, *, status: int = 200,
                  **extra: object) -> HttpResponse:
    deliveries = Delivery.objects.filter(channel=channel).select_related("alert", "command").order_by("-created", "-pk")
    page = Paginator(deliveries, DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "fleet/channel_form.html", {"form": form, "channel": channel, "deliveries": page,
                                                       **extra}, status=status)


@require_http_methods(["GET", "POST"])
def channel_edit(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    require_admin(request)
    channel = channel_for_user(request, code)
    form = ChannelForm(request.POST or None, instance=channel)
    if request.method == "POST":
        if form.is_valid():
            changes = audit.form_changes(form)
            form.save()
            audit.record(request, "channel.update", channel, changes=changes)
            messages.success(request, f"Channel “{channel.name}” saved.")
            return redirect("fleet-channel", code=channel.code)
        return _channel_page(request, channel, form, status=error_status(request))
    return _channel_page(request, channel, form)


@require_http_methods(["GET", "POST"])
def channel_delete(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    """GET asks for confirmation; POST deletes the channel and its delivery log."""
    require_admin(request)
    channel = channel_for_user(request, code)
    if request.method == "POST":
        name = channel.name
        audit.record(request, "channel.delete", channel, changes={"name": [name, None]})
        channel.delete()
        messages.success(request, f"Channel “{name}” deleted.")
        return redirect("fleet-channels")
    confirm = confirmation(label="Confirm deletion", title=f"Delete the channel {channel.name}?",
                           text="Its delivery log goes with it; alerts are no longer sent there.",
                           action=f"/settings/channels/{channel.code}/delete/", button="Delete",
                           cancel_url=f"/settings/channels/{channel.code}/")
    return _channel_page(request, channel, ChannelForm(instance=channel), confirm=confirm)


@require_POST
def channel_test(request: HtmxHttpRequest, code: uuid.UUID) -> HttpResponse:
    """Send a test message now (one attempt) and show what became of it."""
    require_admin(request)
    channel = channel_for_user(request, code)
    delivery = channels.send_test(channel)
    if delivery.state == "sent":
        status = f" (HTTP {delivery.status_code})" if delivery.status_code else ""
        messages.success(request, f"Test sent to “{channel.name}”{status}.")
    else:
        messages.error(request, f"The test to “{channel.name}” failed: {delivery.error or delivery.state}.")
    return redirect("fleet-channel", code=channel.code)
