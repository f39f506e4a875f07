"""Re-encrypt every stored SolaX token (and EV callback secret) under the first key of
TOKEN_ENCRYPTION_KEYS, and re-compute the token's digest under that key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from fleet import crypto
from fleet.models import SolaxAccount
from fleet.models.accounts import TOKEN_SHARED_REASON, UNTIL_CHANGED


class Command(BaseCommand):
    help = ("Re-encrypt all SolaX tokens with the primary (first) key of TOKEN_ENCRYPTION_KEYS. "
            "Put the new key first, keep the old ones after it, run this, then drop the old keys.")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        done = 0
        seen: set[str] = set()
        for account in SolaxAccount.objects.select_for_update().order_by("pk").only(
                "pk", "token_ciphertext", "token_digest", "paused_until", "pause_reason",
                "callback_secret_ciphertext", "callback_secret_hash"):
            try:
                token = crypto.decrypt(account.token_ciphertext)
                account.token_ciphertext = crypto.rotate(account.token_ciphertext)
                # the EV callback secret is encrypted under the same keys
                account.callback_secret_ciphertext = crypto.rotate(account.callback_secret_ciphertext)
            except Exception:  # noqa: BLE001 - name the account, never the ciphertext
                raise CommandError(f"The token of account {account.pk} opens with none of the keys.")
            # The digest's key derives from the primary key: it moves with it. A legacy account that
            # shares its token with an older one (no digest yet) stays without and is paused.
            digest = crypto.token_digest(token)
            if digest in seen:
                account.token_digest = None
                account.paused_until, account.pause_reason = UNTIL_CHANGED, TOKEN_SHARED_REASON
            else:
                seen.add(digest)
                account.token_digest = digest
            account.save(update_fields=["token_ciphertext", "token_digest", "paused_until", "pause_reason",
                                         "callback_secret_ciphertext"])
            done += 1
        self.stdout.write(f"Re-encrypted {done} token(s) under the primary key.")
