"""One token, one budget (issue 11): a keyed digest of each token, unique across organizations, and
the per-account budget held to SOLAX_MAX_CALLS_PER_MINUTE / SOLAX_MAX_CALLS_PER_DAY.

Numbered 0004_h1_* for the merge (the lead renumbers it); on this branch it follows 0005.
"""

from datetime import UTC, datetime

import django.core.validators
from django.db import migrations, models

import fleet.models.accounts
from fleet import crypto

# Kept here, not imported: a migration must not change when the model module does.
SHARED_REASON = "another account holds the same token: enter this account's own token in Settings"
UNTIL_CHANGED = datetime(9999, 12, 31, tzinfo=UTC)


def fill_digests(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Digest every readable token. When two accounts already share a token, the oldest keeps it
    and the others are paused until someone enters their own token; a token the keys cannot open
    keeps no digest (the pipeline pauses its account; rotate_token_keys fills it once it opens)."""
    SolaxAccount = apps.get_model("fleet", "SolaxAccount")
    seen: set[str] = set()
    for account in SolaxAccount.objects.order_by("pk").only("pk", "token_ciphertext"):
        try:
            digest = crypto.token_digest(crypto.decrypt(account.token_ciphertext))
        except ValueError:
            continue
        if digest in seen:
            SolaxAccount.objects.filter(pk=account.pk).update(paused_until=UNTIL_CHANGED, pause_reason=SHARED_REASON)
            continue
        seen.add(digest)
        SolaxAccount.objects.filter(pk=account.pk).update(token_digest=digest)


class Migration(migrations.Migration):

    dependencies = [
        ('fleet', '0013_result_delay'),
    ]

    operations = [
        migrations.AddField(
            model_name='solaxaccount',
            name='token_digest',
            field=models.CharField(editable=False, max_length=64, null=True, unique=True),
        ),
        migrations.RunPython(fill_digests, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='solaxaccount',
            name='calls_per_day',
            field=models.PositiveIntegerField(default=10000, validators=[django.core.validators.MinValueValidator(1), fleet.models.accounts.validate_calls_per_day]),
        ),
        migrations.AlterField(
            model_name='solaxaccount',
            name='calls_per_minute',
            field=models.PositiveIntegerField(default=10, validators=[django.core.validators.MinValueValidator(1), fleet.models.accounts.validate_calls_per_minute]),
        ),
    ]
