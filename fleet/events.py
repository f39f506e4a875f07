"""What happened, told upwards: signals that lower layers send and higher ones (fleet.alerts) receive.

The pipeline, the command tracking and the sync sit below the alerts in the layers and must not
import them; they send one of these signals at the point where the event happens and fleet.alerts
connects its receivers (imported in AppConfig.ready). Senders use ``send_robust``: a receiver that
fails is logged and never breaks the pipeline. Receivers run inside the sender's transaction, so
anything they write commits with the event or not at all; network I/O waits for the commit.
"""

from __future__ import annotations

import logging

from django.dispatch import Signal

log = logging.getLogger("fleet.events")

# An account was paused (sender: SolaxAccount class; account, until, reason, cause: "rate_limit",
# "lockout", "token_rejected" or "token_unreadable").
account_paused = Signal()

# A command's derived state changed (sender: Command class; command, previous: its state before).
command_state_changed = Signal()

# A sync run ended (sender: SyncRun class; run, state: done, incomplete or failed).
sync_finished = Signal()


def send(signal: Signal, sender: object, **kwargs: object) -> None:
    """Send ``signal`` robustly: a receiver's exception is logged, never raised into the sender."""
    for receiver, result in signal.send_robust(sender, **kwargs):
        if isinstance(result, Exception):
            log.error("receiver %s of an event failed: %s", getattr(receiver, "__qualname__", receiver),
                      type(result).__name__, exc_info=result)
