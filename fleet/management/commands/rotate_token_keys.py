"""Re-encrypt every stored SolaX token (and EV callback secret) under the first key of TOKEN_ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from fleet import crypto
from fleet.models import SolaxAccount


class Command(BaseCommand):
    help = ("Re-encrypt all SolaX tokens with the primary (first) key of TOKEN_ENCRYPTION_KEYS. "
            "Put the new key first, keep the old ones after it, run this, then drop the old keys.")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        done = 0
        for account in SolaxAccount.objects.select_for_update().only(
                "pk", "token_ciphertext", "callback_secret_ciphertext", "callback_secret_hash"):
            try:
                account.token_ciphertext = crypto.rotate(account.token_ciphertext)
                # the EV callback secret is encrypted under the same keys
                account.callback_secret_ciphertext = crypto.rotate(account.callback_secret_ciphertext)
            except Exception:  # noqa: BLE001 - name the account, never the ciphertext
                raise CommandError(f"The token of account {account.pk} opens with none of the keys.")
            account.save(update_fields=["token_ciphertext", "callback_secret_ciphertext"])
            done += 1
        self.stdout.write(f"Re-encrypted {done} token(s) under the primary key.")
