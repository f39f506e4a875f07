"""Delivering events (alerts raised and resolved, commands finished): email through Django's email
backend, webhooks POSTed with a signature. Each channel takes the events it subscribed to.

A webhook's body is ``{"event", "delivery", "sent_at"}`` with ``alert`` or ``command``: the resource
exactly as GET /api/v1/alerts/{code} or /api/v1/commands/{code} answers it at send time (one schema and
serializer in ``fleet.shapes`` for both), so a receiver parses one shape.

A delivery is a row written in the transaction of its event (an alert raised or resolved, a
command's recount that finished it); after the commit
a Celery task (``fleet.alerts.tasks.deliver_alert``) sends it, outside any transaction of the pipeline,
so a slow or dead endpoint delays nobody but its own retries. Transient failures (timeouts,
connection errors, 408/429/5xx) retry with capped backoff through Celery's retry, at most
MAX_RETRIES times; anything else fails at once. The log keeps each delivery's attempts, status code and
error text, never the secret.

Webhook requests carry ``X-Fleet-Timestamp`` (Unix seconds) and ``X-Fleet-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under the channel's secret>``. The URL must be
http(s) without credentials; unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES, a host that resolves to a
loopback, private, link-local or reserved address is refused at send time (SSRF), the request goes to
the address that was checked (never through a proxy, so a second lookup cannot rebind the name to an
internal one), and redirects are never followed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from celery import current_app
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from fleet.models import Alert, Channel, ChannelEvent, ChannelKind, Command, Delivery, DeliveryState
from fleet.shapes import responses, serialize

log = logging.getLogger("fleet.alerts")

RAISED, RESOLVED, FINISHED = ChannelEvent.ALERT_RAISED, ChannelEvent.ALERT_RESOLVED, ChannelEvent.COMMAND_FINISHED
TEST = "test"
WEBHOOK_TIMEOUT_SECONDS = 5
MAX_RETRIES = 5
BACKOFF_BASE_SECONDS = 10
BACKOFF_CAP_SECONDS = 600  # well inside a Redis broker's visibility timeout
TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
SIGNATURE_HEADER, TIMESTAMP_HEADER = "X-Fleet-Signature", "X-Fleet-Timestamp"


class TransientDeliveryError(Exception):
    """A delivery that may succeed when tried again later."""


def new_secret() -> str:
    """A webhook's signing secret: shown once, stored encrypted."""
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the X-Fleet-Signature value of ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_url_problem(url: str) -> str | None:
    """Return why ``url`` cannot be a webhook target, or None: http(s), a host, no credentials."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "only http:// and https:// URLs are allowed"
    if not parts.hostname:
        return "the URL needs a host"
    if parts.username or parts.password:
        return "credentials in the URL are not allowed: put the secret in the signature instead"
    if parts.fragment:
        return "a fragment (#...) is never sent; leave it out"
    return None


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (address.is_private or address.is_loopback or address.is_link_local or address.is_reserved
            or address.is_multicast or address.is_unspecified)


def _checked_address(host: str) -> str | None:
    """The address a webhook to ``host`` connects to: every address ``host`` resolves to must be public
    (else PermanentDeliveryError), and the request then goes to the first of them, so a second lookup by
    the HTTP library cannot be answered with an internal one (DNS rebinding). None when private addresses
    are allowed or the name does not resolve (the request itself then fails and says so)."""
    if settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        return None
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return None
    addresses = [str(info[4][0]) for info in infos]
    if any(_internal(ipaddress.ip_address(address)) for address in addresses):
        raise PermanentDeliveryError(
            f"not sent: {host} resolves to an internal address; refused (WEBHOOK_ALLOW_PRIVATE_ADDRESSES is off)")
    return addresses[0] if addresses else None


# Queueing -------------------------------------------------------------------------------------

def queue_deliveries(alert: Alert, event: str) -> list[Delivery]:
    """Write a delivery for each enabled channel of the alert's organization that subscribed to
    ``event`` and whose rule takes the alert, and send them after the commit. Returns the deliveries
    (one query for the channels, one insert)."""
    chosen = [channel for channel in Channel.objects.filter(organization_id=alert.organization_id, enabled=True)
              if channel.takes(event) and channel.matches(alert.kind, alert.severity)]
    if not chosen:
        return []
    deliveries = Delivery.objects.bulk_create(Delivery(channel=channel, alert=alert, event=event) for channel in chosen)
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: _start(ids))
    return deliveries


def queue_command_finished(organization_id: int, command: Command) -> list[Delivery]:
    """Write a command.finished delivery for each enabled channel of the organization that subscribed
    to it, unless the channel has one for this command already, and send them after the commit.

    Once per (channel, command): the partial unique constraint ``delivery_once_per_command`` decides,
    not a read before the write, so a second final state or a second worker's recount of the same
    command inserts nothing (on PostgreSQL the loser waits for the winner's commit, then conflicts).
    Each insert is its own savepoint so a conflict never breaks the caller's transaction."""
    chosen = [channel for channel in Channel.objects.filter(organization_id=organization_id, enabled=True)
              if channel.takes(FINISHED)]
    deliveries: list[Delivery] = []
    for channel in chosen:
        try:
            with transaction.atomic():
                deliveries.append(Delivery.objects.create(channel=channel, command=command, event=FINISHED))
        except IntegrityError:
            continue  # delivered (or being delivered) already
    if deliveries:
        ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: _start(ids))
    return deliveries


def _start(ids: list[int]) -> None:
    # By name through the Celery app: the task module imports this one, never the other way.
    for delivery_id in ids:
        try:
            current_app.send_task("fleet.tasks.deliver_alert", args=[delivery_id])
        except Exception:  # noqa: BLE001 - the periodic evaluation re-queues it
            log.warning("could not reach the broker for delivery %s; it is re-queued later", delivery_id)


def requeue_lost(older_than: datetime) -> int:
    """Send again the deliveries still pending since before ``older_than`` (their task was lost)."""
    ids = list(Delivery.objects.filter(state=DeliveryState.PENDING, created__lt=older_than)
               .values_list("pk", flat=True)[:500])
    if ids:
        _start(ids)
    return len(ids)


def backoff(retries: int) -> int:
    """Seconds before retry number ``retries + 1``: 10, 20, 40, ... capped."""
    return int(min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** retries))


# Payloads ---------------------------------------------------------------------------------------

def payload(delivery: Delivery) -> dict[str, Any]:
    """The webhook's body: the event, this delivery's code, and the resource as the API shows it now."""
    body: dict[str, Any] = {"event": delivery.event, "delivery": str(delivery.code),
                            "sent_at": timezone.now().isoformat()}
    if delivery.alert is not None:
        body["alert"] = responses.render(responses.AlertOut, serialize.alert(delivery.alert))
    elif delivery.command is not None:
        body["command"] = responses.render(responses.CommandDetailOut, serialize.command_detail(delivery.command))
    else:
        body["message"] = f"A test of channel {delivery.channel.name}: it works."
    return body


# Sending ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sent:
    status_code: int | None


def deliver(delivery_id: int, *, final: bool = False) -> Delivery | None:
    """Make one attempt at a delivery; return it with its new state, or None when it is gone or
    already settled. Raises TransientDeliveryError when it should be retried (unless ``final``:
    then it is marked failed)."""
    delivery = (Delivery.objects.select_related("channel", "alert__account", "alert__acknowledged_by",
                                                "command__account", "command__group", "command__created_by",
                                                "command__api_key")
                .filter(pk=delivery_id, state__in=(DeliveryState.PENDING, DeliveryState.RETRYING)).first())
    if delivery is None:
        return None
    # Claim the attempt: a second task for the same delivery (re-queued while the first waited in the
    # broker) finds the count moved and sends nothing.
    if Delivery.objects.filter(pk=delivery.pk, state=delivery.state, attempts=delivery.attempts).update(
            attempts=F("attempts") + 1) != 1:
        return None
    delivery.attempts += 1
    try:
        sent = _send(delivery)
    except TransientDeliveryError as exc:
        _record(delivery, DeliveryState.FAILED if final else DeliveryState.RETRYING, error=str(exc),
                status=getattr(exc, "status_code", None))
        if final:
            return delivery
        raise
    except PermanentDeliveryError as exc:
        _record(delivery, DeliveryState.FAILED, error=str(exc), status=exc.status_code)
        return delivery
    _record(delivery, DeliveryState.SENT, status=sent.status_code)
    return delivery


class PermanentDeliveryError(Exception):
    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class _TransientStatus(TransientDeliveryError):
    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def _record(delivery: Delivery, state: str, *, error: str = "", status: int | None = None) -> None:
    delivery.state, delivery.error, delivery.status_code = state, error[:500], status
    if state == DeliveryState.SENT:
        delivery.sent_at = timezone.now()
    Delivery.objects.filter(pk=delivery.pk).update(state=state, error=delivery.error, status_code=status,
                                                   attempts=delivery.attempts, sent_at=delivery.sent_at)
    log.info("delivery %s to channel %s: %s %s", delivery.code, delivery.channel.code, state, status or "")


def _send(delivery: Delivery) -> Sent:
    if delivery.channel.kind == ChannelKind.EMAIL:
        return _send_email(delivery)
    return _send_webhook(delivery)


def _send_email(delivery: Delivery) -> Sent:
    alert, command = delivery.alert, delivery.command
    if command is not None:
        subject, text = _command_email(command)
    elif alert is None:
        subject = f"[solax-fleet] test of channel {delivery.channel.name}"
        text = "This is a test of an alert channel. It works."
    else:
        verb = "resolved" if delivery.event == RESOLVED else alert.severity.upper()
        subject = f"[solax-fleet] {verb}: {alert.title}"
        lines = [alert.title, "", alert.detail, "", f"Kind: {alert.get_kind_display()}",
                 f"Raised: {alert.raised_at:%Y-%m-%d %H:%M %Z}"]
        if alert.resolved_at:
            lines.append(f"Resolved: {alert.resolved_at:%Y-%m-%d %H:%M %Z} ({alert.resolution})")
        text = "\n".join(lines)
    try:
        send_mail(subject[:200], text, settings.DEFAULT_FROM_EMAIL, [delivery.channel.target])
    except (OSError, TimeoutError) as exc:  # smtplib's errors are OSErrors
        raise TransientDeliveryError(f"email not sent: {type(exc).__name__}") from None
    return Sent(None)


def _command_email(command: Command) -> tuple[str, str]:
    """A finished command's short subject and its counts."""
    subject = f"[solax-fleet] command {command.label}: {command.state}"
    lines = [f"Command {command.label} ended {command.get_state_display()}.", "",
             f"Devices: {command.devices_total}, answered {command.devices_answered}, "
             f"succeeded {command.devices_succeeded}, failed {command.devices_failed}."]
    if command.finished_at:
        lines.append(f"Finished: {command.finished_at:%Y-%m-%d %H:%M %Z}")
    return subject, "\n".join(lines)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect answers with its own status; never followed to another host


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to ``address``, the one that was checked, not to a new lookup of the host; the Host header
    and, for HTTPS, the certificate check and SNI still use the URL's host name."""

    address = ""

    def connect(self) -> None:
        sys.audit("http.client.connect", self, self.host, self.port)
        source = self.source_address  # type: ignore[attr-defined]
        self.sock = socket.create_connection((self.address, self.port), self.timeout, source)
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection, _PinnedHTTPConnection):
    pass  # HTTPSConnection.connect wraps the socket that _PinnedHTTPConnection.connect opened


def _pinned(kind: type[_PinnedHTTPConnection], address: str) -> Callable[..., http.client.HTTPConnection]:
    def connection(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
        made = kind(*args, **kwargs)
        made.address = address
        return made
    return connection


class _PinnedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_pinned(_PinnedHTTPConnection, self.address), req)


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_pinned(_PinnedHTTPSConnection, self.address), req,
                            context=self._context)  # type: ignore[attr-defined]


def _opener(address: str | None) -> urllib.request.OpenerDirector:
    """No redirects; with an ``address``, connections go to it and never through a proxy (a proxy would
    look the name up again)."""
    if address is None:
        return urllib.request.build_opener(_NoRedirect)
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect, _PinnedHTTPHandler(address),
                                       _PinnedHTTPSHandler(address))


def _send_webhook(delivery: Delivery) -> Sent:
    channel = delivery.channel
    problem = webhook_url_problem(channel.target)
    if problem is not None:
        raise PermanentDeliveryError(f"not sent: {problem}")
    address = _checked_address(urlsplit(channel.target).hostname or "")
    try:
        secret = channel.get_secret()
    except ValueError:
        raise PermanentDeliveryError("not sent: the channel's secret cannot be decrypted; create the channel again")
    body = json.dumps(payload(delivery), separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(channel.target, data=body, method="POST", headers={  # noqa: S310 - http(s) only
        "Content-Type": "application/json", "User-Agent": "solax-fleet-webhooks/1",
        TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)})
    try:
        with _opener(address).open(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except TimeoutError:
        raise _TransientStatus(f"no answer within {WEBHOOK_TIMEOUT_SECONDS} s") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _TransientStatus(f"not delivered: {type(reason).__name__}: {str(reason)[:200]}") from None
    if 200 <= status < 300:
        return Sent(status)
    if status in TRANSIENT_STATUS:
        raise _TransientStatus(f"the endpoint answered {status}", status)
    raise PermanentDeliveryError(f"the endpoint answered {status}", status)


# Channels ----------------------------------------------------------------------------------------

def send_test(channel: Channel) -> Delivery:
    """Send a test message to the channel now (one attempt, no retry) and return its delivery."""
    delivery = Delivery.objects.create(channel=channel, event=TEST)
    return deliver(delivery.pk, final=True) or delivery
