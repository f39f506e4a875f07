"""The embedded broker of `make demo`: kombu's filesystem transport with atomic publish and claim.

kombu's own filesystem transport creates a message file and then writes into it, so a consumer can
list, move and read the file while it is still empty; the worker then dies with
`Unrecoverable error: JSONDecodeError` (kombu issue 1551). It also moves a claimed file to the
system's temporary folder, which may be another filesystem: then `shutil.move` copies, and two
consumers can both read the same message.

Here a message is written and fsynced under a name no consumer looks at, in a folder on the same
filesystem, and renamed into the queue folder: a consumer sees either nothing or the whole file. A
consumer claims a file by renaming it into the `processed` folder (same filesystem), which exactly
one consumer can win. A file that still does not hold a kombu message (written by hand, a disk
error) is logged, kept in `rejected/` for inspection, and skipped, so it cannot stop the worker.

Selected with `CELERY_BROKER_TRANSPORT = "fleet.broker:Transport"` (fleet/settings.py); no Django
import here, so the transport loads in any kombu client.
"""

from __future__ import annotations

import base64
import binascii
import collections
import logging
import os
import uuid
from functools import cached_property
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

SUFFIX = ".msg"


class MalformedMessage(ValueError):
    """A queue file that does not hold a kombu message envelope."""


def parse_envelope(raw: bytes) -> dict[str, Any]:
    """Return the message envelope in `raw`, or raise MalformedMessage saying what is wrong.

    Checks what the virtual transport reads before Celery sees the message (`properties`,
    `delivery_tag`, a base64 body), because an error there stops the worker's consumer instead of
    being reported for one message."""
    try:
        payload = loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedMessage(f"not JSON ({exc})") from exc
    if not isinstance(payload, dict):
        raise MalformedMessage("not a JSON object")
    properties = payload.get("properties")
    if not isinstance(properties, dict) or "delivery_tag" not in properties:
        raise MalformedMessage("no properties.delivery_tag")
    body = payload.get("body")
    if body is not None and not isinstance(body, str):
        raise MalformedMessage("body is not a string")
    if body and properties.get("body_encoding") == "base64":
        try:
            base64.b64decode(body.encode(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedMessage(f"body is not base64 ({exc})") from exc
    return payload


class Channel(filesystem.Channel):
    """Filesystem channel whose messages appear whole and are claimed by one consumer."""

    @property
    def _broker_root(self) -> str:
        return os.path.dirname(os.path.abspath(self.data_folder_out))

    def _folder(self, name: str, option: str | None = None) -> str:
        folder = self.transport_options.get(option) if option else None
        path = folder or os.path.join(self._broker_root, name)
        os.makedirs(path, exist_ok=True)
        return str(path)

    # kombu's filesystem Channel names the argument `payload`, its base class `message`: mypy sees a clash
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Write `payload` under a temporary name, fsync it, and rename it into the queue folder."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}{SUFFIX}"
        staging = os.path.join(self._folder("staging", "staging_folder"), name)
        target = os.path.join(self.data_folder_out, name)
        data = dumps(payload).encode("utf-8")
        try:
            with open(staging, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.rename(staging, target)  # atomic on one filesystem: readers see all of it or nothing
        except OSError as exc:
            raise ChannelError(f"Cannot add a message to {self.data_folder_out!r}") from exc

    def _get(self, queue: str, timeout: Any = None) -> dict[str, Any]:
        """Claim the oldest message of `queue` (rename into `processed/`), read it and return it."""
        claimed_dir = self._folder("processed", "processed_folder")
        while True:
            filename = self._next_name(queue)
            if filename is None:
                raise virtual.Empty()
            claimed = os.path.join(claimed_dir, filename)
            try:
                os.rename(os.path.join(self.data_folder_in, filename), claimed)
            except FileNotFoundError:
                continue  # another consumer won it
            except OSError as exc:
                raise ChannelError(f"Cannot claim {filename!r}") from exc
            try:
                with open(claimed, "rb") as f:
                    raw = f.read()
            except OSError as exc:
                raise ChannelError(f"Cannot read {claimed!r}") from exc
            try:
                payload = parse_envelope(raw)
            except MalformedMessage as exc:
                self._reject(claimed, filename, str(exc))
                continue
            if not self.store_processed:
                os.remove(claimed)
            return payload

    def _next_name(self, queue: str) -> str | None:
        """The oldest file name of `queue` not yet tried. One listing serves many gets: a folder of
        thousands of messages is listed once per pass, not once per message."""
        pending = self._listing.get(queue)
        if not pending:
            wanted = f"{queue}{SUFFIX}"
            names = sorted(n for n in os.listdir(self.data_folder_in) if n.partition(".")[2] == wanted)
            pending = self._listing[queue] = collections.deque(names)
        return pending.popleft() if pending else None

    @cached_property
    def _listing(self) -> dict[str, collections.deque[str]]:
        return {}

    def _reject(self, path: str, filename: str, reason: str) -> None:
        rejected = os.path.join(self._folder("rejected"), filename)
        try:
            os.rename(path, rejected)
        except OSError:
            rejected = path
        logger.error("Dropped a malformed broker message %s: %s (kept as %s)", filename, reason, rejected)


class Transport(filesystem.Transport):
    """The filesystem transport with atomic publish and claim (see the module docstring)."""

    Channel = Channel
    # a state of its own: kombu's global_state of the plain transport is not shared with ours
    global_state = virtual.BrokerState()
    driver_name = "filesystem-atomic"

    @property
    def default_connection_params(self) -> dict[str, Any]:
        # a folder has no host: without this kombu warns "No hostname was supplied" on every connection
        return {"port": self.default_port}
